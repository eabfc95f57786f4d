DROP TRIGGER IF EXISTS ext_storage_records_usage_delete;
DROP TRIGGER IF EXISTS ext_storage_records_usage_update;
DROP TRIGGER IF EXISTS ext_storage_records_usage_insert;
DROP TABLE IF EXISTS ext_storage_quota_defaults;
DROP TABLE IF EXISTS ext_storage_tenants;
ALTER TABLE ext_storage_namespaces DROP COLUMN bytes;
ALTER TABLE ext_storage_namespaces DROP COLUMN keys;
ALTER TABLE ext_storage_records DROP COLUMN size;
