//! The migrations run down and up again cleanly.

use alga_storage_server::store::postgres::MIGRATOR;
use alga_storage_tests::TestServer;

async fn table_exists(s: &TestServer) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass('ext_storage_records') IS NOT NULL")
        .fetch_one(&s.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_go_down_and_up_again() {
    let s = TestServer::start().await;
    assert!(table_exists(&s).await);
    MIGRATOR.undo(&s.db, 0).await.unwrap();
    assert!(!table_exists(&s).await);
    MIGRATOR.run(&s.db).await.unwrap();
    assert!(table_exists(&s).await);
}
