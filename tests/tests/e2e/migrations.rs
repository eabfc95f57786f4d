//! The migrations run down and up again cleanly.

use alga_storage_tests::TestServer;

#[tokio::test]
async fn migrations_go_down_and_up_again() {
    let s = TestServer::start().await;
    assert!(s.records_table_exists().await);
    let (after_down, after_up) = s.migrate_down_and_up().await;
    assert!(!after_down, "the down migration drops the tables");
    assert!(after_up, "the up migration creates them again");
}
