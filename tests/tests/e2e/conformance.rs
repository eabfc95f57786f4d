//! The conformance corpus, run over HTTP against the real server on real Postgres, through both
//! the browser REST surface and the runner's internal endpoint.

use alga_storage_tests::conformance::{assert_corpus, Surface};
use alga_storage_tests::TestServer;

#[tokio::test]
async fn corpus_passes_through_browser_rest() {
    assert_corpus(&TestServer::start().await, Surface::Rest).await;
}

#[tokio::test]
async fn corpus_passes_through_the_runner_endpoint() {
    assert_corpus(&TestServer::start().await, Surface::Runner).await;
}
