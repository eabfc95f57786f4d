-- A JSON Schema (2020-12) per namespace (see the Postgres migration).
CREATE TABLE ext_storage_schemas (
    tenant_id  TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    schema     TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, namespace)
) WITHOUT ROWID;
