//! JSON of the contract: the exact examples of seed 004 round-trip, unknown fields are refused,
//! and every parse error names its field.

use alga_storage_core::*;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

const EXAMPLES: &str = include_str!("../../tests/conformance/seed-004-examples.json");

fn examples() -> Value {
    serde_json::from_str(EXAMPLES).unwrap()
}

fn round_trip<T: DeserializeOwned + Serialize>(name: &str) {
    let example = examples()[name].clone();
    let parsed: T = parse_json(&serde_json::to_vec(&example).unwrap())
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
    assert_eq!(
        serde_json::to_value(&parsed).unwrap(),
        example,
        "{name} does not round-trip"
    );
}

#[test]
fn seed_examples_round_trip_exactly() {
    round_trip::<PutRequest>("putRequest");
    round_trip::<PutResponse>("putResponse");
    round_trip::<Record>("getResponse");
    round_trip::<ListRequest>("listRequest");
    round_trip::<ListResponse>("listResponse");
    round_trip::<DeleteRequest>("deleteRequest");
    round_trip::<BulkPutRequest>("bulkPutRequest");
    round_trip::<BulkPutResponse>("bulkPutResponse");
}

/// The seed that defines the contract (seed 004), carried in the repository beside the fixture.
const SEED: &str = include_str!("../../tests/conformance/seed-004-contract.md");

/// The fixture is the seed's own `jsonc` blocks with only their comments removed.
#[test]
fn fixture_matches_the_seed() {
    let blocks: Vec<Value> = SEED
        .split("```jsonc\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .map(|b| serde_json::from_str(&strip_comments(b)).unwrap())
        .collect();
    let fixture = examples();
    let names = [
        "putRequest",
        "putResponse",
        "getResponse",
        "listRequest",
        "listResponse",
        "deleteRequest",
        "bulkPutRequest",
        "bulkPutResponse",
    ];
    assert_eq!(blocks.len(), names.len());
    for (block, name) in blocks.iter().zip(names) {
        assert_eq!(block, &fixture[name], "{name}");
    }
}

fn strip_comments(block: &str) -> String {
    let mut out = String::new();
    let mut rest = block;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = &rest[start + rest[start..].find("*/").unwrap() + 2..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_seed_request_is_accepted_in_the_runner_envelope() {
    let ex = examples();
    for (op, name) in [
        ("put", "putRequest"),
        ("list", "listRequest"),
        ("delete", "deleteRequest"),
        ("bulkPut", "bulkPutRequest"),
    ] {
        let mut body = ex[name].clone();
        body["operation"] = json!(op);
        let req = StorageRequest::from_json(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(req.operation(), op);
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }
}

#[test]
fn envelope_refuses_unknown_and_missing_operation() {
    let err = StorageRequest::from_json(br#"{"operation":"drop","namespace":"a"}"#).unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "operation");
    let err = StorageRequest::from_json(br#"{"namespace":"a","key":"k"}"#).unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "operation");
    let err = StorageRequest::from_json(br#"[1]"#).unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "body");
}

#[test]
fn unknown_fields_are_refused_with_their_name() {
    let err = parse_json::<PutRequest>(br#"{"namespace":"a","key":"k","value":1,"colour":"red"}"#)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert!(err.message().contains("colour"), "{}", err.message());
    let err = StorageRequest::from_json(br#"{"operation":"get","namespace":"a","key":"k","x":1}"#)
        .unwrap_err();
    assert!(err.message().contains('x'));
}

#[test]
fn parse_errors_name_the_field_and_reason() {
    let cases: [(&[u8], &str); 8] = [
        (br#"{"namespace":"Bad","key":"k","value":1}"#, "namespace"),
        (br#"{"namespace":"a","key":"a/b","value":1}"#, "key"),
        (
            br#"{"namespace":"a","key":"k","value":1,"ttlSeconds":59}"#,
            "ttlSeconds",
        ),
        (
            br#"{"namespace":"a","key":"k","value":1,"ttlSeconds":"60"}"#,
            "ttlSeconds",
        ),
        (
            br#"{"namespace":"a","key":"k","value":1,"ifRevision":-1}"#,
            "ifRevision",
        ),
        (
            br#"{"namespace":"a","key":"k","value":1,"metadata":[1]}"#,
            "metadata",
        ),
        (br#"{"namespace":"a","key":"k"}"#, "value"),
        (br#"{"namespace":"a","key":"k","value":1"#, "body"),
    ];
    for (body, field) in cases {
        let err = parse_json::<PutRequest>(body).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed);
        assert_eq!(
            err.details().unwrap()["field"],
            field,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(!err.details().unwrap()["reason"]
            .as_str()
            .unwrap()
            .is_empty());
    }
    let err = parse_json::<BulkPutRequest>(
        br#"{"namespace":"a","items":[{"key":"ok","value":1},{"key":"","value":1}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "items[1].key");
    let err =
        parse_json::<PutRequest>(br#"{"namespace":"a","key":"k","value":1} trailing"#).unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "body");
}

#[test]
fn absent_optional_fields_are_omitted_and_if_revision_is_null() {
    let req: PutRequest = parse_json(br#"{"namespace":"a","key":"k","value":null}"#).unwrap();
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        json!({"namespace":"a","key":"k","value":null,"ifRevision":null})
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[^\u{0}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn valid_namespaces_round_trip(s in "[a-z0-9][a-z0-9_-]{0,63}") {
        let ns = Namespace::new(s.clone()).unwrap();
        let back: Namespace = serde_json::from_value(serde_json::to_value(&ns).unwrap()).unwrap();
        prop_assert_eq!(back.as_str(), s);
    }

    #[test]
    fn valid_keys_round_trip(s in "[^/\\p{Cc}]{1,128}") {
        let key = Key::new(s.clone()).unwrap();
        let back: Key = serde_json::from_value(serde_json::to_value(&key).unwrap()).unwrap();
        prop_assert_eq!(back.as_str(), s);
    }

    #[test]
    fn valid_put_requests_round_trip(
        key in "[^/\\p{Cc}]{1,40}",
        value in arb_json(),
        ttl in proptest::option::of(60i64..=2_592_000),
        rev in proptest::option::of(0i64..=i64::MAX),
    ) {
        let req = PutRequest {
            namespace: Namespace::new("ns").unwrap(),
            key: Key::new(key).unwrap(),
            value,
            metadata: None,
            ttl_seconds: ttl.map(|t| TtlSeconds::new(t).unwrap()),
            if_revision: rev.map(|r| Revision::new(r).unwrap()),
        };
        req.validate().unwrap();
        let body = serde_json::to_vec(&StorageRequest::Put(req.clone())).unwrap();
        prop_assert_eq!(StorageRequest::from_json(&body).unwrap(), StorageRequest::Put(req));
    }
}

#[test]
fn containment_follows_jsonb_semantics() {
    let doc = json!({"a": {"b": [1, 2, {"c": "x"}]}, "s": "t", "n": 2, "z": null});
    for (filter, expected) in [
        (json!({}), true),
        (json!({"s": "t"}), true),
        (json!({"a": {}}), true),
        (json!({"a": {"b": []}}), true),
        (json!({"a": {"b": [2, 1]}}), true),
        (json!({"a": {"b": [{"c": "x"}]}}), true),
        (json!({"a": {"b": [{}]}}), true),
        (json!({"n": 2.0}), true),
        (json!({"z": null}), true),
        (json!({"s": "u"}), false),
        (json!({"missing": null}), false),
        (json!({"a": {"b": [3]}}), false),
        (json!({"a": {"b": 1}}), false),
        (json!({"a": {"b": [[1]]}}), false),
        (json!({"n": "2"}), false),
    ] {
        assert_eq!(json_contains(&doc, &filter), expected, "{filter}");
    }
}
