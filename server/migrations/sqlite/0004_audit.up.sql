-- One row per successful mutation (see the Postgres migration).
CREATE TABLE ext_storage_audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT    NOT NULL,
    principal TEXT    NOT NULL,
    namespace TEXT,
    key       TEXT,
    operation TEXT    NOT NULL,
    revision  INTEGER,
    surface   TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX ext_storage_audit_tenant ON ext_storage_audit (tenant_id, seq);
