//! Export and import (`alga-storage-server export` / `import`, and the admin export route): the
//! real binary on real databases.

use alga_storage_server::config::Backend;
use alga_storage_server::store::transfer::Line;
use alga_storage_server::store::{Actor, Quotas, Store};
use alga_storage_server::{open_store, Config};
use alga_storage_tests::{
    backend, create_schema, database_url, schema_url, server_binary, Instance, Tenant, TestServer,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use uuid::Uuid;

/// A fresh, empty database of `backend` (a schema of its own, or a new SQLite file).
async fn fresh_database(backend: Backend, scratch: &Path) -> String {
    match backend {
        Backend::Postgres => schema_url(&database_url(), &create_schema().await),
        Backend::Sqlite => format!(
            "sqlite://{}",
            scratch
                .join(format!("{}.db", Uuid::new_v4().simple()))
                .display()
        ),
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alga-transfer-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What one run of the binary did.
struct Run {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `alga-storage-server <args>` on `url`, with `stdin` piped in when given.
fn cli(url: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(server_binary())
        .args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("STORAGE_SWEEP_INTERVAL_SECONDS", "0")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.wait_with_output().unwrap();
    let run = Run {
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    println!(
        "alga-storage-server {}: {}",
        args.join(" "),
        run.stderr.trim()
    );
    run
}

/// The lines of an export, with the header's time and source blanked (they differ by design).
fn lines(file: &[u8]) -> Vec<Line> {
    file.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut line: Line = serde_json::from_slice(l).unwrap();
            if let Line::Header(h) = &mut line {
                h.exported_at = chrono::DateTime::UNIX_EPOCH;
                h.source = String::new();
            }
            line
        })
        .collect()
}

/// A store opened in-process on `url` (migrated), as the server opens it.
async fn store(url: &str) -> std::sync::Arc<dyn Store> {
    let url = url.to_owned();
    let config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "STORAGE_SWEEP_INTERVAL_SECONDS" => Some("0".into()),
        _ => None,
    })
    .unwrap();
    open_store(&config).await.unwrap()
}

/// Usage counters and versions, as text rows in a stable order (the same text on both
/// backends: tenant, namespace, version, keys, bytes / tenant, bytes, overrides).
async fn counters(url: &str) -> (Vec<String>, Vec<String>) {
    let namespaces =
        "SELECT tenant_id || '|' || namespace || '|' || version || '|' || keys || '|' || bytes \
                      FROM ext_storage_namespaces ORDER BY 1";
    let tenants = "SELECT tenant_id || '|' || bytes || '|' || coalesce(max_namespaces, -1) || '|' \
                   || coalesce(max_keys_per_namespace, -1) || '|' || coalesce(max_bytes, -1) \
                   FROM ext_storage_tenants ORDER BY 1";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        (
            sqlx::query_scalar(namespaces)
                .fetch_all(&pool)
                .await
                .unwrap(),
            sqlx::query_scalar(tenants).fetch_all(&pool).await.unwrap(),
        )
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let text = |q: &str| q.replace("tenant_id ||", "tenant_id::text ||");
        (
            sqlx::query_scalar(&text(namespaces))
                .fetch_all(&pool)
                .await
                .unwrap(),
            sqlx::query_scalar(&text(tenants))
                .fetch_all(&pool)
                .await
                .unwrap(),
        )
    }
}

const RECORDS: i64 = 100_000;
const NAMESPACES: i64 = 10;

/// A SQLite store with two tenants: the first with an install, a schema, quota overrides and
/// 100,000 live records in 10 namespaces (revisions, metadata and TTLs varied, plus 100
/// expired records), the second with one small namespace.
async fn populated_sqlite(url: &str) -> (Uuid, Uuid) {
    let s = store(url).await;
    let (big, small) = (Uuid::new_v4(), Uuid::new_v4());
    let grants: Vec<alga_storage_core::Grant> = (0..NAMESPACES)
        .map(|i| {
            serde_json::from_value(
                json!({"namespace": format!("ns{i}"), "access": ["read", "write"]}),
            )
            .unwrap()
        })
        .collect();
    s.upsert_install(
        big,
        Actor::ADMIN,
        &"big-install".parse().unwrap(),
        "ext-big",
        &grants,
    )
    .await
    .unwrap();
    s.upsert_install(
        small,
        Actor::ADMIN,
        &"small-install".parse().unwrap(),
        "ext-small",
        &grants[..1],
    )
    .await
    .unwrap();
    s.put_quotas(
        big,
        Actor::ADMIN,
        &Quotas {
            max_namespaces: None,
            max_keys_per_namespace: Some(20_000),
            max_bytes: Some(500 << 20),
        },
    )
    .await
    .unwrap();
    s.put_schema(
        big,
        Actor::ADMIN,
        &alga_storage_core::Namespace::new("ns1").unwrap(),
        &json!({"type": "object"}),
    )
    .await
    .unwrap();
    drop(s);
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    // Live records n < 100,000; n ≥ 100,000 expired a second ago.
    sqlx::query(
        "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?2 + 100), \
         r AS (SELECT n, 'ns' || (n % ?3) AS namespace, 'k' || printf('%06d', n) AS key, \
                 json_object('n', n, 'text', 'value ' || n, 'tags', json_array('a', n % 7)) AS value, \
                 CASE WHEN n % 3 = 0 THEN json_object('kind', n % 5) ELSE '{}' END AS metadata FROM g) \
         INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, ttl_expires_at, created_at, updated_at, size) \
         SELECT ?1, namespace, key, value, metadata, 1 + n % 9, \
                CASE WHEN n >= ?2 THEN ?4 - 1000000 WHEN n % 4 = 0 THEN ?4 + 86400000000 + n ELSE NULL END, \
                ?4 - 1000 * n, ?4 - n, length(key) + length(value) + length(metadata) FROM r",
    )
    .bind(big.hyphenated().to_string())
    .bind(RECORDS)
    .bind(NAMESPACES)
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, created_at, updated_at, size) \
         VALUES (?1, 'ns0', 'only', '\"small\"', '{}', 4, ?2, ?2, 13)",
    )
    .bind(small.hyphenated().to_string())
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    // Versions as a history of writes leaves them: above the record count.
    sqlx::query("UPDATE ext_storage_namespaces SET version = keys * 2 + 7")
        .execute(&pool)
        .await
        .unwrap();
    (big, small)
}

/// SQLite → Postgres → SQLite: the three exports hold the same lines, the usage counters and
/// namespace versions are the same, and the server answers the same snapshot from both SQLite
/// files; the admin export route streams the same lines for one tenant.
/// `GET /api/admin/tenants/{t}/export`, the answer unread.
async fn admin_export(s: &TestServer, t: &Tenant) -> reqwest::Response {
    s.client
        .get(format!("{}/api/admin/tenants/{}/export", s.base, t.tenant))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_moves_from_sqlite_to_postgres_and_back_unchanged() {
    // It runs both backends itself: the Postgres pass runs it.
    if backend() != Backend::Postgres {
        return;
    }
    let dir = scratch();
    let first = fresh_database(Backend::Sqlite, &dir).await;
    let (big, small) = populated_sqlite(&first).await;
    let postgres = fresh_database(Backend::Postgres, &dir).await;
    let last = fresh_database(Backend::Sqlite, &dir).await;

    let a = cli(&first, &["export"], None);
    assert!(a.ok, "{}", a.stderr);
    let into_pg = cli(&postgres, &["import"], Some(&a.stdout));
    assert!(into_pg.ok, "{}", into_pg.stderr);
    let file = dir.join("pg.jsonl");
    let b = cli(
        &postgres,
        &["export", "--out", file.to_str().unwrap()],
        None,
    );
    assert!(b.ok, "{}", b.stderr);
    let b_lines = std::fs::read(&file).unwrap();
    let back = cli(&last, &["import", "--in", file.to_str().unwrap()], None);
    assert!(back.ok, "{}", back.stderr);
    let c = cli(&last, &["export"], None);
    assert!(c.ok, "{}", c.stderr);

    let a_lines = lines(&a.stdout);
    let header = match &a_lines[0] {
        Line::Header(h) => h.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        header.counts.records,
        RECORDS as u64 + 1,
        "expired records are left out"
    );
    assert_eq!(header.counts.installs, 2);
    assert_eq!(header.counts.quotas, 1);
    assert_eq!(header.counts.schemas, 1);
    assert_eq!(header.counts.namespaces, NAMESPACES as u64 + 1);
    assert!(matches!(a_lines.last(), Some(Line::End(_))));
    assert!(
        into_pg
            .stderr
            .contains(&format!("{} records written", RECORDS + 1)),
        "{}",
        into_pg.stderr
    );
    assert!(
        a_lines == lines(&b_lines),
        "SQLite and Postgres exports differ"
    );
    assert!(
        a_lines == lines(&c.stdout),
        "the first and last SQLite exports differ"
    );
    let record = a_lines
        .iter()
        .find_map(|l| match l {
            Line::Record(r) if r.key.as_str() == "k000012" => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(record.revision, 4);
    assert!(record.ttl_expires_at.is_some());
    assert_eq!(record.metadata["kind"], json!(2));
    assert_eq!(record.value["tags"], json!(["a", 5]));

    // The expired records the export left out, gone from the source as a sweep removes them.
    let pool = sqlx::SqlitePool::connect(&first).await.unwrap();
    sqlx::query("DELETE FROM ext_storage_records WHERE ttl_expires_at <= ?1")
        .bind(chrono::Utc::now().timestamp_micros())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let counters_first = counters(&first).await;
    assert_eq!(counters_first.0.len(), NAMESPACES as usize + 1);
    assert_eq!(counters(&postgres).await, counters_first);
    assert_eq!(counters(&last).await, counters_first);

    // What a user sees: the same snapshot (body and ETag) and usage from both SQLite files,
    // served by the real server.
    let mut seen = Vec::new();
    for url in [&first, &last] {
        let server = Served::start(url).await;
        let token = server.token(big, "big-install").await;
        let snapshot = server
            .http
            .get(format!("{}/api/storage?ns=ns3", server.base()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(snapshot.status(), 200);
        let etag = snapshot.headers()["etag"].to_str().unwrap().to_owned();
        let body: Value = snapshot.json().await.unwrap();
        let usage: Value = server.admin(&format!("/tenants/{big}/usage")).await;
        let export = server
            .http
            .get(format!(
                "{}/api/admin/tenants/{small}/export",
                server.base()
            ))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(export.status(), 200);
        assert_eq!(export.headers()["content-type"], "application/x-ndjson");
        let small_lines = lines(&export.bytes().await.unwrap());
        seen.push((etag, body, usage, small_lines));
    }
    assert_eq!(seen[0].0, seen[1].0, "snapshot ETags differ");
    assert_eq!(seen[0].1, seen[1].1, "snapshots differ");
    assert_eq!(seen[0].2, seen[1].2, "usage differs");
    assert_eq!(
        seen[0].1.as_object().unwrap().len(),
        (RECORDS / NAMESPACES) as usize
    );
    // The tenant export: its header, its install, its record and namespace, the end.
    let small_lines = &seen[0].3;
    let in_a: Vec<&Line> = a_lines
        .iter()
        .filter(|l| match l {
            Line::Install(x) => x.tenant == small,
            Line::Quota(x) => x.tenant == small,
            Line::Schema(x) => x.tenant == small,
            Line::Record(x) => x.tenant == small,
            Line::Namespace(x) => x.tenant == small,
            Line::Header(_) | Line::End(_) => false,
        })
        .collect();
    assert_eq!(small_lines.len(), in_a.len() + 2, "{small_lines:?}");
    assert!(small_lines[1..small_lines.len() - 1]
        .iter()
        .zip(in_a)
        .all(|(x, y)| x == y));
    assert_eq!(seen[0].3, seen[1].3);
    let _ = std::fs::remove_dir_all(&dir);
}

const ADMIN: &str = "transfer-admin";

/// The server binary serving a database, stopped when dropped.
struct Served {
    server: Instance,
    http: reqwest::Client,
}

impl Served {
    async fn start(url: &str) -> Served {
        Served {
            server: Instance::start(&[
                ("DATABASE_URL", url),
                ("RUNNER_STORAGE_API_TOKEN", "transfer-runner"),
                ("STORAGE_JWT_SECRET", "transfer-jwt"),
                ("STORAGE_ADMIN_TOKEN", ADMIN),
            ])
            .await,
            http: reqwest::Client::new(),
        }
    }

    fn base(&self) -> &str {
        &self.server.base
    }

    async fn admin(&self, path: &str) -> Value {
        let answer = self
            .http
            .get(format!("{}/api/admin{path}", self.base()))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.json().await.unwrap()
    }

    async fn token(&self, tenant: Uuid, install: &str) -> String {
        let answer = self
            .http
            .post(format!(
                "{}/api/admin/tenants/{tenant}/installs/{install}/tokens",
                self.base()
            ))
            .bearer_auth(ADMIN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{:?}", answer.text().await);
        answer.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// On the backend under test: the admin route's export imports into a fresh store; a file cut
/// short or with a corrupt line stops at its line number and reports what was imported before
/// it; importing into a store that holds the rows fails at the first existing row, `skip`
/// keeps them, `overwrite` replaces them without taking a revision back.
#[tokio::test(flavor = "multi_thread")]
async fn imports_stop_at_the_bad_line_and_honour_the_conflict_policy() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "notes", "access": ["read", "write"]}]))
        .await;
    let items: Vec<Value> = (0..2500)
        .map(|i| json!({"key": format!("n{i:04}"), "value": {"i": i}}))
        .collect();
    for chunk in items.chunks(20) {
        let a = s
            .rest(
                &t,
                Method::POST,
                "/notes",
                &[],
                Some(json!({ "items": chunk })),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let export = admin_export(&s, &t).await;
    assert_eq!(export.status(), 200);
    let file = export.bytes().await.unwrap().to_vec();
    let text = String::from_utf8(file.clone()).unwrap();
    let all: Vec<&str> = text.lines().collect();
    // header, install, 2,500 records, namespace, end.
    assert_eq!(all.len(), 2504, "{}", &text[..500]);
    let dir = scratch();

    // The whole file into a fresh store.
    let fresh = fresh_database(s.backend, &dir).await;
    let whole = cli(&fresh, &["import"], Some(&file));
    assert!(whole.ok, "{}", whole.stderr);
    assert!(
        whole.stderr.contains("2500 records written"),
        "{}",
        whole.stderr
    );

    // Cut in the middle of line 1,800: the 1,000 lines of the first batch and the whole lines
    // of the second are imported, the cut line is named.
    let cut: usize = all[..1799].iter().map(|l| l.len() + 1).sum::<usize>() + 20;
    let fresh = fresh_database(s.backend, &dir).await;
    let truncated = cli(&fresh, &["import"], Some(&file[..cut]));
    assert!(!truncated.ok);
    assert!(
        truncated
            .stderr
            .contains("line 1800: the last line is cut off"),
        "{}",
        truncated.stderr
    );
    assert!(
        truncated
            .stderr
            .contains("imported before it: 1797 records written"),
        "{}",
        truncated.stderr
    );
    // Cut at a line boundary: no end line.
    let fresh = fresh_database(s.backend, &dir).await;
    let at_boundary: usize = all[..2000].iter().map(|l| l.len() + 1).sum();
    let truncated = cli(&fresh, &["import"], Some(&file[..at_boundary]));
    assert!(!truncated.ok);
    assert!(
        truncated
            .stderr
            .contains("without its end line after line 2000"),
        "{}",
        truncated.stderr
    );
    // A corrupt line.
    let mut corrupt: Vec<String> = all.iter().map(|l| (*l).to_owned()).collect();
    corrupt[1500] = corrupt[1500].replace("\"value\":", "\"valeu\":");
    let fresh = fresh_database(s.backend, &dir).await;
    let bad = cli(
        &fresh,
        &["import"],
        Some((corrupt.join("\n") + "\n").as_bytes()),
    );
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("line 1501: not an export line"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr
            .contains("imported before it: 1498 records written"),
        "{}",
        bad.stderr
    );
    // A record no write could store (a hand-edited file): refused with the write's reason, on
    // both backends alike (SQLite would keep a U+0000 that Postgres' jsonb cannot).
    let too_big = format!(r#""value":"{}""#, "x".repeat(70_000));
    for (edit, reason) in [
        (r#""value":"nul\u0000""#, "strings must not contain U+0000"),
        (too_big.as_str(), "exceeds the limit of 65536 bytes"),
    ] {
        let mut edited: Vec<String> = all.iter().map(|l| (*l).to_owned()).collect();
        let value_at = edited[1500].find("\"value\":").unwrap();
        let value_end = edited[1500][value_at..].find('}').unwrap() + value_at + 1;
        edited[1500].replace_range(value_at..value_end, edit);
        let fresh = fresh_database(s.backend, &dir).await;
        let refused = cli(
            &fresh,
            &["import"],
            Some((edited.join("\n") + "\n").as_bytes()),
        );
        assert!(!refused.ok, "{}", edited[1500]);
        assert!(
            refused.stderr.contains("line 1501: ") && refused.stderr.contains(reason),
            "{}",
            refused.stderr
        );
    }
    // Not an export at all.
    let not = cli(&fresh, &["import"], Some(b"{\"hello\":1}\n"));
    assert!(!not.ok);
    assert!(
        not.stderr.contains("line 1: not an export line"),
        "{}",
        not.stderr
    );

    // Something after the end line.
    let fresh = fresh_database(s.backend, &dir).await;
    let trailing = [file.clone(), b"junk\n".to_vec()].concat();
    let after = cli(&fresh, &["import"], Some(&trailing));
    assert!(!after.ok);
    assert!(
        after
            .stderr
            .contains("line 2505: a line after the end line"),
        "{}",
        after.stderr
    );
    // A newer format.
    let newer = text.replacen("\"version\":1", "\"version\":2", 1);
    let refused = cli(&fresh, &["import"], Some(newer.as_bytes()));
    assert!(!refused.ok);
    assert!(
        refused
            .stderr
            .contains("line 1: format version 2 is not supported"),
        "{}",
        refused.stderr
    );
    // The route: admin only, no query parameters.
    let export = |auth: &str, query: &str| {
        s.client
            .get(format!(
                "{}/api/admin/tenants/{}/export{query}",
                s.base, t.tenant
            ))
            .bearer_auth(auth)
            .send()
    };
    assert_eq!(export(&t.token, "").await.unwrap().status(), 401);
    let unknown = export(&s.admin_token, "?tenant=x").await.unwrap();
    assert_eq!(unknown.status(), 400);

    // Into the store it came from: the install exists (line 2).
    let url = s.config.database_url.expose().to_owned();
    let conflict = cli(&url, &["import"], Some(&file));
    assert!(!conflict.ok);
    assert!(
        conflict
            .stderr
            .contains(&format!("line 2: install {} exists", t.install)),
        "{}",
        conflict.stderr
    );
    let skip = cli(&url, &["import", "--on-conflict", "skip"], Some(&file));
    assert!(skip.ok, "{}", skip.stderr);
    assert!(
        skip.stderr.contains("0 records written, 2501 rows skipped"),
        "{}",
        skip.stderr
    );
    let etag = s.snapshot_etag(&t, "notes").await;
    // A record changed since the export: overwrite takes it back to the exported value with a
    // revision above both.
    let put = s
        .rest(
            &t,
            Method::PUT,
            "/notes/n0007",
            &[],
            Some(json!({"value": "changed"})),
        )
        .await;
    assert_eq!(put.body["revision"], 2);
    let overwrite = cli(&url, &["import", "--on-conflict", "overwrite"], Some(&file));
    assert!(overwrite.ok, "{}", overwrite.stderr);
    assert!(
        overwrite.stderr.contains("2500 records written"),
        "{}",
        overwrite.stderr
    );
    let got = s.rest(&t, Method::GET, "/notes/n0007", &[], None).await;
    assert_eq!(got.body["value"], json!({"i": 7}));
    assert_eq!(got.body["revision"], 3);
    assert!(
        s.snapshot_etag(&t, "notes").await > etag + 1,
        "the snapshot ETag moves on when an import writes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tenant export the server cannot finish (its database connection is killed mid-stream) is
/// cut, never closed as if complete: what arrived lacks its end line, and an import refuses it
/// as truncated. (Postgres: the connection is terminated with `pg_terminate_backend`.)
#[tokio::test(flavor = "multi_thread")]
async fn an_export_cut_short_by_the_database_is_refused_by_import() {
    if backend() != Backend::Postgres {
        return;
    }
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "big", "access": ["read", "write"]}]))
        .await;
    s.sql(&format!(
        "INSERT INTO ext_storage_records (tenant_id, namespace, key, value, metadata, revision, created_at, updated_at, size) \
         SELECT '{}', 'big', 'k' || lpad(g::text, 6, '0'), jsonb_build_object('text', repeat('x', 1000)), '{{}}', 1, now(), now(), 1030 \
         FROM generate_series(1, 9000) g",
        t.tenant
    ))
    .await;
    let mut export = admin_export(&s, &t).await;
    assert_eq!(export.status(), 200);
    // The first lines arrive; the server's reader then waits on this client.
    let mut received = export.chunk().await.unwrap().unwrap().to_vec();
    let alga_storage_tests::Db::Postgres(pool) = &s.db else {
        unreachable!("a Postgres server")
    };
    // The export's connection: the one reading this server's records table (its own schema,
    // so never another test's) with the export's statement. Polled: under load the stream may
    // still be on an earlier part.
    let mut killed = Vec::new();
    for _ in 0..200 {
        killed = sqlx::query_scalar::<_, bool>(
            "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a \
             WHERE a.pid <> pg_backend_pid() \
               AND a.query LIKE 'SELECT tenant_id, namespace, key, value, metadata%' \
               AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid \
                             AND l.relation = 'ext_storage_records'::regclass)",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        if !killed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(killed, vec![true], "the export's connection was found");
    let mut cut = false;
    loop {
        match export.chunk().await {
            Ok(Some(bytes)) => received.extend_from_slice(&bytes),
            Ok(None) => break,
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "the body ends with an error, not as if complete");
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains("{\"type\":\"end\"}"), "no end line");
    let dir = scratch();
    let fresh = fresh_database(Backend::Postgres, &dir).await;
    let import = cli(&fresh, &["import"], Some(&received));
    assert!(!import.ok);
    assert!(import.stderr.contains("truncated"), "{}", import.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}
