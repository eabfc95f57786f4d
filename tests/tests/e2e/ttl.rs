//! TTL: an expired record is invisible to every read at once and is swept by requests that touch
//! its namespace, a bounded batch at a time. Time passing is simulated by moving the stored
//! expiry into the past.

use alga_storage_tests::TestServer;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_expired_record_is_invisible_at_once_and_counts_as_absent() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    s.rest(
        &t,
        Method::PUT,
        "/conf/gone",
        &[],
        Some(json!({"value": 1, "ttlSeconds": 60})),
    )
    .await;
    s.rest(
        &t,
        Method::PUT,
        "/conf/gone",
        &[],
        Some(json!({"value": 2, "ttlSeconds": 60})),
    )
    .await;
    s.rest(
        &t,
        Method::PUT,
        "/conf/kept",
        &[],
        Some(json!({"value": 1})),
    )
    .await;
    s.expire_all().await;
    assert_eq!(
        s.rest(&t, Method::GET, "/conf/gone", &[], None)
            .await
            .status,
        404
    );
    let list = s.rest(&t, Method::GET, "/conf", &[], None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["items"][0]["key"], "kept");
    // A guarded delete of an expired record is 404; a create-only write succeeds at revision 1.
    assert_eq!(
        s.rest(
            &t,
            Method::DELETE,
            "/conf/gone",
            &[("if-revision-match", "2")],
            None
        )
        .await
        .status,
        404
    );
    let again = s
        .rest(
            &t,
            Method::PUT,
            "/conf/gone",
            &[],
            Some(json!({"value": 3, "ifRevision": 0})),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["revision"], 1);
    assert_eq!(again.body["ttlExpiresAt"], serde_json::Value::Null);
}

#[tokio::test]
async fn an_expired_record_rewritten_unconditionally_starts_again_at_revision_1() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    for _ in 0..3 {
        s.rest(
            &t,
            Method::PUT,
            "/conf/k",
            &[],
            Some(json!({"value": 1, "ttlSeconds": 60})),
        )
        .await;
    }
    s.expire_all().await;
    let put = s
        .rest(
            &t,
            Method::PUT,
            "/conf/k",
            &[],
            Some(json!({"value": 2, "ifRevision": 3})),
        )
        .await;
    assert_eq!(put.status, 409, "a guard on the expired revision fails");
    assert_eq!(put.body["error"]["details"]["currentRevision"], 0);
    let put = s
        .rest(
            &t,
            Method::POST,
            "/conf",
            &[],
            Some(json!({"items": [{"key": "k", "value": 2}]})),
        )
        .await;
    assert_eq!(put.body["items"][0]["revision"], 1);
}

#[tokio::test]
async fn expired_records_are_swept_in_bounded_batches_by_requests_to_their_namespace() {
    let s = TestServer::start().await;
    let t = s.tenant(json!([{"namespace": "conf", "access": ["read", "write"]}, {"namespace": "other", "access": ["read", "write"]}])).await;
    for chunk in 0..2 {
        let items: Vec<_> = (0..20)
            .map(|i| json!({"key": format!("e{chunk}-{i}"), "value": i, "ttlSeconds": 60}))
            .collect();
        s.rest(
            &t,
            Method::POST,
            "/conf",
            &[],
            Some(json!({"items": items})),
        )
        .await;
    }
    s.rest(
        &t,
        Method::PUT,
        "/conf/live",
        &[],
        Some(json!({"value": 1})),
    )
    .await;
    s.rest(
        &t,
        Method::PUT,
        "/other/x",
        &[],
        Some(json!({"value": 1, "ttlSeconds": 60})),
    )
    .await;
    s.expire_all().await;
    assert_eq!(s.stored_rows().await, 42);
    // A request to another namespace sweeps only that one.
    s.rest(&t, Method::GET, "/other/x", &[], None).await;
    assert_eq!(s.stored_rows().await, 41);
    // Each request to `conf` removes at most 16 expired rows.
    s.rest(&t, Method::GET, "/conf/live", &[], None).await;
    assert_eq!(s.stored_rows().await, 41 - 16);
    s.rest(&t, Method::GET, "/conf", &[], None).await;
    assert_eq!(s.stored_rows().await, 41 - 32);
    s.rest(
        &t,
        Method::PUT,
        "/conf/live",
        &[],
        Some(json!({"value": 2})),
    )
    .await;
    assert_eq!(s.stored_rows().await, 1, "only the live record is left");
}
