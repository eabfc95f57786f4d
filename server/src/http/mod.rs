//! The HTTP surfaces: browser REST, the runner's internal endpoint, admin, health.

pub(crate) mod admin;
pub(crate) mod extract;
mod health;
mod records;
mod snapshot;
pub mod watch;

use crate::auth::TokenKeys;
use crate::config::Secret;
use crate::cursor::CursorKey;
use crate::error::ApiError;
use crate::store::Store;
use alga_storage_core::StorageError;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest body of a single-record request (value and metadata at their limits, with room for
/// JSON whitespace). Larger bodies are refused with 413 before more is read.
pub const RECORD_BODY_LIMIT: usize = 160 * 1024;
/// Largest body of a `bulkPut` or runner request.
pub const BULK_BODY_LIMIT: usize = 1024 * 1024;
/// Largest body of an admin request.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// Shared state of every handler: one allocation shared by reference count, because axum clones
/// the state of a route for every request (a clone of the parts themselves, token keys with
/// their validation sets among them, was a tenth of the server's CPU per get).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of every handler, from its parts.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler shares: the store, the keys and secrets, governance and the caches.
pub struct Shared {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// Browser token keys.
    pub tokens: TokenKeys,
    /// List cursor key.
    pub cursors: CursorKey,
    /// The runner's shared token.
    pub runner_token: Secret,
    /// The admin token.
    pub admin_token: Secret,
    /// The tenant whose namespaces tokenless snapshot reads may see, if configured.
    pub anonymous_read_tenant: Option<uuid::Uuid>,
    /// The per-principal rate limit.
    pub rate_limit: Arc<crate::governance::RateLimit>,
    /// The metrics served at `/metrics`.
    pub metrics: crate::governance::Metrics,
    /// Compiled namespace schemas.
    pub schemas: crate::schema::Schemas,
    /// Principals by install, kept in step with every instance's install changes.
    pub principals: Arc<crate::store::principals::PrincipalCache>,
}

/// Records the outcome of one operation (metrics and the operations log) and passes it on.
pub(crate) fn observe(
    state: &AppState,
    operation: &'static str,
    surface: crate::governance::Surface,
    started: std::time::Instant,
    answer: Result<axum::response::Response, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    state.metrics.observe(
        operation,
        surface,
        answer.as_ref().map(drop).map_err(|e| &e.0),
        started.elapsed(),
    );
    answer
}

/// The custom methods share the `{ns}` route with list (GET) and bulkPut (POST), each with one
/// method: `{ns}:getMany` and `{ns}:atomic` take POST, `{ns}:changes` and `{ns}:watch` take GET;
/// another method is 405 (`OPTIONS` answers with `Allow`, a CORS preflight is left to the CORS
/// layer). Outermost, so the CORS layer does not answer a plain `OPTIONS`.
async fn custom_methods_take_post(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, Method, StatusCode};
    use axum::response::IntoResponse;
    // A CORS preflight is the CORS layer's to answer.
    if request
        .headers()
        .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return next.run(request).await;
    }
    // The verb after `:` (or `%3A`) of `/api/ext-storage/{ns}:verb`, read without allocating.
    let verb = request
        .uri()
        .path()
        .trim_start_matches('/')
        .strip_prefix("api/ext-storage/")
        .filter(|ns| !ns.contains('/'))
        .and_then(|ns| {
            if let Some((_, verb)) = ns.split_once(':') {
                return Some(verb);
            }
            let at = ns
                .as_bytes()
                .windows(3)
                .position(|w| w.eq_ignore_ascii_case(b"%3a"))?;
            Some(&ns[at + 3..])
        });
    let allowed = match verb {
        Some("getMany" | "atomic") => Method::POST,
        Some("changes" | "watch") => Method::GET,
        // Not a custom method, or an unknown one (the handlers answer 404 for the latter).
        _ => return next.run(request).await,
    };
    if request.method() == allowed || (allowed == Method::GET && request.method() == Method::HEAD) {
        return next.run(request).await;
    }
    let allow = [(
        header::ALLOW,
        HeaderValue::from_static(if allowed == Method::POST {
            "POST"
        } else {
            "GET"
        }),
    )];
    if request.method() == Method::OPTIONS {
        return (StatusCode::OK, allow).into_response();
    }
    let error = StorageError::validation("method", "this route does not accept that method");
    (StatusCode::METHOD_NOT_ALLOWED, allow, axum::Json(error)).into_response()
}

/// The whole application: every route, CORS for `cors_origins` (`*` = any), and the
/// `X-Storage-Backend` header on every answer.
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let backend = HeaderValue::from_static(state.store.backend());
    let records = Router::new()
        .route(
            "/api/ext-storage/{ns}",
            get(records::list)
                .post(records::post)
                .layer(DefaultBodyLimit::max(BULK_BODY_LIMIT))
                .layer(axum::middleware::from_fn(
                    extract::declared_length::<BULK_BODY_LIMIT>,
                )),
        )
        .route(
            "/api/ext-storage/{ns}/{key}",
            get(records::get)
                .put(records::put)
                .delete(records::delete)
                .layer(DefaultBodyLimit::max(RECORD_BODY_LIMIT))
                .layer(axum::middleware::from_fn(
                    extract::declared_length::<RECORD_BODY_LIMIT>,
                )),
        )
        .route(
            "/api/storage",
            get(snapshot::get)
                .patch(snapshot::patch)
                .layer(DefaultBodyLimit::max(BULK_BODY_LIMIT))
                .layer(axum::middleware::from_fn(
                    extract::declared_length::<BULK_BODY_LIMIT>,
                )),
        )
        .route(
            "/api/internal/ext-storage/install/{install}",
            post(records::internal)
                .layer(DefaultBodyLimit::max(BULK_BODY_LIMIT))
                .layer(axum::middleware::from_fn(
                    extract::declared_length::<BULK_BODY_LIMIT>,
                )),
        );
    let admin = Router::new()
        .route(
            "/api/admin/tenants/{tenant}/installs/{install}",
            put(admin::put_install).delete(admin::delete_install),
        )
        .route(
            "/api/admin/tenants/{tenant}/installs/{install}/tokens",
            post(admin::mint_token),
        )
        .route(
            "/api/admin/tenants/{tenant}/namespaces/{ns}/schema",
            put(admin::put_schema).delete(admin::delete_schema),
        )
        .route("/api/admin/tenants/{tenant}/audit", get(admin::audit))
        .route("/api/admin/tenants/{tenant}/quotas", put(admin::put_quotas))
        .route("/api/admin/tenants/{tenant}/usage", get(admin::usage))
        .route("/api/admin/tenants/{tenant}/export", get(admin::export))
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .layer(axum::middleware::from_fn(
            extract::declared_length::<ADMIN_BODY_LIMIT>,
        ));
    let mut app = Router::new()
        .merge(records)
        .merge(admin)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(crate::openapi::document()) }),
        )
        .fallback(|| async {
            ApiError(StorageError::new(
                alga_storage_core::ErrorCode::NotFound,
                "no such route",
            ))
        })
        .method_not_allowed_fallback(|| async {
            // The contract has no code of its own for this; the envelope keeps the 405 status.
            let error =
                StorageError::validation("method", "this route does not accept that method");
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(error),
            )
        })
        .with_state(state);
    if !cors_origins.is_empty() {
        app = app
            .layer(cors(cors_origins))
            .layer(axum::middleware::from_fn(preflight_no_content));
    }
    app.layer(axum::middleware::from_fn(custom_methods_take_post))
        .layer(axum::middleware::map_response(
            move |mut res: axum::response::Response| {
                let backend = backend.clone();
                async move {
                    res.headers_mut()
                        .insert(HeaderName::from_static("x-storage-backend"), backend);
                    res
                }
            },
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Answers a CORS preflight with 204 No Content (tower-http's CORS layer says 200; the snapshot
/// API's clients expect 204).
async fn preflight_no_content(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = next.run(request).await;
    if preflight && response.status() == axum::http::StatusCode::OK {
        *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
    }
    response
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("if-revision-match"),
            HeaderName::from_static("x-thesara-app-id"),
            // A watch resumes after its last event.
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::ETAG, HeaderName::from_static("x-storage-backend")])
        .max_age(std::time::Duration::from_secs(600))
}
