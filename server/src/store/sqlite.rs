//! The embedded SQLite backend: the default when no `DATABASE_URL` is set.
//!
//! Same observable semantics as Postgres, by different means where SQLite needs them:
//! - **One writer.** Every write goes through a pool of exactly one connection, so a guard and
//!   its write run in one transaction with no concurrent writer in this process; reads use a
//!   separate WAL reader pool and never wait for writes. No `database is locked` can arise
//!   between our own connections; a busy timeout covers other processes (one server per file is
//!   the supported setup).
//! - **Time** is integer microseconds since the epoch, taken from the server's clock.
//! - **Metadata containment** is evaluated in Rust with [`json_contains`], scanning the
//!   namespace in key order inside one read transaction (one snapshot per page).
//! - **Expiry sweeps** run in the write transaction of writes (a bounded batch of their
//!   namespace) and in the background sweeper; reads never write.
//! - **Namespace versions** advance in the same transaction as the write, by the rows changed
//!   plus the expired rows removed, exactly as on Postgres.
//! - `sqlite::memory:` uses one connection for everything (an in-memory database lives and dies
//!   with its connection).

use super::atomic::{self, AtomicTx, Expiry, Locked, Put};
use super::bulk::{self, BulkTx};
use super::patch::{self, NamespaceState, PatchTx};
use super::transfer::{
    self, Counts, ExportFilter, ExportTx, ImportTx, InstallLine, Line, NamespaceLine, Part,
    QuotaLine, RecordLine, SchemaLine, Sink,
};
use super::{
    backend, change_page, db, delete_allowed, guard_holds, in_request_order,
    install_of_another_tenant, keyed, record_size, Actor, AuditEntry, ChangeRow, ChangesQuery,
    ListQuery, NamespaceUsage, Principal, QuotaRow, Quotas, Retention, SchemaLookup, SchemaVersion,
    Store, StoreError, Upserted, Written,
};
use alga_storage_core::{
    json_contains, AtomicRequest, AtomicResponse, BulkPutItem, BulkPutRequest, BulkPutResponse,
    DeleteRequest, GetManyRequest, GetManyResponse, GetRequest, Grant, InstallId, Key, ListItem,
    Metadata, Namespace, PatchOp, PutRequest, PutResponse, Record, Revision, Snapshot,
    StorageError, TtlSeconds,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// The embedded migrations (each with its down migration).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Most expired records one request deletes (as on Postgres).
const SWEEP_BATCH: i64 = 16;
/// Rows read per step while a metadata filter is applied in Rust.
const FILTER_BATCH: i64 = 256;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    feed: std::sync::Arc<super::feed::Feed>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The tenant an install id belongs to, if it exists.
async fn install_owner(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    install: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT tenant_id FROM ext_storage_installs WHERE install_id = ?1")
        .bind(install)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)
}

fn tenant_text(tenant: Uuid) -> String {
    tenant.hyphenated().to_string()
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(backend)
}

/// A record's current state, as a write sees it.
#[derive(Debug, Clone, Copy)]
struct Current {
    revision: i64,
    ttl_expires_at: Option<i64>,
    created_at: i64,
}

impl Current {
    fn live(self, now: i64) -> bool {
        self.ttl_expires_at.is_none_or(|t| t > now)
    }

    /// The revision and creation time a write gives the record whose live row is `live`
    /// ([`next_revision`](super::next_revision)).
    fn next(live: Option<Current>, now: i64) -> (i64, i64) {
        super::next_revision(live.map(|c| (c.revision, c.created_at)), now)
    }
}

/// One record to write.
struct Write<'a> {
    /// The audited operation (`put`, `bulkPut`, `set`).
    operation: &'static str,
    key: &'a Key,
    value: &'a Value,
    metadata: Option<&'a Metadata>,
    ttl: Option<TtlSeconds>,
}

/// One audit row's subject: a record's change when it names a namespace and a key.
struct Change<'a> {
    ns: Option<&'a str>,
    key: Option<&'a str>,
    operation: &'a str,
    revision: Option<i64>,
    /// Its sequence number, when the caller numbers the changes itself.
    seq: Option<i64>,
}

/// The columns of one record as [`UPSERT`] writes it.
struct RowWrite<'a> {
    key: &'a str,
    value: &'a Value,
    metadata: Option<&'a Metadata>,
    revision: i64,
    ttl_expires_at: Option<i64>,
    created_at: i64,
}

/// The statement that writes one record whole, its parameters numbered as given: tenant,
/// namespace, key, value, metadata, revision, expiry, creation time, now, size.
macro_rules! upsert_sql {
    ($t:literal, $ns:literal, $key:literal, $value:literal, $metadata:literal, $revision:literal,
     $ttl:literal, $created:literal, $now:literal, $size:literal) => {
        concat!(
            "INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, \
               ttl_expires_at, created_at, updated_at, size) VALUES (",
            $t, ", ", $ns, ", ", $key, ", ", $value, ", ", $metadata, ", ", $revision, ", ",
            $ttl, ", ", $created, ", ", $now, ", ", $size,
            ") ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET value = excluded.value, \
               metadata = excluded.metadata, revision = excluded.revision, size = excluded.size, \
               ttl_expires_at = excluded.ttl_expires_at, created_at = excluded.created_at, \
               updated_at = excluded.updated_at"
        )
    };
}

/// The statement that writes one audit row: tenant, principal, namespace, key, operation,
/// revision, surface, time, then the expression of its sequence number.
macro_rules! audit_sql {
    ($t:literal, $principal:literal, $ns:literal, $key:literal, $operation:literal,
     $revision:literal, $surface:literal, $at:literal, $seq:expr) => {
        concat!(
            "INSERT INTO ext_storage_audit (tenant_id, principal, namespace, key, operation, \
               revision, surface, at, ns_seq) VALUES (",
            $t,
            ", ",
            $principal,
            ", ",
            $ns,
            ", ",
            $key,
            ", ",
            $operation,
            ", ",
            $revision,
            ", ",
            $surface,
            ", ",
            $at,
            ", ",
            $seq,
            ")"
        )
    };
}

/// The next sequence number of namespace `ns` of tenant `t`: after its version and after the
/// changes this transaction already wrote (the one writer connection makes that the latest);
/// the version advances past it at the end.
macro_rules! next_seq_sql {
    ($t:literal, $ns:literal) => {
        concat!(
            "1 + max(coalesce((SELECT version FROM ext_storage_namespaces WHERE tenant_id = ",
            $t,
            " AND namespace = ",
            $ns,
            "), 0), \
               coalesce((SELECT max(ns_seq) FROM ext_storage_audit WHERE tenant_id = ",
            $t,
            " AND namespace = ",
            $ns,
            " AND ns_seq IS NOT NULL), 0))"
        )
    };
}

/// The statement that advances a namespace's version: tenant, namespace, by how much.
macro_rules! bump_sql {
    ($t:literal, $ns:literal, $by:literal) => {
        concat!(
            "INSERT INTO ext_storage_namespaces (tenant_id, namespace, version) VALUES (",
            $t, ", ", $ns, ", ", $by,
            ") ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = version + excluded.version"
        )
    };
}

/// Writes one record whole: its revision, expiry and creation time are the caller's.
const UPSERT: &str = upsert_sql!("?1", "?2", "?3", "?4", "?5", "?6", "?7", "?8", "?9", "?10");

/// One audit row ([`SqliteStore::audit_change`]): a record's change takes `?9` as its sequence
/// number, or else the namespace's next one; other rows (installs, schemas) have none.
const AUDIT: &str = audit_sql!(
    "?1",
    "?2",
    "?3",
    "?4",
    "?5",
    "?6",
    "?7",
    "?8",
    concat!(
        "CASE WHEN ?3 IS NOT NULL AND ?4 IS NOT NULL THEN coalesce(?9, ",
        next_seq_sql!("?1", "?3"),
        ") END"
    )
);

/// Advances a namespace's version by `?3`.
const BUMP: &str = bump_sql!("?1", "?2", "?3");

/// A single put's three statements in one call to the connection's thread (each call is a
/// round trip to it, and under load a wait for a core): [`UPSERT`], the record's audit row,
/// the version's advance. Parameters: `?1` tenant, `?2` namespace, `?3` by how much the version
/// advances, `?4`–`?11` the record (key … size), `?12` principal, `?13` operation, `?14`
/// surface. sqlx binds a numbered parameter by its number in every statement, but a number a
/// statement skips takes the next unnumbered argument and stops the binding once past the
/// last: so the statements come in this order and number their parameters so that each skips
/// few (a parameter left unbound is NULL, which a NOT NULL column refuses).
const PUT_STATEMENTS: &str = concat!(
    upsert_sql!("?1", "?2", "?4", "?5", "?6", "?7", "?8", "?9", "?10", "?11"),
    "; ",
    audit_sql!(
        "?1",
        "?12",
        "?2",
        "?4",
        "?13",
        "?7",
        "?14",
        "?10",
        next_seq_sql!("?1", "?2")
    ),
    "; ",
    bump_sql!("?1", "?2", "?3")
);

/// How long a request waits for the file's write lock (held by another process, say a backup)
/// or for a connection of the store's own before it is answered 503 `UNAVAILABLE`: together
/// within the 2 s the design allows.
const BUSY_TIMEOUT: Duration = Duration::from_millis(900);

impl SqliteStore {
    /// Opens (creating the file and its folder if needed) and migrates a SQLite database:
    /// `sqlite://path`, `sqlite:path` or `sqlite::memory:`.
    pub async fn connect(url: &str, max_readers: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(false);
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(db)?;
            MIGRATOR.run(&pool).await.map_err(backend)?;
            return Ok(SqliteStore {
                writer: pool.clone(),
                reader: pool,
                feed: Default::default(),
            });
        }
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        MIGRATOR.run(&writer).await.map_err(backend)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_readers.max(1))
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options.read_only(true))
            .await
            .map_err(db)?;
        Ok(SqliteStore {
            writer,
            reader,
            feed: Default::default(),
        })
    }

    /// The writer pool (for tests and the benchmark).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Deletes up to [`SWEEP_BATCH`] expired records of a namespace, never one of `keep`, and
    /// returns how many it deleted.
    async fn sweep(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        now: i64,
        keep: &[&str],
    ) -> Result<i64, StoreError> {
        let mut swept: Vec<String> = sqlx::query_scalar(
            "DELETE FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 AND key IN ( \
               SELECT key FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 \
               AND ttl_expires_at <= ?3 AND key NOT IN (SELECT value FROM json_each(?4)) LIMIT ?5) \
             RETURNING key",
        )
        .bind(tenant)
        .bind(ns)
        .bind(now)
        .bind(json_text(&keep))
        .bind(SWEEP_BATCH)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        swept.sort_unstable();
        Self::expired_rows(conn, tenant, ns, &swept, now).await?;
        Ok(swept.len() as i64)
    }

    /// Writes the change rows (`expire`, by the sweeper) of records of a namespace removed
    /// after their TTL, in the order given.
    async fn expired_rows(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        keys: &[impl AsRef<str>],
        now: i64,
    ) -> Result<(), StoreError> {
        for key in keys {
            let key = Some(key.as_ref());
            Self::audit_row(
                conn,
                tenant,
                Actor::SWEEPER,
                Some(ns),
                key,
                "expire",
                None,
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Writes the change rows of records of several namespaces that expired and were removed
    /// (`(tenant, namespace, key)`, in any order), and advances each namespace's version.
    async fn expired_many(
        conn: &mut SqliteConnection,
        mut swept: Vec<(String, String, String)>,
        now: i64,
    ) -> Result<Vec<(Uuid, String)>, StoreError> {
        swept.sort_unstable();
        for chunk in swept.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let (tenant, ns) = (&chunk[0].0, &chunk[0].1);
            let keys: Vec<&str> = chunk.iter().map(|(_, _, key)| key.as_str()).collect();
            Self::expired_rows(conn, tenant, ns, &keys, now).await?;
            Self::bump(conn, tenant, ns, chunk.len() as i64).await?;
        }
        swept
            .into_iter()
            .map(|(tenant, ns, _)| Ok((uuid_of(&tenant)?, ns)))
            .collect()
    }

    /// Advances a namespace version by `by` (rows changed plus expired rows removed).
    async fn bump(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        by: i64,
    ) -> Result<(), StoreError> {
        if by > 0 {
            sqlx::query(BUMP)
                .bind(tenant)
                .bind(ns)
                .bind(by)
                .execute(conn)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    /// Version, live rows and expired rows of a namespace.
    async fn state(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        now: i64,
    ) -> Result<(i64, i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT coalesce((SELECT version FROM ext_storage_namespaces WHERE tenant_id = ?1 AND namespace = ?2), 0), \
               (SELECT count(*) FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 \
                  AND (ttl_expires_at IS NULL OR ttl_expires_at > ?3)), \
               (SELECT count(*) FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 \
                  AND ttl_expires_at <= ?3)",
        )
        .bind(tenant)
        .bind(ns)
        .bind(now)
        .fetch_one(conn)
        .await
        .map_err(db)
    }

    /// The live records of a namespace as `{key: value}`.
    async fn live_data(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        now: i64,
    ) -> Result<Map<String, Value>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 \
             AND (ttl_expires_at IS NULL OR ttl_expires_at > ?3) ORDER BY key",
        )
        .bind(tenant)
        .bind(ns)
        .bind(now)
        .fetch_all(conn)
        .await
        .map_err(db)?;
        rows.into_iter().map(|(k, v)| Ok((k, parse(&v)?))).collect()
    }

    async fn current(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        key: &str,
    ) -> Result<Option<Current>, StoreError> {
        let row: Option<(i64, Option<i64>, i64)> = sqlx::query_as(
            "SELECT revision, ttl_expires_at, created_at FROM ext_storage_records \
             WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
        )
        .bind(tenant)
        .bind(ns)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
        Ok(row.map(|(revision, ttl_expires_at, created_at)| Current {
            revision,
            ttl_expires_at,
            created_at,
        }))
    }

    /// The namespace's schema version (0: none) and the stored state of a record, in one
    /// statement: a single put's check that its value was judged by the schema in force
    /// ([`Store::put`]) costs no round trip of its own.
    async fn schema_and_current(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        key: &str,
    ) -> Result<(SchemaVersion, Option<Current>), StoreError> {
        let (schema, revision, ttl_expires_at, created_at): (
            SchemaVersion,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        ) = sqlx::query_as(
            "SELECT coalesce((SELECT version FROM ext_storage_schemas \
               WHERE tenant_id = ?1 AND namespace = ?2), 0), r.revision, r.ttl_expires_at, r.created_at \
             FROM (SELECT 1) LEFT JOIN ext_storage_records r \
               ON r.tenant_id = ?1 AND r.namespace = ?2 AND r.key = ?3",
        )
        .bind(tenant)
        .bind(ns)
        .bind(key)
        .fetch_one(conn)
        .await
        .map_err(db)?;
        let current = match (revision, created_at) {
            (Some(revision), Some(created_at)) => Some(Current {
                revision,
                ttl_expires_at,
                created_at,
            }),
            _ => None,
        };
        Ok((schema, current))
    }

    /// The live state of a record and whether a guard holds (else the live revision, 0 when
    /// absent or expired).
    fn check(
        current: Option<Current>,
        guard: Option<Revision>,
        now: i64,
    ) -> (Option<Current>, Result<(), u64>) {
        let live = current.filter(|c| c.live(now));
        let live_revision = live.map_or(0, |c| c.revision as u64);
        (live, guard_holds(guard, live_revision))
    }

    /// Binds a record's columns (key … size, in [`UPSERT`]'s order) after what `query` already
    /// binds.
    fn bind_row<'q>(
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        row: &RowWrite<'q>,
        now: i64,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        let metadata = row
            .metadata
            .map_or_else(|| json_text(&Metadata::default()), json_text);
        query
            .bind(row.key)
            .bind(json_text(row.value))
            .bind(metadata)
            .bind(row.revision)
            .bind(row.ttl_expires_at)
            .bind(row.created_at)
            .bind(now)
            .bind(record_size(row.key, row.value, row.metadata))
    }

    /// Writes one record whole ([`UPSERT`]); its revision, expiry and creation time are the
    /// caller's.
    async fn write_row(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        row: &RowWrite<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        Self::bind_row(sqlx::query(UPSERT).bind(tenant).bind(ns), row, now)
            .execute(conn)
            .await
            .map_err(|e| keyed(db(e), row.key))?;
        Ok(())
    }

    /// Writes one record, its audit row, and advances the namespace version by `by`, in one
    /// call to the connection's thread (three statements; each call is a round trip to it).
    #[allow(clippy::too_many_arguments)]
    async fn put_statements(
        conn: &mut SqliteConnection,
        tenant: &str,
        actor: Actor<'_>,
        ns: &str,
        w: &Write<'_>,
        live: Option<Current>,
        now: i64,
        by: i64,
    ) -> Result<Written, StoreError> {
        let (revision, created_at) = Current::next(live, now);
        let ttl_expires_at = w.ttl.map(|t| now + i64::from(t.get()) * 1_000_000);
        let row = RowWrite {
            key: w.key.as_str(),
            value: w.value,
            metadata: w.metadata,
            revision,
            ttl_expires_at,
            created_at,
        };
        let statements = sqlx::query(PUT_STATEMENTS).bind(tenant).bind(ns).bind(by);
        Self::bind_row(statements, &row, now)
            .bind(actor.principal)
            .bind(w.operation)
            .bind(actor.surface)
            .execute(conn)
            .await
            .map_err(|e| keyed(db(e), w.key.as_str()))?;
        Ok(Written {
            revision: revision as u64,
            ttl_expires_at: ttl_expires_at.map(time),
            created_at: time(created_at),
            updated_at: time(now),
        })
    }

    /// Writes one audit row.
    #[allow(clippy::too_many_arguments)]
    async fn audit_row(
        conn: &mut SqliteConnection,
        tenant: &str,
        actor: Actor<'_>,
        ns: Option<&str>,
        key: Option<&str>,
        operation: &str,
        revision: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let change = Change {
            ns,
            key,
            operation,
            revision,
            seq: None,
        };
        Self::audit_change(conn, tenant, actor, &change, now).await
    }

    /// Writes one audit row; a record's change (namespace and key) takes `seq` as its sequence
    /// number, or else the namespace's next one: after its version and after the changes this
    /// transaction already wrote (the one writer connection makes that the latest); the
    /// version advances past it at the end.
    async fn audit_change(
        conn: &mut SqliteConnection,
        tenant: &str,
        actor: Actor<'_>,
        change: &Change<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(AUDIT)
            .bind(tenant)
            .bind(actor.principal)
            .bind(change.ns)
            .bind(change.key)
            .bind(change.operation)
            .bind(change.revision)
            .bind(actor.surface)
            .bind(now)
            .bind(change.seq)
            .execute(conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Deletes one record; answers whether there was one.
    async fn remove(
        conn: &mut SqliteConnection,
        tenant: &str,
        ns: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
        )
        .bind(tenant)
        .bind(ns)
        .bind(key)
        .execute(conn)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes one record and, if there was one, writes its audit row.
    async fn delete_key(
        conn: &mut SqliteConnection,
        tenant: &str,
        actor: Actor<'_>,
        ns: &str,
        key: &str,
        operation: &'static str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let deleted = Self::remove(conn, tenant, ns, key).await?;
        if deleted {
            Self::audit_row(
                conn,
                tenant,
                actor,
                Some(ns),
                Some(key),
                operation,
                None,
                now,
            )
            .await?;
        }
        Ok(deleted)
    }
}

/// The SQLite statements of a multi-record write (`atomic`, a snapshot patch). The store's one
/// writer connection holds the file's write lock for the whole transaction, so nothing changes
/// between reading a record and writing it.
struct SqliteWrite<'c> {
    conn: &'c mut SqliteConnection,
    tenant: &'c str,
    ns: &'c str,
    actor: Actor<'c>,
    now: i64,
}

impl<'c> SqliteWrite<'c> {
    /// The statements of one write transaction of namespace `ns`, at the current time.
    fn new(conn: &'c mut SqliteConnection, tenant: &'c str, ns: &'c str, actor: Actor<'c>) -> Self {
        SqliteWrite {
            conn,
            tenant,
            ns,
            actor,
            now: now_micros(),
        }
    }
}

#[async_trait]
impl AtomicTx for SqliteWrite<'_> {
    async fn guard(&mut self, _keys: &[&str]) -> Result<(), StoreError> {
        // The one writer connection already runs every write transaction alone.
        Ok(())
    }

    async fn lock(&mut self, keys: &[&str]) -> Result<HashMap<String, Locked>, StoreError> {
        let rows: Vec<(String, i64, String, String, Option<i64>, i64)> = sqlx::query_as(
            "SELECT key, revision, value, metadata, ttl_expires_at, created_at FROM ext_storage_records \
             WHERE tenant_id = ?1 AND namespace = ?2 AND key IN (SELECT value FROM json_each(?3))",
        )
        .bind(self.tenant)
        .bind(self.ns)
        .bind(json_text(&keys))
        .fetch_all(&mut *self.conn)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(key, revision, value, metadata, ttl, created)| {
                let locked = Locked {
                    live: ttl.is_none_or(|t| t > self.now),
                    revision: revision as u64,
                    value: parse(&value)?,
                    metadata: parse(&metadata)?,
                    ttl_expires_at: ttl.map(time),
                    created_at: time(created),
                };
                Ok((key, locked))
            })
            .collect()
    }

    async fn write(&mut self, put: &Put<'_>) -> Result<Option<u64>, StoreError> {
        // The writer connection holds the file's write lock: the locked row is still current.
        let (revision, created_at) = put.revision_and_created(time(self.now));
        let ttl_expires_at = match put.expiry {
            Expiry::Never => None,
            Expiry::In(ttl) => Some(self.now + i64::from(ttl.get()) * 1_000_000),
            Expiry::At(at) => Some(at.timestamp_micros()),
        };
        let row = RowWrite {
            key: put.key,
            value: put.value,
            metadata: put.metadata,
            revision: revision as i64,
            ttl_expires_at,
            created_at: created_at.timestamp_micros(),
        };
        SqliteStore::write_row(self.conn, self.tenant, self.ns, &row, self.now).await?;
        Ok(Some(revision))
    }

    async fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        SqliteStore::remove(self.conn, self.tenant, self.ns, key).await?;
        Ok(())
    }

    async fn audit(
        &mut self,
        key: &str,
        operation: &str,
        revision: Option<u64>,
    ) -> Result<(), StoreError> {
        SqliteStore::audit_row(
            self.conn,
            self.tenant,
            self.actor,
            Some(self.ns),
            Some(key),
            operation,
            revision.map(|r| r as i64),
            self.now,
        )
        .await
    }

    async fn finish(&mut self, changes: i64, keys: &[&str]) -> Result<(), StoreError> {
        let swept = SqliteStore::sweep(self.conn, self.tenant, self.ns, self.now, keys).await?;
        SqliteStore::bump(self.conn, self.tenant, self.ns, swept + changes).await
    }
}

type RecordRow = (String, i64, String, String, Option<i64>, i64, i64);

#[async_trait]
impl BulkTx for SqliteWrite<'_> {
    // The one writer connection: nothing to lock, and no row can appear between the lock and
    // the write.
    async fn lock(&mut self, keys: &[&str]) -> Result<HashMap<String, u64>, StoreError> {
        let mut found = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(c) = SqliteStore::current(self.conn, self.tenant, self.ns, key).await? {
                let live = if c.live(self.now) {
                    c.revision as u64
                } else {
                    0
                };
                found.insert((*key).to_owned(), live);
            }
        }
        Ok(found)
    }

    async fn write(
        &mut self,
        items: &[BulkPutItem],
        _create_only: &[&str],
    ) -> Result<HashMap<String, Written>, StoreError> {
        let mut written = HashMap::with_capacity(items.len());
        for item in items {
            let key = item.key.as_str();
            let live = SqliteStore::current(self.conn, self.tenant, self.ns, key)
                .await?
                .filter(|c| c.live(self.now));
            let (revision, created_at) = Current::next(live, self.now);
            let ttl_expires_at = item
                .ttl_seconds
                .map(|t| self.now + i64::from(t.get()) * 1_000_000);
            let row = RowWrite {
                key,
                value: &item.value,
                metadata: item.metadata.as_ref(),
                revision,
                ttl_expires_at,
                created_at,
            };
            SqliteStore::write_row(self.conn, self.tenant, self.ns, &row, self.now).await?;
            written.insert(
                key.to_owned(),
                Written {
                    revision: revision as u64,
                    ttl_expires_at: ttl_expires_at.map(time),
                    created_at: time(created_at),
                    updated_at: time(self.now),
                },
            );
        }
        Ok(written)
    }

    async fn live_revision(&mut self, key: &str) -> Result<u64, StoreError> {
        let current = SqliteStore::current(self.conn, self.tenant, self.ns, key).await?;
        Ok(current
            .filter(|c| c.live(self.now))
            .map_or(0, |c| c.revision as u64))
    }

    async fn finish(&mut self, changes: i64, keys: &[&str]) -> Result<i64, StoreError> {
        let swept = SqliteStore::sweep(self.conn, self.tenant, self.ns, self.now, keys).await?;
        SqliteStore::bump(self.conn, self.tenant, self.ns, swept + changes).await?;
        sqlx::query_scalar(
            "SELECT coalesce((SELECT version FROM ext_storage_namespaces WHERE tenant_id = ?1 AND namespace = ?2), 0)",
        )
        .bind(self.tenant)
        .bind(self.ns)
        .fetch_one(&mut *self.conn)
        .await
        .map_err(db)
    }

    async fn audit(
        &mut self,
        keys: &[&str],
        revisions: &[u64],
        first_seq: i64,
    ) -> Result<(), StoreError> {
        for (i, (key, revision)) in keys.iter().zip(revisions).enumerate() {
            let change = Change {
                ns: Some(self.ns),
                key: Some(key),
                operation: "bulkPut",
                revision: Some(*revision as i64),
                seq: Some(first_seq + i as i64),
            };
            SqliteStore::audit_change(self.conn, self.tenant, self.actor, &change, self.now)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PatchTx for SqliteWrite<'_> {
    // The one writer connection: nothing to lock, and the version cannot move between the
    // check and the end.
    async fn lock(&mut self, _keys: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn state(&mut self) -> Result<NamespaceState, StoreError> {
        let (version, live, expired) =
            SqliteStore::state(self.conn, self.tenant, self.ns, self.now).await?;
        Ok(NamespaceState {
            version,
            live,
            expired,
        })
    }

    async fn delete(&mut self, keys: &[&str], first_seq: i64) -> Result<i64, StoreError> {
        let mut deleted = 0;
        for key in keys {
            if SqliteStore::remove(self.conn, self.tenant, self.ns, key).await? {
                let change = Change {
                    ns: Some(self.ns),
                    key: Some(key),
                    operation: "del",
                    revision: None,
                    seq: Some(first_seq + deleted),
                };
                SqliteStore::audit_change(self.conn, self.tenant, self.actor, &change, self.now)
                    .await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    async fn set(&mut self, sets: &[(&str, &Value)], first_seq: i64) -> Result<(), StoreError> {
        for (i, (key, value)) in sets.iter().enumerate() {
            let live = SqliteStore::current(self.conn, self.tenant, self.ns, key)
                .await?
                .filter(|c| c.live(self.now));
            let (revision, created_at) = Current::next(live, self.now);
            let row = RowWrite {
                key,
                value,
                metadata: None,
                revision,
                ttl_expires_at: None,
                created_at,
            };
            SqliteStore::write_row(self.conn, self.tenant, self.ns, &row, self.now).await?;
            let change = Change {
                ns: Some(self.ns),
                key: Some(key),
                operation: "set",
                revision: Some(revision),
                seq: Some(first_seq + i as i64),
            };
            SqliteStore::audit_change(self.conn, self.tenant, self.actor, &change, self.now)
                .await?;
        }
        Ok(())
    }

    async fn advance(&mut self, from: i64, to: i64) -> Result<bool, StoreError> {
        SqliteStore::bump(self.conn, self.tenant, self.ns, to - from).await?;
        Ok(true)
    }

    async fn live_data(&mut self) -> Result<Map<String, Value>, StoreError> {
        SqliteStore::live_data(self.conn, self.tenant, self.ns, self.now).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn export_snapshot(&self) -> Result<Box<dyn ExportTx + '_>, StoreError> {
        let tx = self.reader.begin().await.map_err(db)?;
        Ok(Box::new(SqliteExport {
            tx,
            now: now_micros(),
        }))
    }

    async fn import_tx(&self) -> Result<Box<dyn ImportTx + '_>, StoreError> {
        let tx = self.writer.begin().await.map_err(db)?;
        Ok(Box::new(SqliteImport {
            tx,
            now: now_micros(),
        }))
    }

    async fn put_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &PutRequest,
        schema: SchemaVersion,
    ) -> Result<PutResponse, StoreError> {
        let (tenant_id, ns, now) = (tenant_text(tenant), req.namespace.as_str(), now_micros());
        let mut tx = self.writer.begin().await.map_err(db)?;
        // The sweep first: its write takes the file's write lock, waiting for another process
        // that holds it (a transaction that has read first is refused at once instead).
        let swept = Self::sweep(&mut tx, &tenant_id, ns, now, &[req.key.as_str()]).await?;
        let (current_schema, current) =
            Self::schema_and_current(&mut tx, &tenant_id, ns, req.key.as_str()).await?;
        if current_schema != schema {
            return Err(StoreError::SchemaMoved);
        }
        let (live, guard) = Self::check(current, req.if_revision, now);
        if let Err(current) = guard {
            Self::bump(&mut tx, &tenant_id, ns, swept).await?;
            tx.commit().await.map_err(db)?;
            return Err(StorageError::revision_mismatch(current).into());
        }
        let write = Write {
            operation: "put",
            key: &req.key,
            value: &req.value,
            metadata: req.metadata.as_ref(),
            ttl: req.ttl_seconds,
        };
        let changes = swept + super::changes_of(current.is_some() && live.is_none());
        let w = Self::put_statements(&mut tx, &tenant_id, actor, ns, &write, live, now, changes)
            .await?;
        tx.commit().await.map_err(db)?;
        Ok(PutResponse {
            namespace: req.namespace.clone(),
            key: req.key.clone(),
            revision: w.revision,
            ttl_expires_at: w.ttl_expires_at,
            created_at: w.created_at,
            updated_at: w.updated_at,
        })
    }

    async fn bulk_put_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &BulkPutRequest,
    ) -> Result<BulkPutResponse, StoreError> {
        let tenant_id = tenant_text(tenant);
        let mut tx = self.writer.begin().await.map_err(db)?;
        let mut statements = SqliteWrite::new(&mut tx, &tenant_id, req.namespace.as_str(), actor);
        let answer = bulk::run(&mut statements, req).await?;
        tx.commit().await.map_err(db)?;
        Ok(answer)
    }

    async fn patch_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
        if_match: u64,
        ops: &[PatchOp],
    ) -> Result<Snapshot, StoreError> {
        let tenant_id = tenant_text(tenant);
        let mut tx = self.writer.begin().await.map_err(db)?;
        let mut statements = SqliteWrite::new(&mut tx, &tenant_id, namespace.as_str(), actor);
        // The one writer connection: no other write can move the version meanwhile.
        let snapshot = patch::run(&mut statements, if_match, ops)
            .await?
            .map_err(|patch::Moved| backend(StorageError::internal()))?;
        tx.commit().await.map_err(db)?;
        Ok(snapshot)
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn principal(&self, install: &InstallId) -> Result<Option<Principal>, StoreError> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT tenant_id, grants, generation FROM ext_storage_installs WHERE install_id = ?1",
        )
        .bind(install.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        row.map(|(tenant, grants, generation)| {
            Ok(Principal {
                tenant: Uuid::parse_str(&tenant).map_err(backend)?,
                install: install.clone(),
                grants: parse::<Vec<Grant>>(&grants)?,
                generation,
            })
        })
        .transpose()
    }

    async fn get(&self, tenant: Uuid, req: &GetRequest) -> Result<Option<Record>, StoreError> {
        let (tenant_id, ns, now) = (tenant_text(tenant), req.namespace.as_str(), now_micros());
        let row: Option<(String, String, i64, Option<i64>, i64, i64)> = sqlx::query_as(
            "SELECT value, metadata, revision, ttl_expires_at, created_at, updated_at \
             FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3 \
             AND (ttl_expires_at IS NULL OR ttl_expires_at > ?4)",
        )
        .bind(&tenant_id)
        .bind(ns)
        .bind(req.key.as_str())
        .bind(now)
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        row.map(|(value, metadata, revision, ttl, created, updated)| {
            Ok(Record {
                namespace: req.namespace.clone(),
                key: req.key.clone(),
                revision: revision as u64,
                value: parse(&value)?,
                metadata: parse(&metadata)?,
                ttl_expires_at: ttl.map(time),
                created_at: time(created),
                updated_at: time(updated),
            })
        })
        .transpose()
    }

    async fn list(&self, tenant: Uuid, q: &ListQuery) -> Result<Vec<ListItem>, StoreError> {
        let (tenant_id, ns, now) = (tenant_text(tenant), q.namespace.as_str(), now_micros());
        let filter = q.metadata.clone().map(Value::Object);
        let wanted = q.fetch.max(0) as usize;
        let batch = if filter.is_some() {
            FILTER_BATCH
        } else {
            q.fetch
        };
        let mut after = q.after.as_ref().map(|k| k.as_str().to_owned());
        let mut items = Vec::new();
        // One read transaction: every step sees the same snapshot.
        let mut tx = self.reader.begin().await.map_err(db)?;
        loop {
            let rows: Vec<RecordRow> = sqlx::query_as(
                "SELECT key, revision, value, metadata, ttl_expires_at, created_at, updated_at \
                 FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 \
                   AND (ttl_expires_at IS NULL OR ttl_expires_at > ?3) \
                   AND key >= ?4 AND (?5 IS NULL OR key > ?5) \
                   AND (?6 IS NULL OR substr(key, 1, length(?6)) = ?6) \
                 ORDER BY key LIMIT ?7",
            )
            .bind(&tenant_id)
            .bind(ns)
            .bind(now)
            .bind(q.key_prefix.as_deref().unwrap_or(""))
            .bind(after.as_deref())
            .bind(q.key_prefix.as_deref())
            .bind(batch)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let exhausted = (rows.len() as i64) < batch;
            after = rows.last().map(|r| r.0.clone());
            for (key, revision, value, metadata, ttl, created, updated) in rows {
                let metadata: Metadata = parse(&metadata)?;
                if let Some(filter) = &filter {
                    if !json_contains(&Value::Object(metadata.clone()), filter) {
                        continue;
                    }
                }
                items.push(ListItem {
                    namespace: q.namespace.clone(),
                    key: Key::new(key).map_err(|e| backend(StorageError::from(e)))?,
                    revision: revision as u64,
                    value: if q.include_values {
                        Some(parse(&value)?)
                    } else {
                        None
                    },
                    metadata: q.include_metadata.then_some(metadata),
                    ttl_expires_at: ttl.map(time),
                    created_at: Some(time(created)),
                    updated_at: Some(time(updated)),
                });
                if items.len() == wanted {
                    break;
                }
            }
            if items.len() == wanted || exhausted {
                break;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(items)
    }

    async fn get_many(
        &self,
        tenant: Uuid,
        req: &GetManyRequest,
    ) -> Result<GetManyResponse, StoreError> {
        let (tenant_id, now) = (tenant_text(tenant), now_micros());
        let keys: Vec<&str> = req.keys.iter().map(Key::as_str).collect();
        let rows: Vec<RecordRow> = sqlx::query_as(
            "SELECT key, revision, value, metadata, ttl_expires_at, created_at, updated_at \
             FROM ext_storage_records WHERE tenant_id = ?1 AND namespace = ?2 \
             AND key IN (SELECT value FROM json_each(?3)) \
             AND (ttl_expires_at IS NULL OR ttl_expires_at > ?4)",
        )
        .bind(&tenant_id)
        .bind(req.namespace.as_str())
        .bind(json_text(&keys))
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        let mut found = HashMap::with_capacity(rows.len());
        for (key, revision, value, metadata, ttl, created, updated) in rows {
            let record = Record {
                namespace: req.namespace.clone(),
                key: Key::new(&key).map_err(backend)?,
                revision: revision as u64,
                value: parse(&value)?,
                metadata: parse(&metadata)?,
                ttl_expires_at: ttl.map(time),
                created_at: time(created),
                updated_at: time(updated),
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
        let tenant_id = tenant_text(tenant);
        let mut tx = self.writer.begin().await.map_err(db)?;
        let mut statements = SqliteWrite::new(&mut tx, &tenant_id, req.namespace.as_str(), actor);
        match atomic::run(&mut statements, req, accept).await? {
            Ok(answer) => {
                tx.commit().await.map_err(db)?;
                Ok(answer)
            }
            // The one writer connection holds the write lock: no other writer can interleave.
            Err(atomic::Contended) => Err(StoreError::Backend(
                "a key appeared under the SQLite write lock".into(),
            )),
        }
    }

    async fn delete(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &DeleteRequest,
    ) -> Result<(), StoreError> {
        let (tenant_id, ns, now) = (tenant_text(tenant), req.namespace.as_str(), now_micros());
        let key = req.key.as_str();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let swept = Self::sweep(&mut tx, &tenant_id, ns, now, &[key]).await?;
        let current = Self::current(&mut tx, &tenant_id, ns, key).await?;
        let live_revision = current
            .filter(|c| c.live(now))
            .map_or(0, |c| c.revision as u64);
        let outcome = delete_allowed(req.if_revision, live_revision);
        let mut changes = swept;
        if let (Ok(()), Some(c)) = (&outcome, current) {
            Self::delete_key(&mut tx, &tenant_id, actor, ns, key, "delete", now).await?;
            changes += super::changes_of(!c.live(now));
        }
        Self::bump(&mut tx, &tenant_id, ns, changes).await?;
        tx.commit().await.map_err(db)?;
        Ok(outcome?)
    }

    async fn snapshot(&self, tenant: Uuid, namespace: &Namespace) -> Result<Snapshot, StoreError> {
        let (tenant_id, ns, now) = (tenant_text(tenant), namespace.as_str(), now_micros());
        let mut tx = self.reader.begin().await.map_err(db)?;
        let (version, _, expired) = Self::state(&mut tx, &tenant_id, ns, now).await?;
        let data = Self::live_data(&mut tx, &tenant_id, ns, now).await?;
        tx.commit().await.map_err(db)?;
        let etag = patch::etag(version, !data.is_empty(), expired);
        Ok(Snapshot { etag, data })
    }

    async fn put_schema(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
        schema: &Value,
    ) -> Result<i64, StoreError> {
        let (tenant_id, ns, now) = (tenant_text(tenant), namespace.as_str(), now_micros());
        let mut tx = self.writer.begin().await.map_err(db)?;
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO ext_storage_schemas (tenant_id, namespace, version, schema, updated_at) VALUES (?1, ?2, 1, ?3, ?4) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = version + 1, schema = excluded.schema, \
               updated_at = excluded.updated_at RETURNING version",
        )
        .bind(&tenant_id)
        .bind(ns)
        .bind(json_text(schema))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        Self::audit_row(
            &mut tx,
            &tenant_id,
            actor,
            Some(ns),
            None,
            "schema.put",
            Some(version),
            now,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(version)
    }

    async fn delete_schema(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
    ) -> Result<bool, StoreError> {
        let (tenant_id, ns, now) = (tenant_text(tenant), namespace.as_str(), now_micros());
        let mut tx = self.writer.begin().await.map_err(db)?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE ext_storage_schemas SET schema = NULL, version = version + 1, updated_at = ?3 \
             WHERE tenant_id = ?1 AND namespace = ?2 AND schema IS NOT NULL RETURNING version",
        )
        .bind(&tenant_id)
        .bind(ns)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(version) = version {
            Self::audit_row(
                &mut tx,
                &tenant_id,
                actor,
                Some(ns),
                None,
                "schema.delete",
                Some(version),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(version.is_some())
    }

    async fn schema(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
        known: Option<SchemaVersion>,
    ) -> Result<SchemaLookup, StoreError> {
        let row: Option<(i64, Option<String>, bool)> = sqlx::query_as(
            "SELECT version, CASE WHEN version = ?3 THEN NULL ELSE schema END, schema IS NULL \
             FROM ext_storage_schemas WHERE tenant_id = ?1 AND namespace = ?2",
        )
        .bind(tenant_text(tenant))
        .bind(namespace.as_str())
        .bind(known)
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        let row = match row {
            Some((version, schema, removed)) => {
                Some((version, schema.as_deref().map(parse).transpose()?, removed))
            }
            None => None,
        };
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
        let (tenant_id, now) = (tenant_text(tenant), now_micros());
        let mut tx = self.writer.begin().await.map_err(db)?;
        let done = match install_owner(&mut tx, install.as_str()).await? {
            Some(owner) if owner != tenant_id => {
                return Err(install_of_another_tenant("installId"))
            }
            Some(_) => Upserted::Updated,
            None => Upserted::Created,
        };
        sqlx::query(
            "INSERT INTO ext_storage_installs (tenant_id, install_id, extension_id, grants, created_at, updated_at, generation) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, lower(hex(randomblob(16)))) ON CONFLICT (tenant_id, install_id) DO UPDATE SET \
             extension_id = excluded.extension_id, grants = excluded.grants, updated_at = excluded.updated_at",
        )
        .bind(&tenant_id)
        .bind(install.as_str())
        .bind(extension_id)
        .bind(json_text(&grants))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        Self::audit_row(
            &mut tx,
            &tenant_id,
            actor,
            None,
            Some(install.as_str()),
            "install.put",
            None,
            now,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(done)
    }

    async fn delete_install(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        install: &InstallId,
    ) -> Result<bool, StoreError> {
        let (tenant_id, now) = (tenant_text(tenant), now_micros());
        let mut tx = self.writer.begin().await.map_err(db)?;
        let done = sqlx::query(
            "DELETE FROM ext_storage_installs WHERE tenant_id = ?1 AND install_id = ?2",
        )
        .bind(&tenant_id)
        .bind(install.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            Self::audit_row(
                &mut tx,
                &tenant_id,
                actor,
                None,
                Some(install.as_str()),
                "install.delete",
                None,
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }

    async fn set_quota_defaults(&self, defaults: &Quotas) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ext_storage_quota_defaults (id, max_namespaces, max_keys_per_namespace, max_bytes) \
             VALUES (1, ?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET max_namespaces = excluded.max_namespaces, \
               max_keys_per_namespace = excluded.max_keys_per_namespace, max_bytes = excluded.max_bytes",
        )
        .bind(defaults.max_namespaces)
        .bind(defaults.max_keys_per_namespace)
        .bind(defaults.max_bytes)
        .execute(&self.writer)
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
        let (tenant_id, now) = (tenant_text(tenant), now_micros());
        let mut tx = self.writer.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO ext_storage_tenants (tenant_id, max_namespaces, max_keys_per_namespace, max_bytes, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id) DO UPDATE SET max_namespaces = excluded.max_namespaces, \
               max_keys_per_namespace = excluded.max_keys_per_namespace, max_bytes = excluded.max_bytes, \
               updated_at = excluded.updated_at",
        )
        .bind(&tenant_id)
        .bind(overrides.max_namespaces)
        .bind(overrides.max_keys_per_namespace)
        .bind(overrides.max_bytes)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        Self::audit_row(
            &mut tx,
            &tenant_id,
            actor,
            None,
            None,
            "quotas.put",
            None,
            now,
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn quotas(&self, tenant: Uuid) -> Result<(Quotas, Quotas), StoreError> {
        let row: Option<QuotaRow> = sqlx::query_as(
            "SELECT x.max_namespaces, x.max_keys_per_namespace, x.max_bytes, \
               d.max_namespaces, d.max_keys_per_namespace, d.max_bytes \
             FROM ext_storage_quota_defaults d LEFT JOIN ext_storage_tenants x ON x.tenant_id = ?1 \
             WHERE d.id = 1",
        )
        .bind(tenant_text(tenant))
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        Ok(Quotas::from_row(row))
    }

    async fn usage_counters(&self, tenant: Uuid) -> Result<(i64, Vec<NamespaceUsage>), StoreError> {
        let tenant_id = tenant_text(tenant);
        let namespaces: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT namespace, keys, bytes FROM ext_storage_namespaces \
             WHERE tenant_id = ?1 AND keys > 0 ORDER BY namespace",
        )
        .bind(&tenant_id)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        let bytes: Option<i64> =
            sqlx::query_scalar("SELECT bytes FROM ext_storage_tenants WHERE tenant_id = ?1")
                .bind(&tenant_id)
                .fetch_optional(&self.reader)
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
        let (tenant_id, now) = (tenant_text(tenant), now_micros());
        let ns = namespace.map(Namespace::as_str);
        let mut tx = self.writer.begin().await.map_err(db)?;
        let swept: Vec<(String, String, String)> = sqlx::query_as(
            "DELETE FROM ext_storage_records WHERE tenant_id = ?1 \
               AND (?2 IS NULL OR namespace = ?2) AND ttl_expires_at <= ?3 \
             RETURNING tenant_id, namespace, key",
        )
        .bind(&tenant_id)
        .bind(ns)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        if swept.is_empty() {
            return Ok(0);
        }
        let purged = Self::expired_many(&mut tx, swept, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(purged.len() as u64)
    }

    fn feed(&self) -> &std::sync::Arc<super::feed::Feed> {
        &self.feed
    }

    async fn changes(
        &self,
        tenant: Uuid,
        query: &ChangesQuery<'_>,
    ) -> Result<alga_storage_core::ChangesResponse, StoreError> {
        let tenant = tenant_text(tenant);
        let mut conn = self.reader.acquire().await.map_err(db)?;
        // One read transaction: the bounds and the rows are of the same moment.
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        let (latest, pruned): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(max(version), 0), coalesce(max(pruned_seq), 0) \
             FROM ext_storage_namespaces WHERE tenant_id = ?1 AND namespace = ?2",
        )
        .bind(&tenant)
        .bind(query.namespace)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let rows: Vec<(i64, String, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT a.ns_seq, a.key, a.operation, a.revision, r.value \
             FROM ext_storage_audit a LEFT JOIN ext_storage_records r ON ?6 AND r.tenant_id = ?1 \
               AND r.namespace = ?2 AND r.key = a.key AND r.revision = a.revision \
               AND (r.ttl_expires_at IS NULL OR r.ttl_expires_at > ?7) \
             WHERE a.tenant_id = ?1 AND a.namespace = ?2 AND a.ns_seq IS NOT NULL AND a.ns_seq > ?3 \
               AND (?4 IS NULL OR substr(a.key, 1, length(?4)) = ?4) \
             ORDER BY a.ns_seq LIMIT ?5",
        )
        .bind(&tenant)
        .bind(query.namespace)
        .bind(query.after.min(i64::MAX as u64) as i64)
        .bind(query.key_prefix)
        .bind(i64::from(query.limit))
        .bind(query.values)
        .bind(now_micros())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let rows = rows
            .into_iter()
            .map(|(seq, key, operation, revision, value)| {
                let value = value.as_deref().map(parse).transpose()?;
                Ok((seq, key, operation, revision, value))
            })
            .collect::<Result<Vec<ChangeRow>, StoreError>>()?;
        let bounds = alga_storage_core::LogBounds {
            latest: latest as u64,
            pruned: pruned as u64,
        };
        change_page(bounds, query, rows)
    }

    async fn prune_changes(&self, retention: &Retention, batch: u32) -> Result<u64, StoreError> {
        let before = now_micros() - i64::from(retention.seconds) * 1_000_000;
        let mut tx = self.writer.begin().await.map_err(db)?;
        let gone: Vec<(String, String, i64)> = sqlx::query_as(
            "DELETE FROM ext_storage_audit WHERE seq IN ( \
               SELECT a.seq FROM ext_storage_audit a JOIN ext_storage_namespaces n \
                 ON n.tenant_id = a.tenant_id AND n.namespace = a.namespace \
               WHERE a.ns_seq IS NOT NULL AND a.at < ?1 AND a.ns_seq <= n.version - ?2 \
               ORDER BY a.at LIMIT ?3) \
             RETURNING tenant_id, namespace, ns_seq",
        )
        .bind(before)
        .bind(i64::from(retention.changes))
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut upto = std::collections::BTreeMap::<(&str, &str), i64>::new();
        for (tenant, ns, seq) in &gone {
            let at = upto.entry((tenant, ns)).or_default();
            *at = (*at).max(*seq);
        }
        for ((tenant, ns), seq) in upto {
            sqlx::query(
                "UPDATE ext_storage_namespaces SET pruned_seq = max(pruned_seq, ?3) \
                 WHERE tenant_id = ?1 AND namespace = ?2",
            )
            .bind(tenant)
            .bind(ns)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(gone.len() as u64)
    }

    async fn sweep_expired(&self, batch: u32) -> Result<Vec<(Uuid, String)>, StoreError> {
        let now = now_micros();
        let mut tx = self.writer.begin().await.map_err(db)?;
        let swept: Vec<(String, String, String)> = sqlx::query_as(
            "DELETE FROM ext_storage_records WHERE (tenant_id, namespace, key) IN ( \
               SELECT tenant_id, namespace, key FROM ext_storage_records \
               WHERE ttl_expires_at <= ?1 ORDER BY ttl_expires_at LIMIT ?2) \
             RETURNING tenant_id, namespace, key",
        )
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let swept = Self::expired_many(&mut tx, swept, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(swept)
    }

    async fn counters(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
    ) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT coalesce((SELECT keys FROM ext_storage_namespaces WHERE tenant_id = ?1 AND namespace = ?2), 0), \
               coalesce((SELECT bytes FROM ext_storage_tenants WHERE tenant_id = ?1), 0)",
        )
        .bind(tenant_text(tenant))
        .bind(namespace.as_str())
        .fetch_one(&self.reader)
        .await
        .map_err(db)
    }

    async fn audit(
        &self,
        tenant: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        type Row = (
            i64,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<i64>,
            String,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, principal, namespace, key, operation, revision, surface, at FROM ext_storage_audit \
             WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .bind(tenant_text(tenant))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(seq, principal, namespace, key, operation, revision, surface, at)| AuditEntry {
                    seq,
                    principal,
                    namespace,
                    key,
                    operation,
                    revision,
                    surface,
                    at: time(at),
                },
            )
            .collect())
    }
}

/// `WHERE` conditions an export's statements share: `?1` the tenant or NULL, `?2` the
/// namespace or NULL (`?3`, where used, is the snapshot's time).
const EXPORT_TENANT: &str = "(?1 IS NULL OR tenant_id = ?1)";
const EXPORT_NAMESPACE: &str = "(?2 IS NULL OR namespace = ?2)";
const ANY_QUOTA: &str =
    "(max_namespaces IS NOT NULL OR max_keys_per_namespace IS NOT NULL OR max_bytes IS NOT NULL)";

use sqlx::Row as _;

/// An export's snapshot: one read transaction (in WAL mode, every read sees the same state),
/// and the time records are judged live at.
struct SqliteExport {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    now: i64,
}

fn uuid_of(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(backend)
}

#[async_trait]
impl ExportTx for SqliteExport {
    async fn counts(&mut self, filter: &ExportFilter) -> Result<Counts, StoreError> {
        let query = format!(
            "SELECT (SELECT count(*) FROM ext_storage_installs WHERE {EXPORT_TENANT}), \
             (SELECT count(*) FROM ext_storage_tenants WHERE {EXPORT_TENANT} AND {ANY_QUOTA}), \
             (SELECT count(*) FROM ext_storage_schemas WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE}), \
             (SELECT count(*) FROM ext_storage_records WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} AND (ttl_expires_at IS NULL OR ttl_expires_at > ?3)), \
             (SELECT count(*) FROM ext_storage_namespaces WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE})"
        );
        let row = sqlx::query(&query)
            .bind(filter.tenant.map(tenant_text))
            .bind(filter.namespace.as_ref().map(Namespace::as_str))
            .bind(self.now)
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
                "SELECT tenant_id, install_id, extension_id, grants, generation, created_at, updated_at \
                 FROM ext_storage_installs WHERE {EXPORT_TENANT} AND ?3 IS NOT NULL ORDER BY tenant_id, install_id"
            ),
            Part::Quotas => format!(
                "SELECT tenant_id, max_namespaces, max_keys_per_namespace, max_bytes FROM ext_storage_tenants \
                 WHERE {EXPORT_TENANT} AND {ANY_QUOTA} AND ?3 IS NOT NULL ORDER BY tenant_id"
            ),
            Part::Schemas => format!(
                "SELECT tenant_id, namespace, version, schema, updated_at FROM ext_storage_schemas \
                 WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} AND ?3 IS NOT NULL ORDER BY tenant_id, namespace"
            ),
            Part::Records => format!(
                "SELECT tenant_id, namespace, key, value, metadata, revision, ttl_expires_at, created_at, updated_at \
                 FROM ext_storage_records WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} \
                 AND (ttl_expires_at IS NULL OR ttl_expires_at > ?3) ORDER BY tenant_id, namespace, key"
            ),
            Part::Namespaces => format!(
                "SELECT tenant_id, namespace, version FROM ext_storage_namespaces \
                 WHERE {EXPORT_TENANT} AND {EXPORT_NAMESPACE} AND ?3 IS NOT NULL ORDER BY tenant_id, namespace"
            ),
        };
        let mut rows = sqlx::query(&query)
            .bind(filter.tenant.map(tenant_text))
            .bind(filter.namespace.as_ref().map(Namespace::as_str))
            .bind(self.now)
            .fetch(&mut *self.tx);
        while let Some(row) = rows.try_next().await.map_err(db)? {
            let get_text = |name: &str| row.try_get::<String, _>(name).map_err(db);
            let tenant = uuid_of(&get_text("tenant_id")?)?;
            let namespace = || Namespace::new(get_text("namespace")?).map_err(backend);
            let at = |name: &str| row.try_get::<i64, _>(name).map(time).map_err(db);
            let line = match part {
                Part::Installs => Line::Install(InstallLine {
                    tenant,
                    install: get_text("install_id")?.parse().map_err(backend)?,
                    extension: get_text("extension_id")?,
                    grants: parse(&get_text("grants")?)?,
                    generation: get_text("generation")?,
                    created_at: at("created_at")?,
                    updated_at: at("updated_at")?,
                }),
                Part::Quotas => Line::Quota(QuotaLine {
                    tenant,
                    max_namespaces: row.try_get("max_namespaces").map_err(db)?,
                    max_keys_per_namespace: row.try_get("max_keys_per_namespace").map_err(db)?,
                    max_bytes: row.try_get("max_bytes").map_err(db)?,
                }),
                Part::Schemas => Line::Schema(SchemaLine {
                    tenant,
                    namespace: namespace()?,
                    version: row.try_get("version").map_err(db)?,
                    schema: row
                        .try_get::<Option<String>, _>("schema")
                        .map_err(db)?
                        .map(|s| parse::<Value>(&s))
                        .transpose()?,
                    updated_at: at("updated_at")?,
                }),
                Part::Records => Line::Record(RecordLine {
                    tenant,
                    namespace: namespace()?,
                    key: Key::new(get_text("key")?).map_err(backend)?,
                    value: parse(&get_text("value")?)?,
                    metadata: parse(&get_text("metadata")?)?,
                    revision: row.try_get("revision").map_err(db)?,
                    ttl_expires_at: row
                        .try_get::<Option<i64>, _>("ttl_expires_at")
                        .map_err(db)?
                        .map(time),
                    created_at: at("created_at")?,
                    updated_at: at("updated_at")?,
                }),
                Part::Namespaces => Line::Namespace(NamespaceLine {
                    tenant,
                    namespace: namespace()?,
                    version: row.try_get("version").map_err(db)?,
                }),
            };
            transfer::send(out, line).await?;
        }
        Ok(())
    }
}

/// An import's write transaction.
struct SqliteImport {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    now: i64,
}

#[async_trait]
impl ImportTx for SqliteImport {
    async fn install(&mut self, line: &InstallLine, overwrite: bool) -> Result<bool, StoreError> {
        let tenant_id = tenant_text(line.tenant);
        let owner = install_owner(&mut self.tx, line.install.as_str()).await?;
        if owner.is_some_and(|owner| owner != tenant_id) {
            return Err(install_of_another_tenant("install"));
        }
        let written = sqlx::query(
            "INSERT INTO ext_storage_installs (tenant_id, install_id, extension_id, grants, created_at, updated_at, generation) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant_id, install_id) DO UPDATE SET \
             extension_id = excluded.extension_id, grants = excluded.grants, created_at = excluded.created_at, \
             updated_at = excluded.updated_at, generation = excluded.generation WHERE ?8 RETURNING 1",
        )
        .bind(&tenant_id)
        .bind(line.install.as_str())
        .bind(&line.extension)
        .bind(json_text(&line.grants))
        .bind(line.created_at.timestamp_micros())
        .bind(line.updated_at.timestamp_micros())
        .bind(&line.generation)
        .bind(overwrite)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(written.is_some())
    }

    async fn quota(&mut self, line: &QuotaLine, overwrite: bool) -> Result<bool, StoreError> {
        let written = sqlx::query(&format!(
            "INSERT INTO ext_storage_tenants (tenant_id, max_namespaces, max_keys_per_namespace, max_bytes, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id) DO UPDATE SET max_namespaces = excluded.max_namespaces, \
               max_keys_per_namespace = excluded.max_keys_per_namespace, max_bytes = excluded.max_bytes, \
               updated_at = excluded.updated_at WHERE ?6 OR NOT {ANY_QUOTA} RETURNING 1"
        ))
        .bind(tenant_text(line.tenant))
        .bind(line.max_namespaces)
        .bind(line.max_keys_per_namespace)
        .bind(line.max_bytes)
        .bind(self.now)
        .bind(overwrite)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(written.is_some())
    }

    async fn schema(&mut self, line: &SchemaLine, overwrite: bool) -> Result<bool, StoreError> {
        let written = sqlx::query(
            "INSERT INTO ext_storage_schemas (tenant_id, namespace, version, schema, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = max(version + 1, excluded.version), \
               schema = excluded.schema, updated_at = excluded.updated_at WHERE ?6 OR schema IS NULL RETURNING 1",
        )
        .bind(tenant_text(line.tenant))
        .bind(line.namespace.as_str())
        .bind(line.version)
        .bind(line.schema.as_ref().map(json_text))
        .bind(line.updated_at.timestamp_micros())
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
        let mut written = Vec::with_capacity(lines.len());
        for r in lines {
            let row = sqlx::query(
                "INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, ttl_expires_at, created_at, updated_at, size) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, \
                   revision = CASE WHEN ttl_expires_at <= ?12 THEN excluded.revision ELSE max(revision + 1, excluded.revision) END, \
                   ttl_expires_at = excluded.ttl_expires_at, created_at = excluded.created_at, \
                   updated_at = excluded.updated_at, size = excluded.size \
                 WHERE ?11 OR ttl_expires_at <= ?12 RETURNING 1",
            )
            .bind(tenant_text(r.tenant))
            .bind(r.namespace.as_str())
            .bind(r.key.as_str())
            .bind(json_text(&r.value))
            .bind(json_text(&r.metadata))
            .bind(r.revision)
            .bind(r.ttl_expires_at.map(|t| t.timestamp_micros()))
            .bind(r.created_at.timestamp_micros())
            .bind(r.updated_at.timestamp_micros())
            .bind(r.size())
            .bind(overwrite)
            .bind(self.now)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(|e| keyed(db(e), r.key.as_str()))?;
            written.push(row.is_some());
        }
        Ok(written)
    }

    async fn bump(
        &mut self,
        tenant: Uuid,
        namespace: &Namespace,
        by: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ext_storage_namespaces (tenant_id, namespace, version, pruned_seq) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = version + excluded.version, \
               pruned_seq = version + excluded.version",
        )
        .bind(tenant_text(tenant))
        .bind(namespace.as_str())
        .bind(by)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn namespace(&mut self, line: &NamespaceLine) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ext_storage_namespaces (tenant_id, namespace, version, pruned_seq) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (tenant_id, namespace) DO UPDATE SET version = max(version, excluded.version), \
               pruned_seq = max(version, excluded.version)",
        )
        .bind(tenant_text(line.tenant))
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
