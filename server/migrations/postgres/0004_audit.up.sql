-- One row per successful mutation, written in the same transaction as the mutation itself.
CREATE TABLE ext_storage_audit (
    tenant_id uuid        NOT NULL,
    seq       bigserial   NOT NULL,
    principal text        NOT NULL,
    namespace text,
    key       text,
    operation text        NOT NULL,
    revision  bigint,
    surface   text        NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM create_distributed_table('ext_storage_audit', 'tenant_id',
                                         colocate_with => 'ext_storage_records');
    END IF;
END
$$;
