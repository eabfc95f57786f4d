//! The background sweeper: removes expired records in bounded batches, so that reads never
//! write. Expired records are invisible to every read at once; the sweeper (and the writes of
//! a namespace, a small batch each) only reclaim their rows. It also prunes the change log past
//! its retention, in batches of the same size.

use super::{Retention, Store};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Most batches one pass runs back to back when each comes back full (then it waits for the
/// next interval, so a huge backlog never monopolises the database).
const BATCHES_PER_PASS: u32 = 20;

/// Starts the sweeper of `store` on the current tokio runtime: every `interval`, removes
/// batches of at most `batch` expired records until one comes back short (telling the change
/// feed's watchers), then prunes the change log past `retention` the same way. Does nothing
/// when `interval` is zero or no runtime is running; stops once the store is dropped.
pub fn spawn(store: &Arc<dyn Store>, interval: Duration, batch: u32, retention: Retention) {
    if interval.is_zero() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let store: Weak<dyn Store> = Arc::downgrade(store);
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else {
                return;
            };
            for _ in 0..BATCHES_PER_PASS {
                match store.sweep_expired(batch).await {
                    Ok(removed) => {
                        let full = removed.len() >= batch as usize;
                        let changed: std::collections::BTreeSet<_> = removed.into_iter().collect();
                        for (tenant, namespace) in changed {
                            store.feed().changed(tenant, &namespace);
                        }
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the expiry sweeper could not sweep; retrying next pass");
                        break;
                    }
                }
            }
            for _ in 0..BATCHES_PER_PASS {
                match store.prune_changes(&retention, batch).await {
                    Ok(pruned) if pruned >= u64::from(batch) => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "the sweeper could not prune the change log; retrying next pass");
                        break;
                    }
                }
            }
        }
    });
}
