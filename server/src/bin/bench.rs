//! `alga-storage-bench`: load benchmark of the reference server.
//!
//! For each backend (Postgres and the embedded SQLite by default), populates a namespace with
//! `--records` records, then drives `get`, `put` (to one namespace, and spread over 16) and
//! `list` at 1 and 16 concurrent clients over HTTP against the server (in this process, on its
//! own runtime), and compares each with the strongest baseline in the same run:
//!
//! - on Postgres, the database itself: the same statement (the read, or a plain upsert for the
//!   writes) driven by `pgbench` over TCP with the same client count (or, without `pgbench`, the
//!   store driven directly);
//! - on SQLite, the store driven directly (its statements, with no HTTP).
//!
//! Prints ops/s and p50/p95/p99 latency for each, the server/baseline throughput ratio, and on
//! Postgres the WAL that 1,000 gets wrote (none: a read never writes). With `--rounds N` the
//! server and its baseline take turns N times per scenario and the ratio is that of their sums,
//! so that a noisy machine's drift falls on both sides.
//!
//! ```text
//! cargo run --release -p alga-storage-server --bin alga-storage-bench -- --records 100000 --seconds 5
//! ```

use alga_storage_core::{GetRequest, InstallId, Key, Namespace, PutRequest};
use alga_storage_server::store::{Actor, ListQuery, Store, StoreError};
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
    /// Scenarios to run: get, put, put16, list, getMany, incr, and watch (writes over 16
    /// namespaces at 16 clients, without and then with `--watches` open watches of them).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "get,put,put16,list,getMany,incr,watch"
    )]
    ops: Vec<String>,
    /// Times the server and its baseline take turns in each scenario; the ratio is that of
    /// their summed throughputs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Open watches in the watch scenario.
    #[arg(long, default_value_t = 1000)]
    watches: usize,
    /// Backends to run: postgres, sqlite.
    #[arg(long, value_delimiter = ',', default_value = "postgres,sqlite")]
    backends: Vec<String>,
    /// Postgres to run against (in a schema `alga_bench_<pid>` of its own, dropped at the end).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    database_url: String,
}

/// The run's own Postgres schema (and SQLite folder): runs side by side never share data.
static SCHEMA: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("alga_bench_{}", std::process::id()));
const INSTALL: &str = "bench-install";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Get,
    /// Writes to one namespace.
    Put,
    /// Writes spread over [`SPREAD`] namespaces.
    Put16,
    List,
    /// `getMany` of [`MANY`] keys.
    GetMany,
    /// `atomic` increments of one counter by every client (the contended case).
    Incr,
}

/// Keys one `getMany` reads.
const MANY: u32 = 100;

/// The [`MANY`] keys of `getMany` call `n` (spread over the namespace).
fn many_keys(n: u32, records: u32) -> Vec<String> {
    (0..MANY)
        .map(|i| format!("k{:06}", (n + i * 997) % records.max(1)))
        .collect()
}

/// Namespaces the spread write scenario writes to.
const SPREAD: u32 = 16;

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Put => "put",
            Op::Put16 => "put16",
            Op::List => "list",
            Op::GetMany => "getMany",
            Op::Incr => "incr",
        }
    }

    /// The namespace call `n` goes to.
    fn namespace(self, n: u32) -> String {
        match self {
            Op::Put16 => format!("bench{}", n % SPREAD),
            _ => "bench".into(),
        }
    }

    /// The pgbench script of the same statement (for writes, a plain upsert of the same row).
    fn pgbench_script(self, tenant: uuid::Uuid, records: u32) -> String {
        // `:n` is a parameter of unknown type in prepared mode: every use is cast.
        let key = "'k' || lpad(:n::int::text, 6, '0')";
        let statement = match self {
            Op::Get => format!(
                "SELECT value, metadata, revision, ttl_expires_at, created_at, updated_at \
                 FROM ext_storage_records WHERE tenant_id = '{tenant}' AND namespace = 'bench' \
                 AND key = {key} AND (ttl_expires_at IS NULL OR ttl_expires_at > now());"
            ),
            Op::Put | Op::Put16 => {
                let namespace = if self == Op::Put16 {
                    format!("'bench' || (:n::int % {SPREAD})")
                } else {
                    "'bench'".into()
                };
                format!(
                    "INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, metadata, \
                     revision, created_at, updated_at, size) VALUES ('{tenant}', {namespace}, {key}, \
                     jsonb_build_object('n', :n::int, 'text', repeat('y', 80)), '{{}}', 1, now(), now(), 110) \
                     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET value = EXCLUDED.value, \
                     revision = r.revision + 1, updated_at = now();"
                )
            }
            Op::List => format!(
                "SELECT key, revision, value, ttl_expires_at, created_at, updated_at \
                 FROM ext_storage_records WHERE tenant_id = '{tenant}' AND namespace = 'bench' \
                 AND (ttl_expires_at IS NULL OR ttl_expires_at > now()) \
                 AND key >= 'k' || lpad((:n::int / 100)::text, 4, '0') \
                 AND starts_with(key, 'k' || lpad((:n::int / 100)::text, 4, '0')) ORDER BY key LIMIT 26;"
            ),
            Op::GetMany => format!(
                "SELECT key, value, metadata, revision, ttl_expires_at, created_at, updated_at \
                 FROM ext_storage_records WHERE tenant_id = '{tenant}' AND namespace = 'bench' \
                 AND key = ANY(ARRAY(SELECT 'k' || lpad(((:n::int + g * 997) % {records})::text, 6, '0') \
                   FROM generate_series(0, {last}) g)) \
                 AND (ttl_expires_at IS NULL OR ttl_expires_at > now());",
                records = records.max(1),
                last = MANY - 1
            ),
            // The same row, made one larger in one statement.
            Op::Incr => format!(
                "INSERT INTO ext_storage_records AS r (tenant_id, namespace, key, value, metadata, \
                 revision, created_at, updated_at, size) VALUES ('{tenant}', 'bench', 'counter', '1', '{{}}', 1, now(), now(), 8) \
                 ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET \
                 value = to_jsonb((r.value #>> '{{}}')::bigint + 1), revision = r.revision + 1, updated_at = now();"
            ),
        };
        format!("\\set n random(0, {})\n{statement}\n", records.max(1) - 1)
    }
}

struct Figures {
    ops_per_sec: f64,
    hist: Histogram<u64>,
    /// Calls answered `UNAVAILABLE` (no connection within the acquire timeout: the server
    /// shedding load on an overloaded machine, as designed); not counted in `ops_per_sec`.
    shed: u64,
}

/// How one benchmark call ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Answered as asked.
    Done,
    /// Refused with `UNAVAILABLE` (503): counted and printed, not a failure of the run.
    Shed,
    /// Anything else: the run fails.
    Failed,
}

impl Outcome {
    fn of_store<T>(result: Result<T, StoreError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Done,
            Err(StoreError::Unavailable(_)) => Outcome::Shed,
            Err(_) => Outcome::Failed,
        }
    }
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
                format!("{url}{sep}options=-c%20search_path%3D{}", *SCHEMA)
            }
            "sqlite" => {
                let dir = std::env::temp_dir().join(SCHEMA.as_str());
                let _ = std::fs::remove_dir_all(&dir);
                format!("sqlite://{}", dir.join("bench.db").display())
            }
            other => {
                return Err(
                    format!("unknown backend {other:?}: expected postgres or sqlite").into(),
                )
            }
        };
        let result = run(&args, backend, &url);
        clean_up(&args, backend);
        result?;
    }
    Ok(())
}

/// Drops the run's schema (Postgres) or folder (SQLite), whether the run succeeded or not.
fn clean_up(args: &Args, backend: &str) {
    if backend == "sqlite" {
        let _ = std::fs::remove_dir_all(std::env::temp_dir().join(SCHEMA.as_str()));
        return;
    }
    let dropped = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(async {
                let admin = admin_connection(&args.database_url).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", *SCHEMA))
                    .execute(&admin)
                    .await?;
                Ok::<_, sqlx::Error>(())
            })
            .map_err(|e| e.to_string())
        });
    if let Err(e) = dropped {
        eprintln!("bench: could not drop schema {}: {e}", *SCHEMA);
    }
}

/// One connection for the schema's DDL, which waits at most 30 s for a lock (a stuck peer
/// makes the run fail with a message instead of hanging).
async fn admin_connection(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("SET lock_timeout = '30s'")
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
        })
        .connect(url)
        .await
}

fn run(args: &Args, backend: &str, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let url = url.to_owned();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()?;
    if backend == "postgres" {
        let admin_url = args.database_url.clone();
        client_rt.block_on(async {
            let admin = admin_connection(&admin_url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", *SCHEMA))
                .execute(&admin)
                .await?;
            sqlx::query(&format!("CREATE SCHEMA {}", *SCHEMA))
                .execute(&admin)
                .await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    }
    let config = Config::from_lookup(|name| match name {
        "RUNNER_STORAGE_API_TOKEN" => Some("bench-runner".into()),
        "STORAGE_JWT_SECRET" => Some("bench-jwt".into()),
        "STORAGE_ADMIN_TOKEN" => Some("bench-admin".into()),
        // The server's default (20: 15 for statements on their own, 5 for transactions and
        // its listeners) against pgbench's one connection per client.
        "STORAGE_RATE_LIMIT_PER_SECOND" => Some("0".into()),
        // Counted as always, but without limits: the namespace holds --records keys.
        "STORAGE_QUOTA_MAX_KEYS_PER_NAMESPACE" => Some("0".into()),
        "STORAGE_QUOTA_MAX_BYTES" => Some("0".into()),
        // One install holds every watch of the watch scenario.
        "STORAGE_MAX_WATCHES_PER_PRINCIPAL" => Some(args.watches.to_string()),
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
        let grants = std::iter::once("bench".to_owned())
            .chain((0..SPREAD).map(|i| format!("bench{i}")))
            .map(|ns| {
                Ok(alga_storage_core::Grant {
                    namespace: Namespace::new(ns)?,
                    access: vec![
                        alga_storage_core::Access::Read,
                        alga_storage_core::Access::Write,
                    ],
                })
            })
            .collect::<Result<Vec<_>, alga_storage_core::InvalidValue>>()?;
        raw.upsert_install(tenant, Actor::ADMIN, &install, "bench", &grants)
            .await?;
        populate(&config, tenant, args.records).await?;
        let principal = raw
            .principal(&install)
            .await?
            .ok_or("the install vanished")?;
        Ok::<_, Box<dyn std::error::Error>>(state.tokens.mint(&principal, 3600))
    })?;
    let pgbench = (backend == "postgres" && pgbench_available()).then(|| Pgbench {
        url: args.database_url.clone(),
        tenant,
        records: args.records,
    });
    let baseline_name = if pgbench.is_some() {
        "pgbench"
    } else {
        "store"
    };
    println!(
        "\nalga-storage-bench: {} records, {} s per scenario, backend {}, baseline {}",
        args.records,
        args.seconds,
        raw.backend(),
        baseline_name
    );
    println!(
        "{:<5} {:>7} {:<7} {:>10} {:>9} {:>9} {:>9}",
        "op", "clients", "via", "ops/s", "p50 ms", "p95 ms", "p99 ms"
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;
    let duration = Duration::from_secs(args.seconds);
    let mut ratios = Vec::new();
    if backend == "postgres" {
        // Before any write scenario, so that no page holds dead rows for Postgres itself to
        // prune while reading.
        let wal = client_rt.block_on(wal_of_gets(&config, &http, &base, &token, 1000))?;
        println!(
            "WAL written while the server answered 1,000 gets: {wal} bytes (the whole cluster's)"
        );
    }
    let wrk = wrk_available();
    let mut server_rates = Vec::new();
    let all = [Op::Get, Op::Put, Op::Put16, Op::List, Op::GetMany, Op::Incr];
    if let Some(unknown) = args
        .ops
        .iter()
        .find(|name| *name != "watch" && !all.iter().any(|op| op.name() == name.as_str()))
    {
        return Err(format!("unknown scenario {unknown:?}").into());
    }
    for op in all
        .into_iter()
        .filter(|op| args.ops.iter().any(|name| name == op.name()))
    {
        for &clients in &args.clients {
            // Server and baseline take turns, `--rounds` times: the machine's drift (another
            // tenant, a checkpoint, the disk's flush latency) falls on both sides alike.
            let (mut server_sum, mut baseline_sum) = (0.0, 0.0);
            for _ in 0..args.rounds {
                let server = if wrk {
                    let wrk = run_wrk(
                        op,
                        clients,
                        args.seconds,
                        &base,
                        &token,
                        args.records,
                        false,
                    )?;
                    println!(
                        "{:<5} {:>7} {:<7} {:>10.0}{}",
                        op.name(),
                        clients,
                        "server",
                        wrk.ops_per_sec,
                        shed_note(wrk.shed)
                    );
                    wrk.ops_per_sec
                } else {
                    let figures = client_rt.block_on(drive(clients, duration, {
                        let (http, base, token) = (http.clone(), base.clone(), token.clone());
                        move |key| http_call(http.clone(), base.clone(), token.clone(), op, key)
                    }));
                    print_row(op, clients, "server", &figures);
                    figures.ops_per_sec
                };
                let baseline = match &pgbench {
                    Some(pgbench) => {
                        let tps = pgbench.run(op, clients, args.seconds)?;
                        println!(
                            "{:<5} {:>7} {:<7} {:>10.0}",
                            op.name(),
                            clients,
                            "pgbench",
                            tps
                        );
                        tps
                    }
                    None => {
                        let figures = client_rt.block_on(drive(clients, duration, {
                            let (raw, install) = (raw.clone(), install.clone());
                            move |key| raw_call(raw.clone(), install.clone(), op, key)
                        }));
                        print_row(op, clients, "store", &figures);
                        figures.ops_per_sec
                    }
                };
                server_sum += server;
                baseline_sum += baseline;
            }
            let rounds = f64::from(args.rounds);
            ratios.push((op, clients, server_sum / baseline_sum));
            server_rates.push((op, clients, server_sum / rounds));
        }
    }
    println!(
        "\nserver/{baseline_name} throughput ratio ({}, {} round(s)):",
        raw.backend(),
        args.rounds
    );
    for (op, clients, ratio) in ratios {
        println!("  {:<7} {:>3} clients  {ratio:.2}", op.name(), clients);
    }
    if args.ops.iter().any(|o| o == "incr") {
        // The counter without atomic operations, in the same run: read, add, write guarded by
        // the revision read, retried on REVISION_MISMATCH (as the example's incrementByRetry).
        println!("\nincrements of one counter by the retry loop (server, same run):");
        for &clients in &args.clients {
            let retries = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let figures = client_rt.block_on(drive(clients, duration, {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                let retries = retries.clone();
                move |_| retry_increment(http.clone(), base.clone(), token.clone(), retries.clone())
            }));
            let incr = server_rates
                .iter()
                .find(|(op, c, _)| *op == Op::Incr && *c == clients)
                .map_or(0.0, |(_, _, r)| *r);
            let per_success = retries.load(std::sync::atomic::Ordering::Relaxed) as f64
                / figures.hist.len() as f64;
            println!(
                "  {clients:>3} clients  {:.0}/s ({per_success:.1} retries per increment); atomic increment {incr:.0}/s = {:.1}x",
                figures.ops_per_sec,
                incr / figures.ops_per_sec
            );
        }
    }
    println!("\ncost of one getMany of {MANY} keys in gets (server, same run):");
    for &clients in &args.clients {
        let rate = |wanted: Op| {
            server_rates
                .iter()
                .find(|(op, c, _)| *op == wanted && *c == clients)
                .map(|(_, _, r)| *r)
        };
        if let (Some(get), Some(many)) = (rate(Op::Get), rate(Op::GetMany)) {
            println!("  {clients:>3} clients  {:.2}", get / many);
        }
    }
    if args.ops.iter().any(|o| o == "watch") {
        let clients = 16;
        let writes = |label: &str| {
            let cpu = cpu_seconds();
            let figures = client_rt.block_on(drive(clients, duration, {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                move |key| http_call(http.clone(), base.clone(), token.clone(), Op::Put16, key)
            }));
            let (server, client, database) = cpu_seconds();
            println!(
                "  writes over {SPREAD} namespaces, {clients} clients, {label}: {:.0}/s (p99 {:.1} ms; CPU s: server {:.1}, clients {:.1}, Postgres {:.1}){}",
                figures.ops_per_sec,
                figures.hist.value_at_quantile(0.99) as f64 / 1000.0,
                server - cpu.0,
                client - cpu.1,
                database - cpu.2,
                shed_note(figures.shed)
            );
            figures.ops_per_sec
        };
        println!("\nwatches (server and watching clients in this process):");
        let rss_before = rss_mib();
        // A first pass warms the server, its pool and Postgres up (the one after it is the
        // baseline the cases with watches are compared with).
        writes("no watch open, warming up");
        let without = writes("no watch open");
        // Every watch follows one of the namespaces being written (each write reaches
        // watches/16 of them); then the same with a key prefix no write has (each change wakes
        // them, none is sent: the fan-out's cost before any event is written); then none does
        // (they follow `bench`, which nobody writes now). Each gives the watch's path and query.
        let written: fn(usize) -> String = |i| format!("bench{}:watch?", i % SPREAD as usize);
        let filtered: fn(usize) -> String =
            |i| format!("bench{}:watch?keyPrefix=none-&", i % SPREAD as usize);
        let idle: fn(usize) -> String = |_| "bench:watch?".to_owned();
        let mut cases = Vec::new();
        for (case, watch_of) in [
            ("of the namespaces written", written),
            (
                "of the namespaces written, with a prefix no key has",
                filtered,
            ),
            ("of a namespace not written", idle),
        ] {
            let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let events = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let chunks = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let readers: Vec<_> = (0..args.watches)
                .map(|i| {
                    // From the namespace's latest change on (a position past it is a reset).
                    let url = format!("{base}/api/ext-storage/{}after={}", watch_of(i), i64::MAX);
                    let (http, token) = (http.clone(), token.clone());
                    let (opened, events, chunks) = (opened.clone(), events.clone(), chunks.clone());
                    client_rt.spawn(async move {
                        let Ok(mut res) = http
                            .get(url)
                            .bearer_auth(token)
                            .timeout(Duration::from_secs(3600))
                            .send()
                            .await
                        else {
                            return;
                        };
                        if !res.status().is_success() {
                            return;
                        }
                        opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        while let Ok(Some(chunk)) = res.chunk().await {
                            let n = chunk
                                .windows(14)
                                .filter(|w| w == b"event: change\n")
                                .count();
                            events.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                            chunks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(60);
            while opened.load(std::sync::atomic::Ordering::Relaxed) < args.watches
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let open = opened.load(std::sync::atomic::Ordering::Relaxed);
            let with = writes(&format!("{open} watches open {case}"));
            let rss = rss_mib();
            println!(
                "    {:.2} of the throughput without; {} change events delivered in {} reads; process RSS {rss_before:.0} -> {rss:.0} MiB",
                with / without,
                events.load(std::sync::atomic::Ordering::Relaxed),
                chunks.load(std::sync::atomic::Ordering::Relaxed)
            );
            cases.push((case, with));
            for reader in readers {
                reader.abort();
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        // The store grows with every pass (records' audit rows, the change log): a last pass
        // without watches shows how far the rate drifted meanwhile, and each case is also
        // compared with the mean of the passes before and after it all.
        let again = writes("no watch open, after the watches");
        let mean = (without + again) / 2.0;
        println!(
            "    without watches before and after: {:.2} of the first; against their mean:",
            again / without
        );
        for (case, with) in cases {
            println!("    {:.2} with the watches {case}", with / mean);
        }
    }
    server_rt.shutdown_background();
    Ok(())
}

/// CPU seconds (user + system) the server's threads (its runtime and, on SQLite, sqlx's
/// connection threads), the clients' runtime threads and the local Postgres processes (every
/// process named `postgres` on this machine: a cluster shared with other work counts that
/// work too) have used so far (Linux), or zeros.
fn cpu_seconds() -> (f64, f64, f64) {
    let mut totals = (0.0, 0.0, 0.0);
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            // sqlx runs each SQLite connection on a thread of its own ("sqlx-sqlite-worker-N"):
            // the embedded database's work is the server's.
            if comm.starts_with("bench-server") || comm.starts_with("sqlx-sqlite") {
                totals.0 += used_seconds(&task.path());
            } else if comm.starts_with("bench-client") {
                totals.1 += used_seconds(&task.path());
            }
        }
    }
    if let Ok(processes) = std::fs::read_dir("/proc") {
        for process in processes.flatten() {
            let comm = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == "postgres" {
                totals.2 += used_seconds(&process.path());
            }
        }
    }
    totals
}

/// The CPU seconds (user + system) of the process or thread at `/proc` path `path`.
fn used_seconds(path: &std::path::Path) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
    // Fields after the parenthesised name: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(11) + field(12)) / tick
}

/// This process's resident memory in MiB (Linux), or 0.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn populate(
    config: &Config,
    tenant: uuid::Uuid,
    records: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    // Key `k<n>` in `bench` and in `bench<n % 16>`, holding what the put scenarios write to it
    // (value `{"n": n, "text": 80 × "y"}`, no metadata, the server's size): a put, the server's
    // or pgbench's, replaces a record with one of the same size, so neither side pays for
    // growing the tenant's byte counter (a row every such write of the tenant locks), and both
    // measure the steady state of an application updating its records.
    let size = |digits: &str| format!("length(key) + 96 + length({digits}) + 2");
    let url = config.database_url.expose();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let now = chrono::Utc::now().timestamp_micros();
        sqlx::query(&format!(
            "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?2), \
               r AS (SELECT n, 'k' || printf('%06d', n) AS key, 'bench' AS ns FROM g \
                 UNION ALL SELECT n, 'k' || printf('%06d', n), 'bench' || (n % {SPREAD}) FROM g) \
             INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, created_at, updated_at, size) \
             SELECT ?1, ns, key, json_object('n', n, 'text', replace(hex(zeroblob(40)), '0', 'y')), '{{}}', \
               1, ?3, ?3, {size} FROM r",
            size = size("n")
        ))
        .bind(tenant.hyphenated().to_string())
        .bind(records as i64)
        .bind(now)
        .execute(&pool)
        .await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        return Ok(());
    }
    let pool = sqlx::PgPool::connect(url).await?;
    sqlx::query(&format!(
        "INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, created_at, updated_at, size) \
         SELECT $1, ns, key, jsonb_build_object('n', n, 'text', repeat('y', 80)), '{{}}', 1, now(), now(), {size} \
         FROM (SELECT n, 'k' || lpad(n::text, 6, '0') AS key, unnest(ARRAY['bench', 'bench' || (n % {SPREAD})]) AS ns \
               FROM generate_series(0, $2 - 1) n) r",
        size = size("n::text")
    ))
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

/// One increment of `retry-counter` by a read and a write guarded by the revision read,
/// retried until it wins; counts the retries. A 503 `UNAVAILABLE` (every pooled connection
/// waiting on the counter's row lock, past the acquire timeout: it happens on a loaded machine)
/// is retried after a pause, as a client honouring `Retry-After` would.
async fn retry_increment(
    http: reqwest::Client,
    base: String,
    token: String,
    retries: Arc<std::sync::atomic::AtomicU64>,
) -> Outcome {
    let url = format!("{base}/api/ext-storage/bench/retry-counter");
    // A request that got no answer (the client's timeout) is tried again, as a client would,
    // a few times; it is printed, so a slow server is seen.
    let mut unanswered = 0;
    loop {
        let res = match http.get(&url).bearer_auth(&token).send().await {
            Ok(res) => res,
            Err(e) if unanswered < 3 => {
                eprintln!("retry loop: the read got no answer ({e}); trying again");
                unanswered += 1;
                continue;
            }
            Err(_) => return Outcome::Failed,
        };
        let (value, revision) = match res.status().as_u16() {
            503 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            404 => (0, 0),
            200 => {
                let Ok(record) = res.json::<serde_json::Value>().await else {
                    return Outcome::Failed;
                };
                (
                    record["value"].as_i64().unwrap_or(0),
                    record["revision"].as_u64().unwrap_or(0),
                )
            }
            other => {
                eprintln!("retry loop: the read answered {other}");
                return Outcome::Failed;
            }
        };
        let put = http
            .put(&url)
            .bearer_auth(&token)
            .json(&json!({"value": value + 1, "ifRevision": revision}))
            .send()
            .await;
        match put.map(|r| r.status().as_u16()) {
            Ok(200) => return Outcome::Done,
            Ok(409) => {
                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(503) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) if unanswered < 3 => {
                eprintln!("retry loop: the guarded write got no answer ({e}); trying again");
                unanswered += 1;
            }
            other => {
                eprintln!("retry loop: the guarded write answered {other:?}");
                return Outcome::Failed;
            }
        }
    }
}

async fn http_call(http: reqwest::Client, base: String, token: String, op: Op, n: u32) -> Outcome {
    let ns = op.namespace(n);
    let url = match op {
        Op::List => format!(
            "{base}/api/ext-storage/{ns}?keyPrefix=k{:04}&includeValues=true",
            n / 100
        ),
        _ => format!("{base}/api/ext-storage/{ns}/k{n:06}"),
    };
    let records = RECORDS.load(std::sync::atomic::Ordering::Relaxed);
    let req = match op {
        Op::Get | Op::List => http.get(url),
        Op::Put | Op::Put16 => http
            .put(url)
            .json(&json!({"value": {"n": n, "text": "y".repeat(80)}})),
        Op::GetMany => http
            .post(format!("{base}/api/ext-storage/{ns}:getMany"))
            .json(&json!({ "keys": many_keys(n, records) })),
        Op::Incr => http
            .post(format!("{base}/api/ext-storage/{ns}:atomic"))
            .json(&json!({"operations": [{"op": "increment", "key": "counter", "delta": 1}]})),
    };
    match req.bearer_auth(token).send().await {
        Ok(res) => {
            let status = res.status();
            let _ = res.bytes().await;
            match status.as_u16() {
                _ if status.is_success() => Outcome::Done,
                503 => Outcome::Shed,
                _ => Outcome::Failed,
            }
        }
        Err(_) => Outcome::Failed,
    }
}

async fn raw_call(store: Arc<dyn Store>, install: InstallId, op: Op, n: u32) -> Outcome {
    let principal = match store.principal(&install).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return Outcome::Failed,
        Err(e) => return Outcome::of_store(Err::<(), _>(e)),
    };
    let ns = Namespace::new(op.namespace(n)).expect("valid");
    let key = Key::new(format!("k{n:06}")).expect("valid");
    let tenant = principal.tenant;
    let result: Result<(), StoreError> = async {
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
                .map(drop),
            Op::Put | Op::Put16 => {
                let req = PutRequest {
                    namespace: ns,
                    key,
                    value: json!({"n": n, "text": "y".repeat(80)}),
                    metadata: None,
                    ttl_seconds: None,
                    if_revision: None,
                };
                // The server checks the value against the schema it remembers (the benchmark's
                // namespaces have none: version 0), and the write checks that version.
                store
                    .put(
                        tenant,
                        Actor {
                            principal: install.as_str(),
                            surface: "rest",
                        },
                        &req,
                        0,
                    )
                    .await
                    .map(drop)
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
                store.list(tenant, &query).await.map(drop)
            }
            Op::GetMany => {
                let records = RECORDS.load(std::sync::atomic::Ordering::Relaxed);
                let keys = many_keys(n, records)
                    .into_iter()
                    .map(|k| Key::new(k).expect("valid"))
                    .collect();
                let req = alga_storage_core::GetManyRequest {
                    namespace: ns,
                    keys,
                };
                store.get_many(tenant, &req).await.map(drop)
            }
            Op::Incr => {
                let req = alga_storage_core::AtomicRequest {
                    namespace: ns,
                    checks: Vec::new(),
                    operations: vec![alga_storage_core::AtomicOperation::Increment {
                        key: Key::new("counter").expect("valid"),
                        delta: 1.into(),
                        ttl_seconds: None,
                    }],
                };
                let actor = Actor {
                    principal: install.as_str(),
                    surface: "rest",
                };
                store.schema(tenant, &req.namespace, None).await?;
                store
                    .atomic(tenant, actor, &req, &|_, _| Ok(()))
                    .await
                    .map(drop)
            }
        }
    }
    .await;
    Outcome::of_store(result)
}

async fn drive<F, Fut>(clients: usize, duration: Duration, call: F) -> Figures
where
    F: Fn(u32) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
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
                let (mut failures, mut shed) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match call(random_key(records)).await {
                        Outcome::Done => {
                            let _ = hist.record(t.elapsed().as_micros() as u64);
                        }
                        Outcome::Shed => shed += 1,
                        Outcome::Failed => failures += 1,
                    }
                }
                (hist, failures, shed)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("valid precision");
    let (mut failures, mut shed) = (0, 0);
    for task in tasks {
        let (h, f, s) = task.await.expect("client task");
        hist.add(h).expect("same precision");
        failures += f;
        shed += s;
    }
    assert_eq!(failures, 0, "benchmark calls failed");
    let elapsed = start.elapsed().as_secs_f64();
    Figures {
        ops_per_sec: hist.len() as f64 / elapsed,
        hist,
        shed,
    }
}

static RECORDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100_000);

fn wrk_available() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

/// What one `wrk` run measured.
struct WrkFigures {
    /// Requests answered as asked, per second.
    ops_per_sec: f64,
    /// Requests answered 503 `UNAVAILABLE` (not counted in `ops_per_sec`).
    shed: u64,
}

/// Requests per second the server answers to `clients` connections driven by `wrk` (a client
/// far lighter than ours, so the figure is the server's), each request as [`http_call`] makes it.
fn run_wrk(
    op: Op,
    clients: usize,
    seconds: u64,
    base: &str,
    token: &str,
    records: u32,
    classify: bool,
) -> Result<WrkFigures, Box<dyn std::error::Error>> {
    let (method, path, body) = match op {
        Op::Get => ("GET", "string.format('/api/ext-storage/bench/k%06d', n)", "nil"),
        Op::Put => (
            "PUT",
            "string.format('/api/ext-storage/bench/k%06d', n)",
            "string.format('{\"value\":{\"n\":%d,\"text\":\"%s\"}}', n, text)",
        ),
        Op::Put16 => (
            "PUT",
            "string.format('/api/ext-storage/bench%d/k%06d', n % 16, n)",
            "string.format('{\"value\":{\"n\":%d,\"text\":\"%s\"}}', n, text)",
        ),
        Op::List => (
            "GET",
            "string.format('/api/ext-storage/bench?keyPrefix=k%04d&includeValues=true', math.floor(n / 100))",
            "nil",
        ),
        Op::GetMany => ("POST", "'/api/ext-storage/bench:getMany'", "many(n)"),
        Op::Incr => (
            "POST",
            "'/api/ext-storage/bench:atomic'",
            "'{\"operations\":[{\"op\":\"increment\",\"key\":\"counter\",\"delta\":1}]}'",
        ),
    };
    // Counting answers by status costs wrk a Lua call per answer, so it is asked for only when
    // a run without it saw answers other than 2xx: then the run is made again, counting.
    let classifier = if classify {
        "local threads = {}\n\
         setup = function(thread) threads[#threads + 1] = thread end\n\
         init = function() shed = 0; other = 0 end\n\
         response = function(status)\n\
           if status == 503 then shed = shed + 1 elseif status >= 300 then other = other + 1 end\n\
         end\n\
         done = function()\n\
           local s, o = 0, 0\n\
           for _, t in ipairs(threads) do s = s + t:get('shed'); o = o + t:get('other') end\n\
           io.write(string.format('alga-shed: %d\\nalga-other: %d\\n', s, o))\n\
         end\n"
    } else {
        ""
    };
    let script = format!(
        "local text = string.rep('y', 80)\n\
         local function many(n)\n\
           local keys = {{}}\n\
           for i = 0, {many_last} do keys[#keys + 1] = string.format('\"k%06d\"', (n + i * 997) % {records}) end\n\
           return '{{\"keys\":[' .. table.concat(keys, ',') .. ']}}'\n\
         end\n\
         request = function()\n\
           local n = math.random(0, {last})\n\
           return wrk.format('{method}', {path}, {{['Authorization'] = 'Bearer {token}', \
             ['Content-Type'] = 'application/json'}}, {body})\n\
         end\n{classifier}",
        last = records.max(1) - 1,
        many_last = MANY - 1,
        records = records.max(1),
    );
    let file = std::env::temp_dir().join(format!(
        "alga-bench-{}-{}.lua",
        op.name(),
        std::process::id()
    ));
    std::fs::write(&file, script)?;
    let out = std::process::Command::new("wrk")
        .args([
            "-t",
            &clients.min(2).to_string(),
            "-c",
            &clients.to_string(),
        ])
        .args(["-d", &format!("{seconds}s"), "-s"])
        .arg(&file)
        .arg(base)
        .output()?;
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !classify && stdout.contains("Non-2xx") {
        return run_wrk(op, clients, seconds, base, token, records, true);
    }
    let count = |label: &str| -> Option<f64> {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|v| v.trim().parse().ok())
    };
    let Some(rate) = count("Requests/sec:") else {
        return Err(format!(
            "wrk gave no rate:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    };
    let (shed, other) = if classify {
        let (Some(shed), Some(other)) = (count("alga-shed:"), count("alga-other:")) else {
            return Err(format!("wrk gave no count of answers:\n{stdout}").into());
        };
        (shed, other)
    } else {
        (0.0, 0.0)
    };
    if other > 0.0 || stdout.contains("Socket errors") {
        return Err(format!("the server refused benchmark requests:\n{stdout}").into());
    }
    // wrk's rate counts every answer; the figure counts those answered as asked.
    let total = stdout
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse::<f64>().ok())
        .filter(|n| *n > 0.0)
        .ok_or_else(|| format!("wrk gave no request count:\n{stdout}"))?;
    Ok(WrkFigures {
        ops_per_sec: rate * (total - shed) / total,
        shed: shed as u64,
    })
}

/// The database itself, driven by pgbench with the same statements.
struct Pgbench {
    url: String,
    tenant: uuid::Uuid,
    records: u32,
}

fn pgbench_available() -> bool {
    std::process::Command::new("pgbench")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Pgbench {
    /// Transactions per second of `op`'s statement at `clients` connections.
    fn run(&self, op: Op, clients: usize, seconds: u64) -> Result<f64, Box<dyn std::error::Error>> {
        let script = std::env::temp_dir().join(format!(
            "alga-bench-{}-{}.sql",
            op.name(),
            std::process::id()
        ));
        std::fs::write(&script, op.pgbench_script(self.tenant, self.records))?;
        let out = std::process::Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-c", &clients.to_string()])
            .args([
                "-j",
                &clients.min(2).to_string(),
                "-T",
                &seconds.to_string(),
            ])
            .arg("-f")
            .arg(&script)
            .arg(&self.url)
            .env(
                "PGOPTIONS",
                format!("-c search_path={} -c statement_timeout=30s", *SCHEMA),
            )
            .output()?;
        let _ = std::fs::remove_file(&script);
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|tps| tps.parse().ok())
            .ok_or_else(|| {
                format!(
                    "pgbench gave no tps:\n{stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
                .into()
            })
    }
}

/// The WAL the whole Postgres cluster wrote while the server answered `count` sequential gets.
async fn wal_of_gets(
    config: &Config,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    count: u32,
) -> Result<i64, Box<dyn std::error::Error>> {
    let pool = sqlx::PgPool::connect(config.database_url.expose()).await?;
    sqlx::query("VACUUM ext_storage_records")
        .execute(&pool)
        .await?;
    let lsn = || sqlx::query_scalar::<_, String>("SELECT pg_current_wal_lsn()::text");
    let before = lsn().fetch_one(&pool).await?;
    for n in 0..count {
        http_call(http.clone(), base.into(), token.into(), Op::Get, n).await;
    }
    let after = lsn().fetch_one(&pool).await?;
    let bytes = sqlx::query_scalar("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint")
        .bind(after)
        .bind(before)
        .fetch_one(&pool)
        .await?;
    Ok(bytes)
}

fn print_row(op: Op, clients: usize, via: &str, f: &Figures) {
    let ms = |q: f64| f.hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{:<5} {:>7} {:<7} {:>10.0} {:>9.2} {:>9.2} {:>9.2}{}",
        op.name(),
        clients,
        via,
        f.ops_per_sec,
        ms(0.50),
        ms(0.95),
        ms(0.99),
        shed_note(f.shed)
    );
}

/// What a row adds when calls were answered `UNAVAILABLE` (the figures above count only the
/// calls answered as asked).
fn shed_note(shed: u64) -> String {
    if shed == 0 {
        return String::new();
    }
    format!("  ({shed} calls answered 503 UNAVAILABLE: the machine was overloaded)")
}
