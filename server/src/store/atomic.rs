//! The rule of `atomic`, written once for both backends: lock every key involved, evaluate the
//! checks, apply the operations in request order, audit each, and advance the namespace version
//! by what changed. A backend supplies only `AtomicTx`: its dialect's statements on one
//! open transaction.

use super::StoreError;
use alga_storage_core::{
    failed_checks, incremented, AtomicOperation, AtomicRequest, AtomicResponse, AtomicResult,
    Metadata, StorageError, TtlSeconds,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// A record as the transaction found it, locked.
#[derive(Debug, Clone)]
pub(crate) struct Locked {
    /// Whether it has not expired.
    pub live: bool,
    /// Its revision (meaningful only when live).
    pub revision: u64,
    /// Its value.
    pub value: Value,
    /// Its metadata.
    pub metadata: Metadata,
    /// When it expires.
    pub ttl_expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// When a written record expires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry {
    /// Never.
    Never,
    /// This long after the database's now.
    In(TtlSeconds),
    /// At this instant (kept from the record).
    At(DateTime<Utc>),
}

/// One record to write: a live record gets its revision plus one, an absent or expired one
/// starts again at 1.
pub(crate) struct Put<'a> {
    pub key: &'a str,
    pub value: &'a Value,
    pub metadata: Option<&'a Metadata>,
    pub expiry: Expiry,
    /// The row the transaction locked for the key (`None`: there was none, so the key is
    /// written only if there still is none, else [`Contended`]).
    pub found: Option<&'a Locked>,
}

impl Put<'_> {
    /// The revision and creation time the write gives the record: a live one goes on from its
    /// row, an absent or expired one starts again at revision 1, created `now`.
    pub fn revision_and_created(&self, now: DateTime<Utc>) -> (u64, DateTime<Utc>) {
        let live = self.found.filter(|row| row.live);
        super::next_revision(live.map(|row| (row.revision, row.created_at)), now)
    }
}

/// Another transaction created a key this one found absent: run the whole `atomic` again.
#[derive(Debug)]
pub(crate) struct Contended;

/// One backend's statements on an open write transaction.
#[async_trait]
pub(crate) trait AtomicTx: Send {
    /// Serialises this transaction with every other `atomic` naming any of `keys` (sorted),
    /// whether or not a record exists for them: a check on a key the write does not touch is
    /// only a read, which row locks alone would not protect (two writes each checking that the
    /// other's key is absent could both commit). Nothing to do where writes are serial anyway.
    async fn guard(&mut self, keys: &[&str]) -> Result<(), StoreError>;
    /// Locks the existing rows of `keys` (sorted, so concurrent transactions lock in one order)
    /// and answers them by key.
    async fn lock(&mut self, keys: &[&str]) -> Result<HashMap<String, Locked>, StoreError>;
    /// Writes one record and answers its new revision; `Ok(None)` when a key found absent met a
    /// row created meanwhile.
    async fn write(&mut self, put: &Put<'_>) -> Result<Option<u64>, StoreError>;
    /// Deletes one record (it exists: it was locked).
    async fn delete(&mut self, key: &str) -> Result<(), StoreError>;
    /// One audit row.
    async fn audit(
        &mut self,
        key: &str,
        operation: &str,
        revision: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Sweeps a bounded batch of expired records (never one of `keys`) and advances the
    /// namespace version by what was swept plus `changes`.
    async fn finish(&mut self, changes: i64, keys: &[&str]) -> Result<(), StoreError>;
}

/// Accepts (or refuses, as `VALIDATION_FAILED`) the value operation `index` is about to write:
/// the namespace's JSON Schema (an increment's value is only known inside the transaction).
pub type Accept<'a> = &'a (dyn Fn(usize, &Value) -> Result<(), StorageError> + Send + Sync);

/// Runs an `atomic` on `tx`. On `Err(Contended)` nothing must be committed and the caller runs
/// it again.
pub(crate) async fn run<T: AtomicTx>(
    tx: &mut T,
    req: &AtomicRequest,
    accept: Accept<'_>,
) -> Result<Result<AtomicResponse, Contended>, StoreError> {
    let mut keys: Vec<&str> = req
        .checks
        .iter()
        .map(|c| c.key.as_str())
        .chain(req.operations.iter().map(|o| o.key().as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // A key only checked, never written, is a read that must hold until commit (written keys
    // are protected by their row locks and create-only writes): guard every key of the write,
    // so that two writes that check each other's keys meet.
    if keys.len() > req.operations.len() {
        tx.guard(&keys).await?;
    }
    let found = tx.lock(&keys).await?;
    let live = |key: &str| found.get(key).filter(|row| row.live);
    failed_checks(&req.checks, |key| live(key).map_or(0, |row| row.revision))?;

    let mut results = Vec::with_capacity(req.operations.len());
    let mut changes = 0_i64;
    for (index, op) in req.operations.iter().enumerate() {
        let key = op.key().as_str();
        let row = found.get(key);
        // A row that had expired is removed or replaced: one more change of the namespace.
        let expired = row.is_some_and(|r| !r.live);
        let current = live(key);
        let (value, metadata, expiry, increment) = match op {
            AtomicOperation::Delete { .. } => {
                if row.is_some() {
                    tx.delete(key).await?;
                    tx.audit(key, "delete", None).await?;
                    changes += super::changes_of(expired);
                }
                results.push(AtomicResult {
                    key: op.key().clone(),
                    revision: None,
                    value: None,
                });
                continue;
            }
            AtomicOperation::Put {
                value,
                metadata,
                ttl_seconds,
                ..
            } => (
                Cow::Borrowed(value),
                metadata.as_ref(),
                ttl_seconds.map_or(Expiry::Never, Expiry::In),
                None,
            ),
            AtomicOperation::Increment {
                delta, ttl_seconds, ..
            } => {
                let n = incremented(index, key, current.map(|r| &r.value), i64::from(*delta))?;
                let expiry = match (ttl_seconds, current.and_then(|r| r.ttl_expires_at)) {
                    (Some(ttl), _) => Expiry::In(*ttl),
                    (None, Some(at)) => Expiry::At(at),
                    (None, None) => Expiry::Never,
                };
                (
                    Cow::Owned(Value::from(n)),
                    current.map(|r| &r.metadata),
                    expiry,
                    Some(n),
                )
            }
        };
        // The namespace's schema judges what is written, as for a single put.
        accept(index, &value)?;
        let written = tx
            .write(&Put {
                key,
                value: &value,
                metadata,
                expiry,
                found: row,
            })
            .await?;
        let Some(revision) = written else {
            return Ok(Err(Contended));
        };
        tx.audit(key, op.name(), Some(revision)).await?;
        changes += super::changes_of(expired);
        results.push(AtomicResult {
            key: op.key().clone(),
            revision: Some(revision),
            value: increment,
        });
    }
    let written: Vec<&str> = req.operations.iter().map(|o| o.key().as_str()).collect();
    tx.finish(changes, &written).await?;
    Ok(Ok(AtomicResponse { results }))
}
