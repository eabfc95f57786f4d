//! Atomic operations (DESIGN § "Atomic operations"): `getMany` and `atomic` (checks, then put,
//! delete and increment, all or nothing) over REST and the runner envelope, on both backends.

use alga_storage_tests::{Answer, Tenant, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Instant;

async fn post(s: &TestServer, t: &Tenant, path: &str, body: Value) -> Answer {
    s.rest(t, Method::POST, path, &[], Some(body)).await
}

async fn setup() -> (TestServer, Tenant) {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "app", "access": ["read", "write"]}]))
        .await;
    (s, t)
}

#[tokio::test]
async fn get_many_reads_in_request_order_with_null_for_missing_keys() {
    let (s, t) = setup().await;
    for (key, value) in [("a", json!(1)), ("b", json!({"x": true}))] {
        let put = s
            .rest(
                &t,
                Method::PUT,
                &format!("/app/{key}"),
                &[],
                Some(json!({"value": value})),
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.body);
    }
    let rest = post(
        &s,
        &t,
        "/app:getMany",
        json!({"keys": ["b", "missing", "a"]}),
    )
    .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    let items = rest.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["key"], "b");
    assert_eq!(items[0]["value"], json!({"x": true}));
    assert_eq!(items[1], Value::Null);
    assert_eq!(items[2]["value"], 1);
    // The runner envelope answers the same body.
    let runner = s
        .runner(
            &t.install,
            json!({"operation": "getMany", "namespace": "app", "keys": ["b", "missing", "a"]}),
        )
        .await;
    assert_eq!(runner.status, 200, "{}", runner.body);
    assert_eq!(runner.body, rest.body);
    // Bad input names its field.
    let many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    for (body, field) in [
        (json!({"keys": []}), "keys"),
        (json!({"keys": many}), "keys"),
        (json!({"keys": ["a", "a"]}), "keys[1]"),
        (json!({"keys": ["a"], "extra": 1}), "extra"),
    ] {
        let answer = post(&s, &t, "/app:getMany", body).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(
            answer.body["error"]["details"]["field"], field,
            "{}",
            answer.body
        );
    }
    let unknown = post(&s, &t, "/app:frobnicate", json!({})).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

#[tokio::test]
async fn atomic_applies_everything_or_nothing() {
    let (s, t) = setup().await;
    let put = s
        .rest(
            &t,
            Method::PUT,
            "/app/old",
            &[],
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(put.status, 200);
    let before = s.snapshot_etag(&t, "app").await;

    // A failed check writes nothing.
    let failed = post(
        &s,
        &t,
        "/app:atomic",
        json!({
            "checks": [{"key": "old", "revision": 7}, {"key": "new", "revision": 0}],
            "operations": [
                {"op": "put", "key": "new", "value": 1},
                {"op": "delete", "key": "old"},
                {"op": "increment", "key": "n", "delta": 5}
            ]
        }),
    )
    .await;
    assert_eq!(failed.status, 409, "{}", failed.body);
    assert_eq!(failed.body["error"]["code"], "REVISION_MISMATCH");
    assert_eq!(
        failed.body["error"]["details"]["failedChecks"],
        json!([{"key": "old", "currentRevision": 1}])
    );
    for key in ["new", "n"] {
        let get = s
            .rest(&t, Method::GET, &format!("/app/{key}"), &[], None)
            .await;
        assert_eq!(get.status, 404, "{key} was written: {}", get.body);
    }
    let old = s.rest(&t, Method::GET, "/app/old", &[], None).await;
    assert_eq!(old.status, 200, "old was deleted");
    assert_eq!(s.snapshot_etag(&t, "app").await, before);
    let audit = s
        .admin(Method::GET, &format!("/tenants/{}/audit", t.tenant), None)
        .await;
    let audited: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["namespace"] == "app")
        .filter_map(|row| row["key"].as_str())
        .collect();
    assert_eq!(audited, ["old"], "{}", audit.body);

    // Checks that hold: every operation applies, in one step.
    let done = post(
        &s,
        &t,
        "/app:atomic",
        json!({
            "checks": [{"key": "old", "revision": 1}, {"key": "new", "revision": 0}],
            "operations": [
                {"op": "put", "key": "new", "value": {"a": 1}, "metadata": {"tag": "t"}},
                {"op": "delete", "key": "old"},
                {"op": "increment", "key": "n", "delta": 5},
                {"op": "delete", "key": "never-there"}
            ]
        }),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        done.body,
        json!({"results": [
            {"key": "new", "revision": 1},
            {"key": "old", "revision": null},
            {"key": "n", "revision": 1, "value": 5},
            {"key": "never-there", "revision": null}
        ]})
    );
    let n = s.rest(&t, Method::GET, "/app/n", &[], None).await;
    assert_eq!(n.body["value"], 5);
    let again = post(
        &s,
        &t,
        "/app:atomic",
        json!({"operations": [{"op": "increment", "key": "n", "delta": -7}]}),
    )
    .await;
    assert_eq!(
        again.body["results"][0],
        json!({"key": "n", "revision": 2, "value": -2})
    );
    // Each operation that changed a record advances the snapshot ETag, as its single-record
    // twin does: put new, delete old, increment n twice.
    assert_eq!(s.snapshot_etag(&t, "app").await, before + 4);
    let audit = s
        .admin(Method::GET, &format!("/tenants/{}/audit", t.tenant), None)
        .await;
    let ops: Vec<(String, String)> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or("").to_owned(),
                r["operation"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let tail: Vec<(&str, &str)> = ops[ops.len() - 4..]
        .iter()
        .map(|(k, o)| (k.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        tail,
        [
            ("new", "put"),
            ("old", "delete"),
            ("n", "increment"),
            ("n", "increment")
        ]
    );

    // The runner envelope takes the same request.
    let runner = s
        .runner(
            &t.install,
            json!({"operation": "atomic", "namespace": "app",
                   "operations": [{"op": "increment", "key": "n", "delta": 2}]}),
        )
        .await;
    assert_eq!(runner.status, 200, "{}", runner.body);
    assert_eq!(runner.body["results"][0]["value"], 0);
}

#[tokio::test]
async fn bad_atomic_input_is_refused_naming_the_field_and_writes_nothing() {
    let (s, t) = setup().await;
    let put = s
        .rest(
            &t,
            Method::PUT,
            "/app/text",
            &[],
            Some(json!({"value": "abc"})),
        )
        .await;
    assert_eq!(put.status, 200);
    let big = s
        .rest(
            &t,
            Method::PUT,
            "/app/big",
            &[],
            Some(json!({"value": i64::MAX})),
        )
        .await;
    assert_eq!(big.status, 200);
    let ops21: Vec<Value> = (0..21)
        .map(|i| json!({"op": "delete", "key": format!("k{i}")}))
        .collect();
    let inc = |key: &str, delta: Value| {
        json!({"operations": [
            {"op": "put", "key": "side", "value": 1},
            {"op": "increment", "key": key, "delta": delta}
        ]})
    };
    for (body, field) in [
        (json!({"operations": []}), "operations"),
        (json!({"operations": ops21}), "operations"),
        (
            json!({"operations": [{"op": "delete", "key": "a"}, {"op": "delete", "key": "a"}]}),
            "operations[1].key",
        ),
        (
            json!({"operations": [{"op": "frob", "key": "a"}]}),
            "operations[0]",
        ),
        (inc("n", json!(1.5)), "operations[1]"),
        (inc("n", json!("1")), "operations[1]"),
        (inc("text", json!(1)), "operations[1].key"),
        (inc("big", json!(1)), "operations[1].delta"),
        (
            json!({"checks": [{"key": "a", "revision": -1}], "operations": [{"op": "delete", "key": "a"}]}),
            "checks[0].revision",
        ),
        (
            json!({"checks": null, "operations": [{"op": "delete", "key": "a"}]}),
            "checks",
        ),
    ] {
        let answer = post(&s, &t, "/app:atomic", body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["code"], "VALIDATION_FAILED",
            "{}",
            answer.body
        );
        let named = answer.body["error"]["details"]["field"]
            .as_str()
            .unwrap_or("");
        assert!(
            named.starts_with(field),
            "{body}: named {named:?}, want {field:?}"
        );
    }
    let side = s.rest(&t, Method::GET, "/app/side", &[], None).await;
    assert_eq!(side.status, 404, "a refused atomic wrote: {}", side.body);
    // Write access is needed; a read-only grant gets 403 and nothing is written.
    let reader = s
        .tenant(json!([{"namespace": "app", "access": ["read"]}]))
        .await;
    let denied = post(
        &s,
        &reader,
        "/app:atomic",
        json!({"operations": [{"op": "put", "key": "x", "value": 1}]}),
    )
    .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
}

/// 32 clients × 300 increments of one counter: exactly 9,600, no error. (The retry loop of
/// get → put with `ifRevision` managed 50–60 increments per second here.)
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_increments_lose_nothing() {
    let (s, t) = setup().await;
    let (clients, each) = (32, 300);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, token) = (s.client.clone(), s.base.clone(), t.token.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                let res = client
                    .post(format!("{base}/api/ext-storage/app:atomic"))
                    .bearer_auth(&token)
                    .json(
                        &json!({"operations": [{"op": "increment", "key": "counter", "delta": 1}]}),
                    )
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body: Value = res.json().await.unwrap_or_default();
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let took = started.elapsed();
    let counter = s.rest(&t, Method::GET, "/app/counter", &[], None).await;
    assert_eq!(counter.body["value"], clients * each, "{}", counter.body);
    assert_eq!(counter.body["revision"], clients * each);
    println!(
        "{} increments by {clients} clients in {took:.2?} on {}: {:.0} per second",
        clients * each,
        s.backend_name(),
        f64::from(clients * each) / took.as_secs_f64()
    );
}

/// Schemas and quotas judge each operation of an `atomic` as they judge its single-record twin
/// (an increment's new value included), and a refusal writes nothing.
#[tokio::test]
async fn schemas_and_quotas_apply_to_every_operation() {
    let (s, t) = setup().await;
    let schema = s
        .admin(
            Method::PUT,
            &format!("/tenants/{}/namespaces/app/schema", t.tenant),
            Some(json!({"type": "object"})),
        )
        .await;
    assert!(schema.status.is_success(), "{}", schema.body);
    for (operations, field) in [
        (
            json!([{"op": "put", "key": "ok", "value": {}}, {"op": "put", "key": "bad", "value": 1}]),
            "operations[1].value",
        ),
        (
            json!([{"op": "increment", "key": "n", "delta": 1}]),
            "operations[0].value",
        ),
    ] {
        let answer = post(&s, &t, "/app:atomic", json!({ "operations": operations })).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(
            answer.body["error"]["details"]["field"], field,
            "{}",
            answer.body
        );
    }
    let ok = s.rest(&t, Method::GET, "/app/ok", &[], None).await;
    assert_eq!(ok.status, 404, "a refused atomic wrote: {}", ok.body);
    let removed = s
        .admin(
            Method::DELETE,
            &format!("/tenants/{}/namespaces/app/schema", t.tenant),
            None,
        )
        .await;
    assert!(removed.status.is_success(), "{}", removed.body);

    let quotas = s
        .admin(
            Method::PUT,
            &format!("/tenants/{}/quotas", t.tenant),
            Some(json!({"maxKeysPerNamespace": 2})),
        )
        .await;
    assert_eq!(quotas.status, 200, "{}", quotas.body);
    let over = post(
        &s,
        &t,
        "/app:atomic",
        json!({"operations": [
            {"op": "put", "key": "a", "value": 1},
            {"op": "increment", "key": "b", "delta": 1},
            {"op": "put", "key": "c", "value": 3}
        ]}),
    )
    .await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(
        over.body["error"]["code"], "QUOTA_EXCEEDED",
        "{}",
        over.body
    );
    let a = s.rest(&t, Method::GET, "/app/a", &[], None).await;
    assert_eq!(a.status, 404, "a refused atomic wrote: {}", a.body);
    let fits = post(
        &s,
        &t,
        "/app:atomic",
        json!({"operations": [
            {"op": "put", "key": "a", "value": 1},
            {"op": "increment", "key": "b", "delta": 1}
        ]}),
    )
    .await;
    assert_eq!(fits.status, 200, "{}", fits.body);
}

/// Two writes that each check that the other's key does not exist cannot both commit (no write
/// skew): a checked key the write does not touch is guarded until the commit. Many pairs run at
/// once; in each, at most one side may succeed, and every success left its record.
#[tokio::test(flavor = "multi_thread")]
async fn two_writes_checking_each_others_absence_never_both_commit() {
    let (s, t) = setup().await;
    let pairs = 60;
    let mut tasks = Vec::new();
    for pair in 0..pairs {
        for (mine, other) in [("x", "y"), ("y", "x")] {
            let (client, base, token) = (s.client.clone(), s.base.clone(), t.token.clone());
            let (mine, other) = (format!("{mine}{pair}"), format!("{other}{pair}"));
            tasks.push(tokio::spawn(async move {
                let res = client
                    .post(format!("{base}/api/ext-storage/app:atomic"))
                    .bearer_auth(&token)
                    .json(&json!({
                        "checks": [{"key": other, "revision": 0}],
                        "operations": [{"op": "put", "key": mine, "value": 1}]
                    }))
                    .send()
                    .await
                    .unwrap();
                (pair, res.status().as_u16())
            }));
        }
    }
    let mut won = vec![0; pairs];
    for task in tasks {
        let (pair, status) = task.await.unwrap();
        match status {
            200 => won[pair] += 1,
            409 => {}
            other => panic!("pair {pair}: status {other}"),
        }
    }
    for (pair, wins) in won.iter().enumerate() {
        assert!(
            *wins <= 1,
            "pair {pair}: both writes committed (write skew)"
        );
        assert_eq!(*wins, 1, "pair {pair}: one of the two writes must win");
    }
}
