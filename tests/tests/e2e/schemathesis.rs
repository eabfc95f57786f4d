//! The OpenAPI document is exact (DESIGN § "Operating under faults"): schemathesis, from PyPI
//! (pinned in `tests/schemathesis/requirements.txt`, installed by `scripts/test.sh`), runs
//! every route of `/openapi.json` with `--checks all` and the three credentials (browser token,
//! runner header, admin token), and must find no failure. Two passes: one where path and query
//! parameters are whatever schemathesis makes up (mostly someone else's namespace, install and
//! tenant), one pinned to an install that holds a grant, so that writes, reads, snapshots and
//! the runner envelope really happen.

use alga_storage_tests::TestServer;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const CONFIG: &str = include_str!("../../schemathesis/schemathesis.toml");
const NAMESPACE: &str = "st";

/// The schemathesis the test script installed (or `ALGA_SCHEMATHESIS`).
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("ALGA_SCHEMATHESIS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/tools/python/bin/schemathesis")
        },
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "schemathesis is not installed at {} (./scripts/test.sh installs it from PyPI)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure_on_any_route() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": NAMESPACE, "access": ["read", "write"]}]))
        .await;
    let dir = std::env::temp_dir().join(format!("alga-schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let pinned = format!(
        "[parameters]\n\"path.ns\" = \"{NAMESPACE}\"\n\"query.ns\" = \"{NAMESPACE}\"\n\
         \"path.install\" = \"{}\"\n\"path.tenant\" = \"{}\"\n\n{CONFIG}",
        t.install, t.tenant
    );
    // `{ns}:watch` answers an endless event stream, which schemathesis cannot read to its end:
    // it is left out of both passes (changes.rs covers its input and its events).
    let passes = [
        (
            "made-up parameters",
            CONFIG.to_owned(),
            vec!["--exclude-operation-id", "watch"],
        ),
        // The install must keep its grant and its tokens for the whole pass, and a namespace
        // schema registered halfway would refuse later values for a reason no document states.
        (
            "pinned to a granted install",
            pinned,
            vec![
                "--exclude-operation-id",
                "watch",
                "--exclude-operation-id",
                "putInstall",
                "--exclude-operation-id",
                "deleteInstall",
                "--exclude-operation-id",
                "putSchema",
            ],
        ),
    ];
    let seed = std::env::var("ALGA_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let binary = schemathesis();
    for (i, (name, config, extra)) in passes.into_iter().enumerate() {
        let file = dir.join(format!("pass-{i}.toml"));
        std::fs::write(&file, config).unwrap();
        let output = Command::new(&binary)
            .current_dir(&dir)
            .env("ALGA_TOKEN", &t.token)
            .env("ALGA_RUNNER_TOKEN", &s.runner_token)
            .env("ALGA_ADMIN_TOKEN", &s.admin_token)
            .env("NO_COLOR", "1")
            .arg("--config-file")
            .arg(&file)
            .args(["run", &format!("{}/openapi.json", s.base)])
            .args(["--checks", "all", "--max-examples", "30", "--seed", &seed])
            .arg("--no-color")
            .args(&extra)
            .output()
            .expect("schemathesis runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let summary: String = text
            .lines()
            .rev()
            .take_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        println!("schemathesis ({name}, {}):\n{summary}", s.backend_name());
        assert!(
            output.status.success(),
            "schemathesis ({name}) failed:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // "Operations: 19 selected / 19 total" (schemathesis leaves out its own /openapi.json),
        // then every selected operation tested.
        let counts: Vec<usize> = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Operations:"))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let excluded = extra.iter().filter(|a| a.starts_with("--exclude")).count();
        assert!(
            counts.len() == 2 && counts[0] + excluded == counts[1] && counts[1] >= 19,
            "not every route was selected ({name}): {counts:?}"
        );
        assert!(
            text.contains(&format!("Tested: {}", counts[0])),
            "not every selected route was tested ({name}):\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
