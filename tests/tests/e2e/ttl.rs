//! TTL: an expired record is invisible to every read at once; reads never write; writes remove
//! a bounded batch of their namespace's expired records and the background sweeper the rest. Time passing is simulated by moving the stored
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

/// Every row of every table of the server's database, as `(table, row)` text: a read that wrote
/// anything, even a version bump, changes it.
async fn every_row(s: &TestServer) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "ext_storage_records",
        "ext_storage_namespaces",
        "ext_storage_audit",
        "ext_storage_tenants",
    ] {
        rows.extend(s.rows_as_text(table).await);
    }
    rows
}

/// 40 expiring records in `conf`, one live one, one expiring record in `other`, all expired.
async fn expired_namespace(s: &TestServer) -> alga_storage_tests::Tenant {
    let t = s.tenant(json!([{"namespace": "conf", "access": ["read", "write"]}, {"namespace": "other", "access": ["read", "write"]}])).await;
    for chunk in 0..2 {
        let items: Vec<_> = (0..20)
            .map(|i| json!({"key": format!("e{chunk}-{i}"), "value": i, "ttlSeconds": 60}))
            .collect();
        let answer = s
            .rest(
                &t,
                Method::POST,
                "/conf",
                &[],
                Some(json!({"items": items})),
            )
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let live = json!({"value": 1});
    s.rest(&t, Method::PUT, "/conf/live", &[], Some(live)).await;
    let x = json!({"value": 1, "ttlSeconds": 60});
    s.rest(&t, Method::PUT, "/other/x", &[], Some(x)).await;
    s.expire_all().await;
    assert_eq!(s.stored_rows().await, 42);
    t
}

#[tokio::test]
async fn reads_never_write_and_writes_sweep_a_bounded_batch_of_their_namespace() {
    let s = TestServer::start_with(|c| c.sweep_interval_seconds = 0).await;
    let t = expired_namespace(&s).await;
    let before = every_row(&s).await;
    let etag = s.snapshot_etag(&t, "conf").await;
    for path in [
        "/conf/live",
        "/conf/e0-1",
        "/conf",
        "/conf?includeValues=true",
        "/other/x",
    ] {
        for _ in 0..5 {
            s.rest(&t, Method::GET, path, &[], None).await;
        }
    }
    assert_eq!(s.snapshot_etag(&t, "conf").await, etag);
    assert_eq!(every_row(&s).await, before, "a read changed a row");

    // A write to another namespace sweeps only that one.
    s.rest(&t, Method::DELETE, "/other/nothing", &[], None)
        .await;
    assert_eq!(s.stored_rows().await, 41);
    // Each write to `conf` removes at most 16 expired rows; the ETag does not move for them.
    let one = json!({"value": 1});
    s.rest(&t, Method::PUT, "/conf/live", &[], Some(one.clone()))
        .await;
    assert_eq!(s.stored_rows().await, 41 - 16);
    assert_eq!(s.snapshot_etag(&t, "conf").await, etag + 1);
    s.rest(&t, Method::PUT, "/conf/live", &[], Some(one.clone()))
        .await;
    assert_eq!(s.stored_rows().await, 41 - 32);
    s.rest(&t, Method::PUT, "/conf/live", &[], Some(one)).await;
    assert_eq!(s.stored_rows().await, 1, "only the live record is left");
    assert_eq!(s.snapshot_etag(&t, "conf").await, etag + 3);
}

#[tokio::test]
async fn the_background_sweeper_removes_expired_records_and_keeps_the_etag() {
    let s = TestServer::start_with(|c| {
        c.sweep_interval_seconds = 1;
        c.sweep_batch = 7;
    })
    .await;
    let t = expired_namespace(&s).await;
    let etag = s.snapshot_etag(&t, "conf").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.stored_rows().await > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper left {} rows",
            s.stored_rows().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.snapshot_etag(&t, "conf").await,
        etag,
        "an ETag names one snapshot, swept or not"
    );
}
