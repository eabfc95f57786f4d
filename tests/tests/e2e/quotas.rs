//! Quotas: keys per namespace, stored bytes per tenant, namespaces per install. Each fires at
//! exactly its limit on every surface, a refused write writes nothing, and the usage counters
//! stay exact under concurrent writers, after deletes, TTL expiry and bulk writes.

use alga_storage_tests::{Answer, Tenant, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

fn grants() -> Value {
    json!([{"namespace": "q", "access": ["read", "write"]}, {"namespace": "r", "access": ["read", "write"]}])
}

async fn set_quotas(s: &TestServer, t: &Tenant, quotas: Value) -> Answer {
    let answer = s
        .admin(
            Method::PUT,
            &format!("/tenants/{}/quotas", t.tenant),
            Some(quotas),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

async fn usage(s: &TestServer, t: &Tenant) -> Value {
    let answer = s
        .admin(Method::GET, &format!("/tenants/{}/usage", t.tenant), None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// Records and bytes of one namespace, as the usage endpoint reports them.
fn namespace_usage(usage: &Value, ns: &str) -> (i64, i64) {
    usage["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["namespace"] == ns)
        .map_or((0, 0), |n| {
            (n["keys"].as_i64().unwrap(), n["bytes"].as_i64().unwrap())
        })
}

/// The stored size of a record as the quotas count it: key bytes + compact JSON of the value
/// + compact JSON of the metadata (`{}` when absent).
fn size(key: &str, value: &Value) -> i64 {
    (key.len() + value.to_string().len() + 2) as i64
}

/// Records and bytes counted straight from the records table (what the counters must equal).
async fn recount(s: &TestServer, t: &Tenant) -> (i64, i64) {
    use alga_storage_tests::Db;
    let tenant = t.tenant.to_string();
    match &s.db {
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT count(*), coalesce(sum(size), 0)::bigint FROM ext_storage_records WHERE tenant_id = $1::uuid",
        )
        .bind(&tenant)
        .fetch_one(pool)
        .await
        .unwrap(),
        Db::Sqlite(pool) => sqlx::query_as(
            "SELECT count(*), coalesce(sum(size), 0) FROM ext_storage_records WHERE tenant_id = ?1",
        )
        .bind(&tenant)
        .fetch_one(pool)
        .await
        .unwrap(),
    }
}

fn assert_quota(answer: &Answer, quota: &str, limit: i64, current: i64) {
    assert_eq!(
        (answer.status.as_u16(), answer.code()),
        (429, "QUOTA_EXCEEDED"),
        "{}",
        answer.body
    );
    let details = &answer.body["error"]["details"];
    assert_eq!(details["quota"], quota, "{details}");
    assert_eq!(details["limit"], limit, "{details}");
    assert_eq!(details["current"], current, "{details}");
}

/// The server's metrics text.
async fn metrics(s: &TestServer) -> String {
    let answer = s.send(Method::GET, "/metrics", &[], None).await;
    answer.body.as_str().unwrap_or_default().to_owned()
}

async fn put(s: &TestServer, t: &Tenant, key: &str, value: Value) -> Answer {
    s.rest(
        t,
        Method::PUT,
        &format!("/q/{key}"),
        &[],
        Some(json!({ "value": value })),
    )
    .await
}

async fn patch(s: &TestServer, t: &Tenant, ops: Value) -> Answer {
    let auth = format!("Bearer {}", t.token);
    let snapshot = s
        .send(
            Method::GET,
            "/api/storage?ns=q",
            &[("authorization", &auth)],
            None,
        )
        .await;
    let etag = snapshot.headers["etag"].to_str().unwrap().to_owned();
    s.send(
        Method::PATCH,
        "/api/storage?ns=q",
        &[
            ("authorization", &auth),
            ("if-match", &etag),
            ("x-thesara-app-id", "app"),
        ],
        Some(ops),
    )
    .await
}

#[tokio::test]
async fn keys_per_namespace_fires_at_exactly_its_limit_on_every_surface() {
    let s = TestServer::start().await;
    let t = s.tenant(grants()).await;
    let answer = set_quotas(&s, &t, json!({"maxKeysPerNamespace": 3})).await;
    assert_eq!(answer.body["quotas"]["maxKeysPerNamespace"], 3);
    assert_eq!(
        answer.body["quotas"]["maxNamespaces"], 32,
        "the others keep their defaults"
    );
    for key in ["a", "b", "c"] {
        assert_eq!(put(&s, &t, key, json!(1)).await.status, 200);
    }
    let audit_before = s
        .admin(Method::GET, &format!("/tenants/{}/audit", t.tenant), None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    // The fourth key, through each surface: refused, nothing written.
    let refused = put(&s, &t, "d", json!(1)).await;
    assert_quota(&refused, "keysPerNamespace", 3, 3);
    assert_eq!(refused.body["error"]["details"]["namespace"], "q");
    let runner = s
        .runner(
            &t.install,
            json!({"operation": "put", "namespace": "q", "key": "d", "value": 1}),
        )
        .await;
    assert_quota(&runner, "keysPerNamespace", 3, 3);
    assert_eq!(runner.body, refused.body, "the runner answers as REST does");
    let bulk = s
        .rest(
            &t,
            Method::POST,
            "/q",
            &[],
            Some(json!({"items": [{"key": "a", "value": 2}, {"key": "e", "value": 1}]})),
        )
        .await;
    assert_eq!(
        (bulk.status.as_u16(), bulk.code()),
        (429, "BULK_PARTIAL_FAILURE"),
        "{}",
        bulk.body
    );
    let item = &bulk.body["error"]["details"]["items"][0];
    assert_eq!(
        (&item["index"], &item["key"], &item["code"]),
        (&json!(1), &json!("e"), &json!("QUOTA_EXCEEDED"))
    );
    assert_eq!(item["details"]["limit"], 3);
    let patched = patch(&s, &t, json!([{"op": "set", "key": "f", "value": 1}])).await;
    assert_quota(&patched, "keysPerNamespace", 3, 3);
    // Nothing of it was written: not "a"'s new value, no new key, no audit row.
    let a = s.rest(&t, Method::GET, "/q/a", &[], None).await;
    assert_eq!(
        (a.body["value"].clone(), a.body["revision"].clone()),
        (json!(1), json!(1))
    );
    for key in ["d", "e", "f"] {
        assert_eq!(
            s.rest(&t, Method::GET, &format!("/q/{key}"), &[], None)
                .await
                .status,
            404
        );
    }
    let audit_after = s
        .admin(Method::GET, &format!("/tenants/{}/audit", t.tenant), None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(audit_after, audit_before, "a refused write is not audited");
    assert_eq!(namespace_usage(&usage(&s, &t).await, "q").0, 3);
    // Writes that add no key still pass at the limit; another namespace has its own count.
    assert_eq!(put(&s, &t, "a", json!(2)).await.status, 200);
    assert_eq!(
        s.rest(&t, Method::PUT, "/r/x", &[], Some(json!({"value": 1})))
            .await
            .status,
        200
    );
    // A delete frees room; a patch that deletes one key and sets another fits.
    assert_eq!(
        s.rest(&t, Method::DELETE, "/q/b", &[], None).await.status,
        204
    );
    assert_eq!(put(&s, &t, "d", json!(1)).await.status, 200);
    let swapped = patch(
        &s,
        &t,
        json!([{"op": "set", "key": "g", "value": 1}, {"op": "del", "key": "d"}]),
    )
    .await;
    assert_eq!(swapped.status, 200, "{}", swapped.body);
    // Lowering the limit below the usage refuses only what would add to it.
    set_quotas(&s, &t, json!({"maxKeysPerNamespace": 1})).await;
    assert_eq!(put(&s, &t, "a", json!(3)).await.status, 200);
    assert_quota(&put(&s, &t, "h", json!(1)).await, "keysPerNamespace", 1, 3);
    // Back to the default (10000).
    let reset = set_quotas(&s, &t, json!({})).await;
    assert_eq!(reset.body["quotas"]["maxKeysPerNamespace"], 10000);
    assert_eq!(reset.body["overrides"]["maxKeysPerNamespace"], Value::Null);
    assert_eq!(put(&s, &t, "h", json!(1)).await.status, 200);
    // Every refusal was counted, whatever the surface (REST, runner, bulk item, patch, REST).
    let text = metrics(&s).await;
    assert!(
        text.contains("storage_quota_rejections_total{quota=\"keysPerNamespace\"} 5"),
        "{text}"
    );
}

#[tokio::test]
async fn stored_bytes_fire_at_exactly_the_tenant_limit() {
    let s = TestServer::start().await;
    let t = s.tenant(grants()).await;
    let v1 = json!({"text": "x".repeat(100)});
    let v2 = json!({"text": "y".repeat(50)});
    let limit = size("one", &v1) + size("two", &v2);
    set_quotas(&s, &t, json!({"maxBytes": limit})).await;
    assert_eq!(put(&s, &t, "one", v1.clone()).await.status, 200);
    // The bytes are the tenant's: a write in another namespace counts against the same limit.
    let r = s
        .rest(&t, Method::PUT, "/r/two", &[], Some(json!({"value": v2})))
        .await;
    assert_eq!(r.status, 200, "exactly at the limit is allowed: {}", r.body);
    let u = usage(&s, &t).await;
    assert_eq!(u["bytes"], limit);
    assert_eq!(namespace_usage(&u, "q"), (1, size("one", &v1)));
    // One byte more is refused.
    let grown = json!({"text": "x".repeat(101)});
    assert_quota(&put(&s, &t, "one", grown).await, "bytes", limit, limit);
    assert_quota(&put(&s, &t, "z", json!(0)).await, "bytes", limit, limit);
    // Shrinking is always allowed, and frees exactly what it shrinks.
    let shrunk = json!({"text": "x".repeat(90)});
    assert_eq!(put(&s, &t, "one", shrunk.clone()).await.status, 200);
    assert_eq!(usage(&s, &t).await["bytes"], limit - 10);
    // Metadata counts too.
    let with_meta = s
        .rest(
            &t,
            Method::PUT,
            "/q/one",
            &[],
            Some(json!({"value": shrunk, "metadata": {"tag": "abcdefghijk"}})),
        )
        .await;
    assert_quota(&with_meta, "bytes", limit, limit - 10);
    assert_eq!(recount(&s, &t).await.1, limit - 10);
}

#[tokio::test]
async fn namespaces_per_install_are_checked_when_grants_are_written() {
    let s = TestServer::start().await;
    let t = s.tenant(grants()).await;
    set_quotas(&s, &t, json!({"maxNamespaces": 2})).await;
    let three = json!([
        {"namespace": "a", "access": ["read"]},
        {"namespace": "b", "access": ["read"]},
        {"namespace": "c", "access": ["read"]}
    ]);
    let refused = s.install(t.tenant, &t.install, three.clone()).await;
    assert_quota(&refused, "namespacesPerPrincipal", 2, 2);
    assert_eq!(refused.body["error"]["details"]["requested"], 3);
    let fresh = s.install(t.tenant, "another", three).await;
    assert_quota(&fresh, "namespacesPerPrincipal", 2, 0);
    assert_eq!(
        s.install(t.tenant, "another", grants()).await.status,
        201,
        "two namespaces fit"
    );
    // The install kept its grants.
    assert_eq!(put(&s, &t, "k", json!(1)).await.status, 200);
    let text = metrics(&s).await;
    assert!(
        text.contains("storage_quota_rejections_total{quota=\"namespacesPerPrincipal\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn quota_requests_are_validated_and_admin_only() {
    let s = TestServer::start().await;
    let t = s.tenant(grants()).await;
    let path = format!("/tenants/{}/quotas", t.tenant);
    for (body, field) in [
        (json!({"maxNamespaces": 33}), "maxNamespaces"),
        (json!({"maxNamespaces": 0}), "maxNamespaces"),
        (json!({"maxBytes": -1}), "maxBytes"),
        (json!({"maxKeysPerNamespace": -5}), "maxKeysPerNamespace"),
    ] {
        let answer = s.admin(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (400, "VALIDATION_FAILED"),
            "{body}: {}",
            answer.body
        );
        assert!(answer.body.to_string().contains(field), "{}", answer.body);
    }
    for body in [
        json!({"maxKeys": 3}),
        json!({"maxBytes": "lots"}),
        json!([1]),
    ] {
        let answer = s.admin(Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
    }
    let bad_tenant = s
        .admin(Method::GET, "/tenants/not-a-uuid/usage", None)
        .await;
    assert_eq!(bad_tenant.status, 400);
    let unauthenticated = s
        .send(
            Method::PUT,
            &format!("/api/admin{path}"),
            &[],
            Some(json!({})),
        )
        .await;
    assert_eq!(unauthenticated.status, 401);
    let as_extension = s
        .send(
            Method::GET,
            &format!("/api/admin/tenants/{}/usage", t.tenant),
            &[("authorization", &format!("Bearer {}", t.token))],
            None,
        )
        .await;
    assert!(
        matches!(as_extension.status.as_u16(), 401 | 403),
        "{}",
        as_extension.status
    );
    // A tenant that never wrote has zero usage and the defaults.
    let empty = usage(&s, &t).await;
    assert_eq!(empty["bytes"], 0);
    assert_eq!(empty["namespaces"], json!([]));
    assert_eq!(
        empty["quotas"],
        json!({"maxNamespaces": 32, "maxKeysPerNamespace": 10000, "maxBytes": 104857600})
    );
}

#[tokio::test]
async fn expired_records_stop_counting_and_usage_stays_exact() {
    let s = TestServer::start().await;
    let t = s.tenant(grants()).await;
    set_quotas(&s, &t, json!({"maxKeysPerNamespace": 2})).await;
    for key in ["old1", "old2"] {
        let answer = s
            .rest(
                &t,
                Method::PUT,
                &format!("/q/{key}"),
                &[],
                Some(json!({"value": "v", "ttlSeconds": 60})),
            )
            .await;
        assert_eq!(answer.status, 200);
    }
    assert_quota(
        &put(&s, &t, "new", json!(1)).await,
        "keysPerNamespace",
        2,
        2,
    );
    s.expire_all().await;
    // The expired records no longer hold the quota: the write removes them and passes.
    let after = put(&s, &t, "new", json!(1)).await;
    assert_eq!(after.status, 200, "{}", after.body);
    let u = usage(&s, &t).await;
    assert_eq!(namespace_usage(&u, "q"), (1, size("new", &json!(1))));
    assert_eq!(recount(&s, &t).await, (1, size("new", &json!(1))));
    // The usage endpoint itself does not count what has expired.
    s.rest(
        &t,
        Method::PUT,
        "/r/brief",
        &[],
        Some(json!({"value": 1, "ttlSeconds": 60})),
    )
    .await;
    s.expire_all().await;
    let u = usage(&s, &t).await;
    assert_eq!(namespace_usage(&u, "r"), (0, 0));
    assert_eq!(u["bytes"], size("new", &json!(1)));
}

#[tokio::test]
async fn counters_stay_exact_under_concurrent_writers() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let t = s.tenant(grants()).await;
    set_quotas(&s, &t, json!({"maxKeysPerNamespace": 10})).await;
    // 40 writers race for 10 places: exactly 10 win.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (s, t) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            put(&s, &t, &format!("k{i:02}"), json!(i))
                .await
                .status
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        30,
        "{statuses:?}"
    );
    let u = usage(&s, &t).await;
    assert_eq!(namespace_usage(&u, "q").0, 10);
    assert_eq!(recount(&s, &t).await.0, 10);
    // A mixed concurrent workload: deletes, updates, bulk writes, patches and new keys.
    set_quotas(&s, &t, json!({"maxKeysPerNamespace": 25})).await;
    let list = s.rest(&t, Method::GET, "/q?limit=100", &[], None).await;
    let keys: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    let mut tasks = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let (s, t, key) = (s.clone(), t.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            match n % 3 {
                0 => {
                    s.rest(&t, Method::DELETE, &format!("/q/{key}"), &[], None)
                        .await;
                }
                1 => {
                    put(&s, &t, &key, json!("a longer value than before")).await;
                }
                _ => {
                    s.rest(
                        &t,
                        Method::POST,
                        "/q",
                        &[],
                        Some(json!({"items": [
                            {"key": key, "value": [1, 2, 3]},
                            {"key": format!("{key}-b"), "value": {"n": n}}
                        ]})),
                    )
                    .await;
                }
            }
        }));
    }
    for i in 0..20 {
        let (s, t) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            put(&s, &t, &format!("n{i:02}"), json!("x".repeat(i))).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (keys, bytes) = recount(&s, &t).await;
    let u = usage(&s, &t).await;
    assert_eq!(
        namespace_usage(&u, "q"),
        (keys, bytes),
        "counters = recount"
    );
    assert_eq!(u["bytes"], bytes);
    assert!(keys <= 25, "the limit held: {keys}");
}
