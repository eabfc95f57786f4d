//! Limits enforced by one piece of code on every surface: the per-principal rate limit, and the
//! metrics that count every answer.

use alga_storage_tests::TestServer;
use reqwest::Method;
use serde_json::json;

fn grants() -> serde_json::Value {
    json!([{"namespace": "smoke", "access": ["read", "write"]}])
}

#[tokio::test]
async fn the_rate_limit_fires_per_principal_on_every_surface_with_retry_after() {
    let s = TestServer::start_with(|c| {
        c.rate_per_second = 1;
        c.rate_burst = 3;
    })
    .await;
    let a = s.tenant(grants()).await;
    let b = s.tenant(grants()).await;
    for _ in 0..3 {
        assert_eq!(
            s.rest(&a, Method::GET, "/smoke/k", &[], None).await.status,
            404
        );
    }
    let limited = [
        s.rest(&a, Method::GET, "/smoke/k", &[], None).await,
        s.runner(
            &a.install,
            json!({"operation": "get", "namespace": "smoke", "key": "k"}),
        )
        .await,
        s.send(
            Method::GET,
            "/api/storage?ns=smoke",
            &[("authorization", &format!("Bearer {}", a.token))],
            None,
        )
        .await,
    ];
    for answer in &limited {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (429, "RATE_LIMITED"),
            "{}",
            answer.body
        );
        let retry: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        assert_eq!(answer.body["error"]["details"]["retryAfterSeconds"], retry);
    }
    // Another principal has its own bucket.
    assert_eq!(
        s.rest(&b, Method::GET, "/smoke/k", &[], None).await.status,
        404
    );
    // The bucket refills.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        s.rest(&a, Method::GET, "/smoke/k", &[], None).await.status,
        404
    );
}

fn sample(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_operations_by_result_code_latency_and_bytes() {
    let s = TestServer::start().await;
    let t = s.tenant(grants()).await;
    s.rest(
        &t,
        Method::PUT,
        "/smoke/k",
        &[],
        Some(json!({"value": "abcd"})),
    )
    .await;
    s.rest(
        &t,
        Method::PUT,
        "/smoke/k",
        &[],
        Some(json!({"value": 1, "ifRevision": 7})),
    )
    .await;
    s.rest(&t, Method::GET, "/smoke/none", &[], None).await;
    s.runner(
        &t.install,
        json!({"operation": "get", "namespace": "smoke", "key": "k"}),
    )
    .await;
    s.send(Method::GET, "/api/ext-storage/smoke/k", &[], None)
        .await;
    let m = s.send(Method::GET, "/metrics", &[], None).await;
    assert_eq!(m.status, 200);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = m.body.as_str().unwrap().to_owned();
    let ops = "storage_operations_total";
    assert_eq!(
        sample(
            &text,
            ops,
            &["operation=\"put\"", "surface=\"rest\"", "code=\"OK\""]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            ops,
            &["operation=\"put\"", "code=\"REVISION_MISMATCH\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            ops,
            &[
                "operation=\"get\"",
                "surface=\"rest\"",
                "code=\"NOT_FOUND\""
            ]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            ops,
            &["operation=\"get\"", "surface=\"runner\"", "code=\"OK\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            ops,
            &["operation=\"get\"", "code=\"UNAUTHENTICATED\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "storage_operation_duration_seconds_count",
            &["operation=\"put\""]
        ),
        2.0
    );
    assert_eq!(
        sample(&text, "storage_bytes_written_total", &[]),
        6.0,
        "the one written value is 6 bytes of JSON"
    );
    assert!(
        !text.contains(&t.install) && !text.contains(&t.token),
        "metrics name no principal"
    );
}
