//! The namespace snapshot API: a whole namespace as one JSON object with an ETag, and atomic
//! `PATCH`es of `set`/`del` operations guarded by `If-Match`.

use crate::error::{quoted, StorageError};
use crate::limits::{MAX_BULK_BYTES, MAX_PATCH_OPS};
use crate::names::Key;
use crate::ops::check_value;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One operation of a snapshot `PATCH`.
///
/// ```
/// use alga_storage_core::{parse_json, PatchOp};
/// let ops: Vec<PatchOp> = parse_json(br#"[{"op":"set","key":"foo","value":"bar"},{"op":"del","key":"old"}]"#).unwrap();
/// assert_eq!(ops.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum PatchOp {
    /// Sets or replaces a key.
    Set {
        /// The key.
        key: Key,
        /// Its new value.
        #[cfg_attr(feature = "ts", tsify(type = "JsonValue"))]
        #[serde(deserialize_with = "crate::ops::canonical::value")]
        value: Value,
    },
    /// Deletes a key (nothing happens if it does not exist).
    Del {
        /// The key.
        key: Key,
    },
}

impl PatchOp {
    /// The key the operation touches.
    pub fn key(&self) -> &Key {
        match self {
            PatchOp::Set { key, .. } | PatchOp::Del { key } => key,
        }
    }
}

/// Checks a `PATCH`: 1 to [`MAX_PATCH_OPS`] operations on distinct keys, each value within the
/// record limits, at most [`MAX_BULK_BYTES`] of values in total.
pub fn validate_patch(ops: &[PatchOp]) -> Result<(), StorageError> {
    if ops.is_empty() || ops.len() > MAX_PATCH_OPS {
        return Err(StorageError::validation(
            "body",
            format!("must hold 1-{MAX_PATCH_OPS} operations, got {}", ops.len()),
        ));
    }
    let mut total = 0;
    for (i, op) in ops.iter().enumerate() {
        // At most 100 operations: a scan of the ones before is cheaper than a set.
        if ops[..i].iter().any(|o| o.key() == op.key()) {
            return Err(StorageError::validation(
                format!("[{i}].key"),
                format!(
                    "key {} appears in more than one operation",
                    quoted(op.key().as_str())
                ),
            ));
        }
        if let PatchOp::Set { value, .. } = op {
            total += check_value(&format!("[{i}]."), value)?;
        }
    }
    if total > MAX_BULK_BYTES {
        return Err(StorageError::too_large("body", MAX_BULK_BYTES, total));
    }
    Ok(())
}

/// A whole namespace: its live records as `{key: value}` and its ETag (the namespace version;
/// `0` when the namespace is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// The ETag's number: the HTTP header is `ETag: "<etag>"`.
    pub etag: u64,
    /// The live records.
    pub data: Map<String, Value>,
}

/// Parses an `If-Match` / `ETag` value: `"5"`, `W/"5"` or bare `5`, with 1 to 19 digits (the
/// OpenAPI pattern [`ETAG_PATTERN`] says the same).
///
/// ```
/// use alga_storage_core::parse_etag;
/// assert_eq!(parse_etag("\"5\"").unwrap(), 5);
/// assert_eq!(parse_etag("W/\"5\"").unwrap(), 5);
/// assert_eq!(parse_etag("0").unwrap(), 0);
/// assert!(parse_etag("abc").is_err());
/// assert!(parse_etag("\"+5\"").is_err());
/// assert!(parse_etag("\"5").is_err());
/// ```
pub fn parse_etag(value: &str) -> Result<u64, StorageError> {
    let text = value.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    let digits = match text.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"'),
        None if text.len() == value.trim().len() => Some(text),
        None => None,
    };
    digits
        .filter(|d| (1..=19).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| {
            StorageError::validation(
                "If-Match",
                format!("{} is not an ETag of this API (\"<n>\")", quoted(value)),
            )
        })
}

/// The regular expression (ECMA-262, as in OpenAPI) of what [`parse_etag`] takes.
pub const ETAG_PATTERN: &str = r#"^\s*((W/)?"[0-9]{1,19}"|[0-9]{1,19})\s*$"#;
