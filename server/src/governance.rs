//! Limits that apply to every surface alike, enforced in one place: the per-principal rate
//! limit and the operation metrics.

use alga_storage_core::{ErrorCode, InstallId, StorageError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Buckets kept before the ones that are full again are forgotten.
const BUCKETS_BEFORE_CLEANUP: usize = 10_000;

/// A token bucket per principal (install). Kept in this server instance's memory: with several
/// instances behind a load balancer each enforces the limit on the requests it receives.
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<InstallId>>,
    clock: DefaultClock,
}

impl RateLimit {
    /// `per_second` requests per second with bursts of `burst`; `per_second == 0` turns the
    /// limit off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        RateLimit {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `principal`, or answers `RATE_LIMITED` with the seconds to wait
    /// (details: `retryAfterSeconds`, also sent as `Retry-After`).
    pub fn admit(&self, principal: &InstallId) -> Result<(), StorageError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > BUCKETS_BEFORE_CLEANUP {
            // Forget principals whose bucket is full again: they behave exactly as new ones.
            limiter.retain_recent();
        }
        limiter.check_key(principal).map_err(|not_until| {
            let wait: Duration = not_until.wait_time_from(self.clock.now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            StorageError::new(
                ErrorCode::RateLimited,
                format!("too many requests; retry in {seconds} s"),
            )
            .with_details(json!({ "retryAfterSeconds": seconds.max(1) }))
        })
    }
}

/// Which surface a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Browser REST.
    Rest,
    /// The runner's internal endpoint.
    Runner,
    /// The namespace snapshot API.
    Snapshot,
}

impl Surface {
    /// The label used in metrics and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Rest => "rest",
            Surface::Runner => "runner",
            Surface::Snapshot => "snapshot",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
    surface: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    operation: &'static str,
    surface: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    quota: String,
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

/// The server's Prometheus metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    operations: Family<OperationLabels, Counter>,
    latency: LatencyFamily,
    bytes_written: Counter,
    rate_limited: Counter,
    quota_rejections: Family<QuotaLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "storage_operations",
            "Storage operations by operation, surface and result code (OK or the error code)",
            operations.clone(),
        );
        let latency: LatencyFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0002, 2.0, 16)));
        registry.register(
            "storage_operation_duration_seconds",
            "Time to answer a storage operation",
            latency.clone(),
        );
        let bytes_written = Counter::default();
        registry.register(
            "storage_bytes_written",
            "Bytes of values written",
            bytes_written.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "storage_rate_limited",
            "Requests refused by the rate limit",
            rate_limited.clone(),
        );
        let quota_rejections = Family::<QuotaLabels, Counter>::default();
        registry.register(
            "storage_quota_rejections",
            "Writes refused because they would cross a quota, by quota",
            quota_rejections.clone(),
        );
        Metrics {
            quota_rejections,
            registry: Arc::new(registry),
            operations,
            latency,
            bytes_written,
            rate_limited,
        }
    }
}

/// The quotas an error reports: its own, or those of the items of a bulk failure.
fn quotas_named(error: &StorageError) -> Vec<&str> {
    fn quota<'a>(code: Option<&str>, details: Option<&'a serde_json::Value>) -> Option<&'a str> {
        if code != Some(ErrorCode::QuotaExceeded.as_str()) {
            return None;
        }
        details?.get("quota")?.as_str()
    }
    match error.code() {
        ErrorCode::QuotaExceeded => quota(Some(error.code().as_str()), error.details())
            .into_iter()
            .collect(),
        ErrorCode::BulkPartialFailure => error
            .details()
            .and_then(|d| d.get("items"))
            .and_then(|items| items.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| quota(i.get("code")?.as_str(), i.get("details")))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A short, stable, non-reversible identifier for logs (never the id itself).
pub fn hashed(id: &str) -> String {
    Sha256::digest(id.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Metrics {
    /// Records one answered operation.
    pub fn observe(
        &self,
        operation: &'static str,
        surface: Surface,
        result: Result<(), &StorageError>,
        elapsed: Duration,
    ) {
        let code = match result {
            Ok(()) => "OK",
            Err(e) => e.code().as_str(),
        };
        if code == ErrorCode::RateLimited.as_str() {
            self.rate_limited.inc();
        }
        if let Err(e) = result {
            for quota in quotas_named(e) {
                self.quota_rejected(quota);
            }
        }
        let surface = surface.as_str();
        tracing::info!(
            target: "alga_storage::ops",
            operation,
            surface,
            code,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "storage operation"
        );
        self.operations
            .get_or_create(&OperationLabels {
                operation,
                surface,
                code,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels { operation, surface })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a write refused by `quota`.
    pub fn quota_rejected(&self, quota: &str) {
        self.quota_rejections
            .get_or_create(&QuotaLabels {
                quota: quota.to_owned(),
            })
            .inc();
    }

    /// Counts bytes of values written.
    pub fn written(&self, bytes: usize) {
        self.bytes_written.inc_by(bytes as u64);
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refuses_past_its_burst_and_names_the_wait() {
        let limit = RateLimit::new(1, 2);
        let a: InstallId = "a".parse().unwrap();
        let b: InstallId = "b".parse().unwrap();
        assert!(limit.admit(&a).is_ok());
        assert!(limit.admit(&a).is_ok());
        let err = limit.admit(&a).unwrap_err();
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert_eq!(err.details().unwrap()["retryAfterSeconds"], 1);
        assert!(limit.admit(&b).is_ok(), "each principal has its own bucket");
        assert!(
            RateLimit::new(0, 0).admit(&a).is_ok(),
            "0 turns the limit off"
        );
    }

    #[test]
    fn buckets_of_idle_principals_are_forgotten() {
        let limit = RateLimit::new(1000, 2000);
        for i in 0..=BUCKETS_BEFORE_CLEANUP {
            limit.admit(&format!("p{i}").parse().unwrap()).unwrap();
        }
        let limiter = limit.limiter.as_ref().unwrap();
        assert!(limiter.len() > BUCKETS_BEFORE_CLEANUP);
        std::thread::sleep(Duration::from_millis(20));
        limit.admit(&"one-more".parse().unwrap()).unwrap();
        assert!(limiter.len() < 100, "{} buckets kept", limiter.len());
    }

    #[test]
    fn hashes_are_short_and_hide_the_id() {
        let h = hashed("tenant-1");
        assert_eq!(h.len(), 12);
        assert!(!h.contains("tenant"));
        assert_eq!(h, hashed("tenant-1"));
    }
}
