//! Every limit of the contract, tested at its boundary.

use alga_storage_core::limits::*;
use alga_storage_core::*;
use serde_json::{json, Value};

fn string_of(bytes: usize) -> Value {
    // A JSON string whose serialization is exactly `bytes` long (two bytes are the quotes).
    Value::String("a".repeat(bytes - 2))
}

fn put(value: Value) -> PutRequest {
    PutRequest {
        namespace: Namespace::new("ns").unwrap(),
        key: Key::new("k").unwrap(),
        value,
        metadata: None,
        ttl_seconds: None,
        if_revision: None,
    }
}

#[test]
fn namespace_of_64_chars_is_accepted_and_65_refused() {
    assert!(Namespace::new("a".repeat(64)).is_ok());
    let err = Namespace::new("a".repeat(65)).unwrap_err();
    assert_eq!(err.field, "namespace");
    assert!(err.reason.contains("65"), "{err}");
}

#[test]
fn namespace_must_be_a_lowercase_slug() {
    for ok in ["settings", "a", "0", "a_b-c9"] {
        assert!(Namespace::new(ok).is_ok(), "{ok}");
    }
    for bad in ["", "Settings", "-a", "_a", "a b", "a.b", "é", "a/b"] {
        assert!(Namespace::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn key_of_128_chars_is_accepted_and_129_refused() {
    assert!(Key::new("k".repeat(128)).is_ok());
    // Characters, not bytes: 128 four-byte characters are fine.
    assert!(Key::new("😀".repeat(128)).is_ok());
    let err = Key::new("k".repeat(129)).unwrap_err();
    assert_eq!(err.field, "key");
}

#[test]
fn key_refuses_empty_slash_and_control_characters() {
    for bad in ["", "a/b", "/", "a\nb", "a\u{0}b", "a\u{7f}"] {
        assert!(Key::new(bad).is_err(), "{bad:?}");
    }
    for ok in ["a b", "100%", "under_score", "ünïcödé", "a?b#c"] {
        assert!(Key::new(ok).is_ok(), "{ok:?}");
    }
}

#[test]
fn ttl_of_60_seconds_is_accepted_and_59_refused() {
    assert_eq!(TtlSeconds::new(60).unwrap().get(), MIN_TTL_SECONDS);
    assert_eq!(TtlSeconds::new(59).unwrap_err().field, "ttlSeconds");
}

#[test]
fn ttl_of_30_days_is_accepted_and_30_days_plus_1_second_refused() {
    assert_eq!(TtlSeconds::new(30 * 86_400).unwrap().get(), MAX_TTL_SECONDS);
    assert!(TtlSeconds::new(30 * 86_400 + 1).is_err());
    assert!(TtlSeconds::new(-1).is_err());
}

#[test]
fn list_limit_is_1_to_100_with_default_25() {
    assert_eq!(Limit::default().get(), 25);
    assert!(Limit::new(1).is_ok());
    assert!(Limit::new(100).is_ok());
    assert!(Limit::new(0).is_err());
    assert_eq!(Limit::new(101).unwrap_err().field, "limit");
}

#[test]
fn revision_guard_refuses_negative() {
    assert_eq!(Revision::new(0).unwrap().get(), 0);
    assert!(Revision::new(-1).is_err());
}

#[test]
fn value_of_64_kib_is_accepted_and_one_byte_more_refused() {
    put(string_of(MAX_VALUE_BYTES)).validate().unwrap();
    let err = put(string_of(MAX_VALUE_BYTES + 1)).validate().unwrap_err();
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
    assert_eq!(err.status(), 413);
    assert_eq!(err.details().unwrap()["field"], "value");
    assert_eq!(err.details().unwrap()["actual"], MAX_VALUE_BYTES + 1);
}

#[test]
fn metadata_of_4_kib_is_accepted_and_one_byte_more_refused() {
    let meta = |n: usize| {
        // {"m":"…"} has 8 bytes of overhead.
        let mut map = Metadata::new();
        map.insert("m".into(), Value::String("x".repeat(n - 8)));
        map
    };
    let mut req = put(json!(1));
    req.metadata = Some(meta(MAX_METADATA_BYTES));
    req.validate().unwrap();
    req.metadata = Some(meta(MAX_METADATA_BYTES + 1));
    let err = req.validate().unwrap_err();
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
    assert_eq!(err.details().unwrap()["field"], "metadata");
}

#[test]
fn strings_with_nul_are_refused() {
    let err = put(json!({"a": "x\u{0}y"})).validate().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
}

fn bulk(items: Vec<BulkPutItem>) -> BulkPutRequest {
    BulkPutRequest {
        namespace: Namespace::new("ns").unwrap(),
        items,
    }
}

fn item(key: &str, value: Value) -> BulkPutItem {
    BulkPutItem {
        key: Key::new(key).unwrap(),
        value,
        metadata: None,
        ttl_seconds: None,
        if_revision: None,
    }
}

#[test]
fn bulk_of_20_items_is_accepted_and_21_refused() {
    let items = |n: usize| (0..n).map(|i| item(&format!("k{i}"), json!(i))).collect();
    bulk(items(20)).validate().unwrap();
    let err = bulk(items(21)).validate().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(err.details().unwrap()["field"], "items");
    assert_eq!(
        bulk(vec![]).validate().unwrap_err().code(),
        ErrorCode::ValidationFailed
    );
}

#[test]
fn bulk_of_512_kib_is_accepted_and_one_byte_more_refused() {
    // 8 values of exactly 64 KiB = 512 KiB.
    let full: Vec<_> = (0..8)
        .map(|i| item(&format!("k{i}"), string_of(MAX_VALUE_BYTES)))
        .collect();
    bulk(full.clone()).validate().unwrap();
    let mut over = full;
    over.push(item("k8", json!(1)));
    let err = bulk(over).validate().unwrap_err();
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
    assert_eq!(err.details().unwrap()["limit"], MAX_BULK_BYTES);
}

#[test]
fn bulk_keys_must_be_distinct() {
    let err = bulk(vec![item("a", json!(1)), item("a", json!(2))])
        .validate()
        .unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "items[1].key");
}

#[test]
fn bulk_item_over_its_own_limit_is_a_partial_failure_naming_the_item() {
    let err = bulk(vec![
        item("a", json!(1)),
        item("b", string_of(MAX_VALUE_BYTES + 1)),
    ])
    .validate()
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BulkPartialFailure);
    assert_eq!(err.status(), 413);
    let failing = &err.details().unwrap()["items"];
    assert_eq!(failing.as_array().unwrap().len(), 1);
    assert_eq!(failing[0]["index"], 1);
    assert_eq!(failing[0]["key"], "b");
    assert_eq!(failing[0]["code"], "PAYLOAD_TOO_LARGE");
}

#[test]
fn list_prefix_longer_than_a_key_is_refused() {
    let req = ListRequest {
        namespace: Namespace::new("ns").unwrap(),
        cursor: None,
        limit: None,
        key_prefix: Some("p".repeat(129)),
        metadata: None,
        include_values: false,
        include_metadata: false,
    };
    assert_eq!(
        req.validate().unwrap_err().details().unwrap()["field"],
        "keyPrefix"
    );
}

#[test]
fn principals_hold_at_most_32_namespaces() {
    let grants = |n: usize| -> Vec<Grant> {
        (0..n)
            .map(|i| Grant {
                namespace: Namespace::new(format!("ns{i}")).unwrap(),
                access: vec![Access::Read],
            })
            .collect()
    };
    validate_grants(&grants(32)).unwrap();
    assert_eq!(
        validate_grants(&grants(33)).unwrap_err().code(),
        ErrorCode::ValidationFailed
    );
}

fn set(key: &str, value: Value) -> PatchOp {
    PatchOp::Set {
        key: Key::new(key).unwrap(),
        value,
    }
}

#[test]
fn patch_of_100_ops_is_accepted_and_101_refused() {
    let ops = |n: usize| {
        (0..n)
            .map(|i| set(&format!("k{i}"), json!(i)))
            .collect::<Vec<_>>()
    };
    validate_patch(&ops(MAX_PATCH_OPS)).unwrap();
    assert_eq!(
        validate_patch(&ops(MAX_PATCH_OPS + 1)).unwrap_err().code(),
        ErrorCode::ValidationFailed
    );
    assert_eq!(
        validate_patch(&[]).unwrap_err().code(),
        ErrorCode::ValidationFailed
    );
}

#[test]
fn patch_keys_are_distinct_and_values_within_limits() {
    let del = PatchOp::Del {
        key: Key::new("a").unwrap(),
    };
    let err = validate_patch(&[set("a", json!(1)), del]).unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "[1].key");
    let err = validate_patch(&[set("a", string_of(MAX_VALUE_BYTES + 1))]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
    assert_eq!(err.details().unwrap()["field"], "[0].value");
    let nine: Vec<_> = (0..9)
        .map(|i| set(&format!("k{i}"), string_of(MAX_VALUE_BYTES)))
        .collect();
    assert_eq!(
        validate_patch(&nine).unwrap_err().details().unwrap()["limit"],
        MAX_BULK_BYTES
    );
}

#[test]
fn patch_ops_parse_strictly() {
    let ok: Vec<PatchOp> =
        parse_json(br#"[{"op":"set","key":"foo","value":"bar"},{"op":"del","key":"x"}]"#).unwrap();
    assert_eq!(
        ok[1],
        PatchOp::Del {
            key: Key::new("x").unwrap()
        }
    );
    for bad in [
        &br#"[{"op":"inc","key":"a"}]"#[..],
        br#"[{"op":"set","key":"a"}]"#,
        br#"[{"op":"del","key":"a","value":1}]"#,
        br#"[{"key":"a","value":1}]"#,
        br#"{"op":"set","key":"a","value":1}"#,
        br#"[{"op":"set","key":"a/b","value":1}]"#,
    ] {
        assert!(
            parse_json::<Vec<PatchOp>>(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn etags_parse_quoted_unquoted_and_weak() {
    assert_eq!(parse_etag("\"12\"").unwrap(), 12);
    assert_eq!(parse_etag("W/\"12\"").unwrap(), 12);
    assert_eq!(parse_etag(" 0 ").unwrap(), 0);
    assert!(parse_etag("\"-1\"").is_err());
    assert!(parse_etag("*").is_err());
}

/// `n` arrays, one inside the other.
fn nested(n: usize) -> Value {
    (0..n).fold(json!(1), |inner, _| json!([inner]))
}

#[test]
fn values_and_metadata_nest_at_most_100_deep() {
    assert!(put(nested(MAX_VALUE_DEPTH)).validate().is_ok());
    let e = put(nested(MAX_VALUE_DEPTH + 1)).validate().unwrap_err();
    assert_eq!(e.code(), ErrorCode::ValidationFailed);
    assert_eq!(e.details().unwrap()["field"], "value");
    let mut with_metadata = put(json!(1));
    let metadata = |n| json!({ "m": nested(n) }).as_object().unwrap().clone();
    with_metadata.metadata = Some(metadata(MAX_VALUE_DEPTH - 1));
    assert!(with_metadata.validate().is_ok());
    with_metadata.metadata = Some(metadata(MAX_VALUE_DEPTH));
    let e = with_metadata.validate().unwrap_err();
    assert_eq!(e.details().unwrap()["field"], "metadata");
    // Every surface: a patch's values and an atomic put's value too.
    let patch = [PatchOp::Set {
        key: Key::new("k").unwrap(),
        value: nested(MAX_VALUE_DEPTH + 1),
    }];
    assert_eq!(
        validate_patch(&patch).unwrap_err().details().unwrap()["field"],
        "[0].value"
    );
}
