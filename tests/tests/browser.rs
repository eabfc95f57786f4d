//! The browser SDK (`sdk-web`) in real headless Chromium, against real servers: its
//! `wasm-bindgen-test` suite (`sdk-web/tests/browser.rs`) built for `wasm32-unknown-unknown` and
//! run by `wasm-bindgen-test-runner` through Debian's chromedriver, with the servers' addresses
//! baked in at compile time.

use alga_storage_tests::TestServer;
use std::net::TcpListener;
use std::path::Path;
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

#[tokio::test(flavor = "multi_thread")]
async fn the_browser_sdk_passes_its_tests_in_headless_chromium() {
    let server = TestServer::start_with(|c| c.cors_origins = vec!["*".into()]).await;
    let limited = TestServer::start_with(|c| {
        c.cors_origins = vec!["*".into()];
        c.rate_per_second = 1;
        c.rate_burst = 2;
    })
    .await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(&root)
        .args([
            "test",
            "-p",
            "alga-storage-web",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .args(["--test", "browser"])
        // A target folder of its own: never waits on the lock of the one `cargo test` uses.
        .env("CARGO_TARGET_DIR", root.join("target/web-tests"))
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        )
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "600")
        .env("ALGA_WEB_TEST_BASE_URL", &server.base)
        .env("ALGA_WEB_TEST_LIMITED_URL", &limited.base)
        .env("ALGA_WEB_TEST_HANG_URL", hanging_server())
        .env("ALGA_WEB_TEST_CLOSED_URL", closed_port())
        .env("ALGA_WEB_TEST_ADMIN_TOKEN", &server.admin_token);
    assert_eq!(server.admin_token, limited.admin_token);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser tests failed (chromium, chromedriver and wasm-bindgen-cli come from \
         scripts/test.sh):\n{stdout}\n{stderr}"
    );
    let passed: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 11,
        "expected every browser test to run, {passed} passed:\n{stdout}"
    );
}
