//! The storage layer: one trait, one module per backend. Nothing above this module knows which
//! database serves it.

use alga_storage_core::{
    BulkPutRequest, BulkPutResponse, DeleteRequest, GetRequest, Grant, InstallId, Key, ListItem,
    Metadata, Namespace, PatchOp, PutRequest, PutResponse, Record, Snapshot, StorageError,
};
use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

pub mod postgres;
pub mod sqlite;

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
}

/// `PRECONDITION_FAILED` naming the current ETag (details: `currentEtag`, quoted as in the header).
pub fn precondition_failed(current: u64) -> StorageError {
    StorageError::new(
        alga_storage_core::ErrorCode::PreconditionFailed,
        format!("the namespace has changed; its current ETag is \"{current}\""),
    )
    .with_details(serde_json::json!({ "currentEtag": format!("\"{current}\"") }))
}

/// Wraps a backend failure.
pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
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

/// The answer to a schema lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaLookup {
    /// The namespace has no schema.
    None,
    /// The schema is still at the version the caller knows.
    Unchanged,
    /// The current schema and its version.
    Current(i64, Value),
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
    /// `put`, `delete`, `bulkPut`, `set`, `del`, `install.put`, `install.delete`, `schema.put`,
    /// `schema.delete`.
    pub operation: String,
    /// The new revision (schema version for schema changes), if any.
    pub revision: Option<i64>,
    /// `rest`, `runner`, `snapshot` or `admin`.
    pub surface: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A storage backend with the full semantics of the contract. Every mutation takes the
/// [`Actor`] making it and writes its audit row in the same transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, as reported in `X-Storage-Backend` and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Succeeds when the database answers.
    async fn ready(&self) -> Result<(), StoreError>;
    /// The principal of an install, or `None` if it is unknown or revoked.
    async fn principal(&self, install: &InstallId) -> Result<Option<Principal>, StoreError>;
    /// `put`.
    async fn put(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &PutRequest,
    ) -> Result<PutResponse, StoreError>;
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
    /// `bulkPut`, all or nothing.
    async fn bulk_put(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        req: &BulkPutRequest,
    ) -> Result<BulkPutResponse, StoreError>;
    /// The whole live namespace and its ETag (`0` when it is empty).
    async fn snapshot(&self, tenant: Uuid, namespace: &Namespace) -> Result<Snapshot, StoreError>;
    /// Applies `ops` atomically if the namespace's ETag is still `if_match`; otherwise
    /// `PRECONDITION_FAILED` with the current ETag, and nothing is written.
    async fn patch(
        &self,
        tenant: Uuid,
        actor: Actor<'_>,
        namespace: &Namespace,
        if_match: u64,
        ops: &[PatchOp],
    ) -> Result<Snapshot, StoreError>;
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
    /// The namespace's schema, unless its version is `known` (then `Unchanged`).
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
    /// The tenant's audit log after `after`, oldest first, at most `limit` rows.
    async fn audit(
        &self,
        tenant: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
