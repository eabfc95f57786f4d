ALTER TABLE ext_storage_installs DROP COLUMN generation;
