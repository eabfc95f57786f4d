-- Principals: one row per extension install, with its grants. Looked up by install id alone
-- (the runner's endpoint names only the install), so on Citus this is a reference table.
CREATE TABLE ext_storage_installs (
    tenant_id    uuid        NOT NULL,
    install_id   text        NOT NULL,
    extension_id text        NOT NULL,
    grants       jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, install_id)
);
CREATE UNIQUE INDEX ext_storage_installs_install_id ON ext_storage_installs (install_id);

-- Records, keyed by (tenant, namespace, key). Keys compare bytewise ("C"), so list order is
-- code-point order on every backend.
CREATE TABLE ext_storage_records (
    tenant_id      uuid        NOT NULL,
    namespace      text        NOT NULL,
    key            text        COLLATE "C" NOT NULL,
    value          jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    revision       bigint      NOT NULL,
    ttl_expires_at timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, namespace, key)
);
-- For the opportunistic TTL sweep: expired rows of one namespace.
CREATE INDEX ext_storage_records_ttl
    ON ext_storage_records (tenant_id, namespace, ttl_expires_at)
    WHERE ttl_expires_at IS NOT NULL;

-- On Citus, distribute records by tenant; every statement filters on tenant_id, so each is a
-- single-shard router query.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM create_reference_table('ext_storage_installs');
        PERFORM create_distributed_table('ext_storage_records', 'tenant_id');
    END IF;
END
$$;
