//! The rule of `bulkPut`, written once for both backends: lock every key, refuse the whole write
//! when any item's guard does not hold (naming each such item), write every item (a guard of
//! `0` makes its key create-only), advance the namespace version by what changed, and audit
//! each item in request order with the namespace's latest sequence numbers. A backend supplies
//! only [`BulkTx`]: its dialect's statements on one open transaction, which the caller commits
//! on success and rolls back otherwise.

use super::{guard_holds, StoreError, Written};
use alga_storage_core::{
    BulkItemError, BulkPutItem, BulkPutRequest, BulkPutResponse, BulkPutResultItem, StorageError,
};
use async_trait::async_trait;
use std::collections::HashMap;

/// One backend's statements on an open write transaction of one namespace.
#[async_trait]
pub(crate) trait BulkTx: Send {
    /// Locks the stored rows of `keys` and answers each one's live revision (`0` when it has
    /// expired); keys with no row are absent from the answer.
    async fn lock(&mut self, keys: &[&str]) -> Result<HashMap<String, u64>, StoreError>;
    /// Writes every item (a live record goes on to its next revision, an absent or expired one
    /// starts at 1); a key of `create_only` that met a live row created since the lock is left
    /// out of the answer.
    async fn write(
        &mut self,
        items: &[BulkPutItem],
        create_only: &[&str],
    ) -> Result<HashMap<String, Written>, StoreError>;
    /// The live revision of a key now (`0` when there is none).
    async fn live_revision(&mut self, key: &str) -> Result<u64, StoreError>;
    /// Sweeps a bounded batch of expired records (never one of `keys`), advances the namespace
    /// version by what was swept plus `changes`, and answers the new version.
    async fn finish(&mut self, changes: i64, keys: &[&str]) -> Result<i64, StoreError>;
    /// The audit rows of the items (operation `bulkPut`), in order, with sequence numbers from
    /// `first_seq` on.
    async fn audit(
        &mut self,
        keys: &[&str],
        revisions: &[u64],
        first_seq: i64,
    ) -> Result<(), StoreError>;
}

fn mismatch(index: usize, key: &str, current: u64) -> BulkItemError {
    BulkItemError::new(index, key, &StorageError::revision_mismatch(current))
}

/// Runs a `bulkPut` on `tx`; on an error nothing must be committed.
pub(crate) async fn run<T: BulkTx>(
    tx: &mut T,
    req: &BulkPutRequest,
) -> Result<BulkPutResponse, StoreError> {
    let keys: Vec<&str> = req.items.iter().map(|i| i.key.as_str()).collect();
    let found = tx.lock(&keys).await?;
    let live = |key: &str| found.get(key).copied().unwrap_or(0);
    let failures: Vec<BulkItemError> = req
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let key = item.key.as_str();
            guard_holds(item.if_revision, live(key))
                .err()
                .map(|current| mismatch(i, key, current))
        })
        .collect();
    if !failures.is_empty() {
        return Err(StorageError::bulk_partial_failure(failures).into());
    }
    let create_only: Vec<&str> = req
        .items
        .iter()
        .filter(|i| i.if_revision.is_some_and(|r| r.get() == 0))
        .map(|i| i.key.as_str())
        .collect();
    let written = tx.write(&req.items, &create_only).await?;
    if written.len() != req.items.len() {
        // A create-only key was created by another writer after the lock.
        let mut failures = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if !written.contains_key(*key) {
                failures.push(mismatch(i, key, tx.live_revision(key).await?));
            }
        }
        return Err(StorageError::bulk_partial_failure(failures).into());
    }
    // Each item changed a record; each that replaced an expired one also removed an expiry.
    let expired_replaced = found.values().filter(|r| **r == 0).count();
    let version = tx
        .finish((keys.len() + expired_replaced) as i64, &keys)
        .await?;
    let revisions: Vec<u64> = keys.iter().map(|k| written[*k].revision).collect();
    tx.audit(&keys, &revisions, version - keys.len() as i64 + 1)
        .await?;
    let items = req
        .items
        .iter()
        .map(|item| {
            let w = &written[item.key.as_str()];
            BulkPutResultItem {
                key: item.key.clone(),
                revision: w.revision,
                ttl_expires_at: w.ttl_expires_at,
                created_at: Some(w.created_at),
                updated_at: Some(w.updated_at),
            }
        })
        .collect();
    Ok(BulkPutResponse { items })
}
