//! Turning raw request parts into contract types, with the contract's errors.

use crate::auth;
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::Principal;
use alga_storage_core::{ErrorCode, Revision, StorageError};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{header, HeaderMap, StatusCode, Uri};

/// The body, or 413 when it exceeds the route's limit.
pub fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            ApiError(StorageError::validation("body", rejection.body_text()))
        }
    })
}

/// `PAYLOAD_TOO_LARGE` for a body over `limit` bytes.
pub fn too_large(limit: usize) -> ApiError {
    ApiError(
        StorageError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body exceeds the limit of {limit} bytes"),
        )
        .with_details(serde_json::json!({ "field": "body", "limit": limit })),
    )
}

/// Middleware of a route whose bodies take at most `MAX` bytes: a request whose
/// `Content-Length` says more is answered 413 at once, before any of its body is awaited.
pub async fn declared_length<const MAX: usize>(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX as u64) {
        return too_large(MAX).into_response();
    }
    next.run(request).await
}

/// A path parameter rejection (bad percent-encoding, invalid UTF-8) as `VALIDATION_FAILED`.
pub fn path<T>(path: Result<axum::extract::Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|axum::extract::Path(p)| p)
        .map_err(|rejection| ApiError(StorageError::validation("path", rejection.body_text())))
}

/// Refuses every query parameter of a route that takes none, naming it: a guard sent as
/// `?ifRevision=` (or anything else) is never silently ignored.
pub fn no_query(query: Option<&str>) -> Result<(), ApiError> {
    let Some((name, _)) = query_pairs(query.unwrap_or(""))?.into_iter().next() else {
        return Ok(());
    };
    let reason = if name.eq_ignore_ascii_case("ifRevision") {
        "a revision guard is never read from the query: send the If-Revision-Match header \
         (get, delete) or ifRevision in the body (put)"
    } else {
        "this route takes no query parameters"
    };
    Err(StorageError::validation(name, reason).into())
}

/// Refuses a body on a route that takes none (a DELETE carrying `{"ifRevision":7}` would
/// otherwise lose its guard).
pub fn no_body(body: Result<Bytes, BytesRejection>) -> Result<(), ApiError> {
    match body {
        Ok(bytes) if bytes.is_empty() => Ok(()),
        _ => Err(StorageError::validation(
            "body",
            "this request takes no body; a revision guard goes in the If-Revision-Match header",
        )
        .into()),
    }
}

/// Every `%` of the raw path starts an escape of two hex digits: `a%ZZb` and a lone `%` are
/// refused, so `a%` (sent as `a%25`) and `a%` can never name the same record.
pub fn strict_path(uri: &Uri) -> Result<(), ApiError> {
    strict_escapes(uri.path()).map_err(|reason| StorageError::validation("path", reason).into())
}

fn strict_escapes(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'%') {
        let escape = bytes.get(i + 1..i + 3);
        if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
            return Err(format!(
                "invalid percent-escape at byte {i}: '%' must be followed by two hex digits"
            ));
        }
    }
    Ok(())
}

/// The pairs of a query string, strictly decoded: invalid escapes and escapes that do not
/// decode to UTF-8 are refused (never replaced by U+FFFD).
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let decode = |part: &str| -> Result<String, String> {
        strict_escapes(part)?;
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "does not decode to UTF-8".to_owned())
    };
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name).map_err(|r| StorageError::validation("query", r))?;
            let value = decode(value).map_err(|r| StorageError::validation(name.clone(), r))?;
            Ok((name, value))
        })
        .collect()
}

/// What a revision header takes: 1 to 18 digits, bare or in one pair of quotes (`13`, `"13"`).
pub const REVISION_HEADER_PATTERN: &str = r#"^([0-9]{1,18}|"[0-9]{1,18}")$"#;

/// An optional revision header (`If-Revision-Match: 13`, or `"13"`), as
/// [`REVISION_HEADER_PATTERN`] says.
pub fn revision_header(
    headers: &HeaderMap,
    name: &'static str,
) -> Result<Option<Revision>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let digits = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let n = Some(digits)
        .filter(|d| (1..=18).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<i64>().ok())
        .ok_or_else(|| {
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
) -> Result<std::sync::Arc<auth::Bearer>, ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let token = auth::bearer(header)?;
    Ok(state.tokens.verify(token)?)
}

/// Admits a caller on every surface alike: looks up the install (refused at once if revoked;
/// for a browser token, also if it names another tenant, or an earlier generation of the
/// install: one deleted and provisioned anew under the same id), then takes a token from its
/// rate limit.
pub async fn admit(
    state: &AppState,
    install: &alga_storage_core::InstallId,
    token: Option<&auth::Bearer>,
) -> Result<std::sync::Arc<Principal>, ApiError> {
    let principal = recognise(state, install, token).await?;
    state.rate_limit.admit(&principal.install)?;
    Ok(principal)
}

/// The principal of an install, refused as [`admit`] refuses it, without taking a token from
/// its rate limit (an open watch checks again with it whenever installs change).
pub async fn recognise(
    state: &AppState,
    install: &alga_storage_core::InstallId,
    token: Option<&auth::Bearer>,
) -> Result<std::sync::Arc<Principal>, ApiError> {
    let known = state
        .principals
        .principal(state.store.as_ref(), install)
        .await?;
    let principal = match (known, token) {
        (Some(p), Some(t)) if p.tenant == t.tenant && p.generation == t.generation => p,
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
