-- The embedded backend. Same tables as Postgres; JSON is stored as text, times as integer
-- microseconds since the epoch (the precision Postgres keeps), keys compare bytewise (BINARY),
-- which is code-point order, as with COLLATE "C" on Postgres.
CREATE TABLE ext_storage_installs (
    tenant_id    TEXT    NOT NULL,
    install_id   TEXT    NOT NULL UNIQUE,
    extension_id TEXT    NOT NULL,
    grants       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, install_id)
);

CREATE TABLE ext_storage_records (
    tenant_id      TEXT    NOT NULL,
    namespace      TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    value          TEXT    NOT NULL,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    revision       INTEGER NOT NULL,
    ttl_expires_at INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, namespace, key)
) WITHOUT ROWID;

CREATE INDEX ext_storage_records_ttl
    ON ext_storage_records (tenant_id, namespace, ttl_expires_at)
    WHERE ttl_expires_at IS NOT NULL;
