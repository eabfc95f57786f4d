//! Strict input (DESIGN § "Guards are never dropped"): a revision guard reaches the server in one
//! documented way per surface, and anything else that looks like one is refused naming it;
//! percent-decoding is strict; a revoked token is refused before its request is judged.

use alga_storage_tests::{Answer, TestServer};
use reqwest::Method;
use serde_json::json;

fn refused(answer: &Answer, field: &str) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.code(), "VALIDATION_FAILED", "{}", answer.body);
    assert_eq!(
        answer.body["error"]["details"]["field"], field,
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_guard_anywhere_but_its_documented_place_is_refused_and_nothing_is_written() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let put = s
        .rest(&t, Method::PUT, "/conf/k", &[], Some(json!({"value": 1})))
        .await;
    assert_eq!(put.status, 200);

    // DELETE with the guard in the query, or in a JSON body: refused, the record stays.
    refused(
        &s.rest(&t, Method::DELETE, "/conf/k?ifRevision=7", &[], None)
            .await,
        "ifRevision",
    );
    let with_body = s
        .rest(
            &t,
            Method::DELETE,
            "/conf/k",
            &[],
            Some(json!({"ifRevision": 7})),
        )
        .await;
    refused(&with_body, "body");
    // GET likewise, and with an empty guard.
    refused(
        &s.rest(&t, Method::GET, "/conf/k?ifRevision=", &[], None)
            .await,
        "ifRevision",
    );
    refused(
        &s.rest(
            &t,
            Method::GET,
            "/conf/k",
            &[],
            Some(json!({"ifRevision": 1})),
        )
        .await,
        "body",
    );
    // PUT takes its guard in the body only; bulkPut takes no query either.
    let put_query = s
        .rest(
            &t,
            Method::PUT,
            "/conf/k?ifRevision=1",
            &[],
            Some(json!({"value": 9})),
        )
        .await;
    refused(&put_query, "ifRevision");
    let bulk = s
        .rest(
            &t,
            Method::POST,
            "/conf?atomic=false",
            &[],
            Some(json!({"items": [{"key": "b", "value": 1}]})),
        )
        .await;
    refused(&bulk, "atomic");
    // Any unknown parameter on a record route is named.
    refused(
        &s.rest(&t, Method::GET, "/conf/k?fields=value", &[], None)
            .await,
        "fields",
    );

    let get = s.rest(&t, Method::GET, "/conf/k", &[], None).await;
    assert_eq!(
        (
            get.status.as_u16(),
            &get.body["value"],
            &get.body["revision"]
        ),
        (200, &json!(1), &json!(1))
    );
    let absent = s.rest(&t, Method::GET, "/conf/b", &[], None).await;
    assert_eq!(absent.status, 404);
    // The documented guard still works.
    let guarded = s
        .rest(
            &t,
            Method::DELETE,
            "/conf/k",
            &[("if-revision-match", "7")],
            None,
        )
        .await;
    assert_eq!(guarded.status, 409, "{}", guarded.body);
}

#[tokio::test]
async fn percent_decoding_is_strict() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    for path in ["/conf/a%ZZb", "/conf/a%", "/conf/a%2"] {
        let answer = s
            .rest(&t, Method::PUT, path, &[], Some(json!({"value": 1})))
            .await;
        refused(&answer, "path");
    }
    // `a%` is written as `a%25`, and is one record, distinct from anything else.
    let put = s
        .rest(
            &t,
            Method::PUT,
            "/conf/a%25",
            &[],
            Some(json!({"value": "pct"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["key"], "a%");
    let list = s
        .rest(&t, Method::GET, "/conf?keyPrefix=a%25", &[], None)
        .await;
    assert_eq!(list.body["items"][0]["key"], "a%", "{}", list.body);
    // A query escape that is not UTF-8 is refused, never replaced by U+FFFD.
    refused(
        &s.rest(&t, Method::GET, "/conf?keyPrefix=%FF", &[], None)
            .await,
        "keyPrefix",
    );
    refused(
        &s.rest(&t, Method::GET, "/conf?keyPrefix=%G1", &[], None)
            .await,
        "keyPrefix",
    );
    let snapshot = s
        .send(
            Method::GET,
            "/api/storage?ns=%FF",
            &[("authorization", &format!("Bearer {}", t.token))],
            None,
        )
        .await;
    refused(&snapshot, "ns");
}

#[tokio::test]
async fn a_revoked_token_is_refused_before_its_request_is_judged() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let path = format!("/tenants/{}/installs/{}", t.tenant, t.install);
    assert_eq!(s.admin(Method::DELETE, &path, None).await.status, 204);
    let auth = format!("Bearer {}", t.token);
    let malformed = [
        s.rest(
            &t,
            Method::PUT,
            "/conf/k",
            &[],
            Some(json!("not an object")),
        )
        .await,
        s.rest(&t, Method::PUT, "/Bad-NS/k", &[], Some(json!({"value": 1})))
            .await,
        s.rest(&t, Method::GET, "/conf?limit=9999", &[], None).await,
        s.rest(&t, Method::POST, "/conf", &[], Some(json!({"items": []})))
            .await,
        s.send(
            Method::PATCH,
            "/api/storage?ns=conf",
            &[("authorization", &auth), ("if-match", "\"0\"")],
            Some(json!("[{]")),
        )
        .await,
        s.send(
            Method::GET,
            "/api/storage?ns=Bad-NS",
            &[("authorization", &auth)],
            None,
        )
        .await,
    ];
    for answer in malformed {
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert_eq!(answer.code(), "UNAUTHENTICATED");
    }
    // The runner endpoint: an unknown install is refused before its envelope is read.
    let runner = s.runner(&t.install, json!({"operation": "nope"})).await;
    assert_eq!(runner.status, 403, "{}", runner.body);
    assert_eq!(runner.code(), "UNAUTHORIZED");
}

#[tokio::test]
async fn admin_input_is_as_strict_as_the_openapi_document() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read"]}]))
        .await;
    let empty = s
        .install(
            t.tenant,
            &t.install,
            json!([{"namespace": "conf", "access": []}]),
        )
        .await;
    refused(&empty, "grants[0].access");
    let tokens = format!("/tenants/{}/installs/{}/tokens", t.tenant, t.install);
    refused(
        &s.admin(Method::POST, &tokens, Some(json!({"ttlSeconds": null})))
            .await,
        "ttlSeconds",
    );
    let schema = format!("/tenants/{}/namespaces/conf/schema", t.tenant);
    for boolean in [json!(false), json!(true)] {
        refused(
            &s.admin(Method::PUT, &schema, Some(boolean)).await,
            "schema",
        );
    }
    // Nothing was changed: the install still reads, and writes are unchecked.
    let get = s.rest(&t, Method::GET, "/conf/k", &[], None).await;
    assert_eq!(get.status, 404, "{}", get.body);
}

/// What the OpenAPI document calls valid is taken, and what it calls invalid is refused
/// (schemathesis found each of these): an integer is any JSON number with a whole value, as in
/// JSON Schema; ETags and revision headers take exactly their documented patterns; a list's
/// `cursor` may be `null` (the last page's `nextCursor`), its other options may be absent but
/// not `null`.
#[tokio::test]
async fn integers_etags_and_list_options_are_taken_exactly_as_documented() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let whole = s
        .rest(
            &t,
            Method::PUT,
            "/conf/k",
            &[],
            Some(json!({"value": 1, "ttlSeconds": 3600.0, "ifRevision": 0.0})),
        )
        .await;
    assert_eq!(whole.status, 200, "{}", whole.body);
    refused(
        &s.rest(
            &t,
            Method::PUT,
            "/conf/k",
            &[],
            Some(json!({"value": 1, "ttlSeconds": 3600.5})),
        )
        .await,
        "ttlSeconds",
    );
    let tokens = format!("/tenants/{}/installs/{}/tokens", t.tenant, t.install);
    let minted = s
        .admin(Method::POST, &tokens, Some(json!({"ttlSeconds": 120.0})))
        .await;
    assert_eq!(minted.status, 201, "{}", minted.body);
    let quotas = format!("/tenants/{}/quotas", t.tenant);
    let put = s
        .admin(Method::PUT, &quotas, Some(json!({"maxBytes": 1e6})))
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["quotas"]["maxBytes"], 1_000_000, "{}", put.body);

    for (header, ok) in [
        ("1", true),
        ("\"1\"", true),
        ("\"\"1\"\"", false),
        ("+1", false),
        ("1234567890123456789", false),
    ] {
        let get = s
            .rest(
                &t,
                Method::GET,
                "/conf/k",
                &[("if-revision-match", header)],
                None,
            )
            .await;
        if ok {
            assert_eq!(get.status, 200, "{header}: {}", get.body);
        } else {
            refused(&get, "if-revision-match");
        }
    }
    for etag in ["\"+1\"", "\"1", "W/1", "*"] {
        let patch = s
            .send(
                Method::PATCH,
                "/api/storage?ns=conf",
                &[
                    ("authorization", &format!("Bearer {}", t.token)),
                    ("if-match", etag),
                    ("x-thesara-app-id", "app"),
                ],
                Some(json!([{"op": "set", "key": "p", "value": 1}])),
            )
            .await;
        refused(&patch, "If-Match");
    }

    let list = |extra: serde_json::Value| {
        let mut envelope = json!({"operation": "list", "namespace": "conf"});
        envelope
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s.runner(&t.install, envelope)
    };
    let first = list(json!({"cursor": null})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    for field in ["keyPrefix", "limit", "metadata"] {
        let answer = list(json!({ field: null })).await;
        assert_eq!(answer.status, 400, "{field}: {}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_FAILED", "{}", answer.body);
    }
}
