//! The storage service client: one pooled HTTP client, retries of transport failures only,
//! and the `storage_host_*` metrics.

use alga_storage_core::{ErrorCode, StorageError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the storage service is and how to talk to it.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// `STORAGE_API_BASE_URL`, e.g. `http://127.0.0.1:8787/api` (no trailing slash needed).
    pub base_url: String,
    /// `RUNNER_STORAGE_API_TOKEN`, sent as `x-runner-auth`.
    pub token: String,
    /// Retries of a transport failure (default 2).
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one (default 100 ms).
    pub backoff: Duration,
    /// Time limit of one HTTP attempt (default 10 s).
    pub timeout: Duration,
    /// Pooled connections kept per host (default 10).
    pub max_idle_connections: usize,
}

impl RunnerConfig {
    /// A configuration with the defaults of seed 002.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        RunnerConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            retries: 2,
            backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(10),
            max_idle_connections: 10,
        }
    }

    /// From `STORAGE_API_BASE_URL` and `RUNNER_STORAGE_API_TOKEN`.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        Ok(RunnerConfig::new(
            var("STORAGE_API_BASE_URL")?,
            var("RUNNER_STORAGE_API_TOKEN")?,
        ))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    operation: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

/// The host's `storage_host_*` metrics.
#[derive(Debug)]
pub struct HostMetrics {
    registry: Registry,
    ops: Family<OpLabels, Counter>,
    duration: Family<OperationLabel, Histogram>,
    inflight: Gauge,
    errors: Family<CodeLabel, Counter>,
    retries: Family<OperationLabel, Counter>,
}

impl HostMetrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let ops = Family::<OpLabels, Counter>::default();
        let duration = Family::<OperationLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let inflight = Gauge::default();
        let errors = Family::<CodeLabel, Counter>::default();
        let retries = Family::<OperationLabel, Counter>::default();
        registry.register(
            "storage_host_ops",
            "Storage calls by operation and result (ok or the error code)",
            ops.clone(),
        );
        registry.register(
            "storage_host_request_duration_seconds",
            "Time of a storage call, retries included",
            duration.clone(),
        );
        registry.register(
            "storage_host_inflight_requests",
            "Storage calls under way",
            inflight.clone(),
        );
        registry.register(
            "storage_host_errors",
            "Failed storage calls by error code (TRANSPORT when the service was unreachable)",
            errors.clone(),
        );
        registry.register(
            "storage_host_retries",
            "Retries of storage calls after a transport failure",
            retries.clone(),
        );
        HostMetrics {
            registry,
            ops,
            duration,
            inflight,
            errors,
            retries,
        }
    }

    /// The metrics in Prometheus text format.
    pub fn text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The count of `storage_host_ops_total` for one operation and result (`ok` or a code).
    pub fn ops(&self, operation: &str, result: &str) -> u64 {
        self.ops
            .get_or_create(&OpLabels {
                operation: operation.into(),
                result: result.into(),
            })
            .get()
    }

    /// The count of `storage_host_retries_total` for one operation.
    pub fn retries(&self, operation: &str) -> u64 {
        self.retries
            .get_or_create(&OperationLabel {
                operation: operation.into(),
            })
            .get()
    }
}

/// The storage service client of the runner: shared by every handler instance.
#[derive(Debug, Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    config: Arc<RunnerConfig>,
    metrics: Arc<HostMetrics>,
}

impl StorageClient {
    /// A client with one connection pool.
    pub fn new(config: RunnerConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(config.max_idle_connections)
            .timeout(config.timeout)
            .build()?;
        Ok(StorageClient {
            http,
            config: Arc::new(config),
            metrics: Arc::new(HostMetrics::new()),
        })
    }

    /// The client's metrics.
    pub fn metrics(&self) -> &HostMetrics {
        &self.metrics
    }

    /// Sends one operation for `install` and answers the service's JSON body (`null` when
    /// empty) or its error. `tenant` is used only for (hashed) logs.
    pub async fn call(
        &self,
        tenant: &str,
        install: Option<&str>,
        operation: &str,
        mut body: Map<String, Value>,
    ) -> Result<Value, StorageError> {
        let started = Instant::now();
        self.metrics.inflight.inc();
        let result = match install {
            None => Err(StorageError::new(
                ErrorCode::InternalError,
                "install_id not available",
            )),
            Some(install) => {
                body.insert("operation".into(), operation.into());
                self.send(install, operation, &body).await
            }
        };
        self.metrics.inflight.dec();
        let label = OperationLabel {
            operation: operation.into(),
        };
        self.metrics
            .duration
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) if e.is_transport() => "TRANSPORT".to_owned(),
            Err(e) => e.code().as_str().to_owned(),
        };
        if result.is_err() {
            self.metrics
                .errors
                .get_or_create(&CodeLabel {
                    code: outcome.clone(),
                })
                .inc();
        }
        // A missing record is an everyday answer, not a warning.
        let expected = matches!(&result, Err(e) if e.code() == ErrorCode::NotFound);
        if let (Err(e), false) = (&result, expected) {
            tracing::warn!(
                tenant = %hashed(tenant),
                install = %install.map(hashed).unwrap_or_default(),
                namespace = body.get("namespace").and_then(serde_json::Value::as_str).unwrap_or(""),
                operation,
                code = %outcome,
                "storage call failed: {}",
                e.message()
            );
        } else {
            tracing::debug!(tenant = %hashed(tenant), operation, "storage call ok");
        }
        self.metrics
            .ops
            .get_or_create(&OpLabels {
                operation: operation.into(),
                result: outcome,
            })
            .inc();
        result
    }

    async fn send(
        &self,
        install: &str,
        operation: &str,
        body: &Map<String, Value>,
    ) -> Result<Value, StorageError> {
        let url = format!(
            "{}/internal/ext-storage/install/{}",
            self.config.base_url,
            percent_encoding::utf8_percent_encode(install, percent_encoding::NON_ALPHANUMERIC)
        );
        let mut attempt = 0;
        loop {
            let sent = self
                .http
                .post(&url)
                .header("x-runner-auth", &self.config.token)
                .json(body)
                .send()
                .await;
            let failure = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(bytes) if (200..300).contains(&status) => {
                            return if bytes.is_empty() {
                                Ok(Value::Null)
                            } else {
                                serde_json::from_slice(&bytes).map_err(|_| {
                                    StorageError::new(
                                        ErrorCode::InternalError,
                                        "the storage service sent a malformed answer",
                                    )
                                })
                            };
                        }
                        // An answer of the service: never retried.
                        Ok(bytes) => return Err(StorageError::from_envelope(status, &bytes)),
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if attempt >= self.config.retries {
                let cause = if failure.is_timeout() {
                    alga_storage_core::TransportCause::Timeout
                } else {
                    alga_storage_core::TransportCause::Network
                };
                return Err(StorageError::transport(
                    cause,
                    format!(
                        "the storage service could not be reached ({}) after {} attempts",
                        transport_kind(&failure),
                        attempt + 1
                    ),
                ));
            }
            tokio::time::sleep(self.config.backoff * 2u32.pow(attempt)).await;
            attempt += 1;
            self.metrics
                .retries
                .get_or_create(&OperationLabel {
                    operation: operation.into(),
                })
                .inc();
        }
    }
}

/// What kind of transport failure, without the URL or other internals.
fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    }
}

/// A short, stable, non-reversible form of an id for logs.
fn hashed(id: &str) -> String {
    Sha256::digest(id.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
