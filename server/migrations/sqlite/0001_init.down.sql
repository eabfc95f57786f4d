DROP TABLE IF EXISTS ext_storage_records;
DROP TABLE IF EXISTS ext_storage_installs;
