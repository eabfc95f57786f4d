//! The five operations, reached through browser REST and the runner's envelope. Both surfaces
//! build the same [`StorageRequest`] and answer through [`execute`], so their answers are equal.

use super::extract::{self, admit, bearer_claims};
use super::{observe, AppState, BULK_BODY_LIMIT, RECORD_BODY_LIMIT};
use crate::auth;
use crate::cursor::Scope;
use crate::error::ApiError;
use crate::governance::Surface;
use crate::schema::{schema_error, violations};
use crate::store::{Actor, ChangesQuery, ListQuery, Principal};
use alga_storage_core::{
    ensure_capability, json_size, parse_json, Access, AtomicOperation, AtomicRequest,
    BulkItemError, BulkPutBody, BulkPutRequest, Cursor, DeleteRequest, GetManyRequest, GetRequest,
    InstallId, Key, Limit, ListRequest, ListResponse, Metadata, Namespace, PutBody, StorageError,
    StorageRequest,
};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Instant;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Runs one validated request for a principal: capability check, then the store.
pub async fn execute(
    state: &AppState,
    principal: &Principal,
    surface: Surface,
    request: StorageRequest,
) -> Result<Response> {
    let store = &state.store;
    let tenant = principal.tenant;
    let actor = Actor {
        principal: principal.install.as_str(),
        surface: surface.as_str(),
    };
    // A write that succeeds wakes the namespace's watchers (here and on other instances).
    let writes = match &request {
        StorageRequest::Put(r) => Some(&r.namespace),
        StorageRequest::Delete(r) => Some(&r.namespace),
        StorageRequest::BulkPut(r) => Some(&r.namespace),
        StorageRequest::Atomic(r) => Some(&r.namespace),
        _ => None,
    }
    .cloned();
    let answer = run(state, principal, actor, request).await;
    if let (Ok(_), Some(namespace)) = (&answer, writes) {
        store.feed().changed(tenant, namespace.as_str());
    }
    answer
}

async fn run(
    state: &AppState,
    principal: &Principal,
    actor: Actor<'_>,
    request: StorageRequest,
) -> Result<Response> {
    let store = &state.store;
    let tenant = principal.tenant;
    Ok(match request {
        StorageRequest::Put(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Write)?;
            let written = state
                .schemas
                .write(&**store, tenant, &req.namespace, &req.value, |schema| {
                    store.put(tenant, actor, &req, schema)
                })
                .await?;
            state.metrics.written(json_size(&req.value));
            Json(written).into_response()
        }
        StorageRequest::Get(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Read)?;
            let record = store
                .get(tenant, &req)
                .await?
                .ok_or_else(StorageError::not_found)?;
            if let Some(guard) = req.if_revision {
                if guard.get() != record.revision {
                    return Err(StorageError::revision_mismatch(record.revision).into());
                }
            }
            Json(record).into_response()
        }
        StorageRequest::List(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Read)?;
            Json(list_page(state, tenant, req).await?).into_response()
        }
        StorageRequest::Delete(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Write)?;
            store.delete(tenant, actor, &req).await?;
            StatusCode::NO_CONTENT.into_response()
        }
        StorageRequest::BulkPut(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Write)?;
            let values = req.items.iter().map(|item| &item.value).enumerate();
            let broken = state
                .schemas
                .check(&**store, tenant, &req.namespace, values)
                .await?;
            if !broken.is_empty() {
                let failures = broken
                    .into_iter()
                    .map(|(i, found)| {
                        BulkItemError::new(
                            i,
                            req.items[i].key.as_str(),
                            &schema_error("value", found),
                        )
                    })
                    .collect();
                return Err(StorageError::bulk_partial_failure(failures).into());
            }
            let written = store.bulk_put(tenant, actor, &req).await?;
            state
                .metrics
                .written(req.items.iter().map(|i| json_size(&i.value)).sum());
            Json(written).into_response()
        }
        StorageRequest::GetMany(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Read)?;
            Json(store.get_many(tenant, &req).await?).into_response()
        }
        StorageRequest::Changes(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Read)?;
            let query = ChangesQuery {
                namespace: req.namespace.as_str(),
                after: req.after.get(),
                limit: req.page_size(),
                key_prefix: req.key_prefix.as_deref(),
                values: false,
            };
            Json(store.changes(tenant, &query).await?).into_response()
        }
        StorageRequest::Atomic(req) => {
            ensure_capability(&principal.grants, &req.namespace, Access::Write)?;
            if req.reads() {
                ensure_capability(&principal.grants, &req.namespace, Access::Read)?;
            }
            let validator = state
                .schemas
                .validator(&**store, tenant, &req.namespace)
                .await?;
            let schema_check = |index: usize, value: &serde_json::Value| match &validator {
                Some(v) => {
                    let found = violations(v, value);
                    if found.is_empty() {
                        Ok(())
                    } else {
                        Err(schema_error(&format!("operations[{index}].value"), found))
                    }
                }
                None => Ok(()),
            };
            let answer = store.atomic(tenant, actor, &req, &schema_check).await?;
            let written = req.operations.iter().map(|op| match op {
                AtomicOperation::Put { value, .. } => json_size(value),
                _ => 0,
            });
            state.metrics.written(written.sum());
            Json(answer).into_response()
        }
    })
}

async fn list_page(state: &AppState, tenant: uuid::Uuid, req: ListRequest) -> Result<ListResponse> {
    let scope = Scope {
        tenant,
        namespace: &req.namespace,
        prefix: req.key_prefix.as_deref(),
        filter: req.metadata.as_ref(),
    };
    let after = req
        .cursor
        .as_ref()
        .map(|c| state.cursors.open(scope, c))
        .transpose()?;
    let limit = usize::from(req.limit.unwrap_or_default().get());
    let query = ListQuery {
        namespace: req.namespace.clone(),
        key_prefix: req.key_prefix.clone(),
        after,
        metadata: req.metadata.clone(),
        fetch: limit as i64 + 1,
        include_values: req.include_values,
        include_metadata: req.include_metadata,
    };
    let mut items = state.store.list(tenant, &query).await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| state.cursors.seal(scope, &last.key))
    } else {
        None
    };
    Ok(ListResponse { items, next_cursor })
}

/// Authenticates a browser request (the token, then the install: a revoked install is refused
/// before anything about the request is judged), then validates and executes it.
async fn browser(
    state: &AppState,
    headers: &HeaderMap,
    operation: &'static str,
    request: Result<StorageRequest>,
) -> Result<Response> {
    let started = Instant::now();
    let answer = async {
        let bearer = bearer_claims(state, headers)?;
        let principal = admit(state, &bearer.install, Some(&bearer)).await?;
        let request = request?;
        request.validate()?;
        execute(state, &principal, Surface::Rest, request).await
    }
    .await;
    observe(state, operation, Surface::Rest, started, answer)
}

/// 404 for a `{ns}:verb` the route does not have.
fn no_such_method(verb: &str, expected: &str) -> ApiError {
    StorageError::new(
        alga_storage_core::ErrorCode::NotFound,
        format!("no such method {verb:?}; expected {expected}"),
    )
    .into()
}

fn record_path(
    uri: &Uri,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(Namespace, Key)> {
    extract::strict_path(uri)?;
    let (ns, key) = extract::path(path)?;
    Ok((Namespace::new(ns)?, Key::new(key)?))
}

fn namespace_path(uri: &Uri, path: Result<Path<String>, PathRejection>) -> Result<Namespace> {
    extract::strict_path(uri)?;
    Ok(Namespace::new(extract::path(path)?)?)
}

/// `GET /api/ext-storage/{ns}/{key}` (guard: `If-Revision-Match`; no query, no body).
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let request = (|| {
        let (namespace, key) = record_path(&uri, path)?;
        extract::no_query(uri.query())?;
        extract::no_body(body)?;
        let if_revision = extract::revision_header(&headers, "if-revision-match")?;
        Ok(StorageRequest::Get(GetRequest {
            namespace,
            key,
            if_revision,
        }))
    })();
    browser(&state, &headers, "get", request).await
}

/// `PUT /api/ext-storage/{ns}/{key}`, body `{value, metadata?, ttlSeconds?, ifRevision?}`.
pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let request = (|| {
        let (namespace, key) = record_path(&uri, path)?;
        extract::no_query(uri.query())?;
        let body: PutBody = parse_json(&extract::body(body, RECORD_BODY_LIMIT)?)?;
        Ok(StorageRequest::Put(body.into_request(namespace, key)))
    })();
    browser(&state, &headers, "put", request).await
}

/// `DELETE /api/ext-storage/{ns}/{key}` (guard: `If-Revision-Match`; no query, no body).
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let request = (|| {
        let (namespace, key) = record_path(&uri, path)?;
        extract::no_query(uri.query())?;
        extract::no_body(body)?;
        let if_revision = extract::revision_header(&headers, "if-revision-match")?;
        Ok(StorageRequest::Delete(DeleteRequest {
            namespace,
            key,
            if_revision,
        }))
    })();
    browser(&state, &headers, "delete", request).await
}

/// `POST /api/ext-storage/{ns}`: bulkPut, body `{items: […]}`; and the custom methods
/// `POST /api/ext-storage/{ns}:getMany`, body `{keys: […]}`, and
/// `POST /api/ext-storage/{ns}:atomic`, body `{checks?, operations}` (a namespace cannot
/// contain `:`, so a method never collides with one).
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let segment = path.as_ref().map(|Path(p)| p.clone()).unwrap_or_default();
    let (ns, verb) = match segment.split_once(':') {
        Some((ns, verb)) => (ns.to_owned(), Some(verb.to_owned())),
        None => (segment.clone(), None),
    };
    let operation = match verb.as_deref() {
        None => "bulkPut",
        Some("getMany") => "getMany",
        Some("atomic") => "atomic",
        Some(other) => return Err(no_such_method(other, "getMany or atomic")),
    };
    let request = (|| {
        extract::strict_path(&uri)?;
        extract::path(path)?;
        let namespace = Namespace::new(ns)?;
        extract::no_query(uri.query())?;
        let body = extract::body(body, BULK_BODY_LIMIT)?;
        Ok(match operation {
            "getMany" => StorageRequest::GetMany(GetManyRequest::from_body(namespace, &body)?),
            "atomic" => StorageRequest::Atomic(AtomicRequest::from_body(namespace, &body)?),
            _ => {
                let body: BulkPutBody = parse_json(&body)?;
                StorageRequest::BulkPut(BulkPutRequest {
                    namespace,
                    items: body.items,
                })
            }
        })
    })();
    browser(&state, &headers, operation, request).await
}

/// `GET /api/ext-storage/{ns}?keyPrefix=&limit=&cursor=&includeValues=&includeMetadata=&metadata=`
/// (`metadata` is a JSON object, URL-encoded); and the custom methods
/// `GET /api/ext-storage/{ns}:changes?after=&limit=&keyPrefix=` and
/// `GET /api/ext-storage/{ns}:watch?after=&keyPrefix=&includeValues=` (Server-Sent Events).
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    if let Some((ns, verb)) = path.as_ref().ok().and_then(|Path(p)| p.split_once(':')) {
        let watch = match verb {
            "changes" => false,
            "watch" => true,
            other => return Err(no_such_method(other, "changes or watch")),
        };
        let request = (|| {
            extract::strict_path(&uri)?;
            let namespace = Namespace::new(ns)?;
            super::watch::feed_query(namespace, query.as_deref().unwrap_or(""), watch)
        })();
        if watch {
            let request = request.map(|(r, include_values)| {
                let query = super::watch::WatchQuery {
                    after: r.after,
                    key_prefix: r.key_prefix,
                    include_values,
                };
                (r.namespace, query)
            });
            return super::watch::watch(state, headers, request).await;
        }
        let request = request.map(|(r, _)| StorageRequest::Changes(r));
        return browser(&state, &headers, "changes", request).await;
    }
    let request = (|| {
        let namespace = namespace_path(&uri, path)?;
        Ok(StorageRequest::List(list_query(
            namespace,
            query.as_deref().unwrap_or(""),
        )?))
    })();
    browser(&state, &headers, "list", request).await
}

fn list_query(namespace: Namespace, query: &str) -> Result<ListRequest> {
    let mut req = ListRequest {
        namespace,
        cursor: None,
        limit: None,
        key_prefix: None,
        metadata: None,
        include_values: false,
        include_metadata: false,
    };
    let mut seen = std::collections::HashSet::new();
    for (name, value) in extract::query_pairs(query)? {
        if !seen.insert(name.clone()) {
            return Err(StorageError::validation(name, "given more than once").into());
        }
        let flag = |field: &str| match value.as_ref() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(StorageError::validation(
                field,
                format!("{other:?} is not true or false"),
            )),
        };
        match name.as_ref() {
            "keyPrefix" => req.key_prefix = Some(value),
            "cursor" => req.cursor = Some(Cursor(value)),
            "limit" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| StorageError::validation("limit", format!("{value:?} is not an integer")))?;
                req.limit = Some(Limit::new(n)?);
            }
            "includeValues" => req.include_values = flag("includeValues")?,
            "includeMetadata" => req.include_metadata = flag("includeMetadata")?,
            "metadata" => req.metadata = Some(parse_filter(&value)?),
            other => {
                return Err(StorageError::validation(
                    other.to_owned(),
                    "unknown query parameter; expected keyPrefix, limit, cursor, includeValues, includeMetadata or metadata",
                )
                .into())
            }
        }
    }
    Ok(req)
}

fn parse_filter(value: &str) -> Result<Metadata, StorageError> {
    parse_json::<Metadata>(value.as_bytes()).map_err(|e| {
        let reason = e
            .details()
            .and_then(|d| d["reason"].as_str())
            .unwrap_or(e.message())
            .to_owned();
        StorageError::validation("metadata", format!("must be a JSON object: {reason}"))
    })
}

/// `POST /api/internal/ext-storage/install/{installId}` with `x-runner-auth` and the envelope.
pub async fn internal(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let started = Instant::now();
    let mut operation = "invalid";
    let answer = async {
        let presented = headers.get("x-runner-auth").and_then(|v| v.to_str().ok());
        if !auth::secret_matches(presented, &state.runner_token) {
            return Err(StorageError::unauthenticated("missing or invalid x-runner-auth").into());
        }
        let install = InstallId::new(extract::path(path)?)?;
        let principal = admit(&state, &install, None).await?;
        let request = StorageRequest::from_json(&extract::body(body, BULK_BODY_LIMIT)?)?;
        operation = request.operation();
        execute(&state, &principal, Surface::Runner, request).await
    }
    .await;
    observe(&state, operation, Surface::Runner, started, answer)
}
