DROP TRIGGER IF EXISTS ext_storage_records_usage ON ext_storage_records;
DROP FUNCTION IF EXISTS ext_storage_count_usage();
DROP TABLE IF EXISTS ext_storage_quota_defaults;
DROP TABLE IF EXISTS ext_storage_tenants;
ALTER TABLE ext_storage_namespaces DROP COLUMN IF EXISTS bytes;
ALTER TABLE ext_storage_namespaces DROP COLUMN IF EXISTS keys;
ALTER TABLE ext_storage_records DROP COLUMN IF EXISTS size;
