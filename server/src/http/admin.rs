//! The admin API of the host application: installs, grants, tokens.

use super::extract::{self, admin};
use super::{AppState, ADMIN_BODY_LIMIT};
use crate::error::ApiError;
use crate::store::{Actor, Upserted};
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
    ttl_seconds: Option<i64>,
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
    if state
        .store
        .delete_install(tenant, Actor::ADMIN, &install)
        .await?
    {
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
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL);
    if !(60..=MAX_TOKEN_TTL).contains(&ttl) {
        return Err(StorageError::validation(
            "ttlSeconds",
            format!("must be between 60 and {MAX_TOKEN_TTL}, got {ttl}"),
        )
        .into());
    }
    match state.store.principal(&install).await? {
        Some(p) if p.tenant == tenant => {}
        _ => {
            return Err(StorageError::new(
                alga_storage_core::ErrorCode::NotFound,
                "no such install",
            )
            .into())
        }
    }
    let token = state.tokens.mint(tenant, &install, ttl);
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
    for (name, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        let number = || value.parse::<i64>().ok().filter(|n| *n >= 0);
        match name.as_ref() {
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
