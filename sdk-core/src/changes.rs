//! The change feed (DESIGN § "Change feed"): every change of a namespace's records (a write, a
//! delete, an expiry) has a sequence number, strictly increasing within the namespace; a reader
//! asks for the changes after the last number it saw. The types and the page rules live here;
//! the server's store keeps the log.

use crate::limits::MAX_LIST_LIMIT;
use crate::names::{InvalidValue, Key, Limit, Namespace, WholeNumber};
use crate::ops::not_null;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A position in a namespace's change feed: the sequence number of the last change a reader
/// has seen (`0`: before the first). At most `i64::MAX`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct Sequence(u64);

impl Sequence {
    /// Validates a sequence number.
    pub fn new(seq: i64) -> Result<Self, InvalidValue> {
        u64::try_from(seq).map(Sequence).map_err(|_| {
            InvalidValue::new(
                "after",
                format!("must be between 0 and {}, got {seq}", i64::MAX),
            )
        })
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<WholeNumber> for Sequence {
    type Error = InvalidValue;
    fn try_from(value: WholeNumber) -> Result<Self, InvalidValue> {
        Sequence::new(i64::from(value))
    }
}

impl From<Sequence> for u64 {
    fn from(value: Sequence) -> u64 {
        value.0
    }
}

/// `storage.changes`: the changes of one namespace after a sequence number, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangesRequest {
    /// Namespace whose changes are read.
    pub namespace: Namespace,
    /// The last sequence number already seen (`nextAfter` of the previous page; absent: `0`).
    #[serde(default)]
    pub after: Sequence,
    /// Page size, 1 to [`MAX_LIST_LIMIT`] (absent: [`MAX_LIST_LIMIT`]), never `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub limit: Option<Limit>,
    /// Only changes of keys starting with this literal prefix; absent, never `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub key_prefix: Option<String>,
}

impl ChangesRequest {
    /// Checks the key prefix (as a list's).
    pub fn validate(&self) -> Result<(), crate::StorageError> {
        crate::ops::check_key_prefix(self.key_prefix.as_deref())
    }

    /// The page size asked for.
    pub fn page_size(&self) -> u8 {
        self.limit.map_or(MAX_LIST_LIMIT, Limit::get)
    }
}

/// What a change did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub enum ChangeOp {
    /// The record was written (put, bulkPut item, snapshot set, atomic put or increment).
    Put,
    /// The record is gone (deleted, or removed after it expired: then `expired` is `true`).
    Delete,
}

/// One change of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Change {
    /// Its sequence number in the namespace.
    pub seq: u64,
    /// The record's key.
    pub key: Key,
    /// What happened.
    pub op: ChangeOp,
    /// The record's revision after a put (`null` after a delete).
    #[cfg_attr(feature = "ts", tsify(type = "number | null"))]
    pub revision: Option<u64>,
    /// `true` when the record was removed because its TTL had passed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", tsify(optional))]
    pub expired: bool,
    /// The value written (watches opened with `includeValues`, while the record still has this
    /// revision; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", tsify(optional, type = "JsonValue"))]
    pub value: Option<Value>,
}

/// A page of changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangesResponse {
    /// The changes after the request's `after`, oldest first.
    pub changes: Vec<Change>,
    /// What to pass as `after` next (the last change read, or the namespace's latest sequence
    /// number when the page reached the end).
    pub next_after: u64,
    /// `true` when `after` is older than the log keeps (or newer than the namespace has): the
    /// changes since are unknown, so read the namespace anew and go on from `nextAfter`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", tsify(optional))]
    pub reset: bool,
}

/// The state of a namespace's log that a page is cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogBounds {
    /// The namespace's latest sequence number (every change up to it is in the log or pruned).
    pub latest: u64,
    /// The highest sequence number whose change is no longer in the log.
    pub pruned: u64,
}

impl LogBounds {
    /// Whether a reader at `after` has missed changes the log no longer holds (or names a
    /// position the namespace never reached).
    pub fn lost(self, after: u64) -> bool {
        after < self.pruned || after > self.latest
    }

    /// The page for a reader at `after`, from the changes read after it (at most `limit`,
    /// oldest first, with the same bounds): a `reset` when [`LogBounds::lost`].
    pub fn page(self, after: u64, limit: usize, changes: Vec<Change>) -> ChangesResponse {
        if self.lost(after) {
            return ChangesResponse {
                changes: Vec::new(),
                next_after: self.latest,
                reset: true,
            };
        }
        let next_after = match changes.last() {
            Some(last) if changes.len() >= limit => last.seq,
            _ => self.latest.max(after),
        };
        ChangesResponse {
            changes,
            next_after,
            reset: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: u64) -> Change {
        Change {
            seq,
            key: Key::new("k").unwrap(),
            op: ChangeOp::Put,
            revision: Some(1),
            expired: false,
            value: None,
        }
    }

    #[test]
    fn a_full_page_continues_after_its_last_change_and_a_short_one_at_the_latest() {
        let bounds = LogBounds {
            latest: 40,
            pruned: 0,
        };
        let full = bounds.page(0, 2, vec![change(3), change(7)]);
        assert_eq!((full.next_after, full.reset), (7, false));
        let short = bounds.page(7, 2, vec![change(9)]);
        assert_eq!(short.next_after, 40);
        let empty = bounds.page(40, 2, vec![]);
        assert_eq!((empty.next_after, empty.changes.len()), (40, 0));
    }

    #[test]
    fn a_position_before_the_pruned_log_or_past_the_latest_is_a_reset() {
        let bounds = LogBounds {
            latest: 40,
            pruned: 10,
        };
        assert!(!bounds.lost(10));
        for after in [0, 9, 41] {
            let page = bounds.page(after, 5, vec![]);
            assert!(page.reset && page.changes.is_empty() && page.next_after == 40);
        }
        let json = serde_json::to_value(bounds.page(10, 5, vec![change(11)])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"changes":[{"seq":11,"key":"k","op":"put","revision":1}],"nextAfter":40})
        );
    }

    #[test]
    fn a_request_is_strict() {
        let parse = |text: &str| crate::parse_json::<ChangesRequest>(text.as_bytes());
        let ok = parse(r#"{"namespace":"notes"}"#).unwrap();
        assert_eq!((ok.after.get(), ok.page_size()), (0, MAX_LIST_LIMIT));
        for (body, field) in [
            (r#"{"namespace":"notes","after":-1}"#, "after"),
            (r#"{"namespace":"notes","after":null}"#, "after"),
            (r#"{"namespace":"notes","limit":0}"#, "limit"),
            (r#"{"namespace":"notes","limit":101}"#, "limit"),
            (r#"{"namespace":"notes","keyPrefix":null}"#, "keyPrefix"),
            (r#"{"namespace":"notes","cursor":"x"}"#, "cursor"),
            (
                r#"{"namespace":"notes","keyPrefix":"a\u0001"}"#,
                "keyPrefix",
            ),
        ] {
            let e = parse(body)
                .and_then(|r| r.validate().map(|()| r))
                .unwrap_err();
            assert_eq!(e.details().unwrap()["field"], field, "{body}");
        }
    }
}
