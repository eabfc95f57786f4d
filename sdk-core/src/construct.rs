//! Validating constructors: each request of the contract built from the plain values a caller
//! holds (strings, numbers, JSON values), checked exactly as the server checks the same request
//! in JSON, each error naming its field as the server names it (`key`, `items[2].ttlSeconds`).
//! The SDKs build every request with these, so a call the server would refuse is refused before
//! it is sent, with the server's error, and no SDK assembles JSON to have it parsed again.
//!
//! ```
//! use alga_storage_core::{PutRequest, WriteInput};
//! let put = PutRequest::new("notes", "a", serde_json::json!({"text": "hi"}), WriteInput::default()).unwrap();
//! assert_eq!(put.key.as_str(), "a");
//! let ttl = WriteInput { ttl_seconds: Some(5), ..WriteInput::default() };
//! let e = PutRequest::new("notes", "a", 1.into(), ttl).unwrap_err();
//! assert_eq!(e.details().unwrap()["field"], "ttlSeconds");
//! ```

use crate::atomic::{AtomicCheck, AtomicOperation, AtomicRequest, GetManyRequest};
use crate::changes::{ChangesRequest, Sequence};
use crate::error::{quoted, StorageError};
use crate::names::{Cursor, InvalidValue, Key, Limit, Namespace, Revision, TtlSeconds};
use crate::ops::{
    canonical_json, BulkPutItem, BulkPutRequest, DeleteRequest, GetRequest, ListRequest, Metadata,
    PutRequest,
};
use crate::snapshot::{validate_patch, PatchOp};
use serde_json::Value;

/// What a write of one record carries besides its key and value, as the caller gives it
/// (`put`, a `bulkPut` item, an `atomic` put): validated by the constructors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteInput {
    /// Metadata object (absent: `{}`).
    pub metadata: Option<Metadata>,
    /// Time to live in seconds (absent: keep forever).
    pub ttl_seconds: Option<i64>,
    /// Revision guard: `0` = create only, `n` = the record must be at revision `n` (absent:
    /// unconditional). An `atomic` put takes none: its guards are the write's checks.
    pub if_revision: Option<i64>,
}

/// The options of a `list` page, as the caller gives them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListInput {
    /// Literal key prefix.
    pub key_prefix: Option<String>,
    /// Page size (1 to 100; absent: 25).
    pub limit: Option<i64>,
    /// The previous page's `nextCursor`.
    pub cursor: Option<String>,
    /// Include each record's value.
    pub include_values: bool,
    /// Include each record's metadata.
    pub include_metadata: bool,
    /// Only records whose metadata contains this object.
    pub metadata: Option<Metadata>,
}

/// One item of a `bulkPut`, as the caller gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkPutInput {
    /// Key of the record.
    pub key: String,
    /// Its value.
    pub value: Value,
    /// Metadata, time to live and guard.
    pub options: WriteInput,
}

/// One write of an `atomic`, as the caller gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationInput {
    /// Write a record (`options.if_revision` is refused: use a check).
    Put {
        /// The record.
        key: String,
        /// Its value.
        value: Value,
        /// Metadata and time to live.
        options: WriteInput,
    },
    /// Delete a record.
    Delete {
        /// The record.
        key: String,
    },
    /// Add `delta` to an integer value.
    Increment {
        /// The record.
        key: String,
        /// What to add.
        delta: i64,
        /// Time to live from now (absent: keep the record's expiry).
        ttl_seconds: Option<i64>,
    },
}

/// One operation of a snapshot patch, as the caller gives it: `op` is `"set"` (with a value)
/// or `"del"` (without).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchInput {
    /// `"set"` or `"del"`.
    pub op: String,
    /// The key.
    pub key: String,
    /// The value of a `set`.
    pub value: Option<Value>,
}

/// `result`, its error named `field` (the validated types name their own, unprefixed field).
fn at<T>(
    field: impl FnOnce() -> String,
    result: Result<T, InvalidValue>,
) -> Result<T, StorageError> {
    result.map_err(|e| StorageError::validation(field(), e.reason))
}

fn namespace(name: &str) -> Result<Namespace, StorageError> {
    Ok(Namespace::new(name)?)
}

fn key(field: &str, key: String) -> Result<Key, StorageError> {
    at(|| field.to_owned(), Key::new(key))
}

fn ttl(prefix: &str, seconds: Option<i64>) -> Result<Option<TtlSeconds>, StorageError> {
    seconds
        .map(|s| at(|| format!("{prefix}ttlSeconds"), TtlSeconds::new(s)))
        .transpose()
}

fn revision(
    field: impl Fn() -> String,
    revision: Option<i64>,
) -> Result<Option<Revision>, StorageError> {
    revision.map(|r| at(&field, Revision::new(r))).transpose()
}

fn canonical(mut value: Value) -> Value {
    canonical_json(&mut value);
    value
}

fn canonical_metadata(metadata: Option<Metadata>) -> Option<Metadata> {
    metadata.map(|mut m| {
        m.values_mut().for_each(canonical_json);
        m
    })
}

impl PutRequest {
    /// A `put`, validated as the server validates it.
    pub fn new(
        namespace_name: &str,
        record_key: impl Into<String>,
        value: Value,
        options: WriteInput,
    ) -> Result<Self, StorageError> {
        let request = PutRequest {
            namespace: namespace(namespace_name)?,
            key: key("key", record_key.into())?,
            value: canonical(value),
            metadata: canonical_metadata(options.metadata),
            ttl_seconds: ttl("", options.ttl_seconds)?,
            if_revision: revision(|| "ifRevision".into(), options.if_revision)?,
        };
        request.validate()?;
        Ok(request)
    }
}

/// `new` for a single-record request of namespace, key and guard (`get`, `delete`).
macro_rules! guarded_request {
    ($request:ident, $doc:literal) => {
        impl $request {
            #[doc = $doc]
            pub fn new(
                namespace_name: &str,
                record_key: impl Into<String>,
                if_revision: Option<i64>,
            ) -> Result<Self, StorageError> {
                Ok($request {
                    namespace: namespace(namespace_name)?,
                    key: key("key", record_key.into())?,
                    if_revision: revision(|| "ifRevision".into(), if_revision)?,
                })
            }
        }
    };
}

guarded_request!(
    GetRequest,
    "A `get` (with a revision guard, if given), validated as the server validates it."
);
guarded_request!(
    DeleteRequest,
    "A `delete` (with a revision guard, if given), validated as the server validates it."
);

impl ListRequest {
    /// A `list` page, validated as the server validates it.
    pub fn new(namespace_name: &str, options: ListInput) -> Result<Self, StorageError> {
        let request = ListRequest {
            namespace: namespace(namespace_name)?,
            cursor: options.cursor.map(Cursor),
            limit: options
                .limit
                .map(|l| at(|| "limit".into(), Limit::new(l)))
                .transpose()?,
            key_prefix: options.key_prefix,
            metadata: options.metadata,
            include_values: options.include_values,
            include_metadata: options.include_metadata,
        };
        request.validate()?;
        Ok(request)
    }
}

impl BulkPutRequest {
    /// A `bulkPut`, validated as the server validates it (errors name `items[i].…`).
    pub fn new(namespace_name: &str, items: Vec<BulkPutInput>) -> Result<Self, StorageError> {
        let namespace = namespace(namespace_name)?;
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let prefix = format!("items[{i}].");
                Ok(BulkPutItem {
                    key: key(&format!("{prefix}key"), item.key)?,
                    value: canonical(item.value),
                    metadata: canonical_metadata(item.options.metadata),
                    ttl_seconds: ttl(&prefix, item.options.ttl_seconds)?,
                    if_revision: revision(
                        || format!("{prefix}ifRevision"),
                        item.options.if_revision,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let request = BulkPutRequest { namespace, items };
        request.validate()?;
        Ok(request)
    }
}

impl GetManyRequest {
    /// A `getMany`, validated as the server validates it (errors name `keys[i]`).
    pub fn new(
        namespace_name: &str,
        keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, StorageError> {
        let namespace = namespace(namespace_name)?;
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| key(&format!("keys[{i}]"), k.into()))
            .collect::<Result<Vec<_>, _>>()?;
        let request = GetManyRequest { namespace, keys };
        request.validate()?;
        Ok(request)
    }
}

impl ChangesRequest {
    /// A page of the change feed after `after` (absent: 0), validated as the server validates
    /// it.
    pub fn new(
        namespace_name: &str,
        after: Option<i64>,
        limit: Option<i64>,
        key_prefix: Option<String>,
    ) -> Result<Self, StorageError> {
        let request = ChangesRequest {
            namespace: namespace(namespace_name)?,
            after: after
                .map(|a| at(|| "after".into(), Sequence::new(a)))
                .transpose()?
                .unwrap_or_default(),
            limit: limit
                .map(|l| at(|| "limit".into(), Limit::new(l)))
                .transpose()?,
            key_prefix,
        };
        request.validate()?;
        Ok(request)
    }
}

impl AtomicRequest {
    /// An `atomic` write: `checks` as `(key, revision)`, then `operations`, validated as the
    /// server validates it (errors name `checks[i].…` and `operations[i].…`).
    pub fn new(
        namespace_name: &str,
        checks: Vec<(String, i64)>,
        operations: Vec<OperationInput>,
    ) -> Result<Self, StorageError> {
        let namespace = namespace(namespace_name)?;
        let checks = checks
            .into_iter()
            .enumerate()
            .map(|(i, (k, r))| {
                Ok(AtomicCheck {
                    key: key(&format!("checks[{i}].key"), k)?,
                    revision: at(|| format!("checks[{i}].revision"), Revision::new(r))?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let operations = operations
            .into_iter()
            .enumerate()
            .map(|(i, op)| operation(&format!("operations[{i}]."), op))
            .collect::<Result<Vec<_>, StorageError>>()?;
        let request = AtomicRequest {
            namespace,
            checks,
            operations,
        };
        request.validate()?;
        Ok(request)
    }
}

fn operation(prefix: &str, op: OperationInput) -> Result<AtomicOperation, StorageError> {
    let key_field = format!("{prefix}key");
    Ok(match op {
        OperationInput::Put {
            key: k,
            value,
            options,
        } => {
            if options.if_revision.is_some() {
                return Err(StorageError::validation(
                    format!("{prefix}ifRevision"),
                    "an atomic put has no guard of its own: add a check",
                ));
            }
            AtomicOperation::Put {
                key: key(&key_field, k)?,
                value: canonical(value),
                metadata: canonical_metadata(options.metadata),
                ttl_seconds: ttl(prefix, options.ttl_seconds)?,
            }
        }
        OperationInput::Delete { key: k } => AtomicOperation::Delete {
            key: key(&key_field, k)?,
        },
        OperationInput::Increment {
            key: k,
            delta,
            ttl_seconds,
        } => AtomicOperation::Increment {
            key: key(&key_field, k)?,
            delta: delta.into(),
            ttl_seconds: ttl(prefix, ttl_seconds)?,
        },
    })
}

impl PatchOp {
    /// The operations of a snapshot patch, validated as the server validates the body
    /// ([`validate_patch`]; errors name `[i].…`).
    pub fn list(inputs: Vec<PatchInput>) -> Result<Vec<PatchOp>, StorageError> {
        let ops = inputs
            .into_iter()
            .enumerate()
            .map(|(i, input)| {
                let key = key(&format!("[{i}].key"), input.key)?;
                match (input.op.as_str(), input.value) {
                    ("set", Some(value)) => Ok(PatchOp::Set {
                        key,
                        value: canonical(value),
                    }),
                    ("set", None) => Err(StorageError::validation(
                        format!("[{i}].value"),
                        "missing field",
                    )),
                    ("del", None) => Ok(PatchOp::Del { key }),
                    ("del", Some(_)) => Err(StorageError::validation(
                        format!("[{i}].value"),
                        "a del operation has no value",
                    )),
                    (other, _) => Err(StorageError::validation(
                        format!("[{i}].op"),
                        format!(
                            "unknown operation {}; expected \"set\" or \"del\"",
                            quoted(other)
                        ),
                    )),
                }
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        validate_patch(&ops)?;
        Ok(ops)
    }
}

#[cfg(test)]
mod tests {
    //! Each constructor against the server's parser of the same request in JSON
    //! ([`FromFields`]): the same request, or an error naming the same field with the same code.
    use super::*;
    use crate::ops::FromFields;
    use serde_json::{json, Map};

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn same<T: FromFields + PartialEq + std::fmt::Debug>(
        built: Result<T, StorageError>,
        json: Value,
    ) {
        let parsed = T::from_fields(fields(json.clone()));
        match (built, parsed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{json}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.code(), b.code(), "{json}: {a:?} vs {b:?}");
                let field = |e: &StorageError| e.details().unwrap()["field"].clone();
                // serde loses the path inside an internally tagged enum (an atomic operation):
                // the parser names `operations[i]` and says the field in its reason.
                let within = |e: &StorageError| {
                    let reason = e.details().unwrap()["reason"].as_str().unwrap().to_owned();
                    let head = reason.split(':').next().unwrap_or_default();
                    format!("{}.{head}", field(e).as_str().unwrap())
                };
                assert!(
                    field(&a) == field(&b) || field(&a) == within(&b).as_str(),
                    "{json}: {a:?} vs {b:?}"
                );
            }
            (a, b) => panic!("{json}: constructor {a:?}, parser {b:?}"),
        }
    }

    fn write(metadata: Option<Value>, ttl: Option<i64>, guard: Option<i64>) -> WriteInput {
        WriteInput {
            metadata: metadata.map(|m| m.as_object().unwrap().clone()),
            ttl_seconds: ttl,
            if_revision: guard,
        }
    }

    #[test]
    fn put_get_delete_match_the_server() {
        let big = "x".repeat(300 * 1024);
        for (ns, key, value, meta, ttl, guard) in [
            (
                "notes",
                "a",
                json!({"t": -0.0}),
                Some(json!({"k": -0.0})),
                Some(60),
                Some(0),
            ),
            ("Notes", "a", json!(1), None, None, None),
            ("notes", "", json!(1), None, None, None),
            ("notes", "a/b", json!(1), None, None, None),
            ("notes", "a", json!(1), None, Some(59), None),
            ("notes", "a", json!(1), None, None, Some(-1)),
            ("notes", "a", json!(big), None, None, None),
            ("notes", "a", json!("nul\u{0}"), None, None, None),
            ("notes", "a", json!(1), Some(json!({"x": big})), None, None),
        ] {
            let mut envelope = json!({"namespace": ns, "key": key, "value": value});
            if let Some(m) = &meta {
                envelope["metadata"] = m.clone();
            }
            if let Some(t) = ttl {
                envelope["ttlSeconds"] = t.into();
            }
            if let Some(g) = guard {
                envelope["ifRevision"] = g.into();
            }
            same(
                PutRequest::new(ns, key, value.clone(), write(meta, ttl, guard)),
                envelope.clone(),
            );
            let mut read = json!({"namespace": ns, "key": key});
            if let Some(g) = guard {
                read["ifRevision"] = g.into();
            }
            same(GetRequest::new(ns, key, guard), read.clone());
            same(DeleteRequest::new(ns, key, guard), read);
        }
    }

    #[test]
    fn list_and_changes_match_the_server() {
        for (limit, prefix) in [
            (None, None),
            (Some(0), None),
            (Some(101), None),
            (Some(5), Some("a\u{1}")),
        ] {
            let mut envelope = json!({"namespace": "notes", "includeValues": true, "cursor": "c"});
            if let Some(l) = limit {
                envelope["limit"] = l.into();
            }
            if let Some(p) = prefix {
                envelope["keyPrefix"] = p.into();
            }
            let input = ListInput {
                key_prefix: prefix.map(Into::into),
                limit,
                cursor: Some("c".into()),
                include_values: true,
                ..ListInput::default()
            };
            same(ListRequest::new("notes", input), envelope.clone());
            for after in [None, Some(0), Some(7), Some(-1)] {
                let mut changes = json!({"namespace": "notes"});
                if let Some(l) = limit {
                    changes["limit"] = l.into();
                }
                if let Some(p) = prefix {
                    changes["keyPrefix"] = p.into();
                }
                if let Some(a) = after {
                    changes["after"] = a.into();
                }
                same(
                    ChangesRequest::new("notes", after, limit, prefix.map(Into::into)),
                    changes,
                );
            }
        }
    }

    #[test]
    fn bulk_put_and_get_many_match_the_server() {
        let item = |key: &str, ttl: Option<i64>, guard: Option<i64>| BulkPutInput {
            key: key.into(),
            value: json!(1),
            options: write(None, ttl, guard),
        };
        let items = |list: &[(&str, Option<i64>, Option<i64>)]| {
            let built: Vec<_> = list.iter().map(|(k, t, g)| item(k, *t, *g)).collect();
            let json: Vec<_> = list
                .iter()
                .map(|(k, t, g)| {
                    let mut v = json!({"key": k, "value": 1});
                    if let Some(t) = t {
                        v["ttlSeconds"] = (*t).into();
                    }
                    if let Some(g) = g {
                        v["ifRevision"] = (*g).into();
                    }
                    v
                })
                .collect();
            (built, json!({"namespace": "notes", "items": json}))
        };
        for list in [
            vec![("a", None, None), ("b", Some(60), Some(0))],
            vec![],
            vec![("a", None, None), ("a", None, None)],
            vec![("a", None, None), ("b/c", None, None)],
            vec![("a", None, None), ("b", Some(1), None)],
            vec![("a", None, Some(-2))],
        ] {
            let (built, json) = items(&list);
            same(BulkPutRequest::new("notes", built), json);
        }
        for keys in [vec!["a", "b"], vec![], vec!["a", "a"], vec!["a", ""]] {
            same(
                GetManyRequest::new("notes", keys.clone()),
                json!({"namespace": "notes", "keys": keys}),
            );
        }
    }

    #[test]
    fn atomic_matches_the_server() {
        let put = |k: &str| OperationInput::Put {
            key: k.into(),
            value: json!({"v": -0.0}),
            options: write(Some(json!({"m": 1})), Some(60), None),
        };
        let put_json = |k: &str| json!({"op": "put", "key": k, "value": {"v": 0}, "metadata": {"m": 1}, "ttlSeconds": 60});
        let cases = vec![
            (
                vec![("a".to_owned(), 0)],
                vec![put("a")],
                json!({"checks": [{"key": "a", "revision": 0}], "operations": [put_json("a")]}),
            ),
            (
                vec![("a".to_owned(), -1)],
                vec![put("a")],
                json!({"checks": [{"key": "a", "revision": -1}], "operations": [put_json("a")]}),
            ),
            (vec![], vec![], json!({"operations": []})),
            (
                vec![],
                vec![
                    OperationInput::Delete { key: "b".into() },
                    OperationInput::Increment {
                        key: "c".into(),
                        delta: -3,
                        ttl_seconds: Some(5),
                    },
                ],
                json!({"operations": [{"op": "delete", "key": "b"}, {"op": "increment", "key": "c", "delta": -3, "ttlSeconds": 5}]}),
            ),
            (
                vec![],
                vec![put("a"), OperationInput::Delete { key: "a".into() }],
                json!({"operations": [put_json("a"), {"op": "delete", "key": "a"}]}),
            ),
        ];
        for (checks, operations, mut json) in cases {
            json["namespace"] = "notes".into();
            same(AtomicRequest::new("notes", checks, operations), json);
        }
        let guarded = OperationInput::Put {
            key: "a".into(),
            value: json!(1),
            options: write(None, None, Some(1)),
        };
        let e = AtomicRequest::new("notes", vec![], vec![guarded]).unwrap_err();
        assert_eq!(e.details().unwrap()["field"], "operations[0].ifRevision");
    }

    #[test]
    fn patch_ops_match_the_server() {
        let input = |op: &str, key: &str, value: Option<Value>| PatchInput {
            op: op.into(),
            key: key.into(),
            value,
        };
        let ops = PatchOp::list(vec![
            input("set", "a", Some(json!(-0.0))),
            input("del", "b", None),
        ]);
        let parsed: Vec<PatchOp> =
            crate::parse_json(br#"[{"op":"set","key":"a","value":0},{"op":"del","key":"b"}]"#)
                .unwrap();
        assert_eq!(ops.unwrap(), parsed);
        for (inputs, field) in [
            (vec![], "body"),
            (vec![input("add", "a", None)], "[0].op"),
            (vec![input("set", "a", None)], "[0].value"),
            (vec![input("del", "a", Some(json!(1)))], "[0].value"),
            (
                vec![input("del", "a", None), input("del", "a", None)],
                "[1].key",
            ),
            (vec![input("del", "a/b", None)], "[0].key"),
        ] {
            let e = PatchOp::list(inputs).unwrap_err();
            assert_eq!(e.details().unwrap()["field"], field, "{e:?}");
        }
    }
}
