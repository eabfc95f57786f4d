-- The version of each namespace, behind the snapshot API's ETag (see the Postgres migration).
CREATE TABLE ext_storage_namespaces (
    tenant_id TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, namespace)
) WITHOUT ROWID;

INSERT INTO ext_storage_namespaces (tenant_id, namespace, version)
SELECT tenant_id, namespace, count(*) FROM ext_storage_records GROUP BY tenant_id, namespace;
