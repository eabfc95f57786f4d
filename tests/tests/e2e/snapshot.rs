//! The namespace snapshot API (seed 003): whole-namespace GET with an ETag, atomic PATCH with
//! If-Match, and an ETag that means exactly one snapshot whatever surface wrote.

use alga_storage_tests::{Answer, Tenant, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

fn rw() -> Value {
    json!([{"namespace": "smoke", "access": ["read", "write"]}])
}

async fn snapshot(s: &TestServer, t: &Tenant) -> Answer {
    let auth = format!("Bearer {}", t.token);
    s.send(
        Method::GET,
        "/api/storage?ns=smoke",
        &[("authorization", &auth)],
        None,
    )
    .await
}

async fn patch(s: &TestServer, t: &Tenant, if_match: &str, ops: Value) -> Answer {
    let auth = format!("Bearer {}", t.token);
    let headers = [
        ("authorization", auth.as_str()),
        ("if-match", if_match),
        ("x-thesara-app-id", "smoke"),
    ];
    s.send(Method::PATCH, "/api/storage?ns=smoke", &headers, Some(ops))
        .await
}

fn etag(a: &Answer) -> u64 {
    let raw = a.headers["etag"].to_str().unwrap();
    assert!(
        raw.starts_with('"') && raw.ends_with('"'),
        "ETag is quoted: {raw}"
    );
    raw.trim_matches('"').parse().unwrap()
}

#[tokio::test]
async fn an_empty_namespace_is_an_empty_object_with_etag_0() {
    let s = TestServer::start().await;
    let t = s.tenant(rw()).await;
    let a = snapshot(&s, &t).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, json!({}));
    assert_eq!(a.headers["etag"], "\"0\"");
    assert_eq!(a.headers["x-storage-backend"], s.backend_name());
    let exposed = a.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase()
        .replace(' ', "");
    assert_eq!(exposed, "etag,x-storage-backend");
}

#[tokio::test]
async fn patch_creates_from_0_updates_with_the_current_etag_and_refuses_a_stale_one() {
    let s = TestServer::start().await;
    let t = s.tenant(rw()).await;
    let created = patch(
        &s,
        &t,
        "0",
        json!([{"op": "set", "key": "foo", "value": "bar"}]),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body, json!({"foo": "bar"}));
    let e1 = etag(&created);
    assert!(e1 > 0);
    let got = snapshot(&s, &t).await;
    assert_eq!((got.body.clone(), etag(&got)), (json!({"foo": "bar"}), e1));

    // The same create again is a conflict: 412 with the current ETag, nothing written.
    let conflict = patch(
        &s,
        &t,
        "0",
        json!([{"op": "set", "key": "foo", "value": "other"}]),
    )
    .await;
    assert_eq!(conflict.status, 412);
    assert_eq!(conflict.code(), "PRECONDITION_FAILED");
    assert_eq!(etag(&conflict), e1);
    assert_eq!(
        conflict.body["error"]["details"]["currentEtag"],
        format!("\"{e1}\"")
    );
    assert_eq!(snapshot(&s, &t).await.body, json!({"foo": "bar"}));

    let updated = patch(
        &s,
        &t,
        &format!("\"{e1}\""),
        json!([
            {"op": "set", "key": "foo", "value": "baz"},
            {"op": "set", "key": "n", "value": {"deep": [1, 2]}},
            {"op": "del", "key": "absent"}
        ]),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body, json!({"foo": "baz", "n": {"deep": [1, 2]}}));
    assert!(etag(&updated) > e1);
    // Each set advanced the record's revision, visible through the record API.
    let record = s.rest(&t, Method::GET, "/smoke/foo", &[], None).await;
    assert_eq!(
        (
            record.body["value"].clone(),
            record.body["revision"].clone()
        ),
        (json!("baz"), json!(2))
    );
}

#[tokio::test]
async fn every_write_through_any_surface_advances_the_etag() {
    let s = TestServer::start().await;
    let t = s.tenant(rw()).await;
    let mut last = etag(&snapshot(&s, &t).await);
    let advanced = |label: &str, now: u64, last: &mut u64| {
        assert!(
            now > *last,
            "{label}: ETag {now} did not advance past {last}"
        );
        *last = now;
    };
    s.rest(&t, Method::PUT, "/smoke/a", &[], Some(json!({"value": 1})))
        .await;
    advanced("REST put", etag(&snapshot(&s, &t).await), &mut last);
    s.rest(
        &t,
        Method::POST,
        "/smoke",
        &[],
        Some(json!({"items": [{"key": "b", "value": 2}, {"key": "c", "value": 3}]})),
    )
    .await;
    advanced("REST bulkPut", etag(&snapshot(&s, &t).await), &mut last);
    s.runner(
        &t.install,
        json!({"operation": "put", "namespace": "smoke", "key": "a", "value": 4}),
    )
    .await;
    advanced("runner put", etag(&snapshot(&s, &t).await), &mut last);
    s.rest(&t, Method::DELETE, "/smoke/b", &[], None).await;
    advanced("REST delete", etag(&snapshot(&s, &t).await), &mut last);
    let p = patch(
        &s,
        &t,
        &last.to_string(),
        json!([{"op": "del", "key": "c"}]),
    )
    .await;
    advanced("PATCH", etag(&p), &mut last);
    assert_eq!(snapshot(&s, &t).await.body, json!({"a": 4}));
    // Failed writes and reads leave it alone.
    s.rest(
        &t,
        Method::PUT,
        "/smoke/a",
        &[],
        Some(json!({"value": 5, "ifRevision": 9})),
    )
    .await;
    s.rest(&t, Method::GET, "/smoke?includeValues=true", &[], None)
        .await;
    assert_eq!(etag(&snapshot(&s, &t).await), last);
}

#[tokio::test]
async fn expiry_changes_the_etag_and_sweeping_does_not() {
    let s = TestServer::start().await;
    let t = s.tenant(rw()).await;
    s.rest(
        &t,
        Method::PUT,
        "/smoke/kept",
        &[],
        Some(json!({"value": 1})),
    )
    .await;
    s.rest(
        &t,
        Method::PUT,
        "/smoke/brief",
        &[],
        Some(json!({"value": 2, "ttlSeconds": 60})),
    )
    .await;
    let before = snapshot(&s, &t).await;
    assert_eq!(before.body, json!({"kept": 1, "brief": 2}));
    s.expire_all().await;
    let after = snapshot(&s, &t).await;
    assert_eq!(after.body, json!({"kept": 1}));
    assert!(
        etag(&after) > etag(&before),
        "the visible namespace changed, so must the ETag"
    );
    // Reading removed nothing; a write that changes nothing else sweeps the expired row, and the
    // snapshot and its ETag are unchanged by the sweep.
    assert_eq!(s.stored_rows().await, 2);
    s.rest(&t, Method::DELETE, "/smoke/nothing", &[], None)
        .await;
    assert_eq!(s.stored_rows().await, 1);
    let again = snapshot(&s, &t).await;
    assert_eq!(
        (again.body.clone(), etag(&again)),
        (after.body.clone(), etag(&after))
    );
    // A PATCH against the post-expiry ETag succeeds.
    let p = patch(
        &s,
        &t,
        &etag(&after).to_string(),
        json!([{"op": "set", "key": "x", "value": 0}]),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
}

#[tokio::test]
async fn an_emptied_namespace_is_etag_0_again_and_never_reuses_an_old_etag() {
    let s = TestServer::start().await;
    let t = s.tenant(rw()).await;
    let first = patch(&s, &t, "0", json!([{"op": "set", "key": "k", "value": 1}])).await;
    let e1 = etag(&first);
    let emptied = patch(&s, &t, &e1.to_string(), json!([{"op": "del", "key": "k"}])).await;
    assert_eq!(
        (
            emptied.status.as_u16(),
            emptied.body.clone(),
            etag(&emptied)
        ),
        (200, json!({}), 0)
    );
    let again = patch(&s, &t, "0", json!([{"op": "set", "key": "k", "value": 2}])).await;
    assert_eq!(again.status, 201);
    assert!(etag(&again) > e1, "a new snapshot never takes an old ETag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_patches_on_one_etag_exactly_one_wins() {
    let s = Arc::new(TestServer::start().await);
    let t = Arc::new(s.tenant(rw()).await);
    let base = etag(
        &patch(
            &s,
            &t,
            "0",
            json!([{"op": "set", "key": "counter", "value": 0}]),
        )
        .await,
    );
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (s, t) = (s.clone(), t.clone());
            tokio::spawn(async move {
                patch(&s, &t, &base.to_string(), json!([{"op": "set", "key": "counter", "value": i}, {"op": "set", "key": format!("w{i}"), "value": i}])).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let a = task.await.unwrap();
        match a.status.as_u16() {
            200 => winners.push(i),
            412 => assert_eq!(a.code(), "PRECONDITION_FAILED"),
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert_eq!(winners.len(), 1);
    let w = winners[0];
    assert_eq!(
        snapshot(&s, &t).await.body,
        json!({"counter": w, format!("w{w}"): w})
    );
}

#[tokio::test]
async fn bad_patches_are_refused_and_write_nothing() {
    let s = TestServer::start().await;
    let t = s.tenant(rw()).await;
    let auth = format!("Bearer {}", t.token);
    let ops = json!([{"op": "set", "key": "k", "value": 1}]);
    let send = |headers: Vec<(&'static str, String)>, body: Value, path: &'static str| {
        let s = &s;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.send(Method::PATCH, path, &h, Some(body)).await
        }
    };
    let full = || {
        vec![
            ("authorization", auth.clone()),
            ("if-match", "0".to_owned()),
            ("x-thesara-app-id", "app".to_owned()),
        ]
    };
    let without = |name: &str| {
        full()
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect::<Vec<_>>()
    };
    for (headers, field) in [
        (without("if-match"), "if-match"),
        (without("x-thesara-app-id"), "x-thesara-app-id"),
    ] {
        let a = send(headers, ops.clone(), "/api/storage?ns=smoke").await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (400, "VALIDATION_FAILED"),
            "{field}"
        );
        assert_eq!(a.body["error"]["details"]["field"], field);
    }
    let mut bad_etag = full();
    bad_etag[1].1 = "yesterday".into();
    assert_eq!(
        send(bad_etag, ops.clone(), "/api/storage?ns=smoke")
            .await
            .status,
        400
    );
    assert_eq!(
        send(
            without("authorization"),
            ops.clone(),
            "/api/storage?ns=smoke"
        )
        .await
        .status,
        401
    );
    for body in [
        json!([]),
        json!([{"op": "inc", "key": "k"}]),
        json!([{"op": "set", "key": "k"}]),
        json!([{"op": "set", "key": "a/b", "value": 1}]),
        json!([{"op": "set", "key": "k", "value": 1}, {"op": "del", "key": "k"}]),
        json!({"op": "set", "key": "k", "value": 1}),
    ] {
        let a = send(full(), body.clone(), "/api/storage?ns=smoke").await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (400, "VALIDATION_FAILED"),
            "{body}"
        );
    }
    for path in [
        "/api/storage",
        "/api/storage?ns=Bad",
        "/api/storage?ns=smoke&x=1",
    ] {
        assert_eq!(send(full(), ops.clone(), path).await.status, 400, "{path}");
    }
    let big = json!([{"op": "set", "key": "k", "value": "x".repeat(65_535)}]);
    assert_eq!(
        send(full(), big, "/api/storage?ns=smoke").await.code(),
        "PAYLOAD_TOO_LARGE"
    );
    let huge = Value::String(format!(
        r#"[{{"op":"set","key":"k","value":"{}"}}]"#,
        "x".repeat(2 << 20)
    ));
    let a = send(full(), huge, "/api/storage?ns=smoke").await;
    assert_eq!((a.status.as_u16(), a.code()), (413, "PAYLOAD_TOO_LARGE"));
    let plain = s
        .client
        .patch(format!("{}/api/storage?ns=smoke", s.base))
        .header("authorization", &auth)
        .header("if-match", "0")
        .header("x-thesara-app-id", "app")
        .header("content-type", "text/plain")
        .body(ops.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert_eq!(
        snapshot(&s, &t).await.body,
        json!({}),
        "nothing was written"
    );
}

#[tokio::test]
async fn snapshot_obeys_grants_and_tokens() {
    let s = TestServer::start().await;
    let read_only = s
        .tenant(json!([{"namespace": "smoke", "access": ["read"]}]))
        .await;
    assert_eq!(snapshot(&s, &read_only).await.status, 200);
    let a = patch(
        &s,
        &read_only,
        "0",
        json!([{"op": "set", "key": "k", "value": 1}]),
    )
    .await;
    assert_eq!((a.status.as_u16(), a.code()), (403, "UNAUTHORIZED"));
    let other = s
        .tenant(json!([{"namespace": "elsewhere", "access": ["read", "write"]}]))
        .await;
    assert_eq!(snapshot(&s, &other).await.status, 403);
    let anonymous = s
        .send(Method::GET, "/api/storage?ns=smoke", &[], None)
        .await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.code()),
        (401, "UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn anonymous_reads_see_the_configured_tenant_only() {
    let tenant = uuid::Uuid::new_v4();
    let s = TestServer::start_with(|c| c.anonymous_read_tenant = Some(tenant)).await;
    let install = format!("inst-{}", uuid::Uuid::new_v4().simple());
    s.install(tenant, &install, rw()).await;
    let t = Tenant {
        tenant,
        install: install.clone(),
        token: s.token(tenant, &install).await,
    };
    patch(
        &s,
        &t,
        "0",
        json!([{"op": "set", "key": "public", "value": true}]),
    )
    .await;
    let anonymous = s
        .send(Method::GET, "/api/storage?ns=smoke", &[], None)
        .await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.body.clone()),
        (200, json!({"public": true}))
    );
    let no_patch = s
        .send(
            Method::PATCH,
            "/api/storage?ns=smoke",
            &[("if-match", "0"), ("x-thesara-app-id", "a")],
            Some(json!([])),
        )
        .await;
    assert_eq!(no_patch.status, 401, "anonymous access is read-only");
}

#[tokio::test]
async fn preflight_answers_204_with_the_snapshot_headers() {
    let s = TestServer::start().await;
    let a = s
        .send(
            Method::OPTIONS,
            "/api/storage?ns=smoke",
            &[
                ("origin", "http://app.example"),
                ("access-control-request-method", "PATCH"),
                (
                    "access-control-request-headers",
                    "authorization, if-match, content-type, x-thesara-app-id",
                ),
            ],
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    let methods = a.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_uppercase();
    assert!(
        methods.contains("PATCH") && methods.contains("GET"),
        "{methods}"
    );
    let allowed = a.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for h in [
        "authorization",
        "if-match",
        "content-type",
        "x-thesara-app-id",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
}
