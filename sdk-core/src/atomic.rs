//! Atomic operations: `getMany` (one consistent read of up to 100 keys) and `atomic` (checks,
//! then puts, deletes and increments on distinct keys, all or nothing). The types and every rule
//! that needs no database live here; the server's store applies them in one transaction.

use crate::error::quoted;
use crate::limits::*;
use crate::names::{Key, Namespace, Revision, TtlSeconds, WholeNumber};
use crate::ops::{canonical, check_record, distinct, not_null, parse_json, Metadata, Record};
use crate::StorageError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The most keys one `getMany` reads.
pub const MAX_GET_MANY_KEYS: usize = 100;
/// The most checks one `atomic` carries.
pub const MAX_ATOMIC_CHECKS: usize = 20;
/// The most operations one `atomic` carries.
pub const MAX_ATOMIC_OPERATIONS: usize = 20;

/// The body of `POST /api/ext-storage/{ns}:getMany`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetManyBody {
    /// 1 to [`MAX_GET_MANY_KEYS`] distinct keys.
    pub keys: Vec<Key>,
}

/// `storage.getMany`: several records of one namespace, read at one point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetManyRequest {
    /// Namespace of the records.
    pub namespace: Namespace,
    /// 1 to [`MAX_GET_MANY_KEYS`] distinct keys.
    pub keys: Vec<Key>,
}

/// Answer to `getMany`: one entry per requested key, in request order; `null` where the record
/// is missing or expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct GetManyResponse<V = Value> {
    /// The records, in the order of the request's keys.
    pub items: Vec<Option<Record<V>>>,
}

/// A condition of an `atomic`: the record's current revision must be `revision` (`0`: the
/// record must not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtomicCheck {
    /// The record checked.
    pub key: Key,
    /// Its expected revision; `0` = must not exist (or be expired).
    pub revision: Revision,
}

/// One write of an `atomic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum AtomicOperation {
    /// Write a record, as `put` does (no guard: `checks` are the guards of an `atomic`).
    #[serde(rename_all = "camelCase")]
    Put {
        /// The record.
        key: Key,
        /// Its value.
        #[serde(deserialize_with = "canonical::value")]
        value: Value,
        /// Its metadata (absent = `{}`, never `null`).
        #[serde(
            default,
            deserialize_with = "canonical::metadata",
            skip_serializing_if = "Option::is_none"
        )]
        metadata: Option<Metadata>,
        /// Time to live (absent = keep forever, never `null`).
        #[serde(
            default,
            deserialize_with = "not_null",
            skip_serializing_if = "Option::is_none"
        )]
        ttl_seconds: Option<TtlSeconds>,
    },
    /// Delete a record (a missing one is no error, as an unguarded `delete`).
    Delete {
        /// The record.
        key: Key,
    },
    /// Add `delta` to an integer value; a missing record counts as 0 and is created. The
    /// record keeps its metadata; its expiry is `ttlSeconds` from now if given, else kept.
    #[serde(rename_all = "camelCase")]
    Increment {
        /// The record.
        key: Key,
        /// What to add (a whole number; may be negative).
        delta: WholeNumber,
        /// Time to live from now (absent = keep the record's expiry, never `null`).
        #[serde(
            default,
            deserialize_with = "not_null",
            skip_serializing_if = "Option::is_none"
        )]
        ttl_seconds: Option<TtlSeconds>,
    },
}

impl AtomicOperation {
    /// The key the operation writes.
    pub fn key(&self) -> &Key {
        match self {
            AtomicOperation::Put { key, .. }
            | AtomicOperation::Delete { key }
            | AtomicOperation::Increment { key, .. } => key,
        }
    }

    /// The wire name of the operation (also its audit operation).
    pub fn name(&self) -> &'static str {
        match self {
            AtomicOperation::Put { .. } => "put",
            AtomicOperation::Delete { .. } => "delete",
            AtomicOperation::Increment { .. } => "increment",
        }
    }
}

/// The body of `POST /api/ext-storage/{ns}:atomic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtomicBody {
    /// Up to [`MAX_ATOMIC_CHECKS`] conditions (absent = none).
    #[serde(default)]
    pub checks: Vec<AtomicCheck>,
    /// 1 to [`MAX_ATOMIC_OPERATIONS`] writes on distinct keys.
    pub operations: Vec<AtomicOperation>,
}

impl AtomicBody {
    /// Combines the body with the namespace of the path.
    pub fn into_request(self, namespace: Namespace) -> AtomicRequest {
        AtomicRequest {
            namespace,
            checks: self.checks,
            operations: self.operations,
        }
    }
}

impl GetManyBody {
    /// Combines the body with the namespace of the path.
    pub fn into_request(self, namespace: Namespace) -> GetManyRequest {
        GetManyRequest {
            namespace,
            keys: self.keys,
        }
    }
}

/// `storage.atomic`: checks, then writes, in one transaction: all or nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtomicRequest {
    /// Namespace of every key.
    pub namespace: Namespace,
    /// Conditions (absent = none; `null` is refused).
    #[serde(default)]
    pub checks: Vec<AtomicCheck>,
    /// The writes.
    pub operations: Vec<AtomicOperation>,
}

/// The outcome of one operation of an `atomic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtomicResult {
    /// The record written.
    pub key: Key,
    /// Its new revision (`null` after a delete).
    #[cfg_attr(feature = "ts", tsify(type = "number | null"))]
    pub revision: Option<u64>,
    /// The new value, for an increment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

/// Answer to `atomic`: one result per operation, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AtomicResponse {
    /// The results.
    pub results: Vec<AtomicResult>,
}

/// A check that did not hold: the key and its current revision (`0` when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedCheck {
    /// The key checked.
    pub key: String,
    /// Its current revision.
    pub current_revision: u64,
}

impl GetManyRequest {
    /// Checks the key count and that keys are distinct.
    pub fn validate(&self) -> Result<(), StorageError> {
        distinct(
            "keys",
            self.keys.iter().map(Key::as_str),
            MAX_GET_MANY_KEYS,
            |i| format!("keys[{i}]"),
        )
    }

    /// Parses and validates a REST body for `namespace`.
    pub fn from_body(namespace: Namespace, body: &[u8]) -> Result<Self, StorageError> {
        let request = parse_json::<GetManyBody>(body)?.into_request(namespace);
        request.validate()?;
        Ok(request)
    }
}

impl AtomicRequest {
    /// Checks counts, distinct keys, sizes and values; nothing that needs the database.
    pub fn validate(&self) -> Result<(), StorageError> {
        if !self.checks.is_empty() {
            distinct(
                "checks",
                self.checks.iter().map(|c| c.key.as_str()),
                MAX_ATOMIC_CHECKS,
                |i| format!("checks[{i}].key"),
            )?;
        }
        distinct(
            "operations",
            self.operations.iter().map(|o| o.key().as_str()),
            MAX_ATOMIC_OPERATIONS,
            |i| format!("operations[{i}].key"),
        )?;
        let mut total = 0;
        for (i, op) in self.operations.iter().enumerate() {
            if let AtomicOperation::Put {
                value, metadata, ..
            } = op
            {
                total += check_record(&format!("operations[{i}]."), value, metadata.as_ref())?;
            }
        }
        if total > MAX_BULK_BYTES {
            return Err(StorageError::too_large("operations", MAX_BULK_BYTES, total));
        }
        Ok(())
    }

    /// Parses and validates a REST body for `namespace`.
    pub fn from_body(namespace: Namespace, body: &[u8]) -> Result<Self, StorageError> {
        let request = parse_json::<AtomicBody>(body)?.into_request(namespace);
        request.validate()?;
        Ok(request)
    }

    /// Whether the request reads what it does not write: checks report current revisions and
    /// increments answer values, so both need read access besides write.
    pub fn reads(&self) -> bool {
        !self.checks.is_empty()
            || self
                .operations
                .iter()
                .any(|o| matches!(o, AtomicOperation::Increment { .. }))
    }
}

/// The checks that do not hold, given each checked key's current live revision (`0` when
/// absent or expired); as `REVISION_MISMATCH` with `details.failedChecks`.
pub fn failed_checks(
    checks: &[AtomicCheck],
    current: impl Fn(&str) -> u64,
) -> Result<(), StorageError> {
    let failed: Vec<FailedCheck> = checks
        .iter()
        .filter_map(|c| {
            let now = current(c.key.as_str());
            (now != c.revision.get()).then(|| FailedCheck {
                key: c.key.as_str().to_owned(),
                current_revision: now,
            })
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(StorageError::new(
        crate::ErrorCode::RevisionMismatch,
        format!("{} check(s) failed; nothing was written", failed.len()),
    )
    .with_details(json!({ "failedChecks": failed })))
}

/// The value increment number `index` of an `atomic` writes: the current value (absent = 0)
/// plus `delta`. A current value that is not an integer, or a sum past the i64 range, is
/// `VALIDATION_FAILED` naming the operation and its key.
///
/// ```
/// use alga_storage_core::incremented;
/// use serde_json::json;
/// assert_eq!(incremented(0, "k", Some(&json!(41)), 1).unwrap(), 42);
/// assert_eq!(incremented(0, "k", None, -3).unwrap(), -3);
/// let e = incremented(2, "k", Some(&json!("x")), 1).unwrap_err();
/// assert_eq!(e.details().unwrap()["field"], "operations[2].key");
/// assert!(incremented(0, "k", Some(&json!(i64::MAX)), 1).is_err());
/// ```
pub fn incremented(
    index: usize,
    key: &str,
    current: Option<&Value>,
    delta: i64,
) -> Result<i64, StorageError> {
    let base = match current {
        None => 0,
        Some(value) => value.as_i64().ok_or_else(|| {
            StorageError::validation(
                format!("operations[{index}].key"),
                format!(
                    "cannot increment {}: its value is not an integer",
                    quoted(key)
                ),
            )
        })?,
    };
    base.checked_add(delta).ok_or_else(|| {
        StorageError::validation(
            format!("operations[{index}].delta"),
            format!(
                "incrementing {} by {delta} leaves the 64-bit integer range",
                quoted(key)
            ),
        )
    })
}
