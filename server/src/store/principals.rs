//! The per-instance cache of principals (install → tenant and grants), so that admitting a
//! request costs no database round trip.
//!
//! Revocation and grant changes stay immediate on every instance: the instance that makes the
//! change evicts the install at once, and the store tells every other instance (Postgres:
//! `NOTIFY` in the changing statement's transaction, each instance `LISTEN`s; the embedded
//! store serves one process). A notification lost while an instance's listening connection was
//! down cannot leave a stale entry behind: the listener empties the cache when it reconnects.
//! Entries also expire after [`PrincipalCache::TTL`], a safety net only.

use super::{Principal, Store, StoreError};
use alga_storage_core::InstallId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most entries kept; past it the cache is emptied (a principal costs one lookup to reload).
const CAPACITY: usize = 100_000;

/// The channel on which a Postgres store announces every change of an install (the payload is
/// the install id).
pub const CHANNEL: &str = "alga_storage_principals";

/// When a lookup was made, and what it found (`None`: no such install).
type Entry = (Instant, Option<Arc<Principal>>);

/// Cached lookups, unknown installs included (so a flood of requests for a revoked install does
/// not reach the database either).
#[derive(Debug, Default)]
pub struct PrincipalCache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Advanced by every eviction: a lookup that started before one is not cached.
    generation: AtomicU64,
    /// Dropped with the cache, which tells its listener to stop.
    alive: tokio::sync::watch::Sender<()>,
    /// Counts evictions, for whoever holds a principal beyond one request (open watches).
    evictions: tokio::sync::watch::Sender<u64>,
}

impl PrincipalCache {
    /// Resolves once the cache is dropped (for the task that keeps it in step).
    pub fn dropped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut alive = self.alive.subscribe();
        async move { while alive.changed().await.is_ok() {} }
    }

    /// How long an entry is trusted without a notification.
    pub const TTL: Duration = Duration::from_secs(5);

    /// The principal of `install`, from the cache or else from `store` (shared, not copied:
    /// this runs for every request).
    pub async fn principal(
        &self,
        store: &dyn Store,
        install: &InstallId,
    ) -> Result<Option<Arc<Principal>>, StoreError> {
        if let Some((at, principal)) = self.lock().get(install.as_str()) {
            if at.elapsed() < Self::TTL {
                return Ok(principal.clone());
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let principal = store.principal(install).await?.map(Arc::new);
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(
                install.as_str().to_owned(),
                (Instant::now(), principal.clone()),
            );
        }
        Ok(principal)
    }

    /// Forgets `install` (its grants changed, or it was revoked).
    pub fn evict(&self, install: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.lock().remove(install);
        self.evictions.send_modify(|n| *n += 1);
    }

    /// Forgets everything (notifications may have been missed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.lock().clear();
        self.evictions.send_modify(|n| *n += 1);
    }

    /// Changes whenever an install may have changed: who holds a principal for longer than a
    /// request looks it up again then.
    pub fn evictions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.evictions.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
