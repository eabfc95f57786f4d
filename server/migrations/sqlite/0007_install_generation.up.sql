-- Each install row has a generation, new whenever the row is created (an upsert of an existing
-- install keeps it). Browser tokens carry it, so a token minted before an install was deleted
-- never works for an install provisioned anew under the same id.
ALTER TABLE ext_storage_installs ADD COLUMN generation TEXT NOT NULL DEFAULT '';
UPDATE ext_storage_installs SET generation = lower(hex(randomblob(16)));
