ALTER TABLE ext_storage_namespaces DROP COLUMN pruned_seq;
DROP INDEX IF EXISTS ext_storage_changes_age;
DROP INDEX IF EXISTS ext_storage_changes;
ALTER TABLE ext_storage_audit DROP COLUMN ns_seq;
