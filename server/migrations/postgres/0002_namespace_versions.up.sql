-- The version of each namespace, behind the snapshot API's ETag. Every write through any surface
-- advances it by the rows it changed plus the expired rows it made disappear, so that
-- version + (expired rows not yet swept) grows with every change of the visible namespace.
CREATE TABLE ext_storage_namespaces (
    tenant_id uuid   NOT NULL,
    namespace text   NOT NULL,
    version   bigint NOT NULL,
    PRIMARY KEY (tenant_id, namespace)
);

-- Namespaces that already hold records start at a version of at least 1 (0 means empty).
INSERT INTO ext_storage_namespaces (tenant_id, namespace, version)
SELECT tenant_id, namespace, count(*) FROM ext_storage_records GROUP BY tenant_id, namespace;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM create_distributed_table('ext_storage_namespaces', 'tenant_id',
                                         colocate_with => 'ext_storage_records');
    END IF;
END
$$;
