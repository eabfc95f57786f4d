//! The one HTTP error type: a contract error answered as the envelope; backend failures are
//! logged here and answered as a bare `INTERNAL_ERROR`.

use crate::store::StoreError;
use alga_storage_core::{ErrorCode, InvalidValue, StorageError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError(pub StorageError);

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError(e)
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        ApiError(e.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Contract(e) => ApiError(e),
            StoreError::Backend(source) => {
                tracing::error!(error = %source, "backend failure");
                ApiError(StorageError::internal())
            }
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                ApiError(StorageError::unavailable(1))
            }
            // Handled where a put is written (`Schemas::write`); reaching here is a defect.
            StoreError::SchemaMoved => {
                tracing::error!("a schema change reached a client");
                ApiError(StorageError::internal())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A stale If-Match is answered with the current ETag, as the snapshot API promises.
        let etag = match self.0.code() {
            ErrorCode::PreconditionFailed => {
                self.0.details().and_then(|d| d["currentEtag"].as_str())
            }
            _ => None,
        }
        .and_then(|e| HeaderValue::from_str(e).ok());
        let mut res = (status, Json(&self.0)).into_response();
        if let Some(seconds) = self
            .0
            .details()
            .and_then(|d| d["retryAfterSeconds"].as_u64())
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(etag) = etag {
            res.headers_mut().insert(header::ETAG, etag);
            res.headers_mut().insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("ETag, X-Storage-Backend"),
            );
        }
        res
    }
}
