//! Liveness and readiness.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers; names the backend.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.store.backend();
    match state.store.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "backend": backend })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "backend": backend })),
            )
        }
    }
}
