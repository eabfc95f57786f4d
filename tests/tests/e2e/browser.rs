//! The browser SDK (`sdk-web`) in real headless Chromium, against real servers: its
//! `wasm-bindgen-test` suite (`sdk-web/tests/browser.rs`) built for `wasm32-unknown-unknown` and
//! run by `wasm-bindgen-test-runner` through Debian's chromedriver, with the servers' addresses
//! baked in at compile time. Each browser test is reported by name; one that does not pass,
//! or does not run at all, fails this test.

use alga_storage_tests::{as_from_a_shell, wasm_target_dir, TestServer};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A port that accepts connections and never answers (for timeouts and aborts).
fn hanging_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://{address}")
}

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// The names of the `#[wasm_bindgen_test]` functions in `sdk-web/tests/browser.rs`: every one
/// of them must be reported as passed.
fn expected_tests(root: &Path) -> Vec<String> {
    let source = std::fs::read_to_string(root.join("sdk-web/tests/browser.rs")).unwrap();
    let mut lines = source.lines();
    let mut names = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim() == "#[wasm_bindgen_test]" {
            let signature = lines.next().unwrap_or_default();
            let name = signature
                .split("fn ")
                .nth(1)
                .and_then(|rest| rest.split('(').next())
                .unwrap_or_else(|| {
                    panic!("no test function after #[wasm_bindgen_test]: {signature}")
                });
            names.push(name.to_owned());
        }
    }
    names
}

/// Builds the browser tests for `wasm32-unknown-unknown` with the servers' addresses in `env`
/// and answers the path of the test module. The build releases its target folder before the
/// tests run, so other WebAssembly builds of the suite never wait for Chromium.
fn build_tests(root: &Path, env: &[(&str, String)]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = as_from_a_shell(&mut Command::new(cargo))
        .current_dir(root)
        .args([
            "test",
            "-p",
            "alga-storage-web",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .args(["--test", "browser", "--no-run", "--message-format=json"])
        .env("CARGO_TARGET_DIR", wasm_target_dir())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building the browser tests failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "browser")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the browser test module")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_browser_sdk_passes_its_tests_in_headless_chromium() {
    let server = TestServer::start_with(|c| c.cors_origins = vec!["*".into()]).await;
    let limited = TestServer::start_with(|c| {
        c.cors_origins = vec!["*".into()];
        c.rate_per_second = 1;
        c.rate_burst = 2;
    })
    .await;
    assert_eq!(server.admin_token, limited.admin_token);
    // A wasi:keyvalue guest writes first; the browser reads it and writes back (below).
    let kv = server
        .tenant(serde_json::json!([{"namespace": "kv", "access": ["read", "write"]}]))
        .await;
    let runner = alga_storage_tests::guest::runner(&server);
    let guest = alga_storage_tests::guest::load(&runner, alga_storage_tests::guest::KEYVALUE);
    let run_guest = |input: serde_json::Value| {
        let guest = guest.clone();
        let install = kv.install.clone();
        async move {
            let out = guest
                .invoke(
                    &alga_storage_tests::guest::context(&install),
                    &input.to_string(),
                )
                .await
                .expect("no trap")
                .expect("the guest succeeds");
            serde_json::from_str::<serde_json::Value>(&out).unwrap()
        }
    };
    run_guest(serde_json::json!({"op": "set", "bucket": "kv", "key": "from-wasi", "text": "{\"hello\":\"wasi\"}"})).await;
    run_guest(serde_json::json!({"op": "set", "bucket": "kv", "key": "raw", "bytes": [0, 255]}))
        .await;
    run_guest(serde_json::json!({"op": "increment", "bucket": "kv", "key": "visits", "delta": 5}))
        .await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let expected = expected_tests(&root);
    let env = [
        ("ALGA_WEB_TEST_BASE_URL", server.base.clone()),
        ("ALGA_WEB_TEST_LIMITED_URL", limited.base.clone()),
        ("ALGA_WEB_TEST_HANG_URL", hanging_server()),
        ("ALGA_WEB_TEST_CLOSED_URL", closed_port()),
        ("ALGA_WEB_TEST_ADMIN_TOKEN", server.admin_token.clone()),
        ("ALGA_WEB_TEST_KV_TOKEN", kv.token.clone()),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let module = build_tests(&root, &env);
        Command::new("wasm-bindgen-test-runner")
            .arg(module)
            .env("CHROMEDRIVER", "/usr/bin/chromedriver")
            .env("WASM_BINDGEN_TEST_TIMEOUT", "600")
            .output()
    })
    .await
    .unwrap()
    .expect("wasm-bindgen-test-runner runs (scripts/test.sh installs it, with chromium and chromedriver)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let passed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test "))
        .filter_map(|l| l.strip_suffix(" ... ok"))
        .collect();
    for name in &expected {
        let ok = passed.iter().any(|p| p.ends_with(name.as_str()));
        println!(
            "browser: {name} ... {}",
            if ok { "ok" } else { "NOT PASSED" }
        );
    }
    assert!(
        out.status.success(),
        "the browser tests failed:\n{stdout}\n{stderr}"
    );
    let missing: Vec<&String> = expected
        .iter()
        .filter(|name| !passed.iter().any(|p| p.ends_with(name.as_str())))
        .collect();
    assert!(
        missing.is_empty(),
        "browser tests that did not pass: {missing:?}\n{stdout}"
    );
    assert_eq!(passed.len(), expected.len(), "{stdout}");
    // And the guest reads what the browser wrote: compact JSON bytes, and the counter.
    let back =
        run_guest(serde_json::json!({"op": "get", "bucket": "kv", "key": "from-browser"})).await;
    assert_eq!(back["text"], "{\"hi\":\"browser\",\"n\":[1,2]}");
    let visits = run_guest(
        serde_json::json!({"op": "increment", "bucket": "kv", "key": "visits", "delta": 0}),
    )
    .await;
    assert_eq!(visits["value"], 6);
}
