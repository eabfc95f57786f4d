//! The Postgres backend (Citus-ready: every statement filters on `tenant_id`).
//!
//! Writes are single statements where one record is involved, so a guard and its write are one
//! atomic step: a guarded `UPDATE … WHERE revision = n` re-checks the row's latest version after
//! waiting for a concurrent writer's lock, so of two writers guarded on the same revision exactly
//! one wins. Each statement also deletes a bounded batch of expired records of its namespace
//! (`FOR UPDATE SKIP LOCKED`, never the key being written), so expiry needs no background job.

use super::{ListQuery, Principal, Store, StoreError, Upserted};
use alga_storage_core::{
    BulkItemError, BulkPutRequest, BulkPutResponse, BulkPutResultItem, DeleteRequest, GetRequest,
    Grant, InstallId, Key, ListItem, Metadata, PutRequest, PutResponse, Record, StorageError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
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
            "AND key IN (SELECT key FROM batch)) "
        )
    };
}

const LIVE: &str = "(ttl_expires_at IS NULL OR ttl_expires_at > now())";

/// Unconditional or create-only (`$7 = 0`) upsert. An expired row counts as absent: it is
/// replaced and starts again at revision 1.
const UPSERT: &str = concat!(
    sweep!("AND key <> $3"),
    "INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, metadata, revision, \
     ttl_expires_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, 1, now() + make_interval(secs => $6), now(), now()) \
     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET \
       value = EXCLUDED.value, metadata = EXCLUDED.metadata, \
       ttl_expires_at = EXCLUDED.ttl_expires_at, updated_at = EXCLUDED.updated_at, \
       revision = CASE WHEN r.ttl_expires_at <= now() THEN 1 ELSE r.revision + 1 END, \
       created_at = CASE WHEN r.ttl_expires_at <= now() THEN EXCLUDED.created_at ELSE r.created_at END \
     WHERE $7::bigint IS NULL OR r.ttl_expires_at <= now() \
     RETURNING revision, ttl_expires_at, created_at, updated_at"
);

/// Update guarded on the current live revision `$7`.
const GUARDED_UPDATE: &str = concat!(
    sweep!("AND key <> $3"),
    "UPDATE ext_storage_records SET value = $4, metadata = $5, \
       ttl_expires_at = now() + make_interval(secs => $6), updated_at = now(), revision = revision + 1 \
     WHERE tenant_id = $1 AND namespace = $2 AND key = $3 AND revision = $7 \
       AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) \
     RETURNING revision, ttl_expires_at, created_at, updated_at"
);

const GET: &str = concat!(
    sweep!(""),
    "SELECT value, metadata, revision, ttl_expires_at, created_at, updated_at \
     FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = $3 \
       AND (ttl_expires_at IS NULL OR ttl_expires_at > now())"
);

/// `$3` lower bound (the prefix, or ''), `$4` exclusive cursor key, `$5` literal prefix,
/// `$6` metadata containment filter, `$7` row count, `$8`/`$9` include value/metadata.
const LIST: &str = concat!(
    sweep!(""),
    "SELECT key, revision, CASE WHEN $8 THEN value END AS value, \
       CASE WHEN $9 THEN metadata END AS metadata, ttl_expires_at, created_at, updated_at \
     FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
       AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) \
       AND key >= $3 AND ($4::text IS NULL OR key > $4) \
       AND ($5::text IS NULL OR starts_with(key, $5)) \
       AND ($6::jsonb IS NULL OR metadata @> $6) \
     ORDER BY key LIMIT $7"
);

const DELETE: &str = concat!(
    sweep!("AND key <> $3"),
    "DELETE FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = $3"
);

const GUARDED_DELETE: &str = concat!(
    sweep!("AND key <> $3"),
    "DELETE FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 AND key = $3 \
       AND revision = $4 AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) RETURNING revision"
);

/// Locks the rows a bulk write touches and reports their live revision (0 when expired).
const BULK_LOCK: &str = concat!(
    sweep!("AND key <> ALL($3)"),
    "SELECT key, CASE WHEN ttl_expires_at IS NULL OR ttl_expires_at > now() THEN revision ELSE 0 END \
       AS revision FROM ext_storage_records \
     WHERE tenant_id = $1 AND namespace = $2 AND key = ANY($3) FOR UPDATE"
);

/// Writes every bulk item; keys in `$7` are create-only and are skipped if a live row appeared
/// since the lock (the caller then reports them and rolls back).
const BULK_UPSERT: &str = "INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, \
       metadata, revision, ttl_expires_at, created_at, updated_at) \
     SELECT $1, $2, u.k, u.v, u.m, 1, now() + make_interval(secs => u.t), now(), now() \
     FROM UNNEST($3::text[], $4::jsonb[], $5::jsonb[], $6::int[]) AS u(k, v, m, t) \
     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET \
       value = EXCLUDED.value, metadata = EXCLUDED.metadata, \
       ttl_expires_at = EXCLUDED.ttl_expires_at, updated_at = EXCLUDED.updated_at, \
       revision = CASE WHEN r.ttl_expires_at <= now() THEN 1 ELSE r.revision + 1 END, \
       created_at = CASE WHEN r.ttl_expires_at <= now() THEN EXCLUDED.created_at ELSE r.created_at END \
     WHERE NOT (r.key = ANY($7)) OR r.ttl_expires_at <= now() \
     RETURNING key, revision, ttl_expires_at, created_at, updated_at";

/// The Postgres store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl PgStore {
    /// Connects (`postgres://…`, options such as `?options=-c search_path=…` honoured) and runs
    /// the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        Ok(PgStore { pool })
    }

    /// The connection pool (for tests and the benchmark).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn live_revision(&self, tenant: Uuid, ns: &str, key: &str) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT revision FROM ext_storage_records WHERE tenant_id = $1 AND namespace = $2 \
             AND key = $3 AND {LIVE}"
        );
        let rev: Option<i64> = sqlx::query_scalar(&sql)
            .bind(tenant)
            .bind(ns)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rev.map_or(0, |r| r as u64))
    }
}

fn ttl_param(ttl: Option<alga_storage_core::TtlSeconds>) -> Option<i32> {
    ttl.map(|t| t.get() as i32)
}

fn metadata_value(metadata: Option<&Metadata>) -> Value {
    Value::Object(metadata.cloned().unwrap_or_default())
}

/// The housekeeping columns every write returns.
#[derive(Clone, Copy)]
struct Written {
    revision: u64,
    ttl_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn written(row: &PgRow) -> Result<Written, StoreError> {
    Ok(Written {
        revision: row.try_get::<i64, _>("revision").map_err(backend)? as u64,
        ttl_expires_at: row.try_get("ttl_expires_at").map_err(backend)?,
        created_at: row.try_get("created_at").map_err(backend)?,
        updated_at: row.try_get("updated_at").map_err(backend)?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ready(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn principal(&self, install: &InstallId) -> Result<Option<Principal>, StoreError> {
        let row =
            sqlx::query("SELECT tenant_id, grants FROM ext_storage_installs WHERE install_id = $1")
                .bind(install.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(|row| {
            let Json(grants): Json<Vec<Grant>> = row.try_get("grants").map_err(backend)?;
            Ok(Principal {
                tenant: row.try_get("tenant_id").map_err(backend)?,
                install: install.clone(),
                grants,
            })
        })
        .transpose()
    }

    async fn put(&self, tenant: Uuid, req: &PutRequest) -> Result<PutResponse, StoreError> {
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
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            let current = self
                .live_revision(tenant, req.namespace.as_str(), req.key.as_str())
                .await?;
            return Err(StorageError::revision_mismatch(current).into());
        };
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

    async fn get(&self, tenant: Uuid, req: &GetRequest) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query(GET)
            .bind(tenant)
            .bind(req.namespace.as_str())
            .bind(req.key.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| {
            let Written {
                revision,
                ttl_expires_at,
                created_at,
                updated_at,
            } = written(&row)?;
            let Json(metadata): Json<Metadata> = row.try_get("metadata").map_err(backend)?;
            Ok(Record {
                namespace: req.namespace.clone(),
                key: req.key.clone(),
                revision,
                value: row.try_get("value").map_err(backend)?,
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
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let Written {
                    revision,
                    ttl_expires_at,
                    created_at,
                    updated_at,
                } = written(row)?;
                let key: String = row.try_get("key").map_err(backend)?;
                let metadata: Option<Json<Metadata>> = row.try_get("metadata").map_err(backend)?;
                Ok(ListItem {
                    namespace: q.namespace.clone(),
                    key: Key::new(key).map_err(|e| backend(StorageError::from(e)))?,
                    revision,
                    value: row.try_get("value").map_err(backend)?,
                    metadata: metadata.map(|Json(m)| m),
                    ttl_expires_at,
                    created_at: Some(created_at),
                    updated_at: Some(updated_at),
                })
            })
            .collect()
    }

    async fn delete(&self, tenant: Uuid, req: &DeleteRequest) -> Result<(), StoreError> {
        let ns = req.namespace.as_str();
        let key = req.key.as_str();
        let Some(guard) = req.if_revision else {
            sqlx::query(DELETE)
                .bind(tenant)
                .bind(ns)
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            return Ok(());
        };
        let deleted = sqlx::query(GUARDED_DELETE)
            .bind(tenant)
            .bind(ns)
            .bind(key)
            .bind(guard.get() as i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        if deleted.is_some() {
            return Ok(());
        }
        match self.live_revision(tenant, ns, key).await? {
            0 => Err(StorageError::not_found().into()),
            current => Err(StorageError::revision_mismatch(current).into()),
        }
    }

    async fn bulk_put(
        &self,
        tenant: Uuid,
        req: &BulkPutRequest,
    ) -> Result<BulkPutResponse, StoreError> {
        let ns = req.namespace.as_str();
        let keys: Vec<&str> = req.items.iter().map(|i| i.key.as_str()).collect();
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let current: HashMap<String, u64> = sqlx::query_as::<_, (String, i64)>(BULK_LOCK)
            .bind(tenant)
            .bind(ns)
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .into_iter()
            .map(|(k, r)| (k, r as u64))
            .collect();
        let revision_of = |key: &str| current.get(key).copied().unwrap_or(0);
        let mismatch = |index: usize, key: &str, current: u64| {
            let e = StorageError::revision_mismatch(current);
            BulkItemError {
                index,
                key: key.to_owned(),
                code: e.code(),
                message: e.message().to_owned(),
                details: e.details().cloned(),
            }
        };
        let failures: Vec<BulkItemError> = req
            .items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let guard = item.if_revision?.get();
                let rev = revision_of(item.key.as_str());
                (guard != rev).then(|| mismatch(i, item.key.as_str(), rev))
            })
            .collect();
        if !failures.is_empty() {
            return Err(StorageError::bulk_partial_failure(failures).into());
        }
        let create_only: Vec<&str> = req
            .items
            .iter()
            .filter(|i| i.if_revision.is_some_and(|r| r.get() == 0))
            .map(|i| i.key.as_str())
            .collect();
        let values: Vec<Json<&Value>> = req.items.iter().map(|i| Json(&i.value)).collect();
        let metadata: Vec<Json<Value>> = req
            .items
            .iter()
            .map(|i| Json(metadata_value(i.metadata.as_ref())))
            .collect();
        let ttls: Vec<Option<i32>> = req.items.iter().map(|i| ttl_param(i.ttl_seconds)).collect();
        let rows = sqlx::query(BULK_UPSERT)
            .bind(tenant)
            .bind(ns)
            .bind(&keys)
            .bind(&values)
            .bind(&metadata)
            .bind(&ttls)
            .bind(&create_only)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let mut by_key = HashMap::with_capacity(rows.len());
        for row in &rows {
            let key: String = row.try_get("key").map_err(backend)?;
            by_key.insert(key, written(row)?);
        }
        if by_key.len() != req.items.len() {
            // A create-only key was created by someone else after the lock: report it.
            drop(tx);
            let mut failures = Vec::new();
            for (i, item) in req.items.iter().enumerate() {
                if !by_key.contains_key(item.key.as_str()) {
                    let rev = self.live_revision(tenant, ns, item.key.as_str()).await?;
                    failures.push(mismatch(i, item.key.as_str(), rev));
                }
            }
            return Err(StorageError::bulk_partial_failure(failures).into());
        }
        tx.commit().await.map_err(backend)?;
        let items = req
            .items
            .iter()
            .map(|item| {
                let Written {
                    revision,
                    ttl_expires_at,
                    created_at,
                    updated_at,
                } = by_key[item.key.as_str()];
                BulkPutResultItem {
                    key: item.key.clone(),
                    revision,
                    ttl_expires_at,
                    created_at: Some(created_at),
                    updated_at: Some(updated_at),
                }
            })
            .collect();
        Ok(BulkPutResponse { items })
    }

    async fn upsert_install(
        &self,
        tenant: Uuid,
        install: &InstallId,
        extension_id: &str,
        grants: &[Grant],
    ) -> Result<Upserted, StoreError> {
        let result = sqlx::query_scalar::<_, bool>(
            "INSERT INTO ext_storage_installs (tenant_id, install_id, extension_id, grants) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, install_id) DO UPDATE SET extension_id = EXCLUDED.extension_id, \
               grants = EXCLUDED.grants, updated_at = now() \
             RETURNING (xmax = 0)",
        )
        .bind(tenant)
        .bind(install.as_str())
        .bind(extension_id)
        .bind(Json(grants))
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(true) => Ok(Upserted::Created),
            Ok(false) => Ok(Upserted::Updated),
            Err(sqlx::Error::Database(e))
                if e.constraint() == Some("ext_storage_installs_install_id") =>
            {
                Err(StorageError::validation(
                    "installId",
                    "this install id belongs to another tenant",
                )
                .into())
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_install(&self, tenant: Uuid, install: &InstallId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM ext_storage_installs WHERE tenant_id = $1 AND install_id = $2",
        )
        .bind(tenant)
        .bind(install.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
