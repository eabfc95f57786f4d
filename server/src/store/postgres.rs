//! The Postgres backend (Citus-ready: every statement filters on `tenant_id`).
//!
//! Writes are single statements where one record is involved, so a guard and its write are one
//! atomic step: a guarded `UPDATE … WHERE revision = n` re-checks the row's latest version after
//! waiting for a concurrent writer's lock, so of two writers guarded on the same revision exactly
//! one wins. Each write also deletes a bounded batch of expired records of its namespace
//! (`FOR UPDATE SKIP LOCKED`, never the key being written); reads are one plain `SELECT` each
//! and never write; the background sweeper removes the rest.

use super::atomic::{self, AtomicTx, Expiry, Locked, Put};
use super::bulk::{self, BulkTx};
use super::direct::Direct;
use super::feed::{self, Feed};
use super::patch::{self, NamespaceState, PatchTx};
use super::principals::{PrincipalCache, CHANNEL};
use super::transfer::{
    self, Counts, ExportFilter, ExportTx, ImportTx, InstallLine, Line, NamespaceLine, Part,
    QuotaLine, RecordLine, SchemaLine, Sink,
};
use super::{
    backend, change_page, db, delete_allowed, in_request_order, install_of_another_tenant, keyed,
    precondition_failed, record_size, Actor, AuditEntry, ChangeRow, ChangesQuery, ListQuery,
    NamespaceUsage, Principal, QuotaRow, Quotas, Retention, SchemaLookup, SchemaVersion, Store,
    StoreError, Upserted, Written,
};
use alga_storage_core::{
    AtomicRequest, AtomicResponse, BulkPutItem, BulkPutRequest, BulkPutResponse, DeleteRequest,
    GetManyRequest, GetManyResponse, GetRequest, Grant, InstallId, Key, ListItem, Metadata,
    Namespace, PatchOp, PutRequest, PutResponse, Record, Snapshot, StorageError,
};
use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::str::FromStr;
use uuid::Uuid;

/// The embedded migrations (each with its down migration).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// `WITH batch …, swept …`: deletes up to 16 expired records of namespace `$2` of tenant `$1`,
/// skipping rows another transaction holds and the keys the statement itself writes. The batch
/// is a materialized CTE so it is chosen exactly once (as a subquery of the `DELETE`, a
/// nested-loop plan would rescan it per row and the limit would not hold).
macro_rules! sweep {
    ($exclude:literal) => {
        concat!(
            "WITH batch AS MATERIALIZED (SELECT key FROM ext_storage_records ",
            "WHERE tenant_id = $1 AND namespace = $2 AND ttl_expires_at <= now() ",
            $exclude,
            " LIMIT 16 FOR UPDATE SKIP LOCKED), ",
            "swept AS (DELETE FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 ",
            "AND key IN (SELECT key FROM batch) RETURNING key), "
        )
    };
}

/// `delta AS (…), bump AS (…), expired AS (…)`: advances the namespace version by the swept
/// rows plus `$changes` (an SQL expression: the rows the statement wrote or deleted, plus those
/// of them that had expired), returning the new version, and writes the change rows of the
/// swept records (sequence numbers right after the old version, in key order; the statement's
/// own change takes the new version, see [`audit!`]). The version row is touched only when the
/// sum is positive, and last, after the records.
macro_rules! bump {
    ($changes:literal) => {
        concat!(
            "delta AS (SELECT (SELECT count(*) FROM swept) + (",
            $changes,
            ") AS d), ",
            "bump AS (INSERT INTO ext_storage_namespaces AS n (tenant_id, namespace, version) ",
            "SELECT $1, $2, d FROM delta WHERE d > 0 ",
            "ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = n.version + EXCLUDED.version ",
            "RETURNING version), ",
            "expired AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface, ns_seq) ",
            "SELECT $1, 'system', $2, s.key, 'expire', NULL, 'sweeper', ",
            "b.version - x.d + row_number() OVER (ORDER BY s.key) FROM swept s, bump b, delta x) "
        )
    };
}

/// `audit AS (…)`: the audit row of each row the CTE `$from` wrote, for tenant `$1`, namespace
/// `$2`, key `$3`, by the principal and surface in the given parameters; its change sequence
/// number is the namespace's new version (after [`bump!`]).
macro_rules! audit {
    ($op:literal, $from:literal, $revision:literal, $principal:literal, $surface:literal) => {
        concat!(
            "audit AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface, ns_seq) ",
            "SELECT $1, ", $principal, ", $2, $3, '", $op, "', ", $revision, ", ", $surface,
            ", (SELECT version FROM bump) FROM ", $from, ") "
        )
    };
}

/// `sc AS (…)`: whether namespace `$2`'s schema is still at version `$11`, the one the value
/// was checked against (0: none). The write CTE writes only when it is; the statement's last
/// `SELECT` always answers one row, saying so (see [`Store::put`]).
macro_rules! schema_current {
    () => {
        "sc AS (SELECT coalesce((SELECT version FROM ext_storage_schemas \
           WHERE tenant_id = $1 AND namespace = $2), 0) = $11 AS current), "
    };
}

/// The last `SELECT` of a guarded single write: the written row's fields (NULL when nothing was
/// written) and whether the schema was current.
macro_rules! written_or_not {
    () => {
        "SELECT w.revision, w.ttl_expires_at, w.created_at, w.updated_at, \
           sc.current FROM sc LEFT JOIN w ON true"
    };
}

/// The live revision of key `$3` (no row when there is none).
const LIVE_REVISION: &str = "SELECT revision FROM ext_storage_records WHERE tenant_id = $1 \
     AND namespace = $2 AND key = $3 AND (ttl_expires_at IS NULL OR ttl_expires_at > now())";

/// Unconditional or create-only (`$7 = 0`) upsert. An expired row counts as absent: it is
/// replaced and starts again at revision 1.
const UPSERT: &str = concat!(
    sweep!("AND key <> $3"),
    schema_current!(),
    "prior AS (SELECT count(*) AS expired FROM ext_storage_records \
       WHERE tenant_id = $1 AND namespace = $2 AND key = $3 AND ttl_expires_at <= now()), \
     w AS (INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, metadata, revision, \
       ttl_expires_at, created_at, updated_at, size) \
     SELECT $1, $2, $3, $4, $5, 1, now() + make_interval(secs => $6), now(), now(), $10 FROM sc WHERE current \
     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET \
       value = EXCLUDED.value, metadata = EXCLUDED.metadata, size = EXCLUDED.size, \
       ttl_expires_at = EXCLUDED.ttl_expires_at, updated_at = EXCLUDED.updated_at, \
       revision = CASE WHEN r.ttl_expires_at <= now() THEN 1 ELSE r.revision + 1 END, \
       created_at = CASE WHEN r.ttl_expires_at <= now() THEN EXCLUDED.created_at ELSE r.created_at END \
     WHERE $7::bigint IS NULL OR r.ttl_expires_at <= now() \
     RETURNING revision, ttl_expires_at, created_at, updated_at), ",
    bump!("SELECT CASE WHEN EXISTS (SELECT 1 FROM w) THEN 1 + (SELECT expired FROM prior) ELSE 0 END"),
    ", ",
    audit!("put", "w", "revision", "$8", "$9"),
    written_or_not!()
);

/// Update guarded on the current live revision `$7`.
const GUARDED_UPDATE: &str = concat!(
    sweep!("AND key <> $3"),
    schema_current!(),
    "w AS (UPDATE ext_storage_records SET value = $4, metadata = $5, size = $10, \
       ttl_expires_at = now() + make_interval(secs => $6), updated_at = now(), revision = revision + 1 \
     WHERE tenant_id = $1 AND namespace = $2 AND key = $3 AND revision = $7 \
       AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) AND (SELECT current FROM sc) \
     RETURNING revision, ttl_expires_at, created_at, updated_at), ",
    bump!("SELECT count(*) FROM w"),
    ", ",
    audit!("put", "w", "revision", "$8", "$9"),
    written_or_not!()
);

/// A read is one plain statement: it never writes (expired rows are only filtered out here,
/// and removed by writes and the background sweeper).
const GET: &str = "SELECT value, metadata, revision, ttl_expires_at, created_at, updated_at \
     FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = $3 \
       AND (ttl_expires_at IS NULL OR ttl_expires_at > now())";

/// `$3` lower bound (the prefix, or ''), `$4` exclusive cursor key, `$5` literal prefix,
/// `$6` metadata containment filter, `$7` row count, `$8`/`$9` include value/metadata.
const LIST: &str = "SELECT key, revision, CASE WHEN $8 THEN value END AS value, \
       CASE WHEN $9 THEN metadata END AS metadata, ttl_expires_at, created_at, updated_at \
     FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
       AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) \
       AND key >= $3 AND ($4::text IS NULL OR key > $4) \
       AND ($5::text IS NULL OR starts_with(key, $5)) \
       AND ($6::jsonb IS NULL OR metadata @> $6) \
     ORDER BY key LIMIT $7";

/// The whole live namespace, with the version and the count of expired rows not yet swept
/// (whose sum is the ETag).
const SNAPSHOT: &str = "SELECT key, value, \
       coalesce((SELECT version FROM ext_storage_namespaces WHERE tenant_id = $1 AND namespace = $2), 0) AS version, \
       (SELECT count(*) FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
          AND ttl_expires_at <= now()) AS expired \
     FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
       AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) ORDER BY key";

const DELETE: &str = concat!(
    sweep!("AND key <> $3"),
    "d AS (DELETE FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = $3 \
       RETURNING ttl_expires_at <= now() AS expired), ",
    bump!("SELECT count(*) + count(*) FILTER (WHERE expired) FROM d"),
    ", ",
    audit!("delete", "d", "NULL::bigint", "$4", "$5"),
    "SELECT count(*) FROM d"
);

const GUARDED_DELETE: &str = concat!(
    sweep!("AND key <> $3"),
    "d AS (DELETE FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = $3 \
       AND revision = $4 AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) RETURNING revision), ",
    bump!("SELECT count(*) FROM d"),
    ", ",
    audit!("delete", "d", "NULL::bigint", "$5", "$6"),
    "SELECT revision FROM d"
);

/// `per_ns AS (…), bump AS (…), expired AS (…)` after a `swept` CTE returning `tenant_id`,
/// `namespace` and `key` of records of several namespaces: advances each namespace's version by
/// its swept rows (in one lock order) and writes their change rows, numbered after the old
/// version in key order.
macro_rules! expire_many {
    () => {
        concat!(
            "per_ns AS (SELECT tenant_id, namespace, count(*) AS n FROM swept GROUP BY tenant_id, namespace), ",
            "bump AS (INSERT INTO ext_storage_namespaces AS v (tenant_id, namespace, version) ",
            "SELECT tenant_id, namespace, n FROM per_ns ORDER BY tenant_id, namespace ",
            "ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = v.version + EXCLUDED.version ",
            "RETURNING tenant_id, namespace, version), ",
            "expired AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface, ns_seq) ",
            "SELECT s.tenant_id, 'system', s.namespace, s.key, 'expire', NULL, 'sweeper', ",
            "b.version - p.n + row_number() OVER (PARTITION BY s.tenant_id, s.namespace ORDER BY s.key) ",
            "FROM swept s JOIN bump b USING (tenant_id, namespace) JOIN per_ns p USING (tenant_id, namespace)) "
        )
    };
}

/// Up to `$1` expired records of any namespace, oldest expiry first, removed with their
/// namespaces' versions advanced (rows other transactions hold are left for the next pass).
const SWEEP_EXPIRED: &str = concat!(
    "WITH batch AS MATERIALIZED (SELECT tenant_id, namespace, key \
       FROM ext_storage_records WHERE ttl_expires_at <= now() ORDER BY ttl_expires_at LIMIT $1 \
       FOR UPDATE SKIP LOCKED), \
     swept AS (DELETE FROM ext_storage_records r USING batch b WHERE r.tenant_id = b.tenant_id \
       AND r.namespace = b.namespace AND r.key = b.key RETURNING r.tenant_id, r.namespace, r.key), ",
    expire_many!(),
    "SELECT tenant_id, namespace FROM swept"
);

/// Locks the existing rows a write of several keys touches, in key order (so concurrent writers
/// lock in one order), and reports their live revision (0 when expired).
const LOCK_KEYS: &str = "SELECT key, CASE WHEN ttl_expires_at IS NULL OR ttl_expires_at > now() \
       THEN revision ELSE 0 END AS revision FROM ext_storage_records \
     WHERE tenant_id = $1 AND namespace = $2 AND key = ANY($3) ORDER BY key FOR UPDATE";

/// Writes several records (given in key order, so concurrent writers insert in one order and
/// cannot deadlock); keys in `$7` are create-only and are skipped if a live row appeared since
/// the lock (the caller then reports them and rolls back).
const UPSERT_MANY: &str = "INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, \
       metadata, revision, ttl_expires_at, created_at, updated_at, size) \
     SELECT $1, $2, u.k, u.v, u.m, 1, now() + make_interval(secs => u.t), now(), now(), u.s \
     FROM UNNEST($3::text[], $4::jsonb[], $5::jsonb[], $6::int[], $8::bigint[]) AS u(k, v, m, t, s) \
     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET \
       value = EXCLUDED.value, metadata = EXCLUDED.metadata, size = EXCLUDED.size, \
       ttl_expires_at = EXCLUDED.ttl_expires_at, updated_at = EXCLUDED.updated_at, \
       revision = CASE WHEN r.ttl_expires_at <= now() THEN 1 ELSE r.revision + 1 END, \
       created_at = CASE WHEN r.ttl_expires_at <= now() THEN EXCLUDED.created_at ELSE r.created_at END \
     WHERE NOT (r.key = ANY($7)) OR r.ttl_expires_at <= now() \
     RETURNING key, revision, ttl_expires_at, created_at, updated_at";

/// The last statement of a multi-key write: sweeps (never the keys `$4` it wrote) and advances
/// the namespace version by the swept rows plus `$3`, returning the new version (the write's
/// own change rows take the sequence numbers up to it). The version row is the last lock taken.
const SWEEP_AND_BUMP: &str = concat!(
    sweep!("AND key <> ALL($4)"),
    bump!("SELECT $3::bigint"),
    "SELECT version FROM bump"
);

/// The end of an `atomic`: its audit rows (keys `$5`, operations `$6`, revisions `$7`, by
/// principal `$8` on surface `$9`, in order), a sweep that never takes the keys `$4` it wrote,
/// and the namespace version advanced by the swept rows plus `$3`, in one statement.
const ATOMIC_FINISH: &str = concat!(
    sweep!("AND key <> ALL($4)"),
    bump!("SELECT $3::bigint"),
    ", audit AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface, ns_seq) ",
    "SELECT $1, $8, $2, u.k, u.o, u.r, $9, b.version - cardinality($5::text[]) + u.i ",
    "FROM UNNEST($5::text[], $6::text[], $7::bigint[]) WITH ORDINALITY AS u(k, o, r, i), bump b ORDER BY u.i) ",
    "SELECT 1"
);

/// The audit rows of a multi-key write: keys `$6` with their new revisions `$7` (NULL for
/// deletions), all with operation `$4`, their change sequence numbers from `$8` on.
const AUDIT_MANY: &str = "INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface, ns_seq) \
     SELECT $1, $2, $3, u.k, $4, u.r, $5, $8 + u.i - 1 \
     FROM UNNEST($6::text[], $7::bigint[]) WITH ORDINALITY AS u(k, r, i)";

/// Sets a namespace version to `$3` if it is still `$4` (absent counts as 0).
const SET_VERSION_IF: &str = "INSERT INTO ext_storage_namespaces AS n (tenant_id, namespace, version) \
     VALUES ($1, $2, $3) ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = EXCLUDED.version \
     WHERE n.version = $4 RETURNING 1";

/// The namespace state an ETag is computed from: version, live rows, expired rows.
const NAMESPACE_STATE: &str = "SELECT \
       coalesce((SELECT version FROM ext_storage_namespaces WHERE tenant_id = $1 AND namespace = $2), 0), \
       (SELECT count(*) FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
          AND (ttl_expires_at IS NULL OR ttl_expires_at > now())), \
       (SELECT count(*) FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
          AND ttl_expires_at <= now())";

/// How long a request waits for a connection before it is answered `UNAVAILABLE`.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

/// The Postgres store.
#[derive(Clone)]
pub struct PgStore {
    /// Transactions (and the listeners): sqlx's pool, which settles a connection given back.
    pool: PgPool,
    /// Statements on their own (every read, single puts and deletes): see [`Direct`].
    direct: Direct,
    feed: std::sync::Arc<Feed>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects (`postgres://…`, options such as `?options=-c search_path=…` honoured) and runs
    /// the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(db)?;
        // The configured connections, shared: three quarters (at least one) for statements on
        // their own, which are most of the traffic; the rest, at least 3, for transactions and
        // the two listeners (each holds one connection of sqlx's pool for good).
        let statements = (max_connections - max_connections / 4).max(1);
        let direct = Direct::new(options.clone(), statements, ACQUIRE_TIMEOUT).map_err(db)?;
        let pool = PgPoolOptions::new()
            .max_connections((max_connections / 4).max(3))
            // With the database down, a request fails fast (503) instead of waiting 30 s.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before every statement (a round trip per request): a connection the
            // database dropped fails its one request with UNAVAILABLE and is discarded.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db)?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        let feed = std::sync::Arc::new(Feed::default());
        let announcing = direct.clone();
        feed.announce_with(move |payload| {
            let direct = announcing.clone();
            async move {
                // A notification is a hint (the log is the truth, and watchers also poll):
                // its transaction does not wait for the WAL to reach the disk.
                sqlx::query(
                    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)",
                )
                .bind(feed::CHANNEL)
                .bind(payload)
                .execute(&direct)
                .await
                .map_err(db)?;
                Ok(())
            }
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(listen_for_changes(
                pool.clone(),
                std::sync::Arc::downgrade(&feed),
            ));
        }
        Ok(PgStore { pool, direct, feed })
    }

    /// The connection pool (for tests and the benchmark).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn live_revision(&self, tenant: Uuid, ns: &str, key: &str) -> Result<u64, StoreError> {
        let rev: Option<i64> = sqlx::query_scalar(LIVE_REVISION)
            .bind(tenant)
            .bind(ns)
            .bind(key)
            .fetch_optional(&self.direct)
            .await
            .map_err(db)?;
        Ok(rev.map_or(0, |r| r as u64))
    }
}

/// `getMany`: the live records of keys `$3`, one plain statement.
const GET_MANY: &str =
    "SELECT key, value, metadata, revision, ttl_expires_at, created_at, updated_at \
     FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = ANY($3) \
     AND (ttl_expires_at IS NULL OR ttl_expires_at > now())";

/// Transaction-scoped advisory locks on the keys `$3` (in the order given) of namespace `$2` of
/// tenant `$1`: what serialises two `atomic`s that check keys they do not write.
const ATOMIC_GUARD: &str =
    "SELECT count(pg_advisory_xact_lock(hashtextextended($1::text || '/' || $2 || '/' || k, 0))) \
     FROM (SELECT k FROM unnest($3::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i) s";

/// The rows of an `atomic`, locked in key order, with their state.
const ATOMIC_LOCK: &str = "SELECT key, revision, value, metadata, ttl_expires_at, created_at, \
       (ttl_expires_at IS NULL OR ttl_expires_at > now()) AS live FROM ext_storage_records \
     WHERE tenant_id = $1 AND namespace = $2 AND key = ANY($3) ORDER BY key FOR UPDATE";

/// One record of an `atomic`: expiry `$6` seconds from now, else at `$7` (or never); a key
/// found absent (`$9`) is written only if still absent or expired, so a row created meanwhile
/// by another transaction makes the statement return nothing.
const ATOMIC_WRITE: &str = "INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, \
       metadata, revision, ttl_expires_at, created_at, updated_at, size) \
     VALUES ($1, $2, $3, $4, $5, 1, coalesce(now() + make_interval(secs => $6), $7), now(), now(), $8) \
     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET \
       value = EXCLUDED.value, metadata = EXCLUDED.metadata, size = EXCLUDED.size, \
       ttl_expires_at = EXCLUDED.ttl_expires_at, updated_at = EXCLUDED.updated_at, \
       revision = CASE WHEN r.ttl_expires_at <= now() THEN 1 ELSE r.revision + 1 END, \
       created_at = CASE WHEN r.ttl_expires_at <= now() THEN EXCLUDED.created_at ELSE r.created_at END \
     WHERE NOT $9 OR r.ttl_expires_at <= now() \
     RETURNING revision";

fn ttl_param(ttl: Option<alga_storage_core::TtlSeconds>) -> Option<i32> {
    ttl.map(|t| t.get() as i32)
}

fn metadata_value(metadata: Option<&Metadata>) -> Value {
    Value::Object(metadata.cloned().unwrap_or_default())
}

fn written(row: &PgRow) -> Result<Written, StoreError> {
    Ok(Written {
        revision: row.try_get::<i64, _>("revision").map_err(db)? as u64,
        ttl_expires_at: row.try_get("ttl_expires_at").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
    })
}

/// One record of a multi-key write.
struct ManyItem<'a> {
    key: &'a str,
    value: &'a Value,
    metadata: Option<&'a Metadata>,
    ttl: Option<alga_storage_core::TtlSeconds>,
}

type Tx<'c> = sqlx::Transaction<'c, sqlx::Postgres>;

async fn lock_keys(
    tx: &mut Tx<'_>,
    tenant: Uuid,
    ns: &str,
    keys: &[&str],
) -> Result<HashMap<String, u64>, StoreError> {
    Ok(sqlx::query_as::<_, (String, i64)>(LOCK_KEYS)
        .bind(tenant)
        .bind(ns)
        .bind(keys)
        .fetch_all(&mut **tx)
        .await
        .map_err(db)?
        .into_iter()
        .map(|(k, r)| (k, r as u64))
        .collect())
}

/// Writes records in key order; returns what was written, by key (create-only keys that met a
/// live row are missing).
async fn upsert_many(
    tx: &mut Tx<'_>,
    tenant: Uuid,
    ns: &str,
    mut items: Vec<ManyItem<'_>>,
    create_only: &[&str],
) -> Result<HashMap<String, Written>, StoreError> {
    if items.is_empty() {
        return Ok(HashMap::new());
    }
    items.sort_by(|a, b| a.key.cmp(b.key));
    let keys: Vec<&str> = items.iter().map(|i| i.key).collect();
    let values: Vec<Json<&Value>> = items.iter().map(|i| Json(i.value)).collect();
    let metadata: Vec<Json<Value>> = items
        .iter()
        .map(|i| Json(metadata_value(i.metadata)))
        .collect();
    let ttls: Vec<Option<i32>> = items.iter().map(|i| ttl_param(i.ttl)).collect();
    let sizes: Vec<i64> = items
        .iter()
        .map(|i| record_size(i.key, i.value, i.metadata))
        .collect();
    let rows = sqlx::query(UPSERT_MANY)
        .bind(tenant)
        .bind(ns)
        .bind(&keys)
        .bind(&values)
        .bind(&metadata)
        .bind(&ttls)
        .bind(create_only)
        .bind(&sizes)
        .fetch_all(&mut **tx)
        .await
        .map_err(db)?;
    let mut by_key = HashMap::with_capacity(rows.len());
    for row in &rows {
        let key: String = row.try_get("key").map_err(db)?;
        by_key.insert(key, written(row)?);
    }
    Ok(by_key)
}

/// Writes the audit rows of a multi-key write (nothing when `keys` is empty), with change
/// sequence numbers from `first_seq` on.
#[allow(clippy::too_many_arguments)] // one per column of the audit row
async fn audit_many(
    tx: &mut Tx<'_>,
    tenant: Uuid,
    actor: Actor<'_>,
    ns: &str,
    operation: &str,
    keys: &[&str],
    revisions: &[Option<i64>],
    first_seq: i64,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(AUDIT_MANY)
        .bind(tenant)
        .bind(actor.principal)
        .bind(ns)
        .bind(operation)
        .bind(actor.surface)
        .bind(keys)
        .bind(revisions)
        .bind(first_seq)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

async fn sweep_and_bump(
    tx: &mut Tx<'_>,
    tenant: Uuid,
    ns: &str,
    changes: i64,
    keep: &[&str],
) -> Result<i64, StoreError> {
    let version: Option<i64> = sqlx::query_scalar(SWEEP_AND_BUMP)
        .bind(tenant)
        .bind(ns)
        .bind(changes)
        .bind(keep)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
    Ok(version.unwrap_or(0))
}

/// Version, live rows and expired rows of a namespace.
async fn namespace_state(
    tx: &mut Tx<'_>,
    tenant: Uuid,
    ns: &str,
) -> Result<(i64, i64, i64), StoreError> {
    sqlx::query_as(NAMESPACE_STATE)
        .bind(tenant)
        .bind(ns)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)
}

/// The Postgres statements of a multi-record write (a snapshot patch, `bulkPut`): the rows of
/// its keys are locked `FOR UPDATE` in key order; a patch moves the version only from the value
/// its ETag was checked against.
struct PgWrite<'t, 'c> {
    tx: &'t mut Tx<'c>,
    tenant: Uuid,
    ns: &'t str,
    actor: Actor<'t>,
}

#[async_trait]
impl PatchTx for PgWrite<'_, '_> {
    async fn lock(&mut self, keys: &[&str]) -> Result<(), StoreError> {
        lock_keys(self.tx, self.tenant, self.ns, keys).await?;
        Ok(())
    }

    async fn state(&mut self) -> Result<NamespaceState, StoreError> {
        let (version, live, expired) = namespace_state(self.tx, self.tenant, self.ns).await?;
        Ok(NamespaceState {
            version,
            live,
            expired,
        })
    }

    async fn delete(&mut self, keys: &[&str], first_seq: i64) -> Result<i64, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let existed: std::collections::HashSet<String> = sqlx::query_scalar(
            "DELETE FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = ANY($3) RETURNING key",
        )
        .bind(self.tenant)
        .bind(self.ns)
        .bind(keys)
        .fetch_all(&mut **self.tx)
        .await
        .map_err(db)?
        .into_iter()
        .collect();
        let deleted: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| existed.contains(*k))
            .collect();
        let revisions = vec![None; deleted.len()];
        audit_many(
            self.tx,
            self.tenant,
            self.actor,
            self.ns,
            "del",
            &deleted,
            &revisions,
            first_seq,
        )
        .await?;
        Ok(deleted.len() as i64)
    }

    async fn set(&mut self, sets: &[(&str, &Value)], first_seq: i64) -> Result<(), StoreError> {
        let items: Vec<ManyItem<'_>> = sets
            .iter()
            .map(|(key, value)| ManyItem {
                key,
                value,
                metadata: None,
                ttl: None,
            })
            .collect();
        let written = upsert_many(self.tx, self.tenant, self.ns, items, &[]).await?;
        let keys: Vec<&str> = sets.iter().map(|(key, _)| *key).collect();
        let revisions: Vec<Option<i64>> = keys
            .iter()
            .map(|key| written.get(*key).map(|w| w.revision as i64))
            .collect();
        audit_many(
            self.tx,
            self.tenant,
            self.actor,
            self.ns,
            "set",
            &keys,
            &revisions,
            first_seq,
        )
        .await
    }

    async fn advance(&mut self, from: i64, to: i64) -> Result<bool, StoreError> {
        let set = sqlx::query(SET_VERSION_IF)
            .bind(self.tenant)
            .bind(self.ns)
            .bind(to)
            .bind(from)
            .fetch_optional(&mut **self.tx)
            .await
            .map_err(db)?;
        Ok(set.is_some())
    }

    async fn live_data(&mut self) -> Result<Map<String, Value>, StoreError> {
        let rows: Vec<(String, Value)> = sqlx::query_as(
            "SELECT key, value FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
               AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) ORDER BY key",
        )
        .bind(self.tenant)
        .bind(self.ns)
        .fetch_all(&mut **self.tx)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().collect())
    }
}

#[async_trait]
impl BulkTx for PgWrite<'_, '_> {
    async fn lock(&mut self, keys: &[&str]) -> Result<HashMap<String, u64>, StoreError> {
        lock_keys(self.tx, self.tenant, self.ns, keys).await
    }

    async fn write(
        &mut self,
        items: &[BulkPutItem],
        create_only: &[&str],
    ) -> Result<HashMap<String, Written>, StoreError> {
        let items: Vec<ManyItem<'_>> = items
            .iter()
            .map(|i| ManyItem {
                key: i.key.as_str(),
                value: &i.value,
                metadata: i.metadata.as_ref(),
                ttl: i.ttl_seconds,
            })
            .collect();
        upsert_many(self.tx, self.tenant, self.ns, items, create_only).await
    }

    async fn live_revision(&mut self, key: &str) -> Result<u64, StoreError> {
        let rev: Option<i64> = sqlx::query_scalar(LIVE_REVISION)
            .bind(self.tenant)
            .bind(self.ns)
            .bind(key)
            .fetch_optional(&mut **self.tx)
            .await
            .map_err(db)?;
        Ok(rev.map_or(0, |r| r as u64))
    }

    async fn finish(&mut self, changes: i64, keys: &[&str]) -> Result<i64, StoreError> {
        sweep_and_bump(self.tx, self.tenant, self.ns, changes, keys).await
    }

    async fn audit(
        &mut self,
        keys: &[&str],
        revisions: &[u64],
        first_seq: i64,
    ) -> Result<(), StoreError> {
        let revisions: Vec<Option<i64>> = revisions.iter().map(|r| Some(*r as i64)).collect();
        audit_many(
            self.tx,
            self.tenant,
            self.actor,
            self.ns,
            "bulkPut",
            keys,
            &revisions,
            first_seq,
        )
        .await
    }
}

/// The Postgres statements of an `atomic`: rows are locked `FOR UPDATE` in key order; keys
/// found absent are written create-only (see [`ATOMIC_WRITE`]).
struct PgAtomic<'t, 'c> {
    tx: &'t mut Tx<'c>,
    tenant: Uuid,
    ns: &'t str,
    actor: Actor<'t>,
    /// Audit rows, written by `finish` in the statement that ends the write (one round trip
    /// fewer per operation while the rows are locked).
    audit: Vec<(String, String, Option<i64>)>,
}

#[async_trait]
impl AtomicTx for PgAtomic<'_, '_> {
    async fn guard(&mut self, keys: &[&str]) -> Result<(), StoreError> {
        sqlx::query(ATOMIC_GUARD)
            .bind(self.tenant)
            .bind(self.ns)
            .bind(keys)
            .execute(&mut **self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn lock(&mut self, keys: &[&str]) -> Result<HashMap<String, Locked>, StoreError> {
        let rows = sqlx::query(ATOMIC_LOCK)
            .bind(self.tenant)
            .bind(self.ns)
            .bind(keys)
            .fetch_all(&mut **self.tx)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                let Json(metadata): Json<Metadata> = row.try_get("metadata").map_err(db)?;
                let locked = Locked {
                    live: row.try_get("live").map_err(db)?,
                    revision: row.try_get::<i64, _>("revision").map_err(db)? as u64,
                    value: row.try_get("value").map_err(db)?,
                    metadata,
                    ttl_expires_at: row.try_get("ttl_expires_at").map_err(db)?,
                    created_at: row.try_get("created_at").map_err(db)?,
                };
                Ok((row.try_get("key").map_err(db)?, locked))
            })
            .collect()
    }

    async fn write(&mut self, put: &Put<'_>) -> Result<Option<u64>, StoreError> {
        let (seconds, at) = match put.expiry {
            Expiry::Never => (None, None),
            Expiry::In(ttl) => (ttl_param(Some(ttl)), None),
            Expiry::At(at) => (None, Some(at)),
        };
        let revision: Option<i64> = sqlx::query_scalar(ATOMIC_WRITE)
            .bind(self.tenant)
            .bind(self.ns)
            .bind(put.key)
            .bind(Json(put.value))
            .bind(Json(metadata_value(put.metadata)))
            .bind(seconds)
            .bind(at)
            .bind(record_size(put.key, put.value, put.metadata))
            .bind(put.found.is_none())
            .fetch_optional(&mut **self.tx)
            .await
            .map_err(|e| keyed(db(e), put.key))?;
        Ok(revision.map(|r| r as u64))
    }

    async fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = $3",
        )
        .bind(self.tenant)
        .bind(self.ns)
        .bind(key)
        .execute(&mut **self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn audit(
        &mut self,
        key: &str,
        operation: &str,
        revision: Option<u64>,
    ) -> Result<(), StoreError> {
        self.audit.push((
            key.to_owned(),
            operation.to_owned(),
            revision.map(|r| r as i64),
        ));
        Ok(())
    }

    async fn finish(&mut self, changes: i64, keys: &[&str]) -> Result<(), StoreError> {
        let rows = std::mem::take(&mut self.audit);
        let audit_keys: Vec<&str> = rows.iter().map(|(k, _, _)| k.as_str()).collect();
        let operations: Vec<&str> = rows.iter().map(|(_, o, _)| o.as_str()).collect();
        let revisions: Vec<Option<i64>> = rows.iter().map(|(_, _, r)| *r).collect();
        sqlx::query(ATOMIC_FINISH)
            .bind(self.tenant)
            .bind(self.ns)
            .bind(changes)
            .bind(keys)
            .bind(&audit_keys)
            .bind(&operations)
            .bind(&revisions)
            .bind(self.actor.principal)
            .bind(self.actor.surface)
            .execute(&mut **self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// Evicts from `cache` every install another instance (or this one) changes; empties it
/// whenever the listening connection was lost, since notifications may have been missed.
async fn listen_for_principal_changes(pool: PgPool, cache: std::sync::Weak<PrincipalCache>) {
    let evict = |install: Option<&str>| match cache.upgrade() {
        Some(cache) => {
            match install {
                Some(install) => cache.evict(install),
                None => cache.clear(),
            }
            true
        }
        None => false,
    };
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for install changes; the principal cache expires entries meanwhile");
                if !evict(None) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        // Listening (again): whatever changed before is reloaded.
        if !evict(None) {
            return;
        }
        loop {
            let still_needed = match listener.try_recv().await {
                Ok(Some(notification)) => evict(Some(notification.payload())),
                Ok(None) => evict(None),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the install-change listener; reconnecting");
                    break;
                }
            };
            if !still_needed {
                return;
            }
        }
    }
}

/// Wakes the watchers of every namespace another instance announces a change of; wakes them
/// all whenever the listening connection was (re)made, since announcements may have been
/// missed meanwhile. Stops with the feed.
async fn listen_for_changes(pool: PgPool, feed: std::sync::Weak<Feed>) {
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(feed::CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = listening.await;
        let Some(current) = feed.upgrade() else {
            return;
        };
        current.wake_all();
        drop(current);
        let mut listener = match listener {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other instances' changes; watchers poll meanwhile");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let received = listener.try_recv().await;
            let Some(current) = feed.upgrade() else {
                return;
            };
            match received {
                Ok(Some(notification)) => current.announced(notification.payload()),
                Ok(None) => current.wake_all(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the change listener; reconnecting");
                    break;
                }
            }
        }
    }
}

/// A page of a namespace's change log: its bounds, then up to `$5` changes after `$3` (keys
/// starting with `$4`), each with its value when `$6` and the record still has that revision.
const CHANGES: &str =
    "SELECT b.latest, b.pruned, c.ns_seq, c.key, c.operation, c.revision, c.value \
     FROM (SELECT coalesce(max(version), 0) AS latest, coalesce(max(pruned_seq), 0) AS pruned \
           FROM ext_storage_namespaces WHERE tenant_id = $1 AND namespace = $2) b \
     LEFT JOIN LATERAL (SELECT a.ns_seq, a.key, a.operation, a.revision, r.value \
       FROM ext_storage_audit a LEFT JOIN ext_storage_records r ON $6 AND r.tenant_id = $1 \
         AND r.namespace = $2 AND r.key = a.key AND r.revision = a.revision \
         AND (r.ttl_expires_at IS NULL OR r.ttl_expires_at > now()) \
       WHERE a.tenant_id = $1 AND a.namespace = $2 AND a.ns_seq IS NOT NULL AND a.ns_seq > $3 \
         AND ($4::text IS NULL OR starts_with(a.key, $4)) \
       ORDER BY a.ns_seq LIMIT $5) c ON true \
     ORDER BY c.ns_seq";

/// Removes up to `$3` changes older than `$1` seconds and behind their namespace's last `$2`,
/// oldest first, and marks each namespace's log as pruned that far (namespace rows in one
/// order, as every writer locks them).
const PRUNE_CHANGES: &str = "WITH doomed AS MATERIALIZED (SELECT a.tenant_id, a.seq \
       FROM ext_storage_audit a JOIN ext_storage_namespaces n \
         ON n.tenant_id = a.tenant_id AND n.namespace = a.namespace \
       WHERE a.ns_seq IS NOT NULL AND a.at < now() - make_interval(secs => $1) \
         AND a.ns_seq <= n.version - $2 \
       ORDER BY a.at LIMIT $3 FOR UPDATE OF a SKIP LOCKED), \
     gone AS (DELETE FROM ext_storage_audit a USING doomed d \
       WHERE a.tenant_id = d.tenant_id AND a.seq = d.seq RETURNING a.tenant_id, a.namespace, a.ns_seq), \
     mark AS (INSERT INTO ext_storage_namespaces AS v (tenant_id, namespace, version, pruned_seq) \
       SELECT tenant_id, namespace, 0, max(ns_seq) FROM gone GROUP BY tenant_id, namespace \
       ORDER BY tenant_id, namespace \
       ON CONFLICT (tenant_id, namespace) DO UPDATE SET pruned_seq = GREATEST(v.pruned_seq, EXCLUDED.pruned_seq)) \
     SELECT count(*) FROM gone";

#[async_trait]
impl Store for PgStore {
    async fn export_snapshot(&self) -> Result<Box<dyn ExportTx + '_>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Ok(Box::new(PgExport { tx }))
    }

    async fn import_tx(&self) -> Result<Box<dyn ImportTx + '_>, StoreError> {
        let tx = self.pool.begin().await.map_err(db)?;
        Ok(Box::new(PgImport { tx }))
    }

    async fn put_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &PutRequest,
        schema: SchemaVersion,
    ) -> Result<PutResponse, StoreError> {
        let guard = req.if_revision.map(|r| r.get() as i64);
        let sql = match guard {
            Some(n) if n > 0 => GUARDED_UPDATE,
            _ => UPSERT,
        };
        let row = sqlx::query(sql)
            .bind(tenant)
            .bind(req.namespace.as_str())
            .bind(req.key.as_str())
            .bind(&req.value)
            .bind(metadata_value(req.metadata.as_ref()))
            .bind(ttl_param(req.ttl_seconds))
            .bind(guard)
            .bind(actor.principal)
            .bind(actor.surface)
            .bind(record_size(
                req.key.as_str(),
                &req.value,
                req.metadata.as_ref(),
            ))
            .bind(schema)
            .fetch_one(&self.direct)
            .await
            .map_err(db)?;
        if !row.try_get::<bool, _>("current").map_err(db)? {
            return Err(StoreError::SchemaMoved);
        }
        if row
            .try_get::<Option<i64>, _>("revision")
            .map_err(db)?
            .is_none()
        {
            let current = self
                .live_revision(tenant, req.namespace.as_str(), req.key.as_str())
                .await?;
            return Err(StorageError::revision_mismatch(current).into());
        }
        let Written {
            revision,
            ttl_expires_at,
            created_at,
            updated_at,
        } = written(&row)?;
        Ok(PutResponse {
            namespace: req.namespace.clone(),
            key: req.key.clone(),
            revision,
            ttl_expires_at,
            created_at,
            updated_at,
        })
    }

    async fn bulk_put_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &BulkPutRequest,
    ) -> Result<BulkPutResponse, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut statements = PgWrite {
            tx: &mut tx,
            tenant,
            ns: req.namespace.as_str(),
            actor,
        };
        let answer = bulk::run(&mut statements, req).await?;
        tx.commit().await.map_err(db)?;
        Ok(answer)
    }

    async fn patch_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        ns: &Namespace,
        if_match: u64,
        ops: &[PatchOp],
    ) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut statements = PgWrite {
            tx: &mut tx,
            tenant,
            ns: ns.as_str(),
            actor,
        };
        match patch::run(&mut statements, if_match, ops).await? {
            Ok(snapshot) => {
                tx.commit().await.map_err(db)?;
                Ok(snapshot)
            }
            Err(patch::Moved) => {
                drop(tx);
                let Snapshot { etag, .. } = self.snapshot(tenant, ns).await?;
                Err(precondition_failed(etag).into())
            }
        }
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn watch_principals(&self, cache: std::sync::Weak<PrincipalCache>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(dropped) = cache.upgrade().map(|c| c.dropped()) else {
            return;
        };
        let pool = self.pool.clone();
        runtime.spawn(async move {
            tokio::select! {
                () = dropped => {}
                () = listen_for_principal_changes(pool, cache) => {}
            }
        });
    }

    async fn ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn principal(&self, install: &InstallId) -> Result<Option<Principal>, StoreError> {
        let row =
            sqlx::query("SELECT tenant_id, grants, generation::text AS generation FROM ext_storage_installs WHERE install_id = $1")
                .bind(install.as_str())
                .fetch_optional(&self.direct)
                .await
                .map_err(db)?;
        row.map(|row| {
            let Json(grants): Json<Vec<Grant>> = row.try_get("grants").map_err(db)?;
            Ok(Principal {
                tenant: row.try_get("tenant_id").map_err(db)?,
                install: install.clone(),
                grants,
                generation: row.try_get("generation").map_err(db)?,
            })
        })
        .transpose()
    }

    async fn get_many(
        &self,
        tenant: Uuid,
        req: &GetManyRequest,
    ) -> Result<GetManyResponse, StoreError> {
        let keys: Vec<&str> = req.keys.iter().map(Key::as_str).collect();
        let rows = sqlx::query(GET_MANY)
            .bind(tenant)
            .bind(req.namespace.as_str())
            .bind(&keys)
            .fetch_all(&self.direct)
            .await
            .map_err(db)?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let Written {
                revision,
                ttl_expires_at,
                created_at,
                updated_at,
            } = written(row)?;
            let key: String = row.try_get("key").map_err(db)?;
            let Json(metadata): Json<Metadata> = row.try_get("metadata").map_err(db)?;
            let record = Record {
                namespace: req.namespace.clone(),
                key: Key::new(&key).map_err(backend)?,
                revision,
                value: row.try_get("value").map_err(db)?,
                metadata,
                ttl_expires_at,
                created_at,
                updated_at,
            };
            found.insert(key, record);
        }
        Ok(in_request_order(&req.keys, found))
    }

    async fn atomic_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &AtomicRequest,
        accept: atomic::Accept<'_>,
    ) -> Result<AtomicResponse, StoreError> {
        // A key found absent may be created by a concurrent writer before this one writes it:
        // then the whole transaction runs again (a few times; it cannot starve for long, since
        // every retry finds that key present and locks it).
        for _ in 0..8 {
            let mut tx = self.pool.begin().await.map_err(db)?;
            let mut statements = PgAtomic {
                tx: &mut tx,
                tenant,
                ns: req.namespace.as_str(),
                actor,
                audit: Vec::new(),
            };
            if let Ok(answer) = atomic::run(&mut statements, req, accept).await? {
                tx.commit().await.map_err(db)?;
                return Ok(answer);
            }
        }
        Err(StoreError::Backend(
            "atomic: contended past 8 attempts".into(),
        ))
    }

    async fn get(&self, tenant: Uuid, req: &GetRequest) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(GET)
            .bind(tenant)
            .bind(req.namespace.as_str())
            .bind(req.key.as_str())
            .fetch_optional(&self.direct)
            .await
            .map_err(db)?;
        row.map(|row| {
            let Written {
                revision,
                ttl_expires_at,
                created_at,
                updated_at,
            } = written(&row)?;
            let Json(metadata): Json<Metadata> = row.try_get("metadata").map_err(db)?;
            Ok(Record {
                namespace: req.namespace.clone(),
                key: req.key.clone(),
                revision,
                value: row.try_get("value").map_err(db)?,
                metadata,
                ttl_expires_at,
                created_at,
                updated_at,
            })
        })
        .transpose()
    }

    async fn list(&self, tenant: Uuid, q: &ListQuery) -> Result<Vec<ListItem>, StoreError> {
        let rows = sqlx::query(LIST)
            .bind(tenant)
            .bind(q.namespace.as_str())
            .bind(q.key_prefix.as_deref().unwrap_or(""))
            .bind(q.after.as_ref().map(Key::as_str))
            .bind(q.key_prefix.as_deref())
            .bind(q.metadata.clone().map(Value::Object))
            .bind(q.fetch)
            .bind(q.include_values)
            .bind(q.include_metadata)
            .fetch_all(&self.direct)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                let Written {
                    revision,
                    ttl_expires_at,
                    created_at,
                    updated_at,
                } = written(row)?;
                let key: String = row.try_get("key").map_err(db)?;
                let metadata: Option<Json<Metadata>> = row.try_get("metadata").map_err(db)?;
                Ok(ListItem {
                    namespace: q.namespace.clone(),
                    key: Key::new(key).map_err(|e| backend(StorageError::from(e)))?,
                    revision,
                    value: row.try_get("value").map_err(db)?,
                    metadata: metadata.map(|Json(m)| m),
                    ttl_expires_at,
                    created_at: Some(created_at),
                    updated_at: Some(updated_at),
                })
            })
            .collect()
    }

    async fn delete(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &DeleteRequest,
    ) -> Result<(), StoreError> {
        let ns = req.namespace.as_str();
        let key = req.key.as_str();
        let Some(guard) = req.if_revision else {
            sqlx::query(DELETE)
                .bind(tenant)
                .bind(ns)
                .bind(key)
                .bind(actor.principal)
                .bind(actor.surface)
                .execute(&self.direct)
                .await
                .map_err(db)?;
            return Ok(());
        };
        // The statement deletes only what the rule allows; when it deleted nothing, the rule
        // says why from the live revision (which may have just become the guard's: then the
        // delete is tried again, a few times).
        let mut current = 0;
        for _ in 0..4 {
            let deleted = sqlx::query(GUARDED_DELETE)
                .bind(tenant)
                .bind(ns)
                .bind(key)
                .bind(guard.get() as i64)
                .bind(actor.principal)
                .bind(actor.surface)
                .fetch_optional(&self.direct)
                .await
                .map_err(db)?;
            if deleted.is_some() {
                return Ok(());
            }
            current = self.live_revision(tenant, ns, key).await?;
            delete_allowed(Some(guard), current)?;
        }
        Err(StorageError::revision_mismatch(current).into())
    }

    async fn snapshot(&self, tenant: Uuid, ns: &Namespace) -> Result<Snapshot, StoreError> {
        let rows: Vec<(String, Value, i64, i64)> = sqlx::query_as(SNAPSHOT)
            .bind(tenant)
            .bind(ns.as_str())
            .fetch_all(&self.direct)
            .await
            .map_err(db)?;
        let etag = rows.first().map_or(0, |(_, _, version, expired)| {
            patch::etag(*version, true, *expired)
        });
        Ok(Snapshot {
            etag,
            data: rows.into_iter().map(|(k, v, _, _)| (k, v)).collect(),
        })
    }

    async fn put_schema(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
        schema: &Value,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "WITH s AS (INSERT INTO ext_storage_schemas AS s (tenant_id, namespace, version, schema) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = s.version + 1, schema = EXCLUDED.schema, \
               updated_at = now() RETURNING version), \
             a AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface) SELECT $1, $4, $2, NULL, 'schema.put', version, $5 FROM s) \
             SELECT version FROM s",
        )
        .bind(tenant)
        .bind(namespace.as_str())
        .bind(schema)
        .bind(actor.principal)
        .bind(actor.surface)
        .fetch_one(&self.direct)
        .await
        .map_err(db)
    }

    async fn delete_schema(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
    ) -> Result<bool, StoreError> {
        let done: i64 = sqlx::query_scalar(
            "WITH s AS (UPDATE ext_storage_schemas SET schema = NULL, version = version + 1, updated_at = now() \
               WHERE tenant_id = $1 AND namespace = $2 AND schema IS NOT NULL RETURNING version), \
             a AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface) SELECT $1, $3, $2, NULL, 'schema.delete', version, $4 FROM s) \
             SELECT count(*) FROM s",
        )
        .bind(tenant)
        .bind(namespace.as_str())
        .bind(actor.principal)
        .bind(actor.surface)
        .fetch_one(&self.direct)
        .await
        .map_err(db)?;
        Ok(done > 0)
    }

    async fn schema(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
        known: Option<SchemaVersion>,
    ) -> Result<SchemaLookup, StoreError> {
        let row: Option<(i64, Option<Value>, bool)> = sqlx::query_as(
            "SELECT version, CASE WHEN version = $3 THEN NULL ELSE schema END, schema IS NULL \
             FROM ext_storage_schemas WHERE tenant_id = $1 AND namespace = $2",
        )
        .bind(tenant)
        .bind(namespace.as_str())
        .bind(known)
        .fetch_optional(&self.direct)
        .await
        .map_err(db)?;
        Ok(SchemaLookup::from_row(row))
    }

    async fn upsert_install(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        install: &InstallId,
        extension_id: &str,
        grants: &[Grant],
    ) -> Result<Upserted, StoreError> {
        let result = sqlx::query_scalar::<_, bool>(
            "WITH i AS (INSERT INTO ext_storage_installs (tenant_id, install_id, extension_id, grants) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, install_id) DO UPDATE SET extension_id = EXCLUDED.extension_id, \
               grants = EXCLUDED.grants, updated_at = now() \
             RETURNING (xmax = 0) AS created), \
             a AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface) SELECT $1, $5, NULL, $2, 'install.put', NULL, $6 FROM i) \
             SELECT created FROM (SELECT created, pg_notify('alga_storage_principals', $2) FROM i) n",
        )
        .bind(tenant)
        .bind(install.as_str())
        .bind(extension_id)
        .bind(Json(grants))
        .bind(actor.principal)
        .bind(actor.surface)
        .fetch_one(&self.direct)
        .await;
        match result {
            Ok(true) => Ok(Upserted::Created),
            Ok(false) => Ok(Upserted::Updated),
            Err(sqlx::Error::Database(e))
                if e.constraint() == Some("ext_storage_installs_install_id") =>
            {
                Err(install_of_another_tenant("installId"))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_install(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        install: &InstallId,
    ) -> Result<bool, StoreError> {
        let done: i64 = sqlx::query_scalar(
            "WITH d AS (DELETE FROM ext_storage_installs WHERE tenant_id = $1 AND install_id = $2 RETURNING 1), \
             a AS (INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface) SELECT $1, $3, NULL, $2, 'install.delete', NULL, $4 FROM d) \
             SELECT count(*) FROM (SELECT pg_notify('alga_storage_principals', $2) FROM d) n",
        )
        .bind(tenant)
        .bind(install.as_str())
        .bind(actor.principal)
        .bind(actor.surface)
        .fetch_one(&self.direct)
        .await
        .map_err(db)?;
        Ok(done > 0)
    }

    async fn set_quota_defaults(&self, defaults: &Quotas) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ext_storage_quota_defaults AS d (id, max_namespaces, max_keys_per_namespace, max_bytes) \
             VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET max_namespaces = EXCLUDED.max_namespaces, \
               max_keys_per_namespace = EXCLUDED.max_keys_per_namespace, max_bytes = EXCLUDED.max_bytes",
        )
        .bind(defaults.max_namespaces)
        .bind(defaults.max_keys_per_namespace)
        .bind(defaults.max_bytes)
        .execute(&self.direct)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn put_quotas(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        overrides: &Quotas,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "WITH t AS (INSERT INTO ext_storage_tenants AS x (tenant_id, max_namespaces, max_keys_per_namespace, max_bytes) \
               VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET max_namespaces = EXCLUDED.max_namespaces, \
               max_keys_per_namespace = EXCLUDED.max_keys_per_namespace, max_bytes = EXCLUDED.max_bytes, \
               updated_at = now() RETURNING 1) \
             INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, revision, surface) \
             SELECT $1, $5, NULL, NULL, 'quotas.put', NULL, $6 FROM t",
        )
        .bind(tenant)
        .bind(overrides.max_namespaces)
        .bind(overrides.max_keys_per_namespace)
        .bind(overrides.max_bytes)
        .bind(actor.principal)
        .bind(actor.surface)
        .execute(&self.direct)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn quotas(&self, tenant: Uuid) -> Result<(Quotas, Quotas), StoreError> {
        let row: Option<QuotaRow> =
            sqlx::query_as(
                "SELECT x.max_namespaces, x.max_keys_per_namespace, x.max_bytes, \
                   d.max_namespaces, d.max_keys_per_namespace, d.max_bytes \
                 FROM ext_storage_quota_defaults d LEFT JOIN ext_storage_tenants x ON x.tenant_id = $1 \
                 WHERE d.id = 1",
            )
            .bind(tenant)
            .fetch_optional(&self.direct)
            .await
            .map_err(db)?;
        Ok(Quotas::from_row(row))
    }

    async fn usage_counters(&self, tenant: Uuid) -> Result<(i64, Vec<NamespaceUsage>), StoreError> {
        let namespaces: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT namespace, keys, bytes FROM ext_storage_namespaces \
             WHERE tenant_id = $1 AND keys > 0 ORDER BY namespace",
        )
        .bind(tenant)
        .fetch_all(&self.direct)
        .await
        .map_err(db)?;
        let bytes: Option<i64> =
            sqlx::query_scalar("SELECT bytes FROM ext_storage_tenants WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_optional(&self.direct)
                .await
                .map_err(db)?;
        let namespaces = namespaces
            .into_iter()
            .map(|(namespace, keys, bytes)| NamespaceUsage {
                namespace,
                keys,
                bytes,
            })
            .collect();
        Ok((bytes.unwrap_or(0), namespaces))
    }

    async fn purge_expired(
        &self,
        tenant: Uuid,
        namespace: Option<&Namespace>,
    ) -> Result<u64, StoreError> {
        // Waits for rows other writers hold (in one order, so purges cannot deadlock): a
        // statement refused by a quota reports its error before its locks are released, so a
        // purge right after it would otherwise skip the very rows it needs.
        let purged: i64 = sqlx::query_scalar(
            concat!(
                "WITH batch AS MATERIALIZED (SELECT namespace, key FROM ext_storage_records \
                   WHERE tenant_id = $1 AND ($2::text IS NULL OR namespace = $2) AND ttl_expires_at <= now() \
                   ORDER BY namespace, key FOR UPDATE), \
                 swept AS (DELETE FROM ext_storage_records r USING batch b WHERE r.tenant_id = $1 \
                   AND r.namespace = b.namespace AND r.key = b.key RETURNING r.tenant_id, r.namespace, r.key), ",
                expire_many!(),
                "SELECT count(*) FROM swept"
            ),
        )
        .bind(tenant)
        .bind(namespace.map(Namespace::as_str))
        .fetch_one(&self.direct)
        .await
        .map_err(db)?;
        Ok(purged as u64)
    }

    async fn sweep_expired(&self, batch: u32) -> Result<Vec<(Uuid, String)>, StoreError> {
        sqlx::query_as(SWEEP_EXPIRED)
            .bind(i64::from(batch))
            .fetch_all(&self.direct)
            .await
            .map_err(db)
    }

    fn feed(&self) -> &std::sync::Arc<Feed> {
        &self.feed
    }

    async fn changes(
        &self,
        tenant: Uuid,
        query: &ChangesQuery<'_>,
    ) -> Result<alga_storage_core::ChangesResponse, StoreError> {
        type Row = (
            i64,
            i64,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<Value>,
        );
        let rows: Vec<Row> = sqlx::query_as(CHANGES)
            .bind(tenant)
            .bind(query.namespace)
            .bind(query.after.min(i64::MAX as u64) as i64)
            .bind(query.key_prefix)
            .bind(i64::from(query.limit))
            .bind(query.values)
            .fetch_all(&self.direct)
            .await
            .map_err(db)?;
        let bounds = rows
            .first()
            .map_or_else(Default::default, |r| alga_storage_core::LogBounds {
                latest: r.0 as u64,
                pruned: r.1 as u64,
            });
        let changes: Vec<ChangeRow> = rows
            .into_iter()
            .filter_map(|(_, _, seq, key, operation, revision, value)| {
                Some((seq?, key?, operation?, revision, value))
            })
            .collect();
        change_page(bounds, query, changes)
    }

    async fn prune_changes(&self, retention: &Retention, batch: u32) -> Result<u64, StoreError> {
        let pruned: i64 = sqlx::query_scalar(PRUNE_CHANGES)
            .bind(f64::from(retention.seconds))
            .bind(i64::from(retention.changes))
            .bind(i64::from(batch))
            .fetch_one(&self.direct)
            .await
            .map_err(db)?;
        Ok(pruned as u64)
    }

    async fn counters(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
    ) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT coalesce((SELECT keys FROM ext_storage_namespaces WHERE tenant_id = $1 AND namespace = $2), 0), \
               coalesce((SELECT bytes FROM ext_storage_tenants WHERE tenant_id = $1), 0)",
        )
        .bind(tenant)
        .bind(namespace.as_str())
        .fetch_one(&self.direct)
        .await
        .map_err(db)
    }

    async fn audit(
        &self,
        tenant: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query_as::<_, AuditEntry>(
            "SELECT seq, principal, namespace, key, operation, revision, surface, at FROM ext_storage_audit \
             WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.direct)
        .await
        .map_err(db)
    }
}

/// `WHERE` conditions an export's statements share: `$1` the tenant or NULL, `$2` the
/// namespace or NULL.
const EXPORT_TENANT: &str = "($1::uuid IS NULL OR tenant_id = $1)";
const EXPORT_NAMESPACE: &str = "($2::text IS NULL OR namespace = $2)";

/// An export's snapshot: one `REPEATABLE READ, READ ONLY` transaction.
struct PgExport {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl PgExport {
    fn bind<'q>(
        query: &'q str,
        filter: &'q ExportFilter,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(query)
            .bind(filter.tenant)
            .bind(filter.namespace.as_ref().map(Namespace::as_str))
    }
}

#[async_trait]
impl ExportTx for PgExport {
    async fn counts(&mut self, filter: &ExportFilter) -> Result<Counts, StoreError> {
        let query = format!(
            "SELECT (SELECT count(*) FROM ext_storage_installs WHERE {EXPORT_TENANT}), \
             (SELECT count(*) FROM ext_storage_tenants WHERE {EXPORT_TENANT} AND num_nonnulls(max_namespaces, max_keys_per_namespace, max_bytes) > 0), \
             (SELECT count(*) FROM ext_storage_schemas WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE}), \
             (SELECT count(*) FROM ext_storage_records WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} AND (ttl_expires_at IS NULL OR ttl_expires_at > now())), \
             (SELECT count(*) FROM ext_storage_namespaces WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE})"
        );
        let row = Self::bind(&query, filter)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db)?;
        Counts::from_columns(|i| row.try_get::<i64, _>(i)).map_err(db)
    }

    async fn stream(
        &mut self,
        part: Part,
        filter: &ExportFilter,
        out: &Sink,
    ) -> Result<(), StoreError> {
        use futures_util::TryStreamExt;
        let query = match part {
            Part::Installs => format!(
                "SELECT tenant_id, install_id, extension_id, grants, replace(generation::text, '-', '') AS generation, created_at, updated_at \
                 FROM ext_storage_installs WHERE {EXPORT_TENANT} ORDER BY tenant_id, install_id"
            ),
            Part::Quotas => format!(
                "SELECT tenant_id, max_namespaces, max_keys_per_namespace, max_bytes FROM ext_storage_tenants \
                 WHERE {EXPORT_TENANT} AND num_nonnulls(max_namespaces, max_keys_per_namespace, max_bytes) > 0 ORDER BY tenant_id"
            ),
            Part::Schemas => format!(
                "SELECT tenant_id, namespace, version, schema, updated_at FROM ext_storage_schemas \
                 WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} ORDER BY tenant_id, namespace"
            ),
            Part::Records => format!(
                "SELECT tenant_id, namespace, key, value, metadata, revision, ttl_expires_at, created_at, updated_at \
                 FROM ext_storage_records WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} \
                 AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) ORDER BY tenant_id, namespace, key"
            ),
            Part::Namespaces => format!(
                "SELECT tenant_id, namespace, version FROM ext_storage_namespaces \
                 WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} ORDER BY tenant_id, namespace"
            ),
        };
        let mut rows = Self::bind(&query, filter).fetch(&mut *self.tx);
        while let Some(row) = rows.try_next().await.map_err(db)? {
            let namespace = |row: &PgRow| -> Result<Namespace, StoreError> {
                Namespace::new(row.try_get::<String, _>("namespace").map_err(db)?).map_err(backend)
            };
            let line = match part {
                Part::Installs => Line::Install(InstallLine {
                    tenant: row.try_get("tenant_id").map_err(db)?,
                    install: row
                        .try_get::<String, _>("install_id")
                        .map_err(db)?
                        .parse()
                        .map_err(backend)?,
                    extension: row.try_get("extension_id").map_err(db)?,
                    grants: row.try_get::<Json<Vec<Grant>>, _>("grants").map_err(db)?.0,
                    generation: row.try_get("generation").map_err(db)?,
                    created_at: row.try_get("created_at").map_err(db)?,
                    updated_at: row.try_get("updated_at").map_err(db)?,
                }),
                Part::Quotas => Line::Quota(QuotaLine {
                    tenant: row.try_get("tenant_id").map_err(db)?,
                    max_namespaces: row.try_get("max_namespaces").map_err(db)?,
                    max_keys_per_namespace: row.try_get("max_keys_per_namespace").map_err(db)?,
                    max_bytes: row.try_get("max_bytes").map_err(db)?,
                }),
                Part::Schemas => Line::Schema(SchemaLine {
                    tenant: row.try_get("tenant_id").map_err(db)?,
                    namespace: namespace(&row)?,
                    version: row.try_get("version").map_err(db)?,
                    schema: row
                        .try_get::<Option<Json<Value>>, _>("schema")
                        .map_err(db)?
                        .map(|j| j.0),
                    updated_at: row.try_get("updated_at").map_err(db)?,
                }),
                Part::Records => Line::Record(RecordLine {
                    tenant: row.try_get("tenant_id").map_err(db)?,
                    namespace: namespace(&row)?,
                    key: Key::new(row.try_get::<String, _>("key").map_err(db)?).map_err(backend)?,
                    value: row.try_get::<Json<Value>, _>("value").map_err(db)?.0,
                    metadata: row.try_get::<Json<Metadata>, _>("metadata").map_err(db)?.0,
                    revision: row.try_get("revision").map_err(db)?,
                    ttl_expires_at: row.try_get("ttl_expires_at").map_err(db)?,
                    created_at: row.try_get("created_at").map_err(db)?,
                    updated_at: row.try_get("updated_at").map_err(db)?,
                }),
                Part::Namespaces => Line::Namespace(NamespaceLine {
                    tenant: row.try_get("tenant_id").map_err(db)?,
                    namespace: namespace(&row)?,
                    version: row.try_get("version").map_err(db)?,
                }),
            };
            transfer::send(out, line).await?;
        }
        Ok(())
    }
}

/// An import's write transaction.
struct PgImport {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

#[async_trait]
impl ImportTx for PgImport {
    async fn install(&mut self, line: &InstallLine, overwrite: bool) -> Result<bool, StoreError> {
        let written = sqlx::query_scalar::<_, i64>(
            "WITH i AS (INSERT INTO ext_storage_installs AS x (tenant_id, install_id, extension_id, grants, created_at, updated_at, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::uuid) \
             ON CONFLICT (tenant_id, install_id) DO UPDATE SET extension_id = EXCLUDED.extension_id, grants = EXCLUDED.grants, \
               created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, generation = EXCLUDED.generation WHERE $8 \
             RETURNING install_id) \
             SELECT count(*) FROM (SELECT pg_notify('alga_storage_principals', install_id) FROM i) n",
        )
        .bind(line.tenant)
        .bind(line.install.as_str())
        .bind(&line.extension)
        .bind(Json(&line.grants))
        .bind(line.created_at)
        .bind(line.updated_at)
        .bind(&line.generation)
        .bind(overwrite)
        .fetch_one(&mut *self.tx)
        .await;
        match written {
            Ok(n) => Ok(n > 0),
            Err(sqlx::Error::Database(e))
                if e.constraint() == Some("ext_storage_installs_install_id") =>
            {
                Err(install_of_another_tenant("install"))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn quota(&mut self, line: &QuotaLine, overwrite: bool) -> Result<bool, StoreError> {
        let written = sqlx::query(
            "INSERT INTO ext_storage_tenants AS x (tenant_id, max_namespaces, max_keys_per_namespace, max_bytes, updated_at) \
             VALUES ($1, $2, $3, $4, now()) ON CONFLICT (tenant_id) DO UPDATE SET max_namespaces = EXCLUDED.max_namespaces, \
               max_keys_per_namespace = EXCLUDED.max_keys_per_namespace, max_bytes = EXCLUDED.max_bytes, updated_at = now() \
             WHERE $5 OR num_nonnulls(x.max_namespaces, x.max_keys_per_namespace, x.max_bytes) = 0 RETURNING 1",
        )
        .bind(line.tenant)
        .bind(line.max_namespaces)
        .bind(line.max_keys_per_namespace)
        .bind(line.max_bytes)
        .bind(overwrite)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(written.is_some())
    }

    async fn schema(&mut self, line: &SchemaLine, overwrite: bool) -> Result<bool, StoreError> {
        let written = sqlx::query(
            "INSERT INTO ext_storage_schemas AS s (tenant_id, namespace, version, schema, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = GREATEST(s.version + 1, EXCLUDED.version), \
               schema = EXCLUDED.schema, updated_at = EXCLUDED.updated_at WHERE $6 OR s.schema IS NULL RETURNING 1",
        )
        .bind(line.tenant)
        .bind(line.namespace.as_str())
        .bind(line.version)
        .bind(line.schema.as_ref().map(Json))
        .bind(line.updated_at)
        .bind(overwrite)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(written.is_some())
    }

    async fn records(
        &mut self,
        lines: &[&RecordLine],
        overwrite: bool,
    ) -> Result<Vec<bool>, StoreError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let column = |f: fn(&RecordLine) -> String| lines.iter().map(|r| f(r)).collect::<Vec<_>>();
        let written: Vec<(Uuid, String, String)> = sqlx::query_as(
            "INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, metadata, revision, ttl_expires_at, created_at, updated_at, size) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::int8[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::int8[]) \
             ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET value = EXCLUDED.value, metadata = EXCLUDED.metadata, \
               revision = CASE WHEN r.ttl_expires_at <= now() THEN EXCLUDED.revision ELSE GREATEST(r.revision + 1, EXCLUDED.revision) END, \
               ttl_expires_at = EXCLUDED.ttl_expires_at, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, size = EXCLUDED.size \
             WHERE $11 OR r.ttl_expires_at <= now() \
             RETURNING tenant_id, namespace, key",
        )
        .bind(lines.iter().map(|r| r.tenant).collect::<Vec<_>>())
        .bind(column(|r| r.namespace.as_str().to_owned()))
        .bind(column(|r| r.key.as_str().to_owned()))
        .bind(lines.iter().map(|r| Json(&r.value)).collect::<Vec<_>>())
        .bind(lines.iter().map(|r| Json(&r.metadata)).collect::<Vec<_>>())
        .bind(lines.iter().map(|r| r.revision).collect::<Vec<_>>())
        .bind(lines.iter().map(|r| r.ttl_expires_at).collect::<Vec<_>>())
        .bind(lines.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(lines.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .bind(lines.iter().map(|r| r.size()).collect::<Vec<_>>())
        .bind(overwrite)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        let written: std::collections::HashSet<(Uuid, String, String)> =
            written.into_iter().collect();
        Ok(lines
            .iter()
            .map(|r| {
                written.contains(&(
                    r.tenant,
                    r.namespace.as_str().to_owned(),
                    r.key.as_str().to_owned(),
                ))
            })
            .collect())
    }

    async fn bump(
        &mut self,
        tenant: Uuid,
        namespace: &Namespace,
        by: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ext_storage_namespaces AS n (tenant_id, namespace, version, pruned_seq) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = n.version + EXCLUDED.version, \
               pruned_seq = n.version + EXCLUDED.version",
        )
        .bind(tenant)
        .bind(namespace.as_str())
        .bind(by)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn namespace(&mut self, line: &NamespaceLine) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ext_storage_namespaces AS n (tenant_id, namespace, version, pruned_seq) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = GREATEST(n.version, EXCLUDED.version), \
               pruned_seq = GREATEST(n.version, EXCLUDED.version)",
        )
        .bind(line.tenant)
        .bind(line.namespace.as_str())
        .bind(line.version)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(db)
    }
}
