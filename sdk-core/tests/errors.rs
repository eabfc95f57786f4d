//! Error codes, statuses, the envelope, and the capability check.

use alga_storage_core::*;
use serde_json::json;

#[test]
fn every_code_has_its_documented_status() {
    let expected = [
        ("REVISION_MISMATCH", 409),
        ("QUOTA_EXCEEDED", 429),
        ("VALIDATION_FAILED", 400),
        ("NOT_FOUND", 404),
        ("UNAUTHORIZED", 403),
        ("UNAUTHENTICATED", 401),
        ("RATE_LIMITED", 429),
        ("PAYLOAD_TOO_LARGE", 413),
        ("PRECONDITION_FAILED", 412),
        ("BULK_PARTIAL_FAILURE", 400),
        ("INTERNAL_ERROR", 500),
        ("UNAVAILABLE", 503),
    ];
    assert_eq!(ErrorCode::ALL.len(), expected.len());
    for (code, (name, status)) in ErrorCode::ALL.iter().zip(expected) {
        assert_eq!(code.as_str(), name);
        assert_eq!(code.http_status(), status, "{name}");
        assert_eq!(serde_json::to_value(code).unwrap(), json!(name));
    }
}

#[test]
fn error_serialises_as_the_envelope_and_parses_back() {
    let err = StorageError::revision_mismatch(7);
    let body = serde_json::to_vec(&err).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["error"]["code"], "REVISION_MISMATCH");
    assert_eq!(value["error"]["details"], json!({"currentRevision": 7}));
    assert!(value["error"]["message"].as_str().unwrap().contains('7'));
    assert_eq!(StorageError::from_envelope(409, &body), err);
}

#[test]
fn error_without_details_omits_them() {
    let value = serde_json::to_value(StorageError::not_found()).unwrap();
    assert_eq!(
        value,
        json!({"error": {"code": "NOT_FOUND", "message": "record not found"}})
    );
}

#[test]
fn a_body_that_is_not_an_envelope_still_gives_a_typed_error() {
    let err = StorageError::from_envelope(502, b"<html>bad gateway</html>");
    assert_eq!(err.code(), ErrorCode::InternalError);
    assert_eq!(err.status(), 502);
    assert_eq!(
        StorageError::from_envelope(404, b"").code(),
        ErrorCode::NotFound
    );
}

#[test]
fn bulk_partial_failure_takes_the_status_of_its_first_item() {
    let err = StorageError::bulk_partial_failure(vec![BulkItemError {
        index: 2,
        key: "k".into(),
        code: ErrorCode::RevisionMismatch,
        message: "guard failed".into(),
        details: Some(json!({"currentRevision": 3})),
    }]);
    assert_eq!(err.status(), 409);
    let body = serde_json::to_vec(&err).unwrap();
    assert_eq!(StorageError::from_envelope(409, &body).status(), 409);
}

#[test]
fn bulk_partial_failure_lists_its_items_as_their_serialize_writes_them() {
    let items = vec![
        BulkItemError {
            index: 2,
            key: "k".into(),
            code: ErrorCode::RevisionMismatch,
            message: "guard failed".into(),
            details: Some(json!({"currentRevision": 3})),
        },
        BulkItemError::new(
            7,
            "k\u{e9}",
            &StorageError::new(ErrorCode::NotFound, "gone"),
        ),
    ];
    let err = StorageError::bulk_partial_failure(items.clone());
    assert_eq!(
        err.details().unwrap()["items"],
        serde_json::to_value(&items).unwrap()
    );
    assert_eq!(err.details().unwrap()["items"][1].get("details"), None);
}

fn ns(s: &str) -> Namespace {
    Namespace::new(s).unwrap()
}

#[test]
fn capability_check_says_why_it_refuses() {
    let grants = vec![
        Grant {
            namespace: ns("settings"),
            access: vec![Access::Read, Access::Write],
        },
        Grant {
            namespace: ns("audit"),
            access: vec![Access::Read],
        },
    ];
    ensure_capability(&grants, &ns("settings"), Access::Write).unwrap();
    ensure_capability(&grants, &ns("audit"), Access::Read).unwrap();
    let reason = |g: &[Grant], n: &str, a| {
        let e = ensure_capability(g, &ns(n), a).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unauthorized);
        assert_eq!(e.status(), 403);
        e.details().unwrap()["reason"].as_str().unwrap().to_owned()
    };
    assert_eq!(reason(&grants, "audit", Access::Write), "accessNotGranted");
    assert_eq!(
        reason(&grants, "other", Access::Read),
        "namespaceNotGranted"
    );
    assert_eq!(reason(&[], "settings", Access::Read), "noGrants");
}

#[test]
fn grants_parse_from_the_admin_json() {
    let grants: Vec<Grant> =
        parse_json(br#"[{"namespace":"settings","access":["read","write"]}]"#).unwrap();
    assert_eq!(grants[0].access, vec![Access::Read, Access::Write]);
    let err =
        parse_json::<Vec<Grant>>(br#"[{"namespace":"settings","access":["admin"]}]"#).unwrap_err();
    assert_eq!(err.details().unwrap()["field"], "[0].access[0]");
}

#[test]
fn every_error_crosses_the_wit_boundary_and_comes_back_equal() {
    use alga_storage_core::{BulkItemError, ErrorKind};
    let mut errors: Vec<StorageError> = ErrorCode::ALL
        .into_iter()
        .filter(|c| *c != ErrorCode::BulkPartialFailure)
        .map(|c| StorageError::new(c, "why"))
        .collect();
    errors.push(StorageError::revision_mismatch(7));
    errors.push(StorageError::bulk_partial_failure(vec![
        BulkItemError::new(2, "k", &StorageError::too_large("value", 10, 11)),
    ]));
    errors.push(StorageError::transport(
        alga_storage_core::TransportCause::Network,
        "connection failed",
    ));
    errors.push(
        StorageError::new(ErrorCode::Unauthorized, "no")
            .with_details(serde_json::json!({"reason": "namespaceNotGranted"})),
    );
    for err in errors {
        let details = err.details().map(|d| d.to_string());
        let back = StorageError::from_parts(
            err.kind(),
            err.code().as_str(),
            err.message(),
            details.as_deref(),
        );
        assert_eq!(back, err, "{err}");
        assert_eq!(back.status(), err.status());
    }
    assert_eq!(
        StorageError::new(ErrorCode::Unauthorized, "no")
            .with_details(serde_json::json!({"reason": "namespaceNotGranted"}))
            .kind(),
        ErrorKind::NamespaceDenied
    );
    assert_eq!(
        StorageError::bulk_partial_failure(vec![BulkItemError::new(
            0,
            "k",
            &StorageError::too_large("value", 10, 11)
        )])
        .status(),
        413
    );
    assert_eq!(ErrorKind::ALL.len(), 9, "the nine cases of the WIT variant");
}
