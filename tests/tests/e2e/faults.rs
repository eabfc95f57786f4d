//! Postgres stopped and started under write load (DESIGN § "Operating under faults"), on a
//! throwaway cluster this test makes itself (`initdb`, `pg_ctl`, its own port and data folder;
//! never the shared server): every acknowledged write is readable afterwards, requests fail
//! within 2 s with 503 `UNAVAILABLE` and `Retry-After` while the database is down, `/readyz`
//! flips within 1 s both ways, and the server recovers without a restart. The embedded store
//! has no server to stop; its outage is another process holding the file's write lock (a
//! backup, an operator's shell): writes are refused the same way within 2 s, reads and
//! readiness go on, and writes are taken again as soon as the lock is released.

use alga_storage_server::config::{Backend, Secret};
use alga_storage_tests::cluster::Cluster;
use alga_storage_tests::{Tenant, TestServer};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `/readyz`'s status and how long it took to answer.
async fn readiness(s: &TestServer) -> (u16, Duration) {
    let started = Instant::now();
    let answer = s.send(Method::GET, "/readyz", &[], None).await;
    (answer.status.as_u16(), started.elapsed())
}

/// Polls `/readyz` until it answers `want`; every answer must come within 1 s, and the flip
/// within `limit`.
async fn readiness_becomes(s: &TestServer, want: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, took) = readiness(s).await;
        assert!(took <= Duration::from_millis(1100), "/readyz took {took:?}");
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "/readyz is still {status} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A refused write: status, error code, whether `Retry-After` came, and how long it took.
type Refusal = (u16, String, bool, Duration);

/// Writes new keys one after another as fast as they are answered, recording which were
/// acknowledged (and when) and how each refusal looked.
struct WriteLoad {
    acknowledged: Arc<Mutex<Vec<(u32, Instant)>>>,
    refusals: Arc<Mutex<Vec<Refusal>>>,
    stop: Arc<AtomicBool>,
    writer: tokio::task::JoinHandle<()>,
}

impl WriteLoad {
    fn start(s: &TestServer, t: &Tenant) -> WriteLoad {
        let acknowledged = Arc::new(Mutex::new(Vec::<(u32, Instant)>::new()));
        let refusals = Arc::new(Mutex::new(Vec::<Refusal>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (client, base, token) = (s.client.clone(), s.base.clone(), t.token.clone());
        let (acked, refused, stopping) = (acknowledged.clone(), refusals.clone(), stop.clone());
        let writer = tokio::spawn(async move {
            let mut n = 0u32;
            while !stopping.load(Ordering::Relaxed) {
                let started = Instant::now();
                let sent = client
                    .put(format!("{base}/api/ext-storage/load/k{n}"))
                    .bearer_auth(&token)
                    .json(&json!({"value": n}))
                    .send()
                    .await;
                if let Ok(res) = sent {
                    let status = res.status().as_u16();
                    let retry_after = res.headers().contains_key("retry-after");
                    let body: serde_json::Value = res.json().await.unwrap_or_default();
                    if status == 200 {
                        acked.lock().unwrap().push((n, Instant::now()));
                    } else {
                        let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
                        refused.lock().unwrap().push((
                            status,
                            code,
                            retry_after,
                            started.elapsed(),
                        ));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                n += 1;
            }
        });
        WriteLoad {
            acknowledged,
            refusals,
            stop,
            writer,
        }
    }

    /// Stops the load and checks it: some writes were refused, each with 503 `UNAVAILABLE` and
    /// `Retry-After` within 2 s; writes were acknowledged again after `recovered` without a
    /// restart; every acknowledged write is readable.
    async fn finish(self, s: &TestServer, t: &Tenant, recovered: Instant) {
        self.stop.store(true, Ordering::Relaxed);
        self.writer.await.unwrap();
        let refusals = self.refusals.lock().unwrap().clone();
        assert!(!refusals.is_empty(), "the outage refused some writes");
        for (status, code, retry_after, took) in &refusals {
            assert_eq!(
                (*status, code.as_str()),
                (503, "UNAVAILABLE"),
                "{refusals:?}"
            );
            assert!(retry_after, "503 without Retry-After");
            assert!(*took < Duration::from_secs(2), "a refusal took {took:?}");
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        assert!(
            acknowledged.iter().any(|(_, at)| *at > recovered),
            "writes were acknowledged again after the outage, without restarting the server"
        );
        println!(
            "{} writes acknowledged, {} refused with 503",
            acknowledged.len(),
            refusals.len()
        );
        for (n, _) in &acknowledged {
            let answer = s
                .rest(t, Method::GET, &format!("/load/k{n}"), &[], None)
                .await;
            assert_eq!(
                answer.status, 200,
                "acknowledged k{n} is lost: {}",
                answer.body
            );
            assert_eq!(answer.body["value"], json!(n));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_under_write_load_loses_no_acknowledged_write() {
    match alga_storage_tests::backend() {
        Backend::Postgres => postgres_stopped_and_started().await,
        Backend::Sqlite => sqlite_locked_by_another_process().await,
    }
}

async fn postgres_stopped_and_started() {
    let cluster = Cluster::start();
    let s = TestServer::start_with(|c| c.database_url = Secret::new(cluster.url())).await;
    let t = s
        .tenant(json!([{"namespace": "load", "access": ["read", "write"]}]))
        .await;
    let load = WriteLoad::start(&s, &t);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(readiness(&s).await.0, 200);

    cluster.pg_ctl("stop");
    let down = readiness_becomes(&s, 503, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.pg_ctl("start");
    let restarted = Instant::now();
    let up = readiness_becomes(&s, 200, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("readiness: down after {down:?}, up again after {up:?}");
    load.finish(&s, &t, restarted).await;
}

async fn sqlite_locked_by_another_process() {
    use sqlx::Connection;
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "load", "access": ["read", "write"]}]))
        .await;
    let load = WriteLoad::start(&s, &t);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(readiness(&s).await.0, 200);

    let mut other = sqlx::SqliteConnection::connect(s.config.database_url.expose())
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let locked = Instant::now();
    while locked.elapsed() < Duration::from_secs(3) {
        // Reads and readiness go on while the file cannot be written.
        let (status, took) = readiness(&s).await;
        assert_eq!(status, 200, "/readyz while the file is locked");
        assert!(took <= Duration::from_millis(1100), "/readyz took {took:?}");
        let read = s.rest(&t, Method::GET, "/load/k0", &[], None).await;
        assert_eq!(
            read.status, 200,
            "a read while the file is locked: {}",
            read.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    drop(other);
    let released = Instant::now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    load.finish(&s, &t, released).await;
}

/// Statements on their own take their connection from a pool that gives it back without sqlx's
/// ping (server/src/store/direct.rs). A read cut off halfway leaves its connection fit for the
/// next statement (which gets its own answer, not the cut one's), and a connection the database
/// closes fails at most the one statement that finds it; the next gets a new connection.
#[tokio::test]
async fn a_connection_given_back_without_a_ping_serves_the_next_statement_right() {
    use alga_storage_server::store::direct::Direct;
    use sqlx::postgres::PgConnectOptions;
    use sqlx::Connection;
    use std::str::FromStr;
    if alga_storage_tests::backend() != Backend::Postgres {
        println!("the direct pool is Postgres' own: nothing to check on SQLite");
        return;
    }
    let url = alga_storage_tests::database_url();
    // One connection, so every statement below runs on the same one until it is replaced.
    let direct = Direct::new(
        PgConnectOptions::from_str(&url).unwrap(),
        1,
        Duration::from_millis(1500),
    )
    .unwrap();
    let pid = || sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(&direct);
    let first = pid().await.unwrap();

    let cut = tokio::time::timeout(
        Duration::from_millis(50),
        sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(0.3)").fetch_one(&direct),
    )
    .await;
    assert!(
        cut.is_err(),
        "the slow read was to be cut off, not answered"
    );
    let answer: i32 = sqlx::query_scalar("SELECT 2")
        .fetch_one(&direct)
        .await
        .unwrap();
    assert_eq!(
        answer, 2,
        "the next statement got another statement's answer"
    );
    assert_eq!(
        pid().await.unwrap(),
        first,
        "the cut connection was to be reused"
    );

    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first)
        .execute(&mut admin)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let finding = sqlx::query_scalar::<_, i32>("SELECT 3")
        .fetch_one(&direct)
        .await;
    println!("the statement that found the closed connection: {finding:?}");
    let replaced = pid().await.expect("the closed connection was replaced");
    assert_ne!(replaced, first);
}
