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

/// A storage backend with the full semantics of the contract.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, as reported in `X-Storage-Backend` and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Succeeds when the database answers.
    async fn ready(&self) -> Result<(), StoreError>;
    /// The principal of an install, or `None` if it is unknown or revoked.
    async fn principal(&self, install: &InstallId) -> Result<Option<Principal>, StoreError>;
    /// `put`.
    async fn put(&self, tenant: Uuid, req: &PutRequest) -> Result<PutResponse, StoreError>;
    /// `get` (the revision guard is checked by the caller).
    async fn get(&self, tenant: Uuid, req: &GetRequest) -> Result<Option<Record>, StoreError>;
    /// One page of `list`, ordered by key, read from one snapshot.
    async fn list(&self, tenant: Uuid, query: &ListQuery) -> Result<Vec<ListItem>, StoreError>;
    /// `delete`.
    async fn delete(&self, tenant: Uuid, req: &DeleteRequest) -> Result<(), StoreError>;
    /// `bulkPut`, all or nothing.
    async fn bulk_put(
        &self,
        tenant: Uuid,
        req: &BulkPutRequest,
    ) -> Result<BulkPutResponse, StoreError>;
    /// The whole live namespace and its ETag (`0` when it is empty).
    async fn snapshot(&self, tenant: Uuid, namespace: &Namespace) -> Result<Snapshot, StoreError>;
    /// Applies `ops` atomically if the namespace's ETag is still `if_match`; otherwise
    /// `PRECONDITION_FAILED` with the current ETag, and nothing is written.
    async fn patch(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
        if_match: u64,
        ops: &[PatchOp],
    ) -> Result<Snapshot, StoreError>;
    /// Registers (or replaces) the JSON Schema of a namespace; returns its new version.
    async fn put_schema(
        &self,
        tenant: Uuid,
        namespace: &Namespace,
        schema: &Value,
    ) -> Result<i64, StoreError>;
    /// Removes the JSON Schema of a namespace; `false` if it had none.
    async fn delete_schema(&self, tenant: Uuid, namespace: &Namespace) -> Result<bool, StoreError>;
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
        install: &InstallId,
        extension_id: &str,
        grants: &[Grant],
    ) -> Result<Upserted, StoreError>;
    /// Removes an install; `false` if it did not exist.
    async fn delete_install(&self, tenant: Uuid, install: &InstallId) -> Result<bool, StoreError>;
}
