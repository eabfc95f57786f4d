//! JSON Schema per namespace: registered through the admin API, enforced on every write of every
//! surface, with the instance path and reason of each violation.

use alga_storage_tests::{Tenant, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

fn note_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"title": {"type": "string", "maxLength": 10}, "done": {"type": "boolean"}},
        "required": ["title"],
        "additionalProperties": false
    })
}

async fn setup() -> (TestServer, Tenant) {
    let s = TestServer::start().await;
    let t = s.tenant(json!([{"namespace": "notes", "access": ["read", "write"]}, {"namespace": "free", "access": ["read", "write"]}])).await;
    (s, t)
}

async fn put_schema(
    s: &TestServer,
    t: &Tenant,
    ns: &str,
    schema: Value,
) -> alga_storage_tests::Answer {
    s.admin(
        Method::PUT,
        &format!("/tenants/{}/namespaces/{ns}/schema", t.tenant),
        Some(schema),
    )
    .await
}

#[tokio::test]
async fn schemas_are_checked_on_registration_and_versioned() {
    let (s, t) = setup().await;
    let first = put_schema(&s, &t, "notes", note_schema()).await;
    assert_eq!(
        (first.status.as_u16(), first.body["version"].clone()),
        (200, json!(1))
    );
    assert_eq!(
        put_schema(&s, &t, "notes", note_schema()).await.body["version"],
        2
    );
    for bad in [
        json!({"type": 12}),
        json!({"required": "title"}),
        json!(["not", "a", "schema"]),
        json!({"$ref": "https://example.com/remote.json"}),
    ] {
        let a = put_schema(&s, &t, "notes", bad.clone()).await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (400, "VALIDATION_FAILED"),
            "{bad}: {}",
            a.body
        );
        assert_eq!(a.body["error"]["details"]["field"], "schema");
    }
    let a = put_schema(&s, &t, "Bad NS", note_schema()).await;
    assert_eq!(a.status, 400);
    let unauthenticated = s
        .send(
            Method::PUT,
            &format!("/api/admin/tenants/{}/namespaces/notes/schema", t.tenant),
            &[],
            Some(note_schema()),
        )
        .await;
    assert_eq!(unauthenticated.status, 401);
}

#[tokio::test]
async fn every_surface_refuses_values_that_break_the_schema_with_paths_and_reasons() {
    let (s, t) = setup().await;
    put_schema(&s, &t, "notes", note_schema()).await;
    assert_eq!(
        s.rest(
            &t,
            Method::PUT,
            "/notes/a",
            &[],
            Some(json!({"value": {"title": "ok"}}))
        )
        .await
        .status,
        200
    );

    let bad = s
        .rest(
            &t,
            Method::PUT,
            "/notes/b",
            &[],
            Some(json!({"value": {"title": 5, "extra": true}})),
        )
        .await;
    assert_eq!(
        (bad.status.as_u16(), bad.code()),
        (400, "VALIDATION_FAILED")
    );
    let errors = bad.body["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        errors.iter().any(|e| e["instancePath"] == "/title"),
        "{errors:?}"
    );
    assert!(errors
        .iter()
        .all(|e| !e["reason"].as_str().unwrap().is_empty()));
    assert_eq!(bad.body["error"]["details"]["field"], "value");

    let runner = s
        .runner(
            &t.install,
            json!({"operation": "put", "namespace": "notes", "key": "c", "value": {}}),
        )
        .await;
    assert_eq!(
        (runner.status.as_u16(), runner.code()),
        (400, "VALIDATION_FAILED")
    );

    let bulk = s
        .rest(
            &t,
            Method::POST,
            "/notes",
            &[],
            Some(json!({"items": [
                {"key": "d", "value": {"title": "fine"}},
                {"key": "e", "value": {"title": "far too long a title"}}
            ]})),
        )
        .await;
    assert_eq!(
        (bulk.status.as_u16(), bulk.code()),
        (400, "BULK_PARTIAL_FAILURE")
    );
    assert_eq!(bulk.body["error"]["details"]["items"][0]["index"], 1);
    assert_eq!(
        bulk.body["error"]["details"]["items"][0]["code"],
        "VALIDATION_FAILED"
    );
    assert_eq!(
        s.rest(&t, Method::GET, "/notes/d", &[], None).await.status,
        404,
        "nothing of the bulk was written"
    );

    let auth = format!("Bearer {}", t.token);
    let snapshot = s
        .send(
            Method::GET,
            "/api/storage?ns=notes",
            &[("authorization", &auth)],
            None,
        )
        .await;
    let etag = snapshot.headers["etag"].to_str().unwrap().to_owned();
    let patch = s
        .send(
            Method::PATCH,
            "/api/storage?ns=notes",
            &[("authorization", &auth), ("if-match", &etag), ("x-thesara-app-id", "t")],
            Some(json!([{"op": "set", "key": "f", "value": {"title": "ok"}}, {"op": "set", "key": "g", "value": {"done": true}}])),
        )
        .await;
    assert_eq!(
        (patch.status.as_u16(), patch.code()),
        (400, "VALIDATION_FAILED")
    );
    assert_eq!(patch.body["error"]["details"]["field"], "[1].value");

    // Other namespaces are not checked.
    assert_eq!(
        s.rest(&t, Method::PUT, "/free/x", &[], Some(json!({"value": 42})))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_schema_change_or_removal_applies_to_the_next_write() {
    let (s, t) = setup().await;
    put_schema(&s, &t, "notes", note_schema()).await;
    let value = json!({"value": {"title": "x", "done": true}});
    assert_eq!(
        s.rest(&t, Method::PUT, "/notes/a", &[], Some(value.clone()))
            .await
            .status,
        200
    );
    put_schema(
        &s,
        &t,
        "notes",
        json!({"type": "object", "properties": {"done": {"const": false}}}),
    )
    .await;
    assert_eq!(
        s.rest(&t, Method::PUT, "/notes/a", &[], Some(value.clone()))
            .await
            .status,
        400
    );
    let path = format!("/tenants/{}/namespaces/notes/schema", t.tenant);
    assert_eq!(s.admin(Method::DELETE, &path, None).await.status, 204);
    assert_eq!(
        s.rest(&t, Method::PUT, "/notes/a", &[], Some(json!({"value": 7})))
            .await
            .status,
        200
    );
    assert_eq!(s.admin(Method::DELETE, &path, None).await.status, 404);
    // Registering again after a removal never reuses a version.
    assert_eq!(
        put_schema(&s, &t, "notes", note_schema()).await.body["version"],
        4
    );
    assert_eq!(
        s.rest(&t, Method::PUT, "/notes/a", &[], Some(json!({"value": 7})))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn a_schema_belongs_to_one_tenant() {
    let (s, t) = setup().await;
    let other = s
        .tenant(json!([{"namespace": "notes", "access": ["read", "write"]}]))
        .await;
    put_schema(&s, &t, "notes", note_schema()).await;
    assert_eq!(
        s.rest(
            &other,
            Method::PUT,
            "/notes/a",
            &[],
            Some(json!({"value": 1}))
        )
        .await
        .status,
        200
    );
}

/// Each instance remembers the schemas it checked values against; a put is written only if the
/// namespace's schema is still the one it was checked against (compared in the write itself).
/// So a schema registered, changed or removed through one instance applies to the very next put
/// through another, with no wait (Postgres: two server processes on one database; SQLite: the
/// one instance).
#[tokio::test(flavor = "multi_thread")]
async fn a_schema_changed_through_another_instance_applies_to_the_next_put_here() {
    let (a, t) = setup().await;
    let second = match a.backend {
        alga_storage_server::config::Backend::Postgres => Some(a.second_instance().await),
        alga_storage_server::config::Backend::Sqlite => None,
    };
    let b = second.as_ref().map_or(a.base.clone(), |i| i.base.clone());
    let put_on_b = |value: Value| {
        let request = a
            .client
            .put(format!("{b}/api/ext-storage/notes/a"))
            .bearer_auth(&t.token)
            .json(&json!({ "value": value }));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let note = json!({"title": "x", "done": true});
    // B remembers that the namespace has no schema.
    assert_eq!(put_on_b(json!(7)).await, 200);
    put_schema(&a, &t, "notes", note_schema()).await;
    assert_eq!(put_on_b(json!(7)).await, 400, "registered through A");
    // B remembers version 1; A changes it.
    assert_eq!(put_on_b(note.clone()).await, 200);
    put_schema(
        &a,
        &t,
        "notes",
        json!({"type": "object", "properties": {"done": {"const": false}}}),
    )
    .await;
    assert_eq!(put_on_b(note.clone()).await, 400, "changed through A");
    assert_eq!(put_on_b(json!({"done": false})).await, 200);
    // Removed through A: B accepts any value at once.
    let path = format!("/tenants/{}/namespaces/notes/schema", t.tenant);
    assert_eq!(a.admin(Method::DELETE, &path, None).await.status, 204);
    assert_eq!(put_on_b(json!(7)).await, 200, "removed through A");
    // Registered again (version 3): B, which remembers the removal, refuses again.
    put_schema(&a, &t, "notes", note_schema()).await;
    assert_eq!(put_on_b(json!(7)).await, 400, "registered again through A");
    // A guarded put goes the same way.
    let guarded = a
        .client
        .put(format!("{b}/api/ext-storage/notes/a"))
        .bearer_auth(&t.token)
        .header("if-revision-match", "4")
        .json(&json!({ "value": {"title": "y"} }))
        .send()
        .await
        .unwrap();
    assert_eq!(guarded.status().as_u16(), 200);
    let body: Value = guarded.json().await.unwrap();
    assert_eq!(body["revision"], 5);
}
