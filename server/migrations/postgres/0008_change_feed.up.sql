-- The change feed (DESIGN § "Change feed"): each record change's audit row carries the
-- namespace's sequence number of that change (the namespace version right after it), so one
-- row serves the audit log and the feed. Rows without it (installs, schemas) are not changes.
ALTER TABLE ext_storage_audit ADD COLUMN ns_seq bigint;
CREATE INDEX ext_storage_changes ON ext_storage_audit (tenant_id, namespace, ns_seq)
    WHERE ns_seq IS NOT NULL;
-- For retention: the oldest changes of every tenant first.
CREATE INDEX ext_storage_changes_age ON ext_storage_audit (at) WHERE ns_seq IS NOT NULL;
-- The highest sequence number whose change is no longer in the log (pruned, or written by an
-- import): a reader behind it must start again from a full read. Namespaces written before
-- this migration have no log yet.
ALTER TABLE ext_storage_namespaces ADD COLUMN pruned_seq bigint NOT NULL DEFAULT 0;
UPDATE ext_storage_namespaces SET pruned_seq = version;
