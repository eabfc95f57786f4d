//! The embedded backend's throwaway mode: `sqlite::memory:` keeps the full semantics (it runs on
//! one connection, since an in-memory database lives and dies with its connection).

use alga_storage_server::config::Secret;
use alga_storage_tests::conformance::{assert_corpus, Surface};
use alga_storage_tests::TestServer;

#[tokio::test]
async fn the_corpus_passes_on_an_in_memory_database() {
    let server = TestServer::start_with(|c| c.database_url = Secret::new("sqlite::memory:")).await;
    let ready = server
        .send(reqwest::Method::GET, "/readyz", &[], None)
        .await;
    assert_eq!(ready.body["backend"], "sqlite");
    assert_corpus(&server, Surface::Rest).await;
}
