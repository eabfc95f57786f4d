//! The namespace snapshot API (`/api/storage?ns=`): the whole namespace as one JSON object with
//! an `ETag`, and atomic `PATCH`es guarded by `If-Match`.

use super::extract::{self, admit, bearer_claims};
use super::{observe, AppState, BULK_BODY_LIMIT};
use crate::error::ApiError;
use crate::governance::Surface;
use crate::schema::schema_error;
use crate::store::Actor;
use alga_storage_core::{
    ensure_capability, json_size, parse_etag, parse_json, validate_patch, Access, Namespace,
    PatchOp, Snapshot, StorageError,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Instant;

/// The ETag header value of a snapshot version.
pub fn etag_value(etag: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn namespace_query(query: Option<&str>) -> Result<Namespace, ApiError> {
    let mut ns = None;
    for (name, value) in extract::query_pairs(query.unwrap_or(""))? {
        match name.as_str() {
            "ns" if ns.is_none() => ns = Some(value),
            "ns" => return Err(StorageError::validation("ns", "given more than once").into()),
            other => {
                return Err(StorageError::validation(
                    other.to_owned(),
                    "unknown query parameter; expected ns",
                )
                .into())
            }
        }
    }
    let ns = ns.ok_or_else(|| StorageError::validation("ns", "missing query parameter"))?;
    Ok(Namespace::new(ns).map_err(|e| StorageError::validation("ns", e.reason))?)
}

fn answer(status: StatusCode, snapshot: Snapshot) -> Response {
    let mut res = (status, Json(snapshot.data)).into_response();
    let headers = res.headers_mut();
    headers.insert(header::ETAG, etag_value(snapshot.etag));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag, X-Storage-Backend"),
    );
    res
}

/// `GET /api/storage?ns={namespace}`: the live records as `{key: value}`, `ETag: "<n>"`. Without
/// a token it answers 401, unless an anonymous-read tenant is configured.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let answer = read(&state, &headers, query.as_deref()).await;
    observe(&state, "snapshot", Surface::Snapshot, started, answer)
}

async fn read(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    if let (None, Some(tenant)) = (
        headers.get(header::AUTHORIZATION),
        state.anonymous_read_tenant,
    ) {
        let namespace = namespace_query(query)?;
        return Ok(answer(
            StatusCode::OK,
            state.store.snapshot(tenant, &namespace).await?,
        ));
    }
    let bearer = bearer_claims(state, headers)?;
    let principal = admit(state, &bearer.install, Some(&bearer)).await?;
    let namespace = namespace_query(query)?;
    ensure_capability(&principal.grants, &namespace, Access::Read)?;
    let snapshot = state.store.snapshot(principal.tenant, &namespace).await?;
    Ok(answer(StatusCode::OK, snapshot))
}

/// `PATCH /api/storage?ns={namespace}` with `If-Match`, `X-Thesara-App-Id` and a JSON array of
/// `set`/`del` operations, applied atomically: 201 from `"0"`, 200 otherwise, 412 with the
/// current ETag when the namespace has changed.
pub async fn patch(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let answer = write(&state, &headers, query.as_deref(), body).await;
    observe(&state, "patch", Surface::Snapshot, started, answer)
}

async fn write(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bearer = bearer_claims(state, headers)?;
    let principal = admit(state, &bearer.install, Some(&bearer)).await?;
    let namespace = namespace_query(query)?;
    let header_text = |name: &'static str| -> Result<&str, ApiError> {
        let value = headers
            .get(name)
            .ok_or_else(|| StorageError::validation(name, "missing header"))?;
        Ok(value
            .to_str()
            .map_err(|_| StorageError::validation(name, "must be visible ASCII"))?)
    };
    let if_match = parse_etag(header_text("if-match")?)?;
    if header_text("x-thesara-app-id")?.trim().is_empty() {
        return Err(StorageError::validation("x-thesara-app-id", "must not be empty").into());
    }
    let content_type = header_text("content-type")?;
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(StorageError::validation("content-type", "must be application/json").into());
    }
    let ops: Vec<PatchOp> = parse_json(&extract::body(body, BULK_BODY_LIMIT)?)?;
    validate_patch(&ops)?;
    ensure_capability(&principal.grants, &namespace, Access::Write)?;
    let values = ops.iter().enumerate().filter_map(|(i, op)| match op {
        PatchOp::Set { value, .. } => Some((i, value)),
        PatchOp::Del { .. } => None,
    });
    let broken = state
        .schemas
        .check(&*state.store, principal.tenant, &namespace, values)
        .await?;
    if let Some((i, found)) = broken.into_iter().next() {
        return Err(schema_error(&format!("[{i}].value"), found).into());
    }
    let snapshot = state
        .store
        .patch(
            principal.tenant,
            Actor {
                principal: principal.install.as_str(),
                surface: Surface::Snapshot.as_str(),
            },
            &namespace,
            if_match,
            &ops,
        )
        .await?;
    state
        .store
        .feed()
        .changed(principal.tenant, namespace.as_str());
    let written = ops
        .iter()
        .map(|op| {
            if let PatchOp::Set { value, .. } = op {
                json_size(value)
            } else {
                0
            }
        })
        .sum();
    state.metrics.written(written);
    let status = if if_match == 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(answer(status, snapshot))
}
