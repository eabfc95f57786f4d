//! # alga-storage-server
//!
//! The reference server of Alga extension storage: the browser REST API (`/api/ext-storage/…`,
//! Bearer JWT), the runner's internal endpoint (`/api/internal/ext-storage/install/{installId}`,
//! `x-runner-auth`), the admin API (`/api/admin/…`), and `/healthz` / `/readyz`, over a storage
//! backend behind the [`store::Store`] trait: Postgres (production, Citus-ready) or an embedded
//! SQLite file (the default, so it runs with nothing installed).
//!
//! The server is a library plus a thin `main`: tests and embedders open a backend with
//! [`open_store`], build the handler state with [`app_state`], and serve [`router`] on their own
//! `TcpListener` with [`serve`].
#![deny(missing_docs)]
#![recursion_limit = "512"]

/// The allocator of every binary and test built on this crate (the server, the benchmark):
/// mimalloc. The server allocates many small, short-lived buffers per request (rows, JSON,
/// headers); glibc's malloc took a seventh of its CPU per list page.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod auth;
pub mod cli;
pub mod config;
pub mod cursor;
pub mod error;
pub mod governance;
pub mod http;
pub mod openapi;
pub mod protocol;
pub mod schema;
pub mod store;

pub use config::Config;
pub use http::{router, AppState};

use alga_storage_core::{Access, Grant, InstallId, Namespace};
use std::sync::Arc;
use store::{Store, StoreError};
use uuid::Uuid;

/// The tenant provisioned in dev mode.
pub const DEV_TENANT: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);
/// The install provisioned in dev mode.
pub const DEV_INSTALL: &str = "dev-install";
/// The namespace granted to the dev install.
pub const DEV_NAMESPACE: &str = "dev";

/// Opens the backend named by the configuration, runs its migrations, writes the default
/// quotas of the configuration and starts the background sweeper of expired records (it stops
/// when the store is dropped).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let url = config.database_url.expose();
    let store: Arc<dyn Store> = match config.backend() {
        config::Backend::Postgres => {
            Arc::new(store::postgres::PgStore::connect(url, config.max_connections).await?)
        }
        config::Backend::Sqlite => {
            Arc::new(store::sqlite::SqliteStore::connect(url, config.max_connections).await?)
        }
    };
    store.set_quota_defaults(&config.quota_defaults).await?;
    store
        .feed()
        .set_max_watches(config.max_watches_per_principal as usize);
    store::sweeper::spawn(
        &store,
        std::time::Duration::from_secs(u64::from(config.sweep_interval_seconds)),
        config.sweep_batch,
        config.change_retention,
    );
    Ok(store)
}

/// The handler state for a configuration and an open store (on Postgres, it starts listening
/// for install changes, so call it inside the tokio runtime).
pub fn app_state(config: &Config, store: Arc<dyn Store>) -> AppState {
    let principals = Arc::new(store::principals::PrincipalCache::default());
    store.watch_principals(Arc::downgrade(&principals));
    AppState::new(http::Shared {
        store,
        tokens: auth::TokenKeys::new(&config.jwt_secret),
        cursors: cursor::CursorKey::derive(config.jwt_secret.expose().as_bytes()),
        runner_token: config.runner_token.clone(),
        admin_token: config.admin_token.clone(),
        anonymous_read_tenant: config.anonymous_read_tenant,
        rate_limit: Arc::new(governance::RateLimit::new(
            config.rate_per_second,
            config.rate_burst,
        )),
        metrics: governance::Metrics::default(),
        schemas: schema::Schemas::default(),
        principals,
    })
}

/// What dev mode provisioned.
#[derive(Debug, Clone)]
pub struct DevInstall {
    /// The dev tenant.
    pub tenant: Uuid,
    /// The dev install.
    pub install: InstallId,
    /// A browser token for it, valid 24 hours.
    pub token: String,
}

/// Provisions the dev tenant and install, granted read and write on the `dev` namespace.
pub async fn provision_dev(state: &AppState) -> Result<DevInstall, StoreError> {
    let install = InstallId::new(DEV_INSTALL).map_err(alga_storage_core::StorageError::from)?;
    let namespace = Namespace::new(DEV_NAMESPACE).map_err(alga_storage_core::StorageError::from)?;
    let grants = [Grant {
        namespace,
        access: vec![Access::Read, Access::Write],
    }];
    state
        .store
        .upsert_install(
            DEV_TENANT,
            store::Actor::ADMIN,
            &install,
            "dev-extension",
            &grants,
        )
        .await?;
    let principal = state
        .store
        .principal(&install)
        .await?
        .ok_or_else(alga_storage_core::StorageError::internal)?;
    let token = state.tokens.mint(&principal, 24 * 3600);
    Ok(DevInstall {
        tenant: DEV_TENANT,
        install,
        token,
    })
}

/// How long a client may take to send a request's head (line and headers).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a client may leave a request body without a new frame of it.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the application on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish. Slow or stalled clients are cut off: a request head must arrive within
/// [`HEADER_READ_TIMEOUT`] (else the connection is closed), and a body that stalls for
/// [`BODY_READ_TIMEOUT`] fails its request with 400. A request that is not valid HTTP/1.1 is
/// answered with the JSON envelope too ([`protocol`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use tower::ServiceExt;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(protocol::MAX_HEAD_BYTES)
        .max_buf_size(protocol::MAX_HEAD_BYTES);
    let (stop, stopped) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let request = request.map(|body| {
                    axum::body::Body::new(tower_http::timeout::TimeoutBody::new(
                        BODY_READ_TIMEOUT,
                        body,
                    ))
                });
                // A write runs in a task of its own, to completion: a client that goes away
                // mid-request (a timeout, a closed tab) must not cancel a handler halfway
                // through a transaction, with its row locks held until the connection is
                // cleaned up; only the answer is dropped. A read (GET, HEAD) writes nothing, so
                // it stays in the connection's task: the hop cost a 1-client get 15-25 % (0.45-
                // 0.56 of pgbench with it, 0.62-0.69 without, in alternating runs).
                let reads = matches!(
                    *request.method(),
                    axum::http::Method::GET | axum::http::Method::HEAD
                );
                let app = app.clone();
                async move {
                    if reads {
                        return app.oneshot(request).await;
                    }
                    let handling = tokio::spawn(app.oneshot(request));
                    Ok::<_, std::convert::Infallible>(match handling.await {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(e) => {
                            tracing::error!(error = %e, "request handler failed");
                            axum::response::IntoResponse::into_response(error::ApiError(
                                alga_storage_core::StorageError::internal(),
                            ))
                        }
                    })
                }
            });
        let connection = http.serve_connection(
            hyper_util::rt::TokioIo::new(protocol::EnvelopeIo::new(stream)),
            service,
        );
        let mut stopping = stopped.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop((listener, stopped));
    let _ = stop.send(());
    // Every connection holds a receiver until it is done; a stuck one is not waited for long.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), stop.closed()).await;
    Ok(())
}
