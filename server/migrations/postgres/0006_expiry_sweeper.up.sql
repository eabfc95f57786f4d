-- For the background sweeper: expired records of every tenant, oldest expiry first.
CREATE INDEX ext_storage_records_expiry
    ON ext_storage_records (ttl_expires_at)
    WHERE ttl_expires_at IS NOT NULL;
