//! The storage layer: one trait, one module per backend. Nothing above this module knows which
//! database serves it.

use alga_storage_core::{
    AtomicRequest, AtomicResponse, BulkPutRequest, BulkPutResponse, DeleteRequest, ErrorCode,
    GetManyRequest, GetManyResponse, GetRequest, Grant, InstallId, Key, ListItem, Metadata,
    Namespace, PatchOp, PutRequest, PutResponse, Record, Snapshot, StorageError,
};
use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

pub mod atomic;
pub(crate) mod bulk;
pub mod direct;
pub mod feed;
pub(crate) mod patch;
pub mod postgres;
pub mod principals;
pub mod sqlite;
pub mod sweeper;
pub mod transfer;

/// Why a store call failed: a contract error for the client, or a backend failure that the
/// client only ever sees as `INTERNAL_ERROR`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An error of the contract (not found, revision mismatch, …).
    #[error(transparent)]
    Contract(#[from] StorageError),
    /// The backend failed; the message is logged, never sent.
    #[error("backend failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached now (refused, lost, shutting down, or no connection
    /// within the pool's acquire timeout): answered `UNAVAILABLE` with `Retry-After`.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The namespace's schema is no longer at the version the value was checked against
    /// ([`Store::put`]): nothing was written; the caller checks the value against the current
    /// schema and tries again (see `Schemas::write`). Never reaches a client.
    #[error("the namespace's schema changed since the value was checked")]
    SchemaMoved,
}

/// `PRECONDITION_FAILED` naming the current ETag (details: `currentEtag`, quoted as in the header).
pub fn precondition_failed(current: u64) -> StorageError {
    StorageError::new(
        alga_storage_core::ErrorCode::PreconditionFailed,
        format!("the namespace has changed; its current ETag is \"{current}\""),
    )
    .with_details(serde_json::json!({ "currentEtag": format!("\"{current}\"") }))
}

/// `VALIDATION_FAILED` on `field`: the install id is another tenant's (install ids are unique
/// across tenants), for an upsert and an import alike.
pub(crate) fn install_of_another_tenant(field: &str) -> StoreError {
    StorageError::validation(field, "this install id belongs to another tenant").into()
}

/// The housekeeping fields of a written record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// Its new revision.
    pub revision: u64,
    /// When it expires.
    pub ttl_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was written.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The rule of a guarded write: `ifRevision` holds when it equals the record's live revision
/// (`0` when there is none: the write creates it); else the write is refused, naming the live
/// revision (`REVISION_MISMATCH`).
pub(crate) fn guard_holds(
    guard: Option<alga_storage_core::Revision>,
    live_revision: u64,
) -> Result<(), u64> {
    match guard {
        Some(g) if g.get() != live_revision => Err(live_revision),
        _ => Ok(()),
    }
}

/// The revision and creation time a write gives a record: a live one goes on from its row
/// (`live`: its revision and creation time), an absent or expired one starts again at revision
/// 1, created `now`.
pub(crate) fn next_revision<R, T>(live: Option<(R, T)>, now: T) -> (R, T)
where
    R: From<u8> + std::ops::Add<Output = R>,
{
    live.map_or((R::from(1), now), |(revision, created)| {
        (revision + R::from(1), created)
    })
}

/// How far writing or deleting one stored row advances its namespace's version: 1, and 1 more
/// when the row had expired (its expiry, never swept, becomes a change of its own).
pub(crate) fn changes_of(row_had_expired: bool) -> i64 {
    1 + i64::from(row_had_expired)
}

/// The rule of a delete: without a guard it always succeeds (deleting nothing is fine); with
/// `ifRevision` it deletes only a live record at that revision, and is refused with
/// `NOT_FOUND` when there is no live record, else `REVISION_MISMATCH` naming its revision.
pub(crate) fn delete_allowed(
    guard: Option<alga_storage_core::Revision>,
    live_revision: u64,
) -> Result<(), StorageError> {
    match guard {
        Some(_) if live_revision == 0 => Err(StorageError::not_found()),
        _ => guard_holds(guard, live_revision).map_err(StorageError::revision_mismatch),
    }
}

/// Wraps a backend failure.
pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Prefix of the error the usage triggers raise when a write would cross a quota:
/// `ALGA_QUOTA <quota> [<key>]`.
const QUOTA_SIGNAL: &str = "ALGA_QUOTA ";

/// Wraps a database failure; the usage triggers' quota signal becomes `QUOTA_EXCEEDED` naming
/// the quota (and, where the database knows it, the key), to be completed by [`Store::quota_error`].
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if unreachable(&e) {
        return StoreError::Unavailable(Box::new(e));
    }
    if let sqlx::Error::Database(d) = &e {
        if let Some(rest) = d.message().strip_prefix(QUOTA_SIGNAL) {
            let (quota, key) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(quota) = QuotaKind::parse(quota) {
                return quota_hit(quota, (!key.is_empty()).then_some(key)).into();
            }
        }
    }
    backend(e)
}

/// Whether a database error means "cannot serve now" rather than "this request failed": no
/// connection in time, a connection refused or lost, Postgres shutting down or starting up
/// (SQLSTATE classes 08 and 57P), or the SQLite file locked by another process past the busy
/// timeout, or failing to be opened or written (primary result codes BUSY, LOCKED, IOERR, FULL,
/// CANTOPEN).
pub(crate) fn unreachable(e: &sqlx::Error) -> bool {
    const SQLITE_UNAVAILABLE: [i64; 5] = [5, 6, 10, 13, 14];
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => match d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
            // SQLite reports extended result codes; the primary one is the low byte.
            Some(_) => d
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .is_some_and(|c| SQLITE_UNAVAILABLE.contains(&(c & 0xff))),
            None => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        },
        _ => false,
    }
}

/// The answer of a `getMany`: the records found, by key, in the order the request named them
/// (`None` where none was found).
pub(crate) fn in_request_order(
    keys: &[Key],
    mut found: std::collections::HashMap<String, Record>,
) -> GetManyResponse {
    GetManyResponse {
        items: keys.iter().map(|k| found.remove(k.as_str())).collect(),
    }
}

/// A quota the server enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// Namespaces one principal may be granted (checked when an install is written).
    NamespacesPerPrincipal,
    /// Records (live or expired but not yet removed) in one namespace.
    KeysPerNamespace,
    /// Stored bytes of one tenant: key, value and metadata of each record.
    Bytes,
}

impl QuotaKind {
    /// The name used in error details, metrics and the quota API.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::NamespacesPerPrincipal => "namespacesPerPrincipal",
            QuotaKind::KeysPerNamespace => "keysPerNamespace",
            QuotaKind::Bytes => "bytes",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            QuotaKind::NamespacesPerPrincipal,
            QuotaKind::KeysPerNamespace,
            QuotaKind::Bytes,
        ]
        .into_iter()
        .find(|q| q.as_str() == text)
    }
}

/// A first, incomplete `QUOTA_EXCEEDED` (details `quota` and maybe `key`).
fn quota_hit(quota: QuotaKind, key: Option<&str>) -> StorageError {
    let mut details = serde_json::json!({ "quota": quota.as_str() });
    if let Some(key) = key {
        details["key"] = key.into();
    }
    StorageError::new(ErrorCode::QuotaExceeded, "quota exceeded").with_details(details)
}

/// A first `QUOTA_EXCEEDED` that does not yet name its key gets `key`.
pub(crate) fn keyed(error: StoreError, key: &str) -> StoreError {
    match quota_of(&error) {
        Some((quota, None)) => quota_hit(quota, Some(key)).into(),
        _ => error,
    }
}

/// The quota a `QUOTA_EXCEEDED` names, and the key if it names one.
pub fn quota_of(error: &StoreError) -> Option<(QuotaKind, Option<String>)> {
    let StoreError::Contract(e) = error else {
        return None;
    };
    if e.code() != ErrorCode::QuotaExceeded {
        return None;
    }
    let details = e.details()?;
    let quota = QuotaKind::parse(details.get("quota")?.as_str()?)?;
    let key = details
        .get("key")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((quota, key))
}

/// Records the stored size of, as the quotas count it: UTF-8 bytes of the key plus the compact
/// JSON of value and metadata (`{}` when absent).
pub fn record_size(key: &str, value: &Value, metadata: Option<&Metadata>) -> i64 {
    let metadata = metadata.map_or(2, alga_storage_core::json_size);
    (key.len() + alga_storage_core::json_size(value) + metadata) as i64
}

/// Limits, each `None` when there is none (as defaults and effective values) or when the
/// default applies (as a tenant's overrides).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    /// Namespaces one principal may be granted (at most 32 in any case).
    #[serde(default, deserialize_with = "alga_storage_core::optional_whole_number")]
    pub max_namespaces: Option<i64>,
    /// Records in one namespace.
    #[serde(default, deserialize_with = "alga_storage_core::optional_whole_number")]
    pub max_keys_per_namespace: Option<i64>,
    /// Stored bytes of the tenant.
    #[serde(default, deserialize_with = "alga_storage_core::optional_whole_number")]
    pub max_bytes: Option<i64>,
}

/// One row of `overrides LEFT JOIN defaults`: three override columns, then three defaults.
pub(crate) type QuotaRow = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

impl Quotas {
    /// The overrides and the defaults of a [`QuotaRow`] (none at all without a row).
    pub(crate) fn from_row(row: Option<QuotaRow>) -> (Quotas, Quotas) {
        let (a, b, c, d, e, f) = row.unwrap_or_default();
        let quotas = |max_namespaces, max_keys_per_namespace, max_bytes| Quotas {
            max_namespaces,
            max_keys_per_namespace,
            max_bytes,
        };
        (quotas(a, b, c), quotas(d, e, f))
    }

    /// These overrides over `defaults`.
    pub fn over(self, defaults: Quotas) -> Quotas {
        Quotas {
            max_namespaces: self.max_namespaces.or(defaults.max_namespaces),
            max_keys_per_namespace: self
                .max_keys_per_namespace
                .or(defaults.max_keys_per_namespace),
            max_bytes: self.max_bytes.or(defaults.max_bytes),
        }
    }

    /// The limit of one quota.
    pub fn limit(self, quota: QuotaKind) -> Option<i64> {
        match quota {
            QuotaKind::NamespacesPerPrincipal => self.max_namespaces,
            QuotaKind::KeysPerNamespace => self.max_keys_per_namespace,
            QuotaKind::Bytes => self.max_bytes,
        }
    }
}

/// Usage of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceUsage {
    /// The namespace.
    pub namespace: String,
    /// Records stored.
    pub keys: i64,
    /// Bytes stored.
    pub bytes: i64,
}

/// A tenant's usage and quotas, read from counters (no scan of any namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Bytes stored by the tenant.
    pub bytes: i64,
    /// Namespaces holding at least one record, by name.
    pub namespaces: Vec<NamespaceUsage>,
    /// The tenant's overrides.
    pub overrides: Quotas,
    /// The server's defaults.
    pub defaults: Quotas,
}

/// Runs a write; when it crosses a quota, removes the expired records that still count
/// against it (of the namespace, or of the tenant for bytes) and, if there were any, runs it
/// once more. A write still refused gets the complete `QUOTA_EXCEEDED`.
pub(crate) async fn quota_retry<S, T, F, Fut>(
    store: &S,
    tenant: Uuid,
    namespace: &Namespace,
    mut attempt: F,
) -> Result<T, StoreError>
where
    S: Store + ?Sized,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut purged = false;
    loop {
        let error = match attempt().await {
            Err(e) => e,
            ok => return ok,
        };
        let Some((quota, key)) = quota_of(&error) else {
            return Err(error);
        };
        if !purged {
            purged = true;
            let scope = (quota == QuotaKind::KeysPerNamespace).then_some(namespace);
            if store.purge_expired(tenant, scope).await? > 0 {
                continue;
            }
        }
        return Err(store
            .quota_error(tenant, namespace, quota, key.as_deref())
            .await?
            .into());
    }
}

/// A bulk write refused by a quota: `BULK_PARTIAL_FAILURE` naming the item whose write
/// crossed it (its error is the complete `QUOTA_EXCEEDED`).
pub(crate) fn bulk_quota(error: StoreError, req: &BulkPutRequest) -> StoreError {
    match &error {
        StoreError::Contract(e)
            if e.code() == ErrorCode::QuotaExceeded && !req.items.is_empty() =>
        {
            let key = e
                .details()
                .and_then(|d| d.get("key"))
                .and_then(Value::as_str);
            let index = key
                .and_then(|k| req.items.iter().position(|i| i.key.as_str() == k))
                .unwrap_or(0);
            let item =
                alga_storage_core::BulkItemError::new(index, req.items[index].key.as_str(), e);
            StorageError::bulk_partial_failure(vec![item]).into()
        }
        _ => error,
    }
}

/// The complete `QUOTA_EXCEEDED`: details `quota`, `limit`, `current` (and `namespace` for keys,
/// `key` when known).
pub fn quota_exceeded(
    quota: QuotaKind,
    limit: Option<i64>,
    current: i64,
    namespace: Option<&str>,
    key: Option<&str>,
) -> StorageError {
    let limit_text = limit.map_or("none".to_owned(), |l| l.to_string());
    let message = match quota {
        QuotaKind::NamespacesPerPrincipal => {
            format!("an install may be granted at most {limit_text} namespaces")
        }
        QuotaKind::KeysPerNamespace => format!(
            "the namespace holds {current} records and its quota is {limit_text}"
        ),
        QuotaKind::Bytes => format!(
            "the tenant stores {current} bytes and its quota is {limit_text}; the write would exceed it"
        ),
    };
    let mut details = serde_json::json!({
        "quota": quota.as_str(),
        "limit": limit,
        "current": current,
    });
    if let Some(ns) = namespace.filter(|_| quota == QuotaKind::KeysPerNamespace) {
        details["namespace"] = ns.into();
    }
    if let Some(key) = key {
        details["key"] = key.into();
    }
    StorageError::new(ErrorCode::QuotaExceeded, message).with_details(details)
}

/// A caller: an extension install of one tenant and its grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The tenant the install belongs to.
    pub tenant: Uuid,
    /// The install id.
    pub install: InstallId,
    /// Its grants.
    pub grants: Vec<Grant>,
    /// New whenever the install is created (kept when it is updated): browser tokens carry it,
    /// so a token outlives neither a deletion nor a re-provisioning under the same id.
    pub generation: String,
}

/// One page request of `list`, already decoded from the cursor.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Namespace to list.
    pub namespace: Namespace,
    /// Literal key prefix.
    pub key_prefix: Option<String>,
    /// Start strictly after this key (from the cursor).
    pub after: Option<Key>,
    /// Metadata containment filter.
    pub metadata: Option<Metadata>,
    /// Rows to fetch (the page size plus one, to learn whether another page follows).
    pub fetch: i64,
    /// Return values.
    pub include_values: bool,
    /// Return metadata.
    pub include_metadata: bool,
}

/// The version of a namespace's schema (the row's, which every registration and removal
/// advances and nothing moves back): 0 when the namespace never had one.
pub type SchemaVersion = i64;

/// The answer to a schema lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaLookup {
    /// The namespace has no schema (never had one: version 0, or it was removed at this version).
    None(SchemaVersion),
    /// The schema is still at the version the caller knows.
    Unchanged,
    /// The current schema and its version.
    Current(SchemaVersion, Value),
}

impl SchemaLookup {
    /// The answer from a backend's row `(version, schema unless the version is the one known,
    /// whether the schema was removed)`, if the namespace has a schema row.
    pub(crate) fn from_row(row: Option<(SchemaVersion, Option<Value>, bool)>) -> Self {
        match row {
            None => SchemaLookup::None(0),
            Some((version, _, true)) => SchemaLookup::None(version),
            Some((_, None, false)) => SchemaLookup::Unchanged,
            Some((version, Some(schema), false)) => SchemaLookup::Current(version, schema),
        }
    }
}

/// What an admin upsert of an install did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The install was new.
    Created,
    /// The install existed and was replaced.
    Updated,
}

/// Who makes a change, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    /// The install id, or `admin` for the admin API.
    pub principal: &'a str,
    /// `rest`, `runner`, `snapshot` or `admin`.
    pub surface: &'static str,
}

impl Actor<'static> {
    /// The server itself, removing expired records (their change rows say `expire`).
    pub const SWEEPER: Actor<'static> = Actor {
        principal: "system",
        surface: "sweeper",
    };

    /// The host application, through the admin API.
    pub const ADMIN: Actor<'static> = Actor {
        principal: "admin",
        surface: "admin",
    };
}

/// One row of the audit log: a mutation that succeeded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Position in the tenant's log (increasing).
    pub seq: i64,
    /// The install id, or `admin`.
    pub principal: String,
    /// The namespace, if the change was to one.
    pub namespace: Option<String>,
    /// The record key (or, for install changes, the install id).
    pub key: Option<String>,
    /// `put`, `delete`, `bulkPut`, `set`, `del`, `increment`, `expire` (a record removed after
    /// its TTL), `install.put`, `install.delete`, `schema.put`, `schema.delete`.
    pub operation: String,
    /// The new revision (schema version for schema changes), if any.
    pub revision: Option<i64>,
    /// `rest`, `runner`, `snapshot`, `admin` or `sweeper`.
    pub surface: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What a change-log read asks for.
#[derive(Debug, Clone, Copy)]
pub struct ChangesQuery<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The last sequence number seen.
    pub after: u64,
    /// The most changes returned.
    pub limit: u8,
    /// Only keys starting with this literal prefix.
    pub key_prefix: Option<&'a str>,
    /// With the value of each put whose record still has that revision.
    pub values: bool,
}

/// How long the change log keeps a change: while it is younger than `seconds` or among the
/// last `changes` of its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `STORAGE_CHANGE_RETENTION_SECONDS` (default 86,400).
    pub seconds: u32,
    /// `STORAGE_CHANGE_RETENTION_CHANGES` (default 10,000).
    pub changes: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            seconds: 24 * 3600,
            changes: 10_000,
        }
    }
}

/// One row of the change log as a backend reads it: sequence number, key, audited operation,
/// revision, and the value when asked for and still current.
pub(crate) type ChangeRow = (i64, String, String, Option<i64>, Option<Value>);

/// A page of the change log from the rows a backend read after `after` (see
/// [`alga_storage_core::LogBounds::page`]); the audited operation names map to the feed's
/// `put`/`delete` here, once for every backend.
pub(crate) fn change_page(
    bounds: alga_storage_core::LogBounds,
    query: &ChangesQuery<'_>,
    rows: Vec<ChangeRow>,
) -> Result<alga_storage_core::ChangesResponse, StoreError> {
    use alga_storage_core::{Change, ChangeOp};
    let changes = rows
        .into_iter()
        .map(|(seq, key, operation, revision, value)| {
            let (op, expired) = match operation.as_str() {
                "expire" => (ChangeOp::Delete, true),
                "delete" | "del" => (ChangeOp::Delete, false),
                _ => (ChangeOp::Put, false),
            };
            Ok(Change {
                seq: seq as u64,
                key: Key::new(key).map_err(backend)?,
                op,
                revision: revision.map(|r| r as u64),
                expired,
                value,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(bounds.page(query.after, usize::from(query.limit), changes))
}

/// A storage backend with the full semantics of the contract. Every mutation takes the
/// [`Actor`] making it and writes its audit row in the same transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, as reported in `X-Storage-Backend` and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Succeeds when the database answers.
    async fn ready(&self) -> Result<(), StoreError>;
    /// The principal of an install, or `None` if it is unknown or revoked (uncached: requests
    /// are admitted through a [`principals::PrincipalCache`]).
    async fn principal(&self, install: &InstallId) -> Result<Option<Principal>, StoreError>;
    /// Keeps `cache` in step with the install changes other server instances make (the
    /// embedded store serves one process, so it has nothing to do). Stops once the cache is
    /// dropped.
    fn watch_principals(&self, cache: std::sync::Weak<principals::PrincipalCache>) {
        let _ = cache;
    }
    /// One attempt at `put`; a write that would cross a quota fails with the database's first
    /// `QUOTA_EXCEEDED` (see [`Store::put`]).
    async fn put_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &PutRequest,
        schema: SchemaVersion,
    ) -> Result<PutResponse, StoreError>;
    /// `put`: [`Store::put_once`] under the quota retry. The value was checked against the
    /// namespace's schema at version `schema`; the write checks, in its own statement or
    /// transaction, that the schema is still at that version, and writes nothing otherwise
    /// ([`StoreError::SchemaMoved`]): one statement per put, and no window between the check
    /// and the write.
    async fn put(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &PutRequest,
        schema: SchemaVersion,
    ) -> Result<PutResponse, StoreError> {
        quota_retry(self, tenant, &req.namespace, || {
            self.put_once(tenant, actor, req, schema)
        })
        .await
    }
    /// `get` (the revision guard is checked by the caller).
    async fn get(&self, tenant: Uuid, req: &GetRequest) -> Result<Option<Record>, StoreError>;
    /// One page of `list`, ordered by key, read from one snapshot.
    async fn list(&self, tenant: Uuid, query: &ListQuery) -> Result<Vec<ListItem>, StoreError>;
    /// `delete`.
    async fn delete(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &DeleteRequest,
    ) -> Result<(), StoreError>;
    /// One attempt at `bulkPut`, all or nothing.
    async fn bulk_put_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &BulkPutRequest,
    ) -> Result<BulkPutResponse, StoreError>;
    /// `bulkPut`: [`Store::bulk_put_once`] under the quota retry; a quota names its item.
    async fn bulk_put(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &BulkPutRequest,
    ) -> Result<BulkPutResponse, StoreError> {
        quota_retry(self, tenant, &req.namespace, || {
            self.bulk_put_once(tenant, actor, req)
        })
        .await
        .map_err(|e| bulk_quota(e, req))
    }
    /// `getMany`: the live records of the keys, in request order, read by one statement.
    async fn get_many(
        &self,
        tenant: Uuid,
        req: &GetManyRequest,
    ) -> Result<GetManyResponse, StoreError>;
    /// One attempt at `atomic` (the rule of `store::atomic` on a backend transaction).
    async fn atomic_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &AtomicRequest,
        accept: atomic::Accept<'_>,
    ) -> Result<AtomicResponse, StoreError>;
    /// `atomic`: [`Store::atomic_once`] under the quota retry.
    async fn atomic(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &AtomicRequest,
        accept: atomic::Accept<'_>,
    ) -> Result<AtomicResponse, StoreError> {
        quota_retry(self, tenant, &req.namespace, || {
            self.atomic_once(tenant, actor, req, accept)
        })
        .await
    }
    /// The whole live namespace and its ETag (`0` when it is empty).
    async fn snapshot(&self, tenant: Uuid, namespace: &Namespace) -> Result<Snapshot, StoreError>;
    /// One attempt at a snapshot patch: applies `ops` atomically (deletions first) if the
    /// namespace's ETag is still `if_match`; otherwise `PRECONDITION_FAILED` with the current
    /// ETag, and nothing is written.
    async fn patch_once(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
        if_match: u64,
        ops: &[PatchOp],
    ) -> Result<Snapshot, StoreError>;
    /// A snapshot patch: [`Store::patch_once`] under the quota retry.
    async fn patch(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
        if_match: u64,
        ops: &[PatchOp],
    ) -> Result<Snapshot, StoreError> {
        quota_retry(self, tenant, namespace, || {
            self.patch_once(tenant, actor, namespace, if_match, ops)
        })
        .await
    }
    /// Registers (or replaces) the JSON Schema of a namespace; returns its new version.
    async fn put_schema(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
        schema: &Value,
    ) -> Result<i64, StoreError>;
    /// Removes the JSON Schema of a namespace; `false` if it had none.
    async fn delete_schema(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
    ) -> Result<bool, StoreError>;
    /// The namespace's schema, unless its version is `known` (then `Unchanged`, or `None` with
    /// that version when it has none).
    async fn schema(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
        known: Option<i64>,
    ) -> Result<SchemaLookup, StoreError>;
    /// Creates or replaces an install and its grants.
    async fn upsert_install(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        install: &InstallId,
        extension_id: &str,
        grants: &[Grant],
    ) -> Result<Upserted, StoreError>;
    /// Removes an install; `false` if it did not exist.
    async fn delete_install(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        install: &InstallId,
    ) -> Result<bool, StoreError>;
    /// Writes the server's default quotas (from its configuration).
    async fn set_quota_defaults(&self, defaults: &Quotas) -> Result<(), StoreError>;
    /// Replaces a tenant's quota overrides.
    async fn put_quotas(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        overrides: &Quotas,
    ) -> Result<(), StoreError>;
    /// A tenant's overrides and the defaults.
    async fn quotas(&self, tenant: Uuid) -> Result<(Quotas, Quotas), StoreError>;
    /// The tenant's stored bytes and the namespaces holding records, from the counters.
    async fn usage_counters(&self, tenant: Uuid) -> Result<(i64, Vec<NamespaceUsage>), StoreError>;
    /// A tenant's usage: expired records are removed first (through the TTL index), then the
    /// counters are read.
    async fn usage(&self, tenant: Uuid) -> Result<Usage, StoreError> {
        self.purge_expired(tenant, None).await?;
        let (bytes, namespaces) = self.usage_counters(tenant).await?;
        let (overrides, defaults) = self.quotas(tenant).await?;
        Ok(Usage {
            bytes,
            namespaces,
            overrides,
            defaults,
        })
    }
    /// Removes the expired records of a namespace (or of every namespace of the tenant),
    /// advancing the namespace versions; returns how many.
    async fn purge_expired(
        &self,
        tenant: Uuid,
        namespace: Option<&Namespace>,
    ) -> Result<u64, StoreError>;
    /// Removes up to `batch` expired records of any tenant and namespace, oldest expiry first,
    /// advancing each namespace version by what it removed and writing their change rows;
    /// returns the tenant and namespace of each record removed. The background sweeper calls
    /// it; reads never remove anything.
    async fn sweep_expired(&self, batch: u32) -> Result<Vec<(Uuid, String)>, StoreError>;
    /// The change feed of this store's instance.
    fn feed(&self) -> &std::sync::Arc<feed::Feed>;
    /// One page of a namespace's change log after `query.after` (see
    /// [`alga_storage_core::LogBounds::page`]): one plain read.
    async fn changes(
        &self,
        tenant: Uuid,
        query: &ChangesQuery<'_>,
    ) -> Result<alga_storage_core::ChangesResponse, StoreError>;
    /// Removes up to `batch` changes older than the retention (both older than
    /// `retention.seconds` and behind their namespace's last `retention.changes`), oldest
    /// first, marking each namespace's log as pruned that far; returns how many.
    async fn prune_changes(&self, retention: &Retention, batch: u32) -> Result<u64, StoreError>;

    /// Records in `namespace` and bytes of the tenant, as counted (no scan).
    async fn counters(&self, tenant: Uuid, namespace: &Namespace)
        -> Result<(i64, i64), StoreError>;
    /// The complete `QUOTA_EXCEEDED` for a write to `namespace` that crossed `quota`.
    async fn quota_error(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
        quota: QuotaKind,
        key: Option<&str>,
    ) -> Result<StorageError, StoreError> {
        let (overrides, defaults) = self.quotas(tenant).await?;
        let (keys, bytes) = self.counters(tenant, namespace).await?;
        let current = if quota == QuotaKind::Bytes {
            bytes
        } else {
            keys
        };
        Ok(quota_exceeded(
            quota,
            overrides.over(defaults).limit(quota),
            current,
            Some(namespace.as_str()),
            key,
        ))
    }

    /// A read snapshot for an export (one read transaction).
    async fn export_snapshot(&self) -> Result<Box<dyn transfer::ExportTx + '_>, StoreError>;

    /// A write transaction for an import.
    async fn import_tx(&self) -> Result<Box<dyn transfer::ImportTx + '_>, StoreError>;

    /// The tenant's audit log after `after`, oldest first, at most `limit` rows.
    async fn audit(
        &self,
        tenant: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

#[cfg(test)]
mod rule_tests {
    use super::*;
    use alga_storage_core::Revision;

    fn rev(n: u64) -> Option<Revision> {
        Some(Revision::new(n as i64).unwrap())
    }

    #[test]
    fn a_write_goes_on_from_a_live_record_and_starts_again_otherwise() {
        assert_eq!(next_revision::<u64, i64>(None, 50), (1, 50));
        assert_eq!(next_revision(Some((3_u64, 20_i64)), 50), (4, 20));
        assert_eq!(next_revision(Some((9_i64, 20_i64)), 50), (10, 20));
        // An expired row counts twice: its expiry, then the write or delete.
        assert_eq!((changes_of(false), changes_of(true)), (1, 2));
    }

    #[test]
    fn a_guard_holds_only_at_the_live_revision() {
        assert_eq!(guard_holds(None, 3), Ok(()));
        assert_eq!(guard_holds(rev(3), 3), Ok(()));
        assert_eq!(guard_holds(rev(0), 0), Ok(()));
        assert_eq!(guard_holds(rev(2), 3), Err(3));
        assert_eq!(guard_holds(rev(0), 3), Err(3));
    }

    #[test]
    fn a_guarded_delete_of_nothing_is_not_found_else_a_mismatch() {
        assert!(delete_allowed(None, 0).is_ok());
        assert!(delete_allowed(rev(3), 3).is_ok());
        assert_eq!(
            delete_allowed(rev(1), 0).unwrap_err().code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            delete_allowed(rev(0), 0).unwrap_err().code(),
            ErrorCode::NotFound
        );
        let e = delete_allowed(rev(1), 4).unwrap_err();
        assert_eq!(e.code(), ErrorCode::RevisionMismatch);
        assert_eq!(e.details().unwrap()["currentRevision"], 4);
    }
}
