//! `alga-storage-bench`: load benchmark of the reference server.
//!
//! For each backend (Postgres and the embedded SQLite by default), populates a namespace with
//! `--records` records, then drives `get`, `put` and `list` at 1 and 16 concurrent clients, first over HTTP against the server (in this process, on its own
//! runtime), then as the very same SQL through the store directly (the "raw" driver loop: the
//! principal lookup plus the operation's statement, exactly what the server runs per request).
//! Prints ops/s and p50/p95/p99 latency for each, and the server/raw throughput ratio.
//!
//! ```text
//! cargo run --release -p alga-storage-server --bin alga-storage-bench -- --records 100000 --seconds 5
//! ```

use alga_storage_core::{GetRequest, InstallId, Key, Namespace, PutRequest};
use alga_storage_server::store::{Actor, ListQuery, Store};
use alga_storage_server::{app_state, open_store, router, serve, Config};
use clap::Parser;
use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Load benchmark: server over HTTP vs the same SQL driven directly")]
struct Args {
    /// Records in the benchmark namespace.
    #[arg(long, default_value_t = 100_000)]
    records: u32,
    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent client counts to run.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    clients: Vec<usize>,
    /// Backends to run: postgres, sqlite.
    #[arg(long, value_delimiter = ',', default_value = "postgres,sqlite")]
    backends: Vec<String>,
    /// Postgres to run against (a schema `alga_bench` is recreated in it).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
}

const SCHEMA: &str = "alga_bench";
const INSTALL: &str = "bench-install";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Get,
    Put,
    List,
}

struct Figures {
    ops_per_sec: f64,
    hist: Histogram<u64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if !args.database_url.starts_with("postgres") {
        return Err(format!(
            "the benchmark's Postgres (--database-url, or DATABASE_URL) must be a postgres:// URL, not {:?}",
            args.database_url.split(':').next().unwrap_or_default()
        )
        .into());
    }
    RECORDS.store(args.records, std::sync::atomic::Ordering::Relaxed);
    for backend in &args.backends {
        let url = match backend.as_str() {
            "postgres" => {
                let url = &args.database_url;
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}options=-c%20search_path%3D{SCHEMA}")
            }
            "sqlite" => {
                let dir = std::env::temp_dir().join("alga-bench");
                let _ = std::fs::remove_dir_all(&dir);
                format!("sqlite://{}", dir.join("bench.db").display())
            }
            other => {
                return Err(
                    format!("unknown backend {other:?}: expected postgres or sqlite").into(),
                )
            }
        };
        run(&args, backend, url)?;
    }
    Ok(())
}

fn run(args: &Args, backend: &str, url: String) -> Result<(), Box<dyn std::error::Error>> {
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if backend == "postgres" {
        let admin_url = args.database_url.clone();
        client_rt.block_on(async {
            let admin = sqlx::PgPool::connect(&admin_url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
                .execute(&admin)
                .await?;
            sqlx::query(&format!("CREATE SCHEMA {SCHEMA}"))
                .execute(&admin)
                .await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    }
    let config = Config::from_lookup(|name| match name {
        "RUNNER_STORAGE_API_TOKEN" => Some("bench-runner".into()),
        "STORAGE_JWT_SECRET" => Some("bench-jwt".into()),
        "STORAGE_ADMIN_TOKEN" => Some("bench-admin".into()),
        "STORAGE_DB_MAX_CONNECTIONS" => Some("16".into()),
        "STORAGE_RATE_LIMIT_PER_SECOND" => Some("0".into()),
        // Counted as always, but without limits: the namespace holds --records keys.
        "STORAGE_QUOTA_MAX_KEYS_PER_NAMESPACE" => Some("0".into()),
        "STORAGE_QUOTA_MAX_BYTES" => Some("0".into()),
        "DATABASE_URL" => Some(url.clone()),
        _ => None,
    })?;
    let tenant = uuid::Uuid::new_v4();
    // The server, on its own runtime.
    let (base, state) = server_rt.block_on(async {
        let store = open_store(&config).await?;
        let state = app_state(&config, store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(serve(
            listener,
            router(state.clone(), &[]),
            std::future::pending(),
        ));
        Ok::<_, Box<dyn std::error::Error>>((base, state))
    })?;
    // A second store with the same pool size for the raw loop.
    let raw: Arc<dyn Store> = client_rt.block_on(open_store(&config))?;
    let install: InstallId = INSTALL.parse()?;
    let token = client_rt.block_on(async {
        let grants = [alga_storage_core::Grant {
            namespace: Namespace::new("bench")?,
            access: vec![
                alga_storage_core::Access::Read,
                alga_storage_core::Access::Write,
            ],
        }];
        raw.upsert_install(tenant, Actor::ADMIN, &install, "bench", &grants)
            .await?;
        populate(&config, tenant, args.records).await?;
        Ok::<_, Box<dyn std::error::Error>>(state.tokens.mint(tenant, &install, 3600))
    })?;
    println!(
        "\nalga-storage-bench: {} records, {} s per scenario, backend {}",
        args.records,
        args.seconds,
        raw.backend()
    );
    println!(
        "{:<5} {:>7} {:<6} {:>10} {:>9} {:>9} {:>9}",
        "op", "clients", "via", "ops/s", "p50 ms", "p95 ms", "p99 ms"
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let duration = Duration::from_secs(args.seconds);
    let mut ratios = Vec::new();
    for op in [Op::Get, Op::Put, Op::List] {
        for &clients in &args.clients {
            let server = client_rt.block_on(drive(clients, duration, {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                move |key| http_call(http.clone(), base.clone(), token.clone(), op, key)
            }));
            print_row(op, clients, "server", &server);
            let raw_figures = client_rt.block_on(drive(clients, duration, {
                let (raw, install) = (raw.clone(), install.clone());
                move |key| raw_call(raw.clone(), install.clone(), op, key)
            }));
            print_row(op, clients, "raw", &raw_figures);
            ratios.push((op, clients, server.ops_per_sec / raw_figures.ops_per_sec));
        }
    }
    println!("\nserver/raw throughput ratio ({}):", raw.backend());
    for (op, clients, ratio) in ratios {
        println!(
            "  {:<5} {:>3} clients  {ratio:.2}",
            format!("{op:?}").to_lowercase(),
            clients
        );
    }
    server_rt.shutdown_background();
    Ok(())
}

async fn populate(
    config: &Config,
    tenant: uuid::Uuid,
    records: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let url = config.database_url.expose();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let now = chrono::Utc::now().timestamp_micros();
        sqlx::query(
            "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?2) \
             INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, created_at, updated_at) \
             SELECT ?1, 'bench', 'k' || printf('%06d', n), json_object('n', n, 'text', substr(hex(zeroblob(40)), 1, 80)), \
               json_object('kind', n % 10), 1, ?3, ?3 FROM g",
        )
        .bind(tenant.hyphenated().to_string())
        .bind(records as i64)
        .bind(now)
        .execute(&pool)
        .await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        return Ok(());
    }
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(
        "INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, created_at, updated_at) \
         SELECT $1, 'bench', 'k' || lpad(g::text, 6, '0'), jsonb_build_object('n', g, 'text', repeat('x', 80)), \
           jsonb_build_object('kind', g % 10), 1, now(), now() FROM generate_series(0, $2 - 1) g",
    )
    .bind(tenant)
    .bind(records as i32)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE ext_storage_records")
        .execute(&pool)
        .await?;
    Ok(())
}

fn random_key(records: u32) -> u32 {
    rand::thread_rng().gen_range(0..records.max(1))
}

async fn http_call(http: reqwest::Client, base: String, token: String, op: Op, n: u32) -> bool {
    let url = match op {
        Op::List => format!(
            "{base}/api/ext-storage/bench?keyPrefix=k{:04}&includeValues=true",
            n / 100
        ),
        _ => format!("{base}/api/ext-storage/bench/k{n:06}"),
    };
    let req = match op {
        Op::Get | Op::List => http.get(url),
        Op::Put => http
            .put(url)
            .json(&json!({"value": {"n": n, "text": "y".repeat(80)}})),
    };
    match req.bearer_auth(token).send().await {
        Ok(res) => {
            let ok = res.status().is_success();
            let _ = res.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

async fn raw_call(store: Arc<dyn Store>, install: InstallId, op: Op, n: u32) -> bool {
    let Ok(Some(principal)) = store.principal(&install).await else {
        return false;
    };
    let ns = Namespace::new("bench").expect("valid");
    let key = Key::new(format!("k{n:06}")).expect("valid");
    let tenant = principal.tenant;
    match op {
        Op::Get => store
            .get(
                tenant,
                &GetRequest {
                    namespace: ns,
                    key,
                    if_revision: None,
                },
            )
            .await
            .is_ok(),
        Op::Put => {
            let req = PutRequest {
                namespace: ns,
                key,
                value: json!({"n": n, "text": "y".repeat(80)}),
                metadata: None,
                ttl_seconds: None,
                if_revision: None,
            };
            // The server looks up the namespace's schema before every write.
            store.schema(tenant, &req.namespace, None).await.is_ok()
                && store
                    .put(
                        tenant,
                        Actor {
                            principal: install.as_str(),
                            surface: "rest",
                        },
                        &req,
                    )
                    .await
                    .is_ok()
        }
        Op::List => {
            let query = ListQuery {
                namespace: ns,
                key_prefix: Some(format!("k{:04}", n / 100)),
                after: None,
                metadata: None,
                fetch: 26,
                include_values: true,
                include_metadata: false,
            };
            store.list(tenant, &query).await.is_ok()
        }
    }
}

async fn drive<F, Fut>(clients: usize, duration: Duration, call: F) -> Figures
where
    F: Fn(u32) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let records = RECORDS.load(std::sync::atomic::Ordering::Relaxed);
    // Warm up pools and caches.
    for _ in 0..clients.max(4) {
        call(random_key(records)).await;
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("valid precision");
                let mut failures = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if !call(random_key(records)).await {
                        failures += 1;
                    }
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
                (hist, failures)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("valid precision");
    let mut failures = 0;
    for task in tasks {
        let (h, f) = task.await.expect("client task");
        hist.add(h).expect("same precision");
        failures += f;
    }
    assert_eq!(failures, 0, "benchmark calls failed");
    let elapsed = start.elapsed().as_secs_f64();
    Figures {
        ops_per_sec: hist.len() as f64 / elapsed,
        hist,
    }
}

static RECORDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100_000);

fn print_row(op: Op, clients: usize, via: &str, f: &Figures) {
    let ms = |q: f64| f.hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{:<5} {:>7} {:<6} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
        format!("{op:?}").to_lowercase(),
        clients,
        via,
        f.ops_per_sec,
        ms(0.50),
        ms(0.95),
        ms(0.99)
    );
}
