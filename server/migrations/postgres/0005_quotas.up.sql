-- Quotas. Usage is counted by a row trigger on ext_storage_records, so every statement that
-- writes or deletes a record (any surface, TTL sweeps included) keeps the counters exact, and
-- a write that would cross a limit fails inside its own statement: nothing is written.
--
-- `size` is the stored size of a record as the server computes it (UTF-8 bytes of the key plus
-- compact JSON of value and metadata), so both backends count the same bytes.
ALTER TABLE ext_storage_records ADD COLUMN size bigint NOT NULL DEFAULT 0;
UPDATE ext_storage_records
   SET size = octet_length(key) + octet_length(value::text) + octet_length(metadata::text);

-- Per-namespace usage lives beside the namespace version (the row every write already locks).
ALTER TABLE ext_storage_namespaces ADD COLUMN keys bigint NOT NULL DEFAULT 0;
ALTER TABLE ext_storage_namespaces ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
UPDATE ext_storage_namespaces n
   SET keys = u.keys, bytes = u.bytes
  FROM (SELECT tenant_id, namespace, count(*) AS keys, sum(size) AS bytes
          FROM ext_storage_records GROUP BY tenant_id, namespace) u
 WHERE n.tenant_id = u.tenant_id AND n.namespace = u.namespace;

-- Per-tenant usage and quota overrides (NULL = the default).
CREATE TABLE ext_storage_tenants (
    tenant_id              uuid        NOT NULL PRIMARY KEY,
    bytes                  bigint      NOT NULL DEFAULT 0,
    max_namespaces         bigint,
    max_keys_per_namespace bigint,
    max_bytes              bigint,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ext_storage_tenants (tenant_id, bytes)
SELECT tenant_id, sum(size) FROM ext_storage_records GROUP BY tenant_id;

-- The defaults, one row, written by the server at start from its configuration
-- (NULL = no limit).
CREATE TABLE ext_storage_quota_defaults (
    id                     integer NOT NULL PRIMARY KEY CHECK (id = 1),
    max_namespaces         bigint,
    max_keys_per_namespace bigint,
    max_bytes              bigint
);
INSERT INTO ext_storage_quota_defaults (id, max_namespaces, max_keys_per_namespace, max_bytes)
VALUES (1, 32, 10000, 104857600);

-- Counts a record change; refuses one that adds keys past the namespace's limit or bytes past
-- the tenant's. Locks the namespace row, then the tenant row (the order every write follows).
CREATE FUNCTION ext_storage_count_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t  uuid;
    ns text;
    k  text;
    dk bigint;
    db bigint;
    keys_now  bigint;
    bytes_now bigint;
    max_keys  bigint;
    max_bytes bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        t := NEW.tenant_id; ns := NEW.namespace; k := NEW.key; dk := 1; db := NEW.size;
    ELSIF TG_OP = 'DELETE' THEN
        t := OLD.tenant_id; ns := OLD.namespace; k := OLD.key; dk := -1; db := -OLD.size;
    ELSE
        t := NEW.tenant_id; ns := NEW.namespace; k := NEW.key; dk := 0; db := NEW.size - OLD.size;
    END IF;
    IF dk = 0 AND db = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO ext_storage_namespaces AS n (tenant_id, namespace, version, keys, bytes)
    VALUES (t, ns, 0, dk, db)
    ON CONFLICT (tenant_id, namespace) DO UPDATE SET keys = n.keys + dk, bytes = n.bytes + db
    RETURNING n.keys INTO keys_now;
    IF db <> 0 THEN
        INSERT INTO ext_storage_tenants AS x (tenant_id, bytes) VALUES (t, db)
        ON CONFLICT (tenant_id) DO UPDATE SET bytes = x.bytes + db
        RETURNING x.bytes INTO bytes_now;
    END IF;
    IF dk > 0 OR db > 0 THEN
        SELECT coalesce(x.max_keys_per_namespace, d.max_keys_per_namespace),
               coalesce(x.max_bytes, d.max_bytes)
          INTO max_keys, max_bytes
          FROM ext_storage_quota_defaults d
          LEFT JOIN ext_storage_tenants x ON x.tenant_id = t
         WHERE d.id = 1;
        IF dk > 0 AND keys_now > max_keys THEN
            RAISE EXCEPTION USING ERRCODE = 'AQ001', MESSAGE = 'ALGA_QUOTA keysPerNamespace ' || k;
        END IF;
        IF db > 0 AND bytes_now > max_bytes THEN
            RAISE EXCEPTION USING ERRCODE = 'AQ001', MESSAGE = 'ALGA_QUOTA bytes ' || k;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ext_storage_records_usage
AFTER INSERT OR UPDATE OR DELETE ON ext_storage_records
FOR EACH ROW EXECUTE FUNCTION ext_storage_count_usage();

-- On Citus: tenants are colocated with records; the defaults are a reference table, so the
-- trigger (which touches only rows of the record's own tenant) runs on the record's shard.
-- Citus runs triggers on distributed tables only with citus.enable_unsafe_triggers = on.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM create_distributed_table('ext_storage_tenants', 'tenant_id',
                                         colocate_with => 'ext_storage_records');
        PERFORM create_reference_table('ext_storage_quota_defaults');
    END IF;
END
$$;
