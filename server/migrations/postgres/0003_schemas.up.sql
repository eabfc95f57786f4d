-- A JSON Schema (2020-12) per namespace. Deleting one keeps the row with schema NULL, so a
-- version is never reused and a cached validator can always tell whether it is current.
CREATE TABLE ext_storage_schemas (
    tenant_id  uuid        NOT NULL,
    namespace  text        NOT NULL,
    version    bigint      NOT NULL,
    schema     jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, namespace)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM create_distributed_table('ext_storage_schemas', 'tenant_id',
                                         colocate_with => 'ext_storage_records');
    END IF;
END
$$;
