//! The guest SDK end to end: handler components built for `wasm32-wasip2`, run in the reference
//! runner host (wasmtime) against the real server on the backend under test.

use alga_storage_runner::ExecutionContext;
use alga_storage_tests::conformance::assert_corpus_via;
use alga_storage_tests::guest::{
    component, conformance_call, context, load, runner, runner_at, CONFORMANCE, COUNTER,
};
use alga_storage_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn counters_and_sessions() -> Value {
    json!([
        {"namespace": "counters", "access": ["read", "write"]},
        {"namespace": "sessions", "access": ["read", "write"]}
    ])
}

async fn ok(handler: &alga_storage_runner::Handler, install: &str, input: Value) -> Value {
    let out = handler
        .invoke(&context(install), &input.to_string())
        .await
        .expect("no trap");
    let out = out.unwrap_or_else(|e| panic!("handler failed on {input}: {e}"));
    serde_json::from_str(&out).unwrap()
}

async fn err(
    handler: &alga_storage_runner::Handler,
    ctx: &ExecutionContext,
    input: Value,
) -> Value {
    let out = handler
        .invoke(ctx, &input.to_string())
        .await
        .expect("a storage error is a value, not a trap");
    let e = out.expect_err("the handler should have failed");
    serde_json::from_str(&e).unwrap()
}

#[tokio::test]
async fn example_handler_runs_against_the_server() {
    let server = TestServer::start().await;
    let t = server.tenant(counters_and_sessions()).await;
    let runner = runner(&server);
    let handler = load(&runner, COUNTER);

    for expected in 1..=3 {
        let out = ok(
            &handler,
            &t.install,
            json!({"op": "increment", "counter": "visits"}),
        )
        .await;
        assert_eq!(out["value"], expected);
        assert_eq!(out["revision"], expected);
    }
    let stored = server
        .rest(&t, Method::GET, "/counters/visits", &[], None)
        .await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(stored.body["value"], 3);
    assert_eq!(stored.body["revision"], 3);

    let out = ok(
        &handler,
        &t.install,
        json!({"op": "seed", "counters": {"a": 1, "b": 2, "c": 3}}),
    )
    .await;
    assert_eq!(out["written"], 3);
    let b = server.rest(&t, Method::GET, "/counters/b", &[], None).await;
    assert_eq!(b.body["value"], 2);
    assert_eq!(b.body["metadata"], json!({"seeded": true}));

    let lists_before = runner.metrics().ops("list", "ok");
    let out = ok(&handler, &t.install, json!({"op": "totals", "pageSize": 1})).await;
    assert_eq!(out["total"], 9);
    assert_eq!(
        out["counters"],
        json!({"a": 1, "b": 2, "c": 3, "visits": 3})
    );
    assert!(
        runner.metrics().ops("list", "ok") - lists_before >= 4,
        "a page size of 1 takes one call per counter"
    );

    let out = ok(
        &handler,
        &t.install,
        json!({"op": "session", "id": "s1", "ttlSeconds": 60}),
    )
    .await;
    assert!(out["expiresAt"].is_string());
    let s1 = server
        .rest(&t, Method::GET, "/sessions/s1", &[], None)
        .await;
    assert_eq!(s1.status, StatusCode::OK);
    assert!(s1.body["ttlExpiresAt"].is_string());
    server.expire_all().await;
    let s1 = server
        .rest(&t, Method::GET, "/sessions/s1", &[], None)
        .await;
    assert_eq!(s1.status, StatusCode::NOT_FOUND);

    ok(
        &handler,
        &t.install,
        json!({"op": "reset", "counter": "visits"}),
    )
    .await;
    let gone = server
        .rest(&t, Method::GET, "/counters/visits", &[], None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let metrics = runner.metrics_text();
    for name in [
        "storage_host_ops_total",
        "storage_host_request_duration_seconds",
        "storage_host_inflight_requests",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn concurrent_handler_instances_lose_no_increment() {
    let server = TestServer::start().await;
    let t = server.tenant(counters_and_sessions()).await;
    let runner = runner(&server);
    let handler = load(&runner, COUNTER);
    const TASKS: usize = 12;
    const EACH: usize = 5;
    // On the server in one step, then the read-add-guarded-write loop.
    for (op, counter) in [("increment", "hits"), ("incrementByRetry", "tries")] {
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let handler = handler.clone();
            let install = t.install.clone();
            tasks.push(tokio::spawn(async move {
                let mut retries = 0;
                for _ in 0..EACH {
                    let out = ok(&handler, &install, json!({"op": op, "counter": counter})).await;
                    retries += out["attempts"].as_u64().unwrap() - 1;
                }
                retries
            }));
        }
        let mut retries = 0;
        for task in tasks {
            retries += task.await.unwrap();
        }
        let stored = server
            .rest(&t, Method::GET, &format!("/counters/{counter}"), &[], None)
            .await;
        assert_eq!(
            stored.body["value"],
            (TASKS * EACH) as u64,
            "no increment lost ({op})"
        );
        assert_eq!(stored.body["revision"], (TASKS * EACH) as u64);
        if op == "increment" {
            assert_eq!(retries, 0, "a server-side increment never retries");
        }
        eprintln!(
            "{op}: {} increments, {retries} retries after REVISION_MISMATCH",
            TASKS * EACH
        );
    }
}

#[tokio::test]
async fn a_missing_grant_is_an_error_value_not_a_trap_and_is_not_retried() {
    let server = TestServer::start().await;
    let runner = runner(&server);
    let handler = load(&runner, COUNTER);

    // The namespace is not granted at all.
    let t = server
        .tenant(json!([{"namespace": "sessions", "access": ["read", "write"]}]))
        .await;
    let e = err(
        &handler,
        &context(&t.install),
        json!({"op": "incrementByRetry", "counter": "x"}),
    )
    .await;
    assert_eq!(e["kind"], "NamespaceDenied");
    assert_eq!(e["error"]["error"]["code"], "UNAUTHORIZED");

    // Read is granted, write is not.
    let t = server
        .tenant(json!([{"namespace": "counters", "access": ["read"]}]))
        .await;
    let e = err(
        &handler,
        &context(&t.install),
        json!({"op": "incrementByRetry", "counter": "x"}),
    )
    .await;
    assert_eq!(e["kind"], "Unauthorized");
    assert_eq!(e["error"]["error"]["code"], "UNAUTHORIZED");
    assert_eq!(e["error"]["error"]["details"]["reason"], "accessNotGranted");

    assert_eq!(runner.metrics().retries("get"), 0);
    assert_eq!(runner.metrics().retries("put"), 0);
    assert_eq!(runner.metrics().ops("put", "UNAUTHORIZED"), 1);
}

#[tokio::test]
async fn without_an_install_id_calls_fail_with_install_id_not_available() {
    let server = TestServer::start().await;
    let runner = runner(&server);
    let handler = load(&runner, COUNTER);
    let ctx = ExecutionContext::new("tenant", "ext", None);
    let e = err(
        &handler,
        &ctx,
        json!({"op": "incrementByRetry", "counter": "x"}),
    )
    .await;
    assert_eq!(e["kind"], "Internal");
    assert_eq!(e["error"]["error"]["message"], "install_id not available");
}

#[tokio::test]
async fn transport_failures_are_retried_twice_with_backoff_then_reported() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let runner = runner_at(&format!("http://127.0.0.1:{port}/api"), "secret");
    let handler = runner.load(component(COUNTER)).unwrap();
    let started = Instant::now();
    let e = err(
        &handler,
        &context("inst"),
        json!({"op": "incrementByRetry", "counter": "x"}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(e["kind"], "Transport");
    // The one spelling of a transport failure, as in the browser SDK: INTERNAL_ERROR, 503 is
    // implied, details {reason: transport, cause}.
    assert_eq!(e["error"]["error"]["code"], "INTERNAL_ERROR", "{e}");
    assert_eq!(e["error"]["error"]["details"]["reason"], "transport");
    assert_eq!(e["error"]["error"]["details"]["cause"], "network");
    assert!(
        !e.to_string().contains(&port.to_string()),
        "no internal address reaches the guest: {e}"
    );
    assert_eq!(runner.metrics().retries("get"), 2);
    assert_eq!(runner.metrics().ops("get", "TRANSPORT"), 1);
    assert!(
        took >= Duration::from_millis(300),
        "100 ms then 200 ms: {took:?}"
    );
}

#[tokio::test]
async fn corpus_passes_through_the_guest_sdk() {
    let server = TestServer::start().await;
    let runner = runner(&server);
    let handler = load(&runner, CONFORMANCE);
    assert_corpus_via(&server, "guest", |tenant, request| {
        let handler = handler.clone();
        async move { conformance_call(&handler, &tenant.install, &request).await }
    })
    .await;
}

#[tokio::test]
async fn the_guest_refuses_bad_input_before_crossing_with_the_servers_error() {
    let server = TestServer::start().await;
    let t = server
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let runner = runner(&server);
    let handler = load(&runner, CONFORMANCE);
    for bad in [
        json!({"operation": "put", "namespace": "conf", "key": "k", "value": 1, "ttlSeconds": 0}),
        json!({"operation": "put", "namespace": "bad ns", "key": "k", "value": 1}),
        json!({"operation": "put", "namespace": "conf", "key": "", "value": 1}),
        json!({"operation": "list", "namespace": "conf", "limit": 0}),
        json!({"operation": "bulkPut", "namespace": "conf", "items": []}),
    ] {
        let through_guest = conformance_call(&handler, &t.install, &bad).await;
        let direct = server.runner(&t.install, bad.clone()).await;
        assert_eq!(through_guest.status, direct.status, "{bad}");
        assert_eq!(through_guest.body["error"], direct.body["error"], "{bad}");
    }
    for op in ["put", "list", "bulkPut"] {
        for result in ["ok", "VALIDATION_FAILED"] {
            assert_eq!(runner.metrics().ops(op, result), 0, "{op} {result} crossed");
        }
    }
}
