//! Requests and responses of the five operations, and the runner's `operation` envelope.
//!
//! The JSON is exactly the camelCase JSON of the contract. Unknown fields are refused.
//! `ifRevision` is always written (`null` = unconditional); other optional request fields are
//! omitted when absent. Response fields that may be empty (`ttlExpiresAt`, `nextCursor`) are
//! written as `null`.

use crate::error::{quoted, BulkItemError, StorageError};
use crate::limits::*;
use crate::names::{Cursor, Key, Limit, Namespace, Revision, TtlSeconds};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Record metadata: a JSON object.
pub type Metadata = Map<String, Value>;

/// `storage.put`: upsert one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutRequest {
    /// Namespace of the record.
    pub namespace: Namespace,
    /// Key of the record.
    pub key: Key,
    /// The JSON value (serialized at most [`MAX_VALUE_BYTES`]).
    #[serde(deserialize_with = "canonical::value")]
    pub value: Value,
    /// Metadata object (serialized at most [`MAX_METADATA_BYTES`]); absent = `{}`.
    #[serde(
        default,
        deserialize_with = "canonical::metadata",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata: Option<Metadata>,
    /// Time to live; absent = keep forever (`null` is refused).
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_seconds: Option<TtlSeconds>,
    /// Guard: absent/null = unconditional, `0` = create only, `n` = current revision must be `n`.
    #[serde(default)]
    pub if_revision: Option<Revision>,
}

/// The body of `PUT /api/ext-storage/{ns}/{key}`: a [`PutRequest`] without namespace and key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutBody {
    /// The JSON value.
    #[cfg_attr(feature = "ts", tsify(type = "JsonValue"))]
    #[serde(deserialize_with = "canonical::value")]
    pub value: Value,
    /// Metadata object.
    #[serde(
        default,
        deserialize_with = "canonical::metadata",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "Metadata"))]
    pub metadata: Option<Metadata>,
    /// Time to live (absent = keep forever; `null` is refused).
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_seconds: Option<TtlSeconds>,
    /// Revision guard.
    #[serde(default)]
    #[cfg_attr(feature = "ts", tsify(type = "Revision | null"))]
    pub if_revision: Option<Revision>,
}

impl PutBody {
    /// Combines the body with the namespace and key of the path.
    pub fn into_request(self, namespace: Namespace, key: Key) -> PutRequest {
        PutRequest {
            namespace,
            key,
            value: self.value,
            metadata: self.metadata,
            ttl_seconds: self.ttl_seconds,
            if_revision: self.if_revision,
        }
    }
}

/// Answer to `put`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutResponse {
    /// Namespace of the record.
    pub namespace: Namespace,
    /// Key of the record.
    pub key: Key,
    /// The new revision.
    pub revision: u64,
    /// When the record expires, if it has a TTL.
    #[cfg_attr(feature = "ts", tsify(type = "string | null"))]
    #[serde(serialize_with = "timestamp::optional")]
    pub ttl_expires_at: Option<DateTime<Utc>>,
    /// When the record was created.
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    #[serde(serialize_with = "timestamp::one")]
    pub created_at: DateTime<Utc>,
    /// When the record was last written.
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    #[serde(serialize_with = "timestamp::one")]
    pub updated_at: DateTime<Utc>,
}

/// `storage.get`: read one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetRequest {
    /// Namespace of the record.
    pub namespace: Namespace,
    /// Key of the record.
    pub key: Key,
    /// Guard (`If-Revision-Match` on REST): answer 409 unless the revision is this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_revision: Option<Revision>,
}

/// A stored record: the answer to `get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify), tsify(rename = "StorageRecord"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record<V = Value> {
    /// Namespace of the record.
    pub namespace: Namespace,
    /// Key of the record.
    pub key: Key,
    /// Current revision (starts at 1).
    pub revision: u64,
    /// The value.
    pub value: V,
    /// The metadata object (`{}` if none was given).
    #[cfg_attr(feature = "ts", tsify(type = "Metadata"))]
    pub metadata: Metadata,
    /// When the record expires, if it has a TTL.
    #[cfg_attr(feature = "ts", tsify(type = "string | null"))]
    #[serde(serialize_with = "timestamp::optional")]
    pub ttl_expires_at: Option<DateTime<Utc>>,
    /// When the record was created.
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    #[serde(serialize_with = "timestamp::one")]
    pub created_at: DateTime<Utc>,
    /// When the record was last written.
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    #[serde(serialize_with = "timestamp::one")]
    pub updated_at: DateTime<Utc>,
}

/// `storage.list`: one page of keys in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListRequest {
    /// Namespace to list.
    pub namespace: Namespace,
    /// Cursor from a previous page's `nextCursor` (`null`, as the last page's `nextCursor`
    /// is, means the first page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// Page size (default [`DEFAULT_LIST_LIMIT`], at most [`MAX_LIST_LIMIT`]); absent, never
    /// `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub limit: Option<Limit>,
    /// Literal key prefix (`%` and `_` are ordinary characters); absent, never `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    pub key_prefix: Option<String>,
    /// Only records whose metadata contains this object (JSON containment); absent, never
    /// `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "not_null"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "Metadata"))]
    pub metadata: Option<Metadata>,
    /// Include each record's value (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_values: bool,
    /// Include each record's metadata (default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub include_metadata: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One record in a `list` page. `value` and `metadata` appear only when asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct ListItem<V = Value> {
    /// Namespace of the record.
    pub namespace: Namespace,
    /// Key of the record.
    pub key: Key,
    /// Current revision.
    pub revision: u64,
    /// The value, when `includeValues` was true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<V>,
    /// The metadata, when `includeMetadata` was true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", tsify(type = "Metadata"))]
    pub metadata: Option<Metadata>,
    /// When the record expires, if it has a TTL.
    #[serde(
        serialize_with = "timestamp::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    pub ttl_expires_at: Option<DateTime<Utc>>,
    /// When the record was created.
    #[serde(
        serialize_with = "timestamp::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    pub created_at: Option<DateTime<Utc>>,
    /// When the record was last written.
    #[serde(
        serialize_with = "timestamp::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Answer to `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct ListResponse<V = Value> {
    /// The page, ordered by key.
    pub items: Vec<ListItem<V>>,
    /// Cursor of the next page; `null` on the last page.
    #[cfg_attr(feature = "ts", tsify(type = "Cursor | null"))]
    pub next_cursor: Option<Cursor>,
}

/// `storage.delete`: remove one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteRequest {
    /// Namespace of the record.
    pub namespace: Namespace,
    /// Key of the record.
    pub key: Key,
    /// Guard: the record must exist (else 404) with this revision (else 409).
    #[serde(default)]
    #[cfg_attr(feature = "ts", tsify(type = "Revision | null"))]
    pub if_revision: Option<Revision>,
}

/// One item of a `bulkPut`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkPutItem {
    /// Key of the record.
    pub key: Key,
    /// The JSON value.
    #[cfg_attr(feature = "ts", tsify(type = "JsonValue"))]
    #[serde(deserialize_with = "canonical::value")]
    pub value: Value,
    /// Metadata object.
    #[serde(
        default,
        deserialize_with = "canonical::metadata",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "Metadata"))]
    pub metadata: Option<Metadata>,
    /// Time to live (absent = keep forever; `null` is refused).
    #[serde(
        default,
        deserialize_with = "not_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_seconds: Option<TtlSeconds>,
    /// Revision guard, as for `put`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", tsify(type = "Revision | null"))]
    pub if_revision: Option<Revision>,
}

/// `storage.bulkPut`: write up to [`MAX_BULK_ITEMS`] records of one namespace, all or nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkPutRequest {
    /// Namespace of every item.
    pub namespace: Namespace,
    /// The items, with distinct keys.
    pub items: Vec<BulkPutItem>,
}

/// The body of `POST /api/ext-storage/{ns}`: a [`BulkPutRequest`] without the namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkPutBody {
    /// The items.
    pub items: Vec<BulkPutItem>,
}

/// One written item in the answer to `bulkPut`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkPutResultItem {
    /// Key of the record.
    pub key: Key,
    /// The new revision.
    pub revision: u64,
    /// When the record expires, if it has a TTL.
    #[cfg_attr(feature = "ts", tsify(type = "string | null"))]
    #[serde(serialize_with = "timestamp::optional")]
    pub ttl_expires_at: Option<DateTime<Utc>>,
    /// When the record was created.
    #[serde(
        serialize_with = "timestamp::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    pub created_at: Option<DateTime<Utc>>,
    /// When the record was last written.
    #[serde(
        serialize_with = "timestamp::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "ts", tsify(type = "string"))]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Answer to `bulkPut`, one item per request item, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkPutResponse {
    /// The written items.
    pub items: Vec<BulkPutResultItem>,
}

/// The runner's envelope: a request plus its `operation`, as POSTed to
/// `/api/internal/ext-storage/install/{installId}`.
///
/// ```
/// use alga_storage_core::StorageRequest;
/// let req = StorageRequest::from_json(br#"{"operation":"get","namespace":"settings","key":"k"}"#).unwrap();
/// assert_eq!(req.operation(), "get");
/// let err = StorageRequest::from_json(br#"{"operation":"get","namespace":"settings"}"#).unwrap_err();
/// assert_eq!(err.status(), 400);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "operation", rename_all = "camelCase")]
pub enum StorageRequest {
    /// `put`
    Put(PutRequest),
    /// `get`
    Get(GetRequest),
    /// `list`
    List(ListRequest),
    /// `delete`
    Delete(DeleteRequest),
    /// `bulkPut`
    BulkPut(BulkPutRequest),
    /// `getMany`
    GetMany(crate::GetManyRequest),
    /// `atomic`
    Atomic(crate::AtomicRequest),
    /// `changes`
    Changes(crate::ChangesRequest),
}

/// The operation names the runner envelope accepts.
pub const OPERATIONS: [&str; 8] = [
    "put", "get", "list", "delete", "bulkPut", "getMany", "atomic", "changes",
];

impl StorageRequest {
    /// The wire name of the operation.
    pub fn operation(&self) -> &'static str {
        match self {
            StorageRequest::Put(_) => "put",
            StorageRequest::Get(_) => "get",
            StorageRequest::List(_) => "list",
            StorageRequest::Delete(_) => "delete",
            StorageRequest::BulkPut(_) => "bulkPut",
            StorageRequest::GetMany(_) => "getMany",
            StorageRequest::Atomic(_) => "atomic",
            StorageRequest::Changes(_) => "changes",
        }
    }

    /// Parses an envelope and validates it: every error names its field.
    pub fn from_json(body: &[u8]) -> Result<Self, StorageError> {
        let mut value: Value = parse_json(body)?;
        let Some(object) = value.as_object_mut() else {
            return Err(StorageError::validation("body", "must be a JSON object"));
        };
        let operation = match object.remove("operation") {
            Some(Value::String(op)) => op,
            Some(_) => return Err(StorageError::validation("operation", "must be a string")),
            None => return Err(StorageError::validation("operation", "missing field")),
        };
        let fields = std::mem::take(object);
        Ok(match operation.as_str() {
            "put" => StorageRequest::Put(FromFields::from_fields(fields)?),
            "get" => StorageRequest::Get(FromFields::from_fields(fields)?),
            "list" => StorageRequest::List(FromFields::from_fields(fields)?),
            "delete" => StorageRequest::Delete(FromFields::from_fields(fields)?),
            "bulkPut" => StorageRequest::BulkPut(FromFields::from_fields(fields)?),
            "getMany" => StorageRequest::GetMany(FromFields::from_fields(fields)?),
            "atomic" => StorageRequest::Atomic(FromFields::from_fields(fields)?),
            "changes" => StorageRequest::Changes(FromFields::from_fields(fields)?),
            other => {
                return Err(StorageError::validation(
                    "operation",
                    format!("unknown operation {other:?}; expected one of {OPERATIONS:?}"),
                ))
            }
        })
    }

    /// Checks the limits that the types alone do not express (sizes, counts, distinct keys).
    pub fn validate(&self) -> Result<(), StorageError> {
        match self {
            StorageRequest::Put(r) => r.validate(),
            StorageRequest::Get(_) | StorageRequest::Delete(_) => Ok(()),
            StorageRequest::Changes(r) => r.validate(),
            StorageRequest::List(r) => r.validate(),
            StorageRequest::BulkPut(r) => r.validate(),
            StorageRequest::GetMany(r) => r.validate(),
            StorageRequest::Atomic(r) => r.validate(),
        }
    }
}

/// A request of the contract parsed from its fields (a JSON object: the runner envelope's
/// fields without `operation`) and validated, every error naming its field: how the server
/// reads an envelope. (The SDKs hold plain values, not JSON: they build the same requests with
/// the validating constructors, `PutRequest::new` and the like, which a test holds equal to
/// this parser.)
///
/// ```
/// use alga_storage_core::{FromFields, PutRequest};
/// let fields = serde_json::json!({"namespace": "notes", "key": "a", "value": 1});
/// let put = PutRequest::from_fields(fields.as_object().unwrap().clone()).unwrap();
/// assert_eq!(put.key.as_str(), "a");
/// let bad = serde_json::json!({"namespace": "notes", "key": "", "value": 1});
/// let e = PutRequest::from_fields(bad.as_object().unwrap().clone()).unwrap_err();
/// assert_eq!(e.details().unwrap()["field"], "key");
/// ```
pub trait FromFields: Sized + DeserializeOwned {
    /// The limits the types alone do not express (sizes, counts, distinct keys).
    fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Parses and validates the request.
    fn from_fields(fields: Map<String, Value>) -> Result<Self, StorageError> {
        let request: Self = from_value(Value::Object(fields))?;
        request.check()?;
        Ok(request)
    }
}

impl FromFields for PutRequest {
    fn check(&self) -> Result<(), StorageError> {
        self.validate()
    }
}

impl FromFields for GetRequest {}

impl FromFields for DeleteRequest {}

impl FromFields for ListRequest {
    fn check(&self) -> Result<(), StorageError> {
        self.validate()
    }
}

impl FromFields for BulkPutRequest {
    fn check(&self) -> Result<(), StorageError> {
        self.validate()
    }
}

impl FromFields for crate::GetManyRequest {
    fn check(&self) -> Result<(), StorageError> {
        self.validate()
    }
}

impl FromFields for crate::ChangesRequest {
    fn check(&self) -> Result<(), StorageError> {
        self.validate()
    }
}

impl FromFields for crate::AtomicRequest {
    fn check(&self) -> Result<(), StorageError> {
        self.validate()
    }
}

impl<'de> Deserialize<'de> for StorageRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let bytes = serde_json::to_vec(&value).map_err(serde::de::Error::custom)?;
        StorageRequest::from_json(&bytes).map_err(serde::de::Error::custom)
    }
}

/// Parses JSON bytes into `T`, naming the path of the first offending field.
///
/// ```
/// use alga_storage_core::{parse_json, PutRequest};
/// let err = parse_json::<PutRequest>(br#"{"namespace":"ok","key":"k","value":1,"ttlSeconds":5}"#)
///     .unwrap_err();
/// assert_eq!(err.details().unwrap()["field"], "ttlSeconds");
/// ```
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, StorageError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end()
        .map_err(|e| StorageError::validation("body", e.to_string()))?;
    Ok(value)
}

fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, StorageError> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> StorageError {
    let path = e.path().to_string();
    let reason = e.inner().to_string();
    // serde reports a missing field at its parent; name the field itself.
    let missing = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_owned());
    let field = match (path.as_str(), missing) {
        (".", Some(name)) => name,
        (".", None) | ("?", None) => "body".to_owned(),
        (_, Some(name)) => format!("{path}.{name}"),
        (_, None) => path,
    };
    // A validated newtype already says "field: reason"; keep only the reason.
    let reason = reason
        .split_once(": ")
        .map_or(reason.clone(), |(head, tail)| {
            if field.ends_with(head) {
                tail.to_owned()
            } else {
                reason.clone()
            }
        });
    StorageError::validation(field, reason)
}

/// JSON as the store keeps it, the same on every backend and surface: a negative zero (`-0`,
/// `-0.0`) is `0`, since Postgres' `jsonb` cannot keep the sign and a browser sends it as `0`.
///
/// ```
/// use serde_json::json;
/// let mut value = json!({"a": -0.0, "b": [-0.0, 1.5, -2]});
/// alga_storage_core::canonical_json(&mut value);
/// assert_eq!(value.to_string(), r#"{"a":0,"b":[0,1.5,-2]}"#);
/// ```
pub fn canonical_json(value: &mut Value) {
    match value {
        Value::Number(n)
            if n.as_f64() == Some(0.0) && n.as_f64().is_some_and(f64::is_sign_negative) =>
        {
            *value = Value::from(0)
        }
        Value::Array(items) => items.iter_mut().for_each(canonical_json),
        Value::Object(fields) => fields.values_mut().for_each(canonical_json),
        _ => {}
    }
}

/// Deserializers that store-bound values and metadata go through ([`canonical_json`]).
pub(crate) mod canonical {
    use super::{canonical_json, Metadata, Value};
    use serde::{Deserialize, Deserializer};

    pub fn value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        let mut value = Value::deserialize(deserializer)?;
        canonical_json(&mut value);
        Ok(value)
    }

    /// Metadata, when given, is an object: absent means `{}`, and `null` is refused rather
    /// than taken as absent.
    pub fn metadata<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Metadata>, D::Error> {
        let mut metadata = Metadata::deserialize(deserializer)?;
        metadata.values_mut().for_each(canonical_json);
        Ok(Some(metadata))
    }
}

/// Serializers of the records' timestamps: the very text chrono's own `Serialize` writes
/// (RFC 3339, `Z`, fractions of 3, 6 or 9 digits as needed), formatted once and handed to the
/// serializer as one string rather than character by character (serde's `collect_str`, which
/// JSON escapes each piece: a tenth of the server's CPU for a list page).
pub(crate) mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn one<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn optional<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => one(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    #[cfg(test)]
    mod tests {
        use chrono::{DateTime, TimeZone, Utc};

        /// Byte for byte what chrono's `Serialize` writes, for every fraction length.
        #[test]
        fn the_text_is_chronos_own() {
            let base = Utc.with_ymd_and_hms(2026, 11, 30, 14, 5, 9).unwrap();
            for nanos in [0, 120_000_000, 123_000, 123_456_000, 1, 999_999_999] {
                let at: DateTime<Utc> = base + chrono::Duration::nanoseconds(nanos);
                let mut ours = Vec::new();
                super::one(&at, &mut serde_json::Serializer::new(&mut ours)).unwrap();
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    serde_json::to_string(&at).unwrap()
                );
            }
            let mut none = Vec::new();
            super::optional(&None, &mut serde_json::Serializer::new(&mut none)).unwrap();
            assert_eq!(none, b"null");
        }
    }
}

/// Deserializes an optional field that, when present, must not be `null` (use with
/// `#[serde(default, deserialize_with = "alga_storage_core::not_null")]`): absent is `None`,
/// `null` is an error naming the field, rather than silently meaning absent.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Body {
///     #[serde(default, deserialize_with = "alga_storage_core::not_null")]
///     ttl_seconds: Option<u32>,
/// }
/// assert!(serde_json::from_str::<Body>("{}").unwrap().ttl_seconds.is_none());
/// assert!(serde_json::from_str::<Body>(r#"{"ttl_seconds":null}"#).is_err());
/// ```
pub fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Size in bytes of the compact JSON serialization of a value.
pub fn json_size<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serializing a serde_json-compatible value into a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Checks one value: its size, and no U+0000 in any string (a NUL cannot be stored by every
/// backend, so the contract refuses it everywhere). Returns its size.
pub(crate) fn check_value(prefix: &str, value: &Value) -> Result<usize, StorageError> {
    check_json(
        format!("{prefix}value"),
        value,
        MAX_VALUE_BYTES,
        Shape::of(value),
    )
}

/// Checks one record's value and metadata against the contract's limits, as every write does:
/// sizes, no U+0000, nesting depth. Errors name `{prefix}value` / `{prefix}metadata`. Returns
/// their total size.
///
/// ```
/// use alga_storage_core::check_record;
/// assert!(check_record("", &serde_json::json!({"a": 1}), None).is_ok());
/// let e = check_record("items[0].", &serde_json::json!("a\u{0}"), None).unwrap_err();
/// assert_eq!(e.details().unwrap()["field"], "items[0].value");
/// ```
pub fn check_record(
    prefix: &str,
    value: &Value,
    metadata: Option<&Metadata>,
) -> Result<usize, StorageError> {
    let value_size = check_value(prefix, value)?;
    let metadata_size = match metadata {
        Some(metadata) => check_json(
            format!("{prefix}metadata"),
            metadata,
            MAX_METADATA_BYTES,
            Shape::of_map(metadata),
        )?,
        None => 0,
    };
    Ok(value_size + metadata_size)
}

/// One stored JSON document (`field`) within its size `limit`, with no U+0000 and nesting at
/// most [`MAX_VALUE_DEPTH`] deep, checked in that order. Returns its size.
fn check_json<T: Serialize + ?Sized>(
    field: String,
    json: &T,
    limit: usize,
    shape: Shape,
) -> Result<usize, StorageError> {
    let size = json_size(json);
    if size > limit {
        return Err(StorageError::too_large(field, limit, size));
    }
    if shape.nul {
        return Err(StorageError::validation(
            field,
            "strings must not contain U+0000",
        ));
    }
    if shape.depth > MAX_VALUE_DEPTH {
        return Err(StorageError::too_deep(field));
    }
    Ok(size)
}

/// What one walk of a JSON document finds: whether a string or member name holds a U+0000,
/// and how deep arrays and objects nest (a scalar: 0, `[]`: 1, `[[1]]`: 2).
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    nul: bool,
    depth: usize,
}

impl Shape {
    fn of(value: &Value) -> Shape {
        match value {
            Value::String(s) => Shape {
                nul: s.contains('\0'),
                depth: 0,
            },
            Value::Array(items) => Shape::around(items.iter().map(Shape::of)),
            Value::Object(map) => Shape::of_map(map),
            _ => Shape::default(),
        }
    }

    fn of_map(map: &Metadata) -> Shape {
        Shape::around(map.iter().map(|(name, value)| {
            let inner = Shape::of(value);
            Shape {
                nul: inner.nul || name.contains('\0'),
                ..inner
            }
        }))
    }

    /// The shape of an array or object holding `parts`.
    fn around(parts: impl Iterator<Item = Shape>) -> Shape {
        let inner = parts.fold(Shape::default(), |a, b| Shape {
            nul: a.nul || b.nul,
            depth: a.depth.max(b.depth),
        });
        Shape {
            depth: inner.depth + 1,
            ..inner
        }
    }
}

impl PutRequest {
    /// Checks value and metadata sizes and content.
    pub fn validate(&self) -> Result<(), StorageError> {
        check_record("", &self.value, self.metadata.as_ref()).map(|_| ())
    }
}

/// A key prefix (of a list or of the change feed) could begin a key: at most
/// [`MAX_KEY_CHARS`] characters, no control character.
pub(crate) fn check_key_prefix(prefix: Option<&str>) -> Result<(), StorageError> {
    if let Some(prefix) = prefix {
        let len = prefix.chars().count();
        if len > MAX_KEY_CHARS {
            return Err(StorageError::validation(
                "keyPrefix",
                format!("must be at most {MAX_KEY_CHARS} characters, got {len}"),
            ));
        }
        if prefix.chars().any(|c| c.is_control()) {
            return Err(StorageError::validation(
                "keyPrefix",
                "must not contain control characters",
            ));
        }
    }
    Ok(())
}

impl ListRequest {
    /// Checks the prefix and the metadata filter.
    pub fn validate(&self) -> Result<(), StorageError> {
        check_key_prefix(self.key_prefix.as_deref())?;
        if let Some(filter) = &self.metadata {
            let size = json_size(filter);
            if size > MAX_METADATA_BYTES {
                return Err(StorageError::too_large(
                    "metadata",
                    MAX_METADATA_BYTES,
                    size,
                ));
            }
            if Shape::of_map(filter).nul {
                return Err(StorageError::validation(
                    "metadata",
                    "strings must not contain U+0000",
                ));
            }
        }
        Ok(())
    }
}

/// 1 to `max` distinct keys in `field` (e.g. `items`), else `VALIDATION_FAILED` naming the
/// field, or the position `at` of the first repeated key.
pub(crate) fn distinct<'a>(
    field: &str,
    keys: impl ExactSizeIterator<Item = &'a str>,
    max: usize,
    at: impl Fn(usize) -> String,
) -> Result<(), StorageError> {
    let count = keys.len();
    if count == 0 || count > max {
        return Err(StorageError::validation(
            field.to_owned(),
            format!("must hold 1-{max} {field}, got {count}"),
        ));
    }
    // At most 100 keys: a scan of the ones before is cheaper than a set.
    let keys: Vec<&str> = keys.collect();
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].contains(key) {
            return Err(StorageError::validation(
                at(i),
                format!("duplicate key {}", quoted(key)),
            ));
        }
    }
    Ok(())
}

impl BulkPutRequest {
    /// Checks the item count, distinct keys, the total size, and each item's own limits.
    ///
    /// Request-level problems give `VALIDATION_FAILED` / `PAYLOAD_TOO_LARGE`; items that break
    /// their own limits give `BULK_PARTIAL_FAILURE` listing every failing item.
    pub fn validate(&self) -> Result<(), StorageError> {
        distinct(
            "items",
            self.items.iter().map(|i| i.key.as_str()),
            MAX_BULK_ITEMS,
            |i| format!("items[{i}].key"),
        )?;
        let mut total = 0;
        let mut failures = Vec::new();
        for (index, item) in self.items.iter().enumerate() {
            match check_record("", &item.value, item.metadata.as_ref()) {
                Ok(size) => total += size,
                Err(e) => failures.push(BulkItemError::new(index, item.key.as_str(), &e)),
            }
        }
        if !failures.is_empty() {
            return Err(StorageError::bulk_partial_failure(failures));
        }
        if total > MAX_BULK_BYTES {
            return Err(StorageError::too_large("items", MAX_BULK_BYTES, total));
        }
        Ok(())
    }
}

/// Whether `metadata` contains `filter`, with the semantics of JSON containment (Postgres
/// `jsonb @>`): every field of an object filter is present and contains the filter's value; every
/// element of an array filter is contained in some element of the array; scalars are equal
/// (numbers by value, so `1` equals `1.0`). Backends without native containment use this.
///
/// ```
/// use alga_storage_core::json_contains;
/// use serde_json::json;
/// let doc = json!({"kind": "note", "tags": ["a", "b"], "n": 1});
/// assert!(json_contains(&doc, &json!({"kind": "note", "tags": ["b"]})));
/// assert!(json_contains(&doc, &json!({"n": 1.0})));
/// assert!(!json_contains(&doc, &json!({"kind": "todo"})));
/// ```
pub fn json_contains(doc: &Value, filter: &Value) -> bool {
    match (doc, filter) {
        (Value::Object(d), Value::Object(f)) => f
            .iter()
            .all(|(k, fv)| d.get(k).is_some_and(|dv| json_contains(dv, fv))),
        (Value::Array(d), Value::Array(f)) => f
            .iter()
            .all(|fv| d.iter().any(|dv| json_contains_element(dv, fv))),
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (a, b) => a == b,
    }
}

/// Inside arrays, Postgres matches scalars by equality and containers by containment, but never
/// an array element against a different kind.
fn json_contains_element(doc: &Value, filter: &Value) -> bool {
    match (doc, filter) {
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_)) => {
            json_contains(doc, filter)
        }
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (a, b) => a == b,
    }
}

fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}
