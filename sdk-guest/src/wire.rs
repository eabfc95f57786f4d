//! Crossing the boundary: `sdk-core` requests to WIT records, WIT answers back to `sdk-core`
//! types, and WIT errors to [`StorageError`].

use crate::bindings::alga::storage::storage as wit;
use crate::Result;
use alga_storage_core::{
    AtomicOperation, AtomicRequest, AtomicResponse, AtomicResult, BulkPutRequest, BulkPutResponse,
    BulkPutResultItem, Change, ChangeOp, ChangesRequest, ChangesResponse, Cursor, DeleteRequest,
    ErrorCode, ErrorKind, GetManyRequest, GetManyResponse, GetRequest, Key, ListItem, ListRequest,
    ListResponse, Metadata, Namespace as CoreNamespace, PutRequest, PutResponse, Record,
    StorageError, StorageRequest,
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Sends any validated request and answers the server's JSON body for it (`null` for a
/// delete). Used by generic handlers; the typed API calls the functions below directly.
pub fn execute(request: StorageRequest) -> Result<Value> {
    fn json<T: serde::Serialize>(v: T) -> Result<Value> {
        serde_json::to_value(v).map_err(|e| malformed(&e.to_string()))
    }
    match request {
        StorageRequest::Put(r) => json(put(r)?),
        StorageRequest::Get(r) => json(get::<Value>(r)?),
        StorageRequest::List(r) => json(list::<Value>(r)?),
        StorageRequest::Delete(r) => delete(r).map(|()| Value::Null),
        StorageRequest::BulkPut(r) => json(bulk_put(r)?),
        StorageRequest::GetMany(r) => json(get_many::<Value>(r)?),
        StorageRequest::Atomic(r) => json(atomic(r)?),
        StorageRequest::Changes(r) => json(changes(r)?),
    }
}

pub(crate) fn changes(r: ChangesRequest) -> Result<ChangesResponse> {
    let request = wit::ChangesRequest {
        namespace: r.namespace.into(),
        after: r.after.get(),
        limit: r.limit.map(|l| u32::from(l.get())),
        key_prefix: r.key_prefix,
    };
    let a = wit::changes(&request).map_err(error)?;
    let changes = a
        .changes
        .into_iter()
        .map(|c| {
            Ok(Change {
                seq: c.seq,
                key: key(c.key)?,
                op: match c.op {
                    wit::ChangeOp::Put => ChangeOp::Put,
                    wit::ChangeOp::Delete => ChangeOp::Delete,
                },
                revision: c.revision,
                expired: c.expired,
                value: None,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ChangesResponse {
        changes,
        next_after: a.next_after,
        reset: a.reset,
    })
}

pub(crate) fn put(r: PutRequest) -> Result<PutResponse> {
    let request = wit::PutRequest {
        namespace: r.namespace.into(),
        key: r.key.into(),
        value: r.value.to_string(),
        metadata: r.metadata.map(|m| Value::Object(m).to_string()),
        ttl_seconds: r.ttl_seconds.map(u32::from),
        if_revision: r.if_revision.map(u64::from),
    };
    let a = wit::put(&request).map_err(error)?;
    Ok(PutResponse {
        namespace: namespace(a.namespace)?,
        key: key(a.key)?,
        revision: a.revision,
        ttl_expires_at: a.ttl_expires_at.map(time).transpose()?,
        created_at: time(a.created_at)?,
        updated_at: time(a.updated_at)?,
    })
}

/// A stored record from the host, its value as `T`.
fn stored<T: DeserializeOwned>(a: wit::StoredRecord) -> Result<Record<T>> {
    Ok(Record {
        namespace: namespace(a.namespace)?,
        key: key(a.key)?,
        revision: a.revision,
        value: value(&a.value)?,
        metadata: metadata(&a.metadata)?,
        ttl_expires_at: a.ttl_expires_at.map(time).transpose()?,
        created_at: time(a.created_at)?,
        updated_at: time(a.updated_at)?,
    })
}

pub(crate) fn get_many<T: DeserializeOwned>(r: GetManyRequest) -> Result<GetManyResponse<T>> {
    let request = wit::GetManyRequest {
        namespace: r.namespace.into(),
        keys: r.keys.into_iter().map(String::from).collect(),
    };
    let a = wit::get_many(&request).map_err(error)?;
    let items = a
        .items
        .into_iter()
        .map(|item| item.map(stored).transpose())
        .collect::<Result<_>>()?;
    Ok(GetManyResponse { items })
}

pub(crate) fn atomic(r: AtomicRequest) -> Result<AtomicResponse> {
    let request = wit::AtomicRequest {
        namespace: r.namespace.into(),
        checks: r
            .checks
            .into_iter()
            .map(|c| wit::AtomicCheck {
                key: c.key.into(),
                revision: c.revision.get(),
            })
            .collect(),
        operations: r
            .operations
            .into_iter()
            .map(|op| match op {
                AtomicOperation::Put {
                    key,
                    value,
                    metadata,
                    ttl_seconds,
                } => wit::AtomicOperation::Put(wit::AtomicPut {
                    key: key.into(),
                    value: value.to_string(),
                    metadata: metadata.map(|m| Value::Object(m).to_string()),
                    ttl_seconds: ttl_seconds.map(u32::from),
                }),
                AtomicOperation::Delete { key } => wit::AtomicOperation::Delete(key.into()),
                AtomicOperation::Increment {
                    key,
                    delta,
                    ttl_seconds,
                } => wit::AtomicOperation::Increment(wit::AtomicIncrement {
                    key: key.into(),
                    delta: delta.into(),
                    ttl_seconds: ttl_seconds.map(u32::from),
                }),
            })
            .collect(),
    };
    let a = wit::atomic(&request).map_err(error)?;
    let results = a
        .results
        .into_iter()
        .map(|r| {
            Ok(AtomicResult {
                key: key(r.key)?,
                revision: r.revision,
                value: r.value,
            })
        })
        .collect::<Result<_>>()?;
    Ok(AtomicResponse { results })
}

pub(crate) fn get<T: DeserializeOwned>(r: GetRequest) -> Result<Record<T>> {
    let request = wit::GetRequest {
        namespace: r.namespace.into(),
        key: r.key.into(),
        if_revision: r.if_revision.map(u64::from),
    };
    stored(wit::get(&request).map_err(error)?)
}

pub(crate) fn list<T: DeserializeOwned>(r: ListRequest) -> Result<ListResponse<T>> {
    let request = wit::ListRequest {
        namespace: r.namespace.into(),
        cursor: r.cursor.map(|c| c.0),
        limit: r.limit.map(|l| u32::from(l.get())),
        key_prefix: r.key_prefix,
        metadata: r.metadata.map(|m| Value::Object(m).to_string()),
        include_values: r.include_values,
        include_metadata: r.include_metadata,
    };
    let a = wit::list(&request).map_err(error)?;
    let items = a
        .items
        .into_iter()
        .map(|i| {
            Ok(ListItem {
                namespace: namespace(i.namespace)?,
                key: key(i.key)?,
                revision: i.revision,
                value: i.value.as_deref().map(value).transpose()?,
                metadata: i.metadata.as_deref().map(metadata).transpose()?,
                ttl_expires_at: i.ttl_expires_at.map(time).transpose()?,
                created_at: i.created_at.map(time).transpose()?,
                updated_at: i.updated_at.map(time).transpose()?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ListResponse {
        items,
        next_cursor: a.next_cursor.map(Cursor),
    })
}

pub(crate) fn delete(r: DeleteRequest) -> Result<()> {
    let request = wit::DeleteRequest {
        namespace: r.namespace.into(),
        key: r.key.into(),
        if_revision: r.if_revision.map(u64::from),
    };
    wit::delete(&request).map_err(error)
}

pub(crate) fn bulk_put(r: BulkPutRequest) -> Result<BulkPutResponse> {
    let request = wit::BulkPutRequest {
        namespace: r.namespace.into(),
        items: r
            .items
            .into_iter()
            .map(|i| wit::BulkPutItem {
                key: i.key.into(),
                value: i.value.to_string(),
                metadata: i.metadata.map(|m| Value::Object(m).to_string()),
                ttl_seconds: i.ttl_seconds.map(u32::from),
                if_revision: i.if_revision.map(u64::from),
            })
            .collect(),
    };
    let a = wit::bulk_put(&request).map_err(error)?;
    let items = a
        .items
        .into_iter()
        .map(|i| {
            Ok(BulkPutResultItem {
                key: key(i.key)?,
                revision: i.revision,
                ttl_expires_at: i.ttl_expires_at.map(time).transpose()?,
                created_at: i.created_at.map(time).transpose()?,
                updated_at: i.updated_at.map(time).transpose()?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(BulkPutResponse { items })
}

/// The WIT error variant as the one error type of the contract.
pub(crate) fn error(e: wit::StorageError) -> StorageError {
    let (kind, info) = match e {
        wit::StorageError::Unauthorized(i) => (ErrorKind::Unauthorized, i),
        wit::StorageError::NamespaceDenied(i) => (ErrorKind::NamespaceDenied, i),
        wit::StorageError::RevisionMismatch(i) => (ErrorKind::RevisionMismatch, i),
        wit::StorageError::QuotaExceeded(i) => (ErrorKind::QuotaExceeded, i),
        wit::StorageError::ValidationFailed(i) => (ErrorKind::ValidationFailed, i),
        wit::StorageError::NotFound(i) => (ErrorKind::NotFound, i),
        wit::StorageError::RateLimited(i) => (ErrorKind::RateLimited, i),
        wit::StorageError::Transport(i) => (ErrorKind::Transport, i),
        wit::StorageError::Internal(i) => (ErrorKind::Internal, i),
    };
    StorageError::from_parts(kind, &info.code, info.message, info.details.as_deref())
}

fn malformed(what: &str) -> StorageError {
    StorageError::new(
        ErrorCode::InternalError,
        format!("malformed answer from the host: {what}"),
    )
}

fn namespace(s: String) -> Result<CoreNamespace> {
    CoreNamespace::new(s).map_err(|e| malformed(&e.to_string()))
}

fn key(s: String) -> Result<Key> {
    Key::new(s).map_err(|e| malformed(&e.to_string()))
}

fn time(s: String) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| malformed(&format!("time {s:?}: {e}")))
}

fn metadata(s: &str) -> Result<Metadata> {
    serde_json::from_str(s).map_err(|e| malformed(&format!("metadata: {e}")))
}

/// A stored value as the caller's type; a value that does not fit the type is the caller's
/// mismatch, reported as `VALIDATION_FAILED` on field `value`.
fn value<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| {
        StorageError::validation(
            "value",
            format!("the stored value does not fit the requested type: {e}"),
        )
    })
}
