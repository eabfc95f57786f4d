//! Seed 003's existing clients, unchanged, against the server: its curl sequence (run by bash)
//! and its TypeScript `patchStorage` client (type-checked with tsc, run in Node).

use alga_storage_tests::TestServer;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/snapshot");

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
}

async fn server_and_token() -> (TestServer, String) {
    let tenant = uuid::Uuid::new_v4();
    let s = TestServer::start_with(|c| {
        c.anonymous_read_tenant = Some(tenant);
        c.cors_origins = vec!["http://localhost:3000".into()];
    })
    .await;
    let grants = json!([{"namespace": "smoke", "access": ["read", "write"]}, {"namespace": "seedts", "access": ["read", "write"]}]);
    s.install(tenant, "seed-app", grants).await;
    let token = s.token(tenant, "seed-app").await;
    (s, token)
}

#[tokio::test]
async fn the_seed_curl_sequence_succeeds() {
    let (s, jwt) = server_and_token().await;
    let script = Path::new(DIR).join("seed-003-curl.sh");
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || {
        run(Command::new("bash")
            .arg(script)
            .env("BASE", base)
            .env("JWT", jwt))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_seed_typescript_client_type_checks_and_succeeds() {
    let tsc = Path::new(DIR).join("node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "run `npm ci --prefix tests/snapshot` (scripts/test.sh does)"
    );
    run(Command::new(&tsc).current_dir(DIR).args([
        "--noEmit",
        "--strict",
        "--target",
        "es2022",
        "--lib",
        "es2022,dom",
        "patchStorage.ts",
    ]));
    let (s, jwt) = server_and_token().await;
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || {
        run(Command::new("node")
            .current_dir(DIR)
            .arg("run-patch-storage.mjs")
            .env("BASE", base)
            .env("JWT", jwt))
    })
    .await
    .unwrap();
}
