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

/// `GET /metrics`: Prometheus (OpenMetrics text) metrics of this instance.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /readyz`: the database answers within a second; names the backend.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.store.backend();
    let ready = tokio::time::timeout(READY_TIMEOUT, state.store.ready()).await;
    match ready.unwrap_or_else(|_| {
        Err(crate::store::StoreError::Unavailable(
            "no answer within 1 s".into(),
        ))
    }) {
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
