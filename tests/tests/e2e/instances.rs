//! Several instances of one deployment: each caches principals, and an install change made
//! through any instance reaches every other one at once (Postgres `LISTEN/NOTIFY`; the 5 s
//! cache TTL is only a safety net, so each change must show within 1 s). The second instance is
//! a real process of the server binary on the same database. The embedded store serves one
//! process, so on SQLite the same steps run against the one instance.

use alga_storage_server::config::Backend;
use alga_storage_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

/// Polls `GET base/api/ext-storage/{path}` with `token` until it answers `want`; panics after
/// 1 s, and answers how long it took.
async fn within_a_second(
    s: &TestServer,
    base: &str,
    token: &str,
    path: &str,
    want: u16,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = s
            .client
            .request(Method::GET, format!("{base}/api/ext-storage{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::from_u16(want).unwrap() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} still answers {status} after 1 s, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn install_changes_reach_every_instance_at_once() {
    let a = TestServer::start().await;
    let second = match a.backend {
        Backend::Postgres => Some(a.second_instance().await),
        Backend::Sqlite => None,
    };
    let b = second.as_ref().map_or(a.base.clone(), |i| i.base.clone());
    let both = json!([
        {"namespace": "one", "access": ["read", "write"]},
        {"namespace": "two", "access": ["read", "write"]}
    ]);
    let t = a.tenant(both).await;
    // B admits the install (and caches it).
    within_a_second(&a, &b, &t.token, "/one/k", 404).await;
    within_a_second(&a, &b, &t.token, "/two/k", 404).await;

    // A grant removed through A: B refuses the namespace.
    let only_two = json!([{"namespace": "two", "access": ["read", "write"]}]);
    assert_eq!(a.install(t.tenant, &t.install, only_two).await.status, 200);
    let took = within_a_second(&a, &b, &t.token, "/one/k", 403).await;
    println!("grant change seen by the other instance after {took:?}");
    within_a_second(&a, &b, &t.token, "/two/k", 404).await;

    // The install revoked through A: B refuses its token.
    let path = format!("/tenants/{}/installs/{}", t.tenant, t.install);
    assert_eq!(a.admin(Method::DELETE, &path, None).await.status, 204);
    let took = within_a_second(&a, &b, &t.token, "/two/k", 401).await;
    println!("revocation seen by the other instance after {took:?}");

    // Provisioned anew through A, with a new token: B admits it again.
    let one = json!([{"namespace": "one", "access": ["read"]}]);
    assert_eq!(a.install(t.tenant, &t.install, one).await.status, 201);
    let token = a.token(t.tenant, &t.install).await;
    within_a_second(&a, &b, &token, "/one/k", 404).await;
    within_a_second(&a, &b, &token, "/two/k", 403).await;
}
