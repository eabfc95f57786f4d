//! Per-call overhead of the guest boundary: the same `get` made (1) natively over HTTP to the
//! runner endpoint, (2) through the runner host's storage client without WASM, and (3) from a
//! handler component through the WIT import, the host and HTTP, and (4) from a handler written
//! against `wasi:keyvalue` alone, through its `bucket.get`. Prints µs per call and the overhead
//! of each layer. Run with:
//!
//! ```text
//! cargo run --release -p alga-storage-tests --bin alga-storage-guest-bench [calls]
//! ```

use alga_storage_tests::guest::{context, load, runner, CONFORMANCE, KEYVALUE};
use alga_storage_tests::TestServer;
use serde_json::{json, Map};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let calls: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let server = TestServer::start().await;
    let t = server
        .tenant(json!([{"namespace": "bench", "access": ["read", "write"]}]))
        .await;
    let put = json!({"operation": "put", "namespace": "bench", "key": "k", "value": {"n": 1, "s": "some text"}});
    assert_eq!(server.runner(&t.install, put).await.status, 200);
    let get = json!({"operation": "get", "namespace": "bench", "key": "k"});
    let runner = runner(&server);
    let handler = load(&runner, CONFORMANCE);
    let keyvalue = load(&runner, KEYVALUE);

    let rounds = 3;
    let mut native = Vec::new();
    let mut host = Vec::new();
    let mut guest = Vec::new();
    let mut invoke = Vec::new();
    let mut wasi = Vec::new();
    for _ in 0..rounds {
        // (1) native HTTP, one pooled client, sequential.
        let url = format!(
            "{}/api/internal/ext-storage/install/{}",
            server.base, t.install
        );
        let started = Instant::now();
        for _ in 0..calls {
            let r = server
                .client
                .post(&url)
                .header("x-runner-auth", &server.runner_token)
                .json(&get)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
        native.push(per_call(started, calls));

        // (2) the host's storage client, no WASM.
        let mut body = Map::new();
        body.insert("namespace".into(), "bench".into());
        body.insert("key".into(), "k".into());
        let started = Instant::now();
        for _ in 0..calls {
            runner
                .client()
                .call("tenant", Some(&t.install), "get", body.clone())
                .await
                .unwrap();
        }
        host.push(per_call(started, calls));

        // (3) guest → WIT import → host → HTTP, all calls in one invocation.
        let input = json!({"repeat": calls, "request": get}).to_string();
        let started = Instant::now();
        let out = handler
            .invoke(&context(&t.install), &input)
            .await
            .unwrap()
            .unwrap();
        guest.push(per_call(started, calls));
        assert!(out.contains("\"status\":200"), "{out}");

        // (4) a wasi:keyvalue guest → bucket.get → host (bytes mapping) → HTTP.
        let input = json!({"op": "get", "bucket": "bench", "key": "k", "times": calls}).to_string();
        let started = Instant::now();
        let out = keyvalue
            .invoke(&context(&t.install), &input)
            .await
            .unwrap()
            .unwrap();
        wasi.push(per_call(started, calls));
        assert!(out.contains("some text"), "{out}");

        // Instantiating a handler and calling it with no storage call at all.
        let empty = json!({"repeat": 0, "request": get}).to_string();
        let started = Instant::now();
        for _ in 0..100 {
            handler
                .invoke(&context(&t.install), &empty)
                .await
                .unwrap()
                .unwrap();
        }
        invoke.push(per_call(started, 100));
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (n, h, g, i) = (best(&native), best(&host), best(&guest), best(&invoke));
    let w = best(&wasi);
    println!("guest boundary overhead, {calls} sequential gets x {rounds} rounds (best round), backend {}", server.backend_name());
    println!("  native HTTP call              {n:8.1} µs/call");
    println!(
        "  host storage client (no wasm) {h:8.1} µs/call  (+{:.1} µs, x{:.2})",
        h - n,
        h / n
    );
    println!(
        "  guest SDK → WIT → host → HTTP {g:8.1} µs/call  (+{:.1} µs over native, x{:.2})",
        g - n,
        g / n
    );
    println!(
        "  wasi:keyvalue guest → host → HTTP {w:5.1} µs/call  (x{:.3} of the alga:storage guest's get)",
        w / g
    );
    println!("  instantiate + invoke a handler {i:7.1} µs (no storage call)");
}

fn per_call(started: Instant, calls: u64) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / calls as f64
}
