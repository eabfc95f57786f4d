//! The one HTTP error type: a contract error answered as the envelope; backend failures are
//! logged here and answered as a bare `INTERNAL_ERROR`.

use crate::store::StoreError;
use alga_storage_core::{InvalidValue, StorageError};
use axum::http::StatusCode;
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
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}
