//! A token of one tenant never sees or touches another tenant's data, on any route.

use alga_storage_tests::TestServer;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn tenants_are_isolated_on_every_route() {
    let s = TestServer::start().await;
    let grants = json!([{"namespace": "conf", "access": ["read", "write"]}]);
    let a = s.tenant(grants.clone()).await;
    let b = s.tenant(grants).await;
    for key in ["k1", "k2", "k3"] {
        s.rest(
            &a,
            Method::PUT,
            &format!("/conf/{key}"),
            &[],
            Some(json!({"value": "a"})),
        )
        .await;
    }
    // get, list
    assert_eq!(
        s.rest(&b, Method::GET, "/conf/k1", &[], None).await.status,
        404
    );
    let list = s
        .rest(&b, Method::GET, "/conf?includeValues=true", &[], None)
        .await;
    assert_eq!(list.body, json!({"items": [], "nextCursor": null}));
    // put and bulkPut create B's own records; A's are unchanged.
    let put = s
        .rest(
            &b,
            Method::PUT,
            "/conf/k1",
            &[],
            Some(json!({"value": "b", "ifRevision": 0})),
        )
        .await;
    assert_eq!(put.body["revision"], 1);
    let bulk = s
        .rest(
            &b,
            Method::POST,
            "/conf",
            &[],
            Some(json!({"items": [{"key": "k2", "value": "b", "ifRevision": 0}]})),
        )
        .await;
    assert_eq!(bulk.status, 200);
    // delete of B never touches A.
    assert_eq!(
        s.rest(&b, Method::DELETE, "/conf/k3", &[], None)
            .await
            .status,
        204
    );
    assert_eq!(
        s.rest(
            &b,
            Method::DELETE,
            "/conf/k3",
            &[("if-revision-match", "1")],
            None
        )
        .await
        .status,
        404
    );
    for key in ["k1", "k2", "k3"] {
        let got = s
            .rest(&a, Method::GET, &format!("/conf/{key}"), &[], None)
            .await;
        assert_eq!(got.body["value"], "a", "{key}");
        assert_eq!(got.body["revision"], 1);
    }
    // The runner endpoint scopes by the install's own tenant.
    let via_runner = s
        .runner(
            &b.install,
            json!({"operation": "list", "namespace": "conf", "includeValues": true}),
        )
        .await;
    let values: Vec<_> = via_runner.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].clone())
        .collect();
    assert_eq!(values, vec![json!("b"), json!("b")]);
    // A cursor of one tenant is refused for another.
    let page = s.rest(&a, Method::GET, "/conf?limit=1", &[], None).await;
    let cursor = page.body["nextCursor"].as_str().unwrap().to_owned();
    let replay = s
        .rest(
            &b,
            Method::GET,
            &format!("/conf?limit=1&cursor={cursor}"),
            &[],
            None,
        )
        .await;
    assert_eq!(replay.status, 400);
    // A token whose tenant claim does not match its install is refused.
    let keys = alga_storage_server::auth::TokenKeys::new(
        &alga_storage_server::config::Secret::new("jwt-secret"),
    );
    let mut principal = s.principal(a.tenant, &a.install).await;
    principal.tenant = b.tenant;
    let forged = keys.mint(&principal, 60);
    let auth = format!("Bearer {forged}");
    let answer = s
        .send(
            Method::GET,
            "/api/ext-storage/conf/k1",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(answer.status, 401);
}
