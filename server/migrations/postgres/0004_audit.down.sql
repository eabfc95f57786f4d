DROP TABLE IF EXISTS ext_storage_audit;
