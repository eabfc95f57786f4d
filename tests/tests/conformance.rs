//! The conformance corpus, run over HTTP against the real server on real Postgres, through both
//! the browser REST surface and the runner's internal endpoint.

use alga_storage_tests::conformance::{load, run, Surface};
use alga_storage_tests::TestServer;

async fn run_corpus(surface: Surface) {
    let server = TestServer::start().await;
    let mut failures = Vec::new();
    let cases = load();
    for (file, case) in &cases {
        if let Err(why) = run(&server, surface, case).await {
            failures.push(format!("{file} / {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn corpus_passes_through_browser_rest() {
    run_corpus(Surface::Rest).await;
}

#[tokio::test]
async fn corpus_passes_through_the_runner_endpoint() {
    run_corpus(Surface::Runner).await;
}
