-- The change feed (see the Postgres migration).
ALTER TABLE ext_storage_audit ADD COLUMN ns_seq INTEGER;
CREATE INDEX ext_storage_changes ON ext_storage_audit (tenant_id, namespace, ns_seq)
    WHERE ns_seq IS NOT NULL;
CREATE INDEX ext_storage_changes_age ON ext_storage_audit (at) WHERE ns_seq IS NOT NULL;
ALTER TABLE ext_storage_namespaces ADD COLUMN pruned_seq INTEGER NOT NULL DEFAULT 0;
UPDATE ext_storage_namespaces SET pruned_seq = version;
