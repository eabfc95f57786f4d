//! Every authentication and error path of the HTTP surfaces that the corpus does not cover:
//! credentials, revocation, malformed input, body limits, and the error envelope itself.

use alga_storage_tests::{seg, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn rw(ns: &str) -> Value {
    json!([{ "namespace": ns, "access": ["read", "write"] }])
}

fn assert_error(answer: &alga_storage_tests::Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
    assert_eq!(answer.code(), code, "{}", answer.body);
    assert!(answer.body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn missing_malformed_and_foreign_tokens_are_401() {
    let s = TestServer::start().await;
    let path = "/api/ext-storage/conf/k";
    assert_error(
        &s.send(Method::GET, path, &[], None).await,
        401,
        "UNAUTHENTICATED",
    );
    for header in [
        "Bearer",
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Token abc",
    ] {
        assert_error(
            &s.send(Method::GET, path, &[("authorization", header)], None)
                .await,
            401,
            "UNAUTHENTICATED",
        );
    }
    // Signed with another secret.
    let other = TestServer::start_with(|c| {
        c.jwt_secret = alga_storage_server::config::Secret::new("other")
    })
    .await;
    let t = other.tenant(rw("conf")).await;
    let auth = format!("Bearer {}", t.token);
    let answer = s
        .send(Method::GET, path, &[("authorization", &auth)], None)
        .await;
    assert_error(&answer, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    let keys = alga_storage_server::auth::TokenKeys::new(
        &alga_storage_server::config::Secret::new("jwt-secret"),
    );
    let expired = keys.mint(&s.principal(t.tenant, &t.install).await, -5);
    let auth = format!("Bearer {expired}");
    let answer = s
        .send(
            Method::GET,
            "/api/ext-storage/conf/k",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_error(&answer, 401, "UNAUTHENTICATED");
    assert_eq!(answer.body["error"]["message"], "token expired");
}

#[tokio::test]
async fn a_revoked_install_is_refused_at_once_on_every_surface() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    assert_eq!(
        s.rest(&t, Method::PUT, "/conf/k", &[], Some(json!({"value": 1})))
            .await
            .status,
        200
    );
    let answer = s
        .admin(
            Method::DELETE,
            &format!("/tenants/{}/installs/{}", t.tenant, t.install),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_error(
        &s.rest(&t, Method::GET, "/conf/k", &[], None).await,
        401,
        "UNAUTHENTICATED",
    );
    let runner = s
        .runner(
            &t.install,
            json!({"operation": "get", "namespace": "conf", "key": "k"}),
        )
        .await;
    assert_error(&runner, 403, "UNAUTHORIZED");
    // Deleting it again is 404.
    let again = s
        .admin(
            Method::DELETE,
            &format!("/tenants/{}/installs/{}", t.tenant, t.install),
            None,
        )
        .await;
    assert_error(&again, 404, "NOT_FOUND");
}

#[tokio::test]
async fn changing_grants_takes_effect_at_once() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    assert_eq!(
        s.rest(&t, Method::PUT, "/conf/k", &[], Some(json!({"value": 1})))
            .await
            .status,
        200
    );
    let read_only = json!([{ "namespace": "conf", "access": ["read"] }]);
    assert_eq!(
        s.install(t.tenant, &t.install, read_only).await.status,
        StatusCode::OK
    );
    assert_error(
        &s.rest(&t, Method::PUT, "/conf/k", &[], Some(json!({"value": 2})))
            .await,
        403,
        "UNAUTHORIZED",
    );
    assert_eq!(
        s.rest(&t, Method::GET, "/conf/k", &[], None).await.body["value"],
        1
    );
}

#[tokio::test]
async fn runner_endpoint_requires_the_runner_token() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    let path = format!("/api/internal/ext-storage/install/{}", t.install);
    let body = json!({"operation": "get", "namespace": "conf", "key": "k"});
    assert_error(
        &s.send(Method::POST, &path, &[], Some(body.clone())).await,
        401,
        "UNAUTHENTICATED",
    );
    for wrong in ["", "runner-secre", "runner-secret2", "RUNNER-SECRET"] {
        let answer = s
            .send(
                Method::POST,
                &path,
                &[("x-runner-auth", wrong)],
                Some(body.clone()),
            )
            .await;
        assert_error(&answer, 401, "UNAUTHENTICATED");
    }
    // A browser token is not a runner credential.
    let auth = format!("Bearer {}", t.token);
    assert_error(
        &s.send(Method::POST, &path, &[("authorization", &auth)], Some(body))
            .await,
        401,
        "UNAUTHENTICATED",
    );
}

#[tokio::test]
async fn runner_endpoint_refuses_unknown_installs_and_bad_envelopes() {
    let s = TestServer::start().await;
    let answer = s
        .runner(
            "no-such-install",
            json!({"operation": "get", "namespace": "conf", "key": "k"}),
        )
        .await;
    assert_error(&answer, 403, "UNAUTHORIZED");
    let t = s.tenant(rw("conf")).await;
    for (body, field) in [
        (json!({"namespace": "conf", "key": "k"}), "operation"),
        (
            json!({"operation": "drop", "namespace": "conf"}),
            "operation",
        ),
        (json!({"operation": 5}), "operation"),
        (json!([1, 2]), "body"),
        (json!("{not json"), "body"),
        (json!({"operation": "get", "namespace": "conf"}), "key"),
    ] {
        let answer = s.runner(&t.install, body).await;
        assert_error(&answer, 400, "VALIDATION_FAILED");
        assert_eq!(
            answer.body["error"]["details"]["field"], field,
            "{}",
            answer.body
        );
    }
    let bad_install = s
        .send(
            Method::POST,
            "/api/internal/ext-storage/install/bad%20id",
            &[("x-runner-auth", "runner-secret")],
            Some(json!({})),
        )
        .await;
    assert_error(&bad_install, 400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn malformed_bodies_are_400_and_name_the_problem() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    for (raw, field) in [
        ("{", "body"),
        ("", "body"),
        ("[]", "body"),
        (r#"{"value": 1} {"value": 2}"#, "body"),
        (r#"{"value": 1, "unknown": true}"#, "unknown"),
        (r#"{"metadata": {}}"#, "value"),
        (r#"{"value": 1, "ttlSeconds": 1.5}"#, "ttlSeconds"),
    ] {
        let answer = s
            .rest(
                &t,
                Method::PUT,
                "/conf/k",
                &[],
                Some(Value::String(raw.into())),
            )
            .await;
        assert_error(&answer, 400, "VALIDATION_FAILED");
        assert_eq!(
            answer.body["error"]["details"]["field"], field,
            "{raw}: {}",
            answer.body
        );
    }
    let answer = s
        .rest(
            &t,
            Method::POST,
            "/conf",
            &[],
            Some(json!({"items": {"a": 1}})),
        )
        .await;
    assert_error(&answer, 400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn bad_paths_are_400() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    for path in [
        "/conf/a%FFb",
        "/conf/a%2Fb",
        "/Conf/k",
        "/con%20f/k",
        &format!("/conf/{}", "k".repeat(129)),
    ] {
        assert_error(
            &s.rest(&t, Method::GET, path, &[], None).await,
            400,
            "VALIDATION_FAILED",
        );
    }
    // Percent-encoded keys arrive decoded.
    let key = "a b?c#d%e";
    let path = format!("/conf/{}", seg(key));
    assert_eq!(
        s.rest(&t, Method::PUT, &path, &[], Some(json!({"value": 1})))
            .await
            .status,
        200
    );
    let list = s.rest(&t, Method::GET, "/conf", &[], None).await;
    assert_eq!(list.body["items"][0]["key"], key);
}

#[tokio::test]
async fn bad_list_queries_are_400() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    for (query, field) in [
        ("limit=abc", "limit"),
        ("limit=1&limit=2", "limit"),
        ("includeValues=yes", "includeValues"),
        ("includeMetadata=1", "includeMetadata"),
        ("metadata=%5B1%5D", "metadata"),
        ("metadata=%7B", "metadata"),
        ("sort=desc", "sort"),
        ("cursor=%21%21", "cursor"),
    ] {
        let answer = s
            .rest(&t, Method::GET, &format!("/conf?{query}"), &[], None)
            .await;
        assert_error(&answer, 400, "VALIDATION_FAILED");
        assert_eq!(
            answer.body["error"]["details"]["field"], field,
            "{query}: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn bad_revision_headers_are_400() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    for value in ["abc", "-1", "1.5"] {
        let answer = s
            .rest(
                &t,
                Method::GET,
                "/conf/k",
                &[("if-revision-match", value)],
                None,
            )
            .await;
        assert_error(&answer, 400, "VALIDATION_FAILED");
    }
    s.rest(&t, Method::PUT, "/conf/k", &[], Some(json!({"value": 1})))
        .await;
    let quoted = s
        .rest(
            &t,
            Method::GET,
            "/conf/k",
            &[("if-revision-match", "\"1\"")],
            None,
        )
        .await;
    assert_eq!(quoted.status, 200);
}

#[tokio::test]
async fn oversized_bodies_are_413_without_being_read_whole() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    let huge = format!(r#"{{"value":"{}"}}"#, "a".repeat(400 * 1024));
    let answer = s
        .rest(&t, Method::PUT, "/conf/k", &[], Some(Value::String(huge)))
        .await;
    assert_error(&answer, 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(answer.body["error"]["details"]["field"], "body");
    let huge_bulk = format!(
        r#"{{"items":[{{"key":"k","value":"{}"}}]}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let answer = s
        .rest(
            &t,
            Method::POST,
            "/conf",
            &[],
            Some(Value::String(huge_bulk.clone())),
        )
        .await;
    assert_error(&answer, 413, "PAYLOAD_TOO_LARGE");
    let answer = s
        .send(
            Method::POST,
            &format!("/api/internal/ext-storage/install/{}", t.install),
            &[("x-runner-auth", "runner-secret")],
            Some(Value::String(huge_bulk)),
        )
        .await;
    assert_error(&answer, 413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_envelope() {
    let s = TestServer::start().await;
    let answer = s.send(Method::GET, "/api/nothing-here", &[], None).await;
    assert_error(&answer, 404, "NOT_FOUND");
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_405_in_the_envelope() {
    let s = TestServer::start().await;
    let answer = s
        .send(Method::PATCH, "/api/ext-storage/conf/k", &[], None)
        .await;
    assert_error(&answer, 405, "VALIDATION_FAILED");
    assert_eq!(answer.body["error"]["details"]["field"], "method");
    assert!(
        answer.headers.get("allow").is_some(),
        "405 names the allowed methods"
    );
}

#[tokio::test]
async fn admin_api_requires_its_token_and_validates_input() {
    let s = TestServer::start().await;
    let tenant = uuid::Uuid::new_v4();
    let path = format!("/api/admin/tenants/{tenant}/installs/i1");
    let body = json!({"extensionId": "e", "grants": []});
    assert_error(
        &s.send(Method::PUT, &path, &[], Some(body.clone())).await,
        401,
        "UNAUTHENTICATED",
    );
    let wrong = s
        .send(
            Method::PUT,
            &path,
            &[("authorization", "Bearer jwt-secret")],
            Some(body),
        )
        .await;
    assert_error(&wrong, 401, "UNAUTHENTICATED");
    for (body, field) in [
        (
            json!({"extensionId": "e", "grants": [{"namespace": "Bad", "access": ["read"]}]}),
            "grants[0].namespace",
        ),
        (
            json!({"extensionId": "e", "grants": [{"namespace": "a", "access": ["admin"]}]}),
            "grants[0].access[0]",
        ),
        (
            json!({"extensionId": "e", "grants": [{"namespace": "a", "access": ["read"]}, {"namespace": "a", "access": ["write"]}]}),
            "grants[1].namespace",
        ),
        (json!({"extensionId": "", "grants": []}), "extensionId"),
        (
            json!({"extensionId": "a\u{0}b", "grants": []}),
            "extensionId",
        ),
        (
            json!({"extensionId": "e", "grants": [], "extra": 1}),
            "extra",
        ),
    ] {
        let answer = s
            .admin(
                Method::PUT,
                &format!("/tenants/{tenant}/installs/i1"),
                Some(body),
            )
            .await;
        assert_error(&answer, 400, "VALIDATION_FAILED");
        assert_eq!(
            answer.body["error"]["details"]["field"], field,
            "{}",
            answer.body
        );
    }
    let too_many: Vec<Value> = (0..33)
        .map(|i| json!({"namespace": format!("n{i}"), "access": ["read"]}))
        .collect();
    let answer = s
        .admin(
            Method::PUT,
            &format!("/tenants/{tenant}/installs/i1"),
            Some(json!({"extensionId": "e", "grants": too_many})),
        )
        .await;
    assert_error(&answer, 400, "VALIDATION_FAILED");
    let answer = s
        .admin(
            Method::PUT,
            "/tenants/not-a-uuid/installs/i1",
            Some(json!({"extensionId": "e", "grants": []})),
        )
        .await;
    assert_eq!(answer.body["error"]["details"]["field"], "tenant");
    // Tokens: only for existing installs of that tenant, with a bounded lifetime.
    let answer = s
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/installs/nobody/tokens"),
            None,
        )
        .await;
    assert_error(&answer, 404, "NOT_FOUND");
    s.install(tenant, "i1", json!([])).await;
    let answer = s
        .admin(
            Method::POST,
            &format!("/tenants/{tenant}/installs/i1/tokens"),
            Some(json!({"ttlSeconds": 10})),
        )
        .await;
    assert_error(&answer, 400, "VALIDATION_FAILED");
    let other_tenant = uuid::Uuid::new_v4();
    let answer = s
        .admin(
            Method::POST,
            &format!("/tenants/{other_tenant}/installs/i1/tokens"),
            None,
        )
        .await;
    assert_error(&answer, 404, "NOT_FOUND");
    // An install id belongs to one tenant.
    let answer = s.install(other_tenant, "i1", json!([])).await;
    assert_error(&answer, 400, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_database_failure_is_a_500_that_leaks_nothing() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    s.sql("DROP TABLE ext_storage_records").await;
    let answer = s.rest(&t, Method::GET, "/conf/k", &[], None).await;
    assert_eq!(answer.status.as_u16(), 500);
    assert_eq!(
        answer.body,
        json!({"error": {"code": "INTERNAL_ERROR", "message": "internal error"}})
    );
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let s = TestServer::start().await;
    let headers = |origin: &'static str| {
        [
            ("origin", origin),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "authorization, content-type, if-revision-match",
            ),
        ]
    };
    let path = "/api/ext-storage/conf/k";
    let ok = s
        .send(Method::OPTIONS, path, &headers("http://app.example"), None)
        .await;
    assert!(ok.status.is_success());
    assert_eq!(
        ok.headers["access-control-allow-origin"],
        "http://app.example"
    );
    let allowed = ok.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed.contains("authorization") && allowed.contains("if-revision-match"),
        "{allowed}"
    );
    let denied = s
        .send(Method::OPTIONS, path, &headers("http://evil.example"), None)
        .await;
    assert!(denied.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn health_and_readiness_name_the_backend() {
    let s = TestServer::start().await;
    let health = s.send(Method::GET, "/healthz", &[], None).await;
    assert_eq!(health.status, 200);
    let ready = s.send(Method::GET, "/readyz", &[], None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["backend"], s.backend_name());
    assert_eq!(ready.headers["x-storage-backend"], s.backend_name());
}

#[tokio::test]
async fn a_token_minted_before_a_deletion_never_works_again() {
    let s = TestServer::start().await;
    let t = s.tenant(rw("conf")).await;
    // A grant change keeps the install (and its tokens).
    assert_eq!(
        s.install(t.tenant, &t.install, rw("conf")).await.status,
        200
    );
    let kept = s.rest(&t, Method::GET, "/conf/k", &[], None).await;
    assert_error(&kept, 404, "NOT_FOUND");
    // Deleted and provisioned anew under the same id: the old token stays refused everywhere.
    let path = format!("/tenants/{}/installs/{}", t.tenant, t.install);
    assert_eq!(s.admin(Method::DELETE, &path, None).await.status, 204);
    assert_eq!(
        s.install(t.tenant, &t.install, rw("conf")).await.status,
        201
    );
    let old = s.rest(&t, Method::GET, "/conf/k", &[], None).await;
    assert_error(&old, 401, "UNAUTHENTICATED");
    let auth = format!("Bearer {}", t.token);
    let snapshot = s
        .send(
            Method::GET,
            "/api/storage?ns=conf",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_error(&snapshot, 401, "UNAUTHENTICATED");
    // A token of the new install works.
    let fresh = alga_storage_tests::Tenant {
        token: s.token(t.tenant, &t.install).await,
        ..t.clone()
    };
    let answer = s.rest(&fresh, Method::GET, "/conf/k", &[], None).await;
    assert_error(&answer, 404, "NOT_FOUND");
}
