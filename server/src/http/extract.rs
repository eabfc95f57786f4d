//! Turning raw request parts into contract types, with the contract's errors.

use crate::auth;
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::Principal;
use alga_storage_core::{ErrorCode, Revision, StorageError};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{header, HeaderMap, StatusCode};

/// The body, or 413 when it exceeds the route's limit.
pub fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(
                StorageError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body exceeds the limit of {limit} bytes"),
                )
                .with_details(serde_json::json!({ "field": "body", "limit": limit })),
            )
        } else {
            ApiError(StorageError::validation("body", rejection.body_text()))
        }
    })
}

/// A path parameter rejection (bad percent-encoding, invalid UTF-8) as `VALIDATION_FAILED`.
pub fn path<T>(path: Result<axum::extract::Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|axum::extract::Path(p)| p)
        .map_err(|rejection| ApiError(StorageError::validation("path", rejection.body_text())))
}

/// An optional revision header (`If-Revision-Match: 13`, quotes allowed).
pub fn revision_header(
    headers: &HeaderMap,
    name: &'static str,
) -> Result<Option<Revision>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim().trim_matches('"');
    let n: i64 = text.parse().map_err(|_| {
        StorageError::validation(name, format!("{text:?} is not a revision number"))
    })?;
    Ok(Some(
        Revision::new(n).map_err(|e| StorageError::validation(name, e.reason))?,
    ))
}

/// Verifies the browser token (no database access).
pub fn bearer_claims(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(alga_storage_core::InstallId, uuid::Uuid), ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let token = auth::bearer(header)?;
    Ok(state.tokens.verify(token)?)
}

/// Admits a caller on every surface alike: looks up the install (refused at once if revoked;
/// for a browser token, also if it belongs to another tenant than the token says), then takes a
/// token from its rate limit.
pub async fn admit(
    state: &AppState,
    install: &alga_storage_core::InstallId,
    token_tenant: Option<uuid::Uuid>,
) -> Result<Principal, ApiError> {
    let known = state
        .principals
        .principal(state.store.as_ref(), install)
        .await?;
    let principal = match (known, token_tenant) {
        (Some(p), Some(tenant)) if p.tenant == tenant => p,
        (Some(p), None) => p,
        (_, Some(_)) => {
            return Err(
                StorageError::unauthenticated("the token's install is revoked or unknown").into(),
            )
        }
        (None, None) => {
            return Err(StorageError::new(
                ErrorCode::Unauthorized,
                "this install is not registered or was revoked",
            )
            .with_details(serde_json::json!({ "reason": "noGrants" }))
            .into())
        }
    };
    tracing::debug!(
        target: "alga_storage::auth",
        tenant = %crate::governance::hashed(&principal.tenant.to_string()),
        install = %crate::governance::hashed(principal.install.as_str()),
        "admitted"
    );
    state.rate_limit.admit(&principal.install)?;
    Ok(principal)
}

/// The admin bearer token, compared in constant time.
pub fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let token = auth::bearer(header)?;
    if auth::secret_matches(Some(token), &state.admin_token) {
        Ok(())
    } else {
        Err(StorageError::unauthenticated("invalid admin token").into())
    }
}
