//! The admin API of the host application: installs, grants, tokens.

use super::extract::{self, admin};
use super::{AppState, ADMIN_BODY_LIMIT};
use crate::error::ApiError;
use crate::store::{quota_exceeded, Actor, QuotaKind, Quotas, Upserted};
use alga_storage_core::{parse_json, validate_grants, Grant, InstallId, Namespace, StorageError};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Default lifetime of a minted token, in seconds.
pub const DEFAULT_TOKEN_TTL: i64 = 3600;
/// Longest lifetime of a minted token, in seconds (30 days).
pub const MAX_TOKEN_TTL: i64 = 30 * 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InstallBody {
    extension_id: String,
    grants: Vec<Grant>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InstallView {
    tenant_id: Uuid,
    install_id: InstallId,
    extension_id: String,
    grants: Vec<Grant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenBody {
    /// Absent: the default; `null` is refused (it would silently mean the default).
    #[serde(default, deserialize_with = "alga_storage_core::not_null")]
    ttl_seconds: Option<alga_storage_core::WholeNumber>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// The tenant of an admin path: a UUID.
fn tenant_id(text: &str) -> Result<Uuid, StorageError> {
    Uuid::parse_str(text)
        .map_err(|_| StorageError::validation("tenant", format!("{text:?} is not a UUID")))
}

/// The tenant and the named thing (an install id or a namespace) of an admin path.
fn tenant_and<T>(path: Result<Path<(String, String)>, PathRejection>) -> Result<(Uuid, T), ApiError>
where
    T: TryFrom<String, Error = alga_storage_core::InvalidValue>,
{
    let (tenant, name) = extract::path(path)?;
    let tenant = tenant_id(&tenant)?;
    Ok((tenant, T::try_from(name).map_err(StorageError::from)?))
}

/// `PUT /api/admin/tenants/{tenant}/installs/{install}`: creates (201) or replaces (200) an
/// install and its grants.
pub async fn put_install(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let (tenant, install): (_, InstallId) = tenant_and(path)?;
    let body: InstallBody = parse_json(&extract::body(body, ADMIN_BODY_LIMIT)?)?;
    let id = &body.extension_id;
    if id.trim().is_empty() || id.chars().count() > 256 || id.chars().any(char::is_control) {
        return Err(StorageError::validation(
            "extensionId",
            "must be 1-256 characters without control characters",
        )
        .into());
    }
    validate_grants(&body.grants)?;
    let (overrides, defaults) = state.store.quotas(tenant).await?;
    let limit = overrides.over(defaults).max_namespaces;
    if limit.is_some_and(|l| body.grants.len() as i64 > l) {
        let current = match state.store.principal(&install).await? {
            Some(p) if p.tenant == tenant => p.grants.len() as i64,
            _ => 0,
        };
        let error = quota_exceeded(
            QuotaKind::NamespacesPerPrincipal,
            limit,
            current,
            None,
            None,
        );
        let mut details = error.details().cloned().unwrap_or_default();
        details["requested"] = body.grants.len().into();
        state
            .metrics
            .quota_rejected(QuotaKind::NamespacesPerPrincipal.as_str());
        return Err(error.with_details(details).into());
    }
    let done = state
        .store
        .upsert_install(
            tenant,
            Actor::ADMIN,
            &install,
            &body.extension_id,
            &body.grants,
        )
        .await?;
    state.principals.evict(install.as_str());
    let status = if done == Upserted::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = InstallView {
        tenant_id: tenant,
        install_id: install,
        extension_id: body.extension_id,
        grants: body.grants,
    };
    Ok((status, Json(view)).into_response())
}

/// `DELETE /api/admin/tenants/{tenant}/installs/{install}`: revokes the install at once (204).
pub async fn delete_install(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let (tenant, install): (_, InstallId) = tenant_and(path)?;
    let deleted = state
        .store
        .delete_install(tenant, Actor::ADMIN, &install)
        .await?;
    state.principals.evict(install.as_str());
    if deleted {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(StorageError::new(alga_storage_core::ErrorCode::NotFound, "no such install").into())
    }
}

/// `POST /api/admin/tenants/{tenant}/installs/{install}/tokens`, body `{"ttlSeconds": 3600}`
/// (optional): mints a browser token for the install.
pub async fn mint_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let (tenant, install): (_, InstallId) = tenant_and(path)?;
    let bytes = extract::body(body, ADMIN_BODY_LIMIT)?;
    let body: TokenBody = if bytes.is_empty() {
        TokenBody::default()
    } else {
        parse_json(&bytes)?
    };
    let ttl = body.ttl_seconds.map_or(DEFAULT_TOKEN_TTL, i64::from);
    if !(60..=MAX_TOKEN_TTL).contains(&ttl) {
        return Err(StorageError::validation(
            "ttlSeconds",
            format!("must be between 60 and {MAX_TOKEN_TTL}, got {ttl}"),
        )
        .into());
    }
    let principal = match state.store.principal(&install).await? {
        Some(p) if p.tenant == tenant => p,
        _ => {
            return Err(StorageError::new(
                alga_storage_core::ErrorCode::NotFound,
                "no such install",
            )
            .into())
        }
    };
    let token = state.tokens.mint(&principal, ttl);
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(ttl);
    Ok((StatusCode::CREATED, Json(TokenView { token, expires_at })).into_response())
}

/// `PUT /api/admin/tenants/{tenant}/namespaces/{ns}/schema`, body: a JSON Schema (2020-12).
/// The schema is checked against the meta-schema and compiled first (400 if it is not valid);
/// answers the new version. Every later write to the namespace must match it.
pub async fn put_schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let (tenant, namespace): (_, Namespace) = tenant_and(path)?;
    let schema: serde_json::Value = parse_json(&extract::body(body, ADMIN_BODY_LIMIT)?)?;
    if !schema.is_object() {
        // Refused when registered, not in `schema::compile`, which also compiles schemas
        // stored before this rule: `true` would check nothing, `false` refuse every write.
        return Err(StorageError::validation(
            "schema",
            "must be a JSON Schema object (boolean schemas are not accepted)",
        )
        .into());
    }
    crate::schema::compile(&schema)?;
    let version = state
        .store
        .put_schema(tenant, Actor::ADMIN, &namespace, &schema)
        .await?;
    Ok(Json(serde_json::json!({ "namespace": namespace, "version": version })).into_response())
}

/// `DELETE /api/admin/tenants/{tenant}/namespaces/{ns}/schema`: writes are no longer checked
/// (204; 404 if the namespace had no schema).
pub async fn delete_schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let (tenant, namespace): (_, Namespace) = tenant_and(path)?;
    if state
        .store
        .delete_schema(tenant, Actor::ADMIN, &namespace)
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(StorageError::new(
            alga_storage_core::ErrorCode::NotFound,
            "this namespace has no schema",
        )
        .into())
    }
}

/// Most audit rows in one page.
pub const MAX_AUDIT_PAGE: i64 = 500;

/// `GET /api/admin/tenants/{tenant}/audit?after=<seq>&limit=<n>`: the tenant's audit log, oldest
/// first, `limit` (default 100, at most 500) rows after `after`; `nextAfter` continues it.
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let tenant = extract::path(path)?;
    let tenant = tenant_id(&tenant)?;
    let (mut after, mut limit) = (0_i64, 100_i64);
    for (name, value) in extract::query_pairs(query.as_deref().unwrap_or(""))? {
        let number = || value.parse::<i64>().ok().filter(|n| *n >= 0);
        match name.as_str() {
            "after" => {
                after = number()
                    .ok_or_else(|| StorageError::validation("after", "must be a sequence number"))?
            }
            "limit" => {
                limit = number()
                    .filter(|n| (1..=MAX_AUDIT_PAGE).contains(n))
                    .ok_or_else(|| {
                        StorageError::validation("limit", format!("must be 1-{MAX_AUDIT_PAGE}"))
                    })?
            }
            other => {
                return Err(StorageError::validation(
                    other.to_owned(),
                    "unknown query parameter; expected after or limit",
                )
                .into())
            }
        }
    }
    let items = state.store.audit(tenant, after, limit).await?;
    let next_after = (items.len() as i64 == limit)
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    Ok(Json(serde_json::json!({ "items": items, "nextAfter": next_after })).into_response())
}

/// The JSON of a tenant's quotas and usage.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageView {
    tenant_id: Uuid,
    /// The limits in force (`null` = none).
    quotas: Quotas,
    /// The tenant's own overrides (`null` = the server's default).
    overrides: Quotas,
    /// Bytes stored by the tenant.
    bytes: i64,
    /// Namespaces holding records.
    namespaces: Vec<crate::store::NamespaceUsage>,
}

async fn usage_view(state: &AppState, tenant: Uuid) -> Result<UsageView, ApiError> {
    let usage = state.store.usage(tenant).await?;
    Ok(UsageView {
        tenant_id: tenant,
        quotas: usage.overrides.over(usage.defaults),
        overrides: usage.overrides,
        bytes: usage.bytes,
        namespaces: usage.namespaces,
    })
}

/// `PUT /api/admin/tenants/{tenant}/quotas`, body `{"maxNamespaces", "maxKeysPerNamespace",
/// "maxBytes"}` (each a whole number, or `null`/absent for the server's default): replaces the
/// tenant's overrides and answers its usage (as `GET …/usage`). Lowering a limit below the
/// current usage refuses only writes that would add to it.
pub async fn put_quotas(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let tenant = tenant_id(&extract::path(path)?)?;
    let bytes = extract::body(body, ADMIN_BODY_LIMIT)?;
    // An object only (serde would also read a struct from an array).
    parse_json::<serde_json::Map<String, serde_json::Value>>(&bytes)?;
    let overrides: Quotas = parse_json(&bytes)?;
    let checks = [
        ("maxNamespaces", overrides.max_namespaces, 1, 32),
        (
            "maxKeysPerNamespace",
            overrides.max_keys_per_namespace,
            0,
            i64::MAX,
        ),
        ("maxBytes", overrides.max_bytes, 0, i64::MAX),
    ];
    for (field, value, min, max) in checks {
        if let Some(v) = value.filter(|v| !(min..=max).contains(v)) {
            let range = if max == i64::MAX {
                format!("at least {min}")
            } else {
                format!("between {min} and {max}")
            };
            return Err(StorageError::validation(
                field,
                format!("must be {range} or null, got {v}"),
            )
            .into());
        }
    }
    state
        .store
        .put_quotas(tenant, Actor::ADMIN, &overrides)
        .await?;
    Ok(Json(usage_view(&state, tenant).await?).into_response())
}

/// `GET /api/admin/tenants/{tenant}/usage`: the limits in force, the tenant's overrides, its
/// stored bytes and each namespace's records and bytes, read from counters that every write
/// keeps (expired records are removed first, so they do not count).
pub async fn usage(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let tenant = tenant_id(&extract::path(path)?)?;
    Ok(Json(usage_view(&state, tenant).await?).into_response())
}

/// `GET /api/admin/tenants/{tenant}/export`: one consistent snapshot of the tenant as JSON Lines
/// (`application/x-ndjson`), streamed as it is read, in the format `alga-storage-server import`
/// reads. A stream cut short (the database failed midway) lacks its `end` line, so an import
/// refuses it as truncated.
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    use crate::store::transfer;
    use futures_util::StreamExt;
    admin(&state, &headers)?;
    let tenant = tenant_id(&extract::path(path)?)?;
    extract::no_query(query.as_deref())?;
    let filter = transfer::ExportFilter {
        tenant: Some(tenant),
        namespace: None,
    };
    // The snapshot is opened before the answer starts, so a database that cannot be reached
    // answers 503 with the envelope instead of an empty 200.
    state.store.ready().await?;
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let store = state.store.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let result = transfer::export(&*store, &filter, &tx).await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, "tenant export stopped");
        }
        let _ = done_tx.send(result.is_ok());
    });
    let lines = tokio_stream_from(rx)
        .map(|line| Ok::<_, std::io::Error>(axum::body::Bytes::from(line.to_json_line())));
    // After the last line: an export that failed ends the body with an error (the connection
    // is cut, never closed as if complete).
    let tail = futures_util::stream::once(async move {
        match done_rx.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other("the export failed"))),
        }
    })
    .filter_map(|x| async move { x });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines.chain(tail)),
    )
        .into_response())
}

/// The lines a receiver yields, as a stream.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<crate::store::transfer::Line>,
) -> impl futures_util::Stream<Item = crate::store::transfer::Line> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    })
}
