//! The audit log: one row per successful mutation on every surface and the admin API, written in
//! the mutation's own transaction, none for a failed write; read back page by page.

use alga_storage_tests::{Tenant, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

async fn audit(s: &TestServer, t: &Tenant, query: &str) -> Value {
    let a = s
        .admin(
            Method::GET,
            &format!("/tenants/{}/audit{query}", t.tenant),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

fn rows(log: &Value) -> Vec<(String, String, String, Value, String)> {
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |f: &str| e[f].as_str().unwrap_or("").to_owned();
            (
                text("operation"),
                text("key"),
                text("principal"),
                e["revision"].clone(),
                text("surface"),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_successful_mutation_is_audited_once_and_failed_ones_never() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let setup = rows(&audit(&s, &t, "").await);
    assert_eq!(
        setup,
        vec![(
            "install.put".into(),
            t.install.clone(),
            "admin".into(),
            Value::Null,
            "admin".into()
        )]
    );

    // Successful writes, one per surface and kind.
    s.rest(&t, Method::PUT, "/conf/a", &[], Some(json!({"value": 1})))
        .await;
    s.runner(
        &t.install,
        json!({"operation": "put", "namespace": "conf", "key": "a", "value": 2}),
    )
    .await;
    s.rest(
        &t,
        Method::POST,
        "/conf",
        &[],
        Some(json!({"items": [{"key": "b", "value": 1}, {"key": "c", "value": 1}]})),
    )
    .await;
    s.rest(&t, Method::DELETE, "/conf/c", &[], None).await;
    let auth = format!("Bearer {}", t.token);
    let snap = s
        .send(
            Method::GET,
            "/api/storage?ns=conf",
            &[("authorization", &auth)],
            None,
        )
        .await;
    let etag = snap.headers["etag"].to_str().unwrap().to_owned();
    let patch = s
        .send(
            Method::PATCH,
            "/api/storage?ns=conf",
            &[("authorization", &auth), ("if-match", &etag), ("x-thesara-app-id", "t")],
            Some(json!([{"op": "set", "key": "d", "value": 1}, {"op": "del", "key": "b"}, {"op": "del", "key": "absent"}])),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.body);

    // Failed writes and reads.
    s.rest(
        &t,
        Method::PUT,
        "/conf/a",
        &[],
        Some(json!({"value": 3, "ifRevision": 1})),
    )
    .await;
    s.rest(
        &t,
        Method::POST,
        "/conf",
        &[],
        Some(
            json!({"items": [{"key": "e", "value": 1}, {"key": "a", "value": 1, "ifRevision": 0}]}),
        ),
    )
    .await;
    s.rest(
        &t,
        Method::DELETE,
        "/conf/a",
        &[("if-revision-match", "9")],
        None,
    )
    .await;
    s.rest(&t, Method::DELETE, "/conf/nothing", &[], None).await;
    s.rest(
        &t,
        Method::PUT,
        "/elsewhere/a",
        &[],
        Some(json!({"value": 1})),
    )
    .await;
    s.send(
        Method::PATCH,
        "/api/storage?ns=conf",
        &[
            ("authorization", &auth),
            ("if-match", "0"),
            ("x-thesara-app-id", "t"),
        ],
        Some(json!([{"op": "set", "key": "x", "value": 1}])),
    )
    .await;
    s.rest(&t, Method::GET, "/conf/a", &[], None).await;
    s.rest(&t, Method::GET, "/conf", &[], None).await;

    let principal = t.install.clone();
    let log = audit(&s, &t, "").await;
    let expected: Vec<(String, String, String, Value, String)> = vec![
        (
            "install.put".into(),
            t.install.clone(),
            "admin".into(),
            Value::Null,
            "admin".into(),
        ),
        (
            "put".into(),
            "a".into(),
            principal.clone(),
            json!(1),
            "rest".into(),
        ),
        (
            "put".into(),
            "a".into(),
            principal.clone(),
            json!(2),
            "runner".into(),
        ),
        (
            "bulkPut".into(),
            "b".into(),
            principal.clone(),
            json!(1),
            "rest".into(),
        ),
        (
            "bulkPut".into(),
            "c".into(),
            principal.clone(),
            json!(1),
            "rest".into(),
        ),
        (
            "delete".into(),
            "c".into(),
            principal.clone(),
            Value::Null,
            "rest".into(),
        ),
        // A patch applies (and audits) its deletions before its sets.
        (
            "del".into(),
            "b".into(),
            principal.clone(),
            Value::Null,
            "snapshot".into(),
        ),
        (
            "set".into(),
            "d".into(),
            principal.clone(),
            json!(1),
            "snapshot".into(),
        ),
    ];
    assert_eq!(rows(&log), expected);
    for e in log["items"].as_array().unwrap().iter().skip(1) {
        assert_eq!(e["namespace"], "conf");
        assert!(e["at"].as_str().is_some());
    }
}

#[tokio::test]
async fn admin_changes_are_audited_and_the_log_pages() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let schema_path = format!("/tenants/{}/namespaces/conf/schema", t.tenant);
    s.admin(Method::PUT, &schema_path, Some(json!({"type": "integer"})))
        .await;
    s.admin(Method::DELETE, &schema_path, None).await;
    s.admin(
        Method::DELETE,
        &format!("/tenants/{}/installs/{}", t.tenant, t.install),
        None,
    )
    .await;
    let ops: Vec<String> = rows(&audit(&s, &t, "").await)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        ops,
        [
            "install.put",
            "schema.put",
            "schema.delete",
            "install.delete"
        ]
    );

    let first = audit(&s, &t, "?limit=3").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let after = first["nextAfter"].as_i64().unwrap();
    let second = audit(&s, &t, &format!("?limit=3&after={after}")).await;
    assert_eq!(
        rows(&second).into_iter().map(|r| r.0).collect::<Vec<_>>(),
        ["install.delete"]
    );
    assert_eq!(second["nextAfter"], Value::Null);

    // Another tenant's log is its own.
    let other = s.tenant(json!([])).await;
    assert_eq!(rows(&audit(&s, &other, "").await).len(), 1);

    for bad in ["?limit=0", "?limit=501", "?after=-1", "?after=x", "?page=2"] {
        let a = s
            .admin(
                Method::GET,
                &format!("/tenants/{}/audit{bad}", t.tenant),
                None,
            )
            .await;
        assert_eq!(a.status, 400, "{bad}");
    }
    let anonymous = s
        .send(
            Method::GET,
            &format!("/api/admin/tenants/{}/audit", t.tenant),
            &[],
            None,
        )
        .await;
    assert_eq!(anonymous.status, 401);
}
