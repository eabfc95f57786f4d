-- Quotas (see the Postgres migration): a record's server-computed `size`, usage counted by
-- triggers on ext_storage_records, limits checked by the same triggers.
ALTER TABLE ext_storage_records ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE ext_storage_records SET size = length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))
    + length(CAST(metadata AS BLOB));

ALTER TABLE ext_storage_namespaces ADD COLUMN keys INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ext_storage_namespaces ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE ext_storage_namespaces
   SET keys = (SELECT count(*) FROM ext_storage_records r
                WHERE r.tenant_id = ext_storage_namespaces.tenant_id
                  AND r.namespace = ext_storage_namespaces.namespace),
       bytes = (SELECT coalesce(sum(size), 0) FROM ext_storage_records r
                 WHERE r.tenant_id = ext_storage_namespaces.tenant_id
                   AND r.namespace = ext_storage_namespaces.namespace);

CREATE TABLE ext_storage_tenants (
    tenant_id              TEXT    NOT NULL PRIMARY KEY,
    bytes                  INTEGER NOT NULL DEFAULT 0,
    max_namespaces         INTEGER,
    max_keys_per_namespace INTEGER,
    max_bytes              INTEGER,
    updated_at             INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO ext_storage_tenants (tenant_id, bytes)
SELECT tenant_id, sum(size) FROM ext_storage_records GROUP BY tenant_id;

CREATE TABLE ext_storage_quota_defaults (
    id                     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    max_namespaces         INTEGER,
    max_keys_per_namespace INTEGER,
    max_bytes              INTEGER
);
INSERT INTO ext_storage_quota_defaults (id, max_namespaces, max_keys_per_namespace, max_bytes)
VALUES (1, 32, 10000, 104857600);

CREATE TRIGGER ext_storage_records_usage_insert AFTER INSERT ON ext_storage_records
BEGIN
    INSERT INTO ext_storage_namespaces (tenant_id, namespace, version, keys, bytes)
    VALUES (NEW.tenant_id, NEW.namespace, 0, 1, NEW.size)
    ON CONFLICT (tenant_id, namespace) DO UPDATE SET keys = keys + 1, bytes = bytes + NEW.size;
    INSERT INTO ext_storage_tenants (tenant_id, bytes) VALUES (NEW.tenant_id, NEW.size)
    ON CONFLICT (tenant_id) DO UPDATE SET bytes = bytes + NEW.size;
    SELECT RAISE(ABORT, 'ALGA_QUOTA keysPerNamespace')
     WHERE (SELECT keys FROM ext_storage_namespaces
             WHERE tenant_id = NEW.tenant_id AND namespace = NEW.namespace)
         > (SELECT coalesce(x.max_keys_per_namespace, d.max_keys_per_namespace)
              FROM ext_storage_quota_defaults d
              LEFT JOIN ext_storage_tenants x ON x.tenant_id = NEW.tenant_id WHERE d.id = 1);
    SELECT RAISE(ABORT, 'ALGA_QUOTA bytes')
     WHERE NEW.size > 0
       AND (SELECT bytes FROM ext_storage_tenants WHERE tenant_id = NEW.tenant_id)
         > (SELECT coalesce(x.max_bytes, d.max_bytes)
              FROM ext_storage_quota_defaults d
              LEFT JOIN ext_storage_tenants x ON x.tenant_id = NEW.tenant_id WHERE d.id = 1);
END;

CREATE TRIGGER ext_storage_records_usage_update AFTER UPDATE ON ext_storage_records
WHEN NEW.size <> OLD.size
BEGIN
    UPDATE ext_storage_namespaces SET bytes = bytes + NEW.size - OLD.size
     WHERE tenant_id = NEW.tenant_id AND namespace = NEW.namespace;
    INSERT INTO ext_storage_tenants (tenant_id, bytes) VALUES (NEW.tenant_id, NEW.size - OLD.size)
    ON CONFLICT (tenant_id) DO UPDATE SET bytes = bytes + NEW.size - OLD.size;
    SELECT RAISE(ABORT, 'ALGA_QUOTA bytes')
     WHERE NEW.size > OLD.size
       AND (SELECT bytes FROM ext_storage_tenants WHERE tenant_id = NEW.tenant_id)
         > (SELECT coalesce(x.max_bytes, d.max_bytes)
              FROM ext_storage_quota_defaults d
              LEFT JOIN ext_storage_tenants x ON x.tenant_id = NEW.tenant_id WHERE d.id = 1);
END;

CREATE TRIGGER ext_storage_records_usage_delete AFTER DELETE ON ext_storage_records
BEGIN
    UPDATE ext_storage_namespaces SET keys = keys - 1, bytes = bytes - OLD.size
     WHERE tenant_id = OLD.tenant_id AND namespace = OLD.namespace;
    UPDATE ext_storage_tenants SET bytes = bytes - OLD.size WHERE tenant_id = OLD.tenant_id;
END;
