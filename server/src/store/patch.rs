//! The rule of a snapshot `PATCH`, written once for both backends: check the ETag, apply the
//! deletions and then the sets (so a patch that frees room for its own sets fits its quota),
//! audit each change in the order applied with the namespace's next sequence numbers, and
//! advance the namespace version by what changed. A backend supplies only [`PatchTx`]: its
//! dialect's statements on one open transaction. The snapshot ETag rule ([`etag`]) lives here
//! too, for reads and patches alike.

use super::{precondition_failed, StoreError};
use alga_storage_core::{PatchOp, Snapshot};
use async_trait::async_trait;
use serde_json::{Map, Value};

/// A namespace's version and its record counts, as one transaction sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NamespaceState {
    /// The namespace version (every change so far).
    pub version: i64,
    /// Records that have not expired.
    pub live: i64,
    /// Records that have expired but are still stored.
    pub expired: i64,
}

/// The snapshot ETag of a namespace: `0` while it holds no live record, else its version plus
/// the expired records still stored (each expiry changed what a snapshot holds, and removing
/// the record later does not change it again: the removal advances the version by one).
pub(crate) fn etag(version: i64, any_live: bool, expired: i64) -> u64 {
    if any_live {
        (version + expired) as u64
    } else {
        0
    }
}

impl NamespaceState {
    /// This state's snapshot ETag (see [`etag`]).
    pub fn etag(&self) -> u64 {
        etag(self.version, self.live > 0, self.expired)
    }
}

/// One backend's statements on an open write transaction of one namespace.
#[async_trait]
pub(crate) trait PatchTx: Send {
    /// Locks the rows of `keys`, where concurrent writers could otherwise interleave (nothing
    /// to do where writes are serial).
    async fn lock(&mut self, keys: &[&str]) -> Result<(), StoreError>;
    /// The namespace's version and record counts.
    async fn state(&mut self) -> Result<NamespaceState, StoreError>;
    /// Deletes the records of `keys` and audits each that existed (operation `del`), in the
    /// order of `keys`, with sequence numbers from `first_seq` on; answers how many existed.
    async fn delete(&mut self, keys: &[&str], first_seq: i64) -> Result<i64, StoreError>;
    /// Writes each record (a live one goes on to its next revision, an absent or expired one
    /// starts at 1; no metadata, no expiry) and audits it (operation `set`), in order, with
    /// sequence numbers from `first_seq` on.
    async fn set(&mut self, sets: &[(&str, &Value)], first_seq: i64) -> Result<(), StoreError>;
    /// Moves the namespace version from `from` to `to`; `false` when another write moved it
    /// since `from` was read.
    async fn advance(&mut self, from: i64, to: i64) -> Result<bool, StoreError>;
    /// The live records of the namespace as `{key: value}`.
    async fn live_data(&mut self) -> Result<Map<String, Value>, StoreError>;
}

/// Another write committed to the namespace after its ETag was checked: nothing must be
/// committed, and the caller answers `PRECONDITION_FAILED` with the current ETag.
#[derive(Debug)]
pub(crate) struct Moved;

/// Runs a patch whose `If-Match` is `if_match` on `tx`.
pub(crate) async fn run<T: PatchTx>(
    tx: &mut T,
    if_match: u64,
    ops: &[PatchOp],
) -> Result<Result<Snapshot, Moved>, StoreError> {
    let keys: Vec<&str> = ops.iter().map(|op| op.key().as_str()).collect();
    tx.lock(&keys).await?;
    let before = tx.state().await?;
    let current = before.etag();
    if current != if_match {
        return Err(precondition_failed(current).into());
    }
    let (dels, sets): (Vec<&PatchOp>, Vec<&PatchOp>) =
        ops.iter().partition(|op| matches!(op, PatchOp::Del { .. }));
    let dels: Vec<&str> = dels.iter().map(|op| op.key().as_str()).collect();
    let sets: Vec<(&str, &Value)> = sets
        .iter()
        .filter_map(|op| match op {
            PatchOp::Set { key, value } => Some((key.as_str(), value)),
            PatchOp::Del { .. } => None,
        })
        .collect();
    let deleted = tx.delete(&dels, before.version + 1).await?;
    tx.set(&sets, before.version + 1 + deleted).await?;
    let after = tx.state().await?;
    // Every operation is a change of the namespace, and so is every expired record a set
    // replaced (or a deletion removed).
    let version = before.version + ops.len() as i64 + (before.expired - after.expired);
    if !tx.advance(before.version, version).await? {
        return Ok(Err(Moved));
    }
    let data = tx.live_data().await?;
    Ok(Ok(Snapshot {
        etag: etag(version, !data.is_empty(), after.expired),
        data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_is_zero_without_live_records_and_counts_expiries() {
        assert_eq!(etag(7, false, 2), 0);
        assert_eq!(etag(7, true, 0), 7);
        assert_eq!(etag(7, true, 2), 9);
        let state = NamespaceState {
            version: 3,
            live: 1,
            expired: 1,
        };
        assert_eq!(state.etag(), 4);
    }
}
