//! Harness shared by the end-to-end tests: starts the real server on a random port against a
//! real database, provisions tenants through the admin API, and drives every surface over HTTP.
//!
//! The backend is chosen by `ALGA_TEST_BACKEND`: `postgres` (default; a fresh schema per server
//! in `$DATABASE_URL`, so runs never collide) or `sqlite` (a fresh database file per server).
//! The same suite runs on both.
#![deny(missing_docs)]

pub mod cluster;
pub mod conformance;
pub mod guest;

use alga_storage_server::config::Backend;
use alga_storage_server::{app_state, open_store, router, serve, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// The local Postgres the tests use when `$DATABASE_URL` names none.
pub const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The Postgres the tests use: `$DATABASE_URL` if it is a Postgres URL, else [`LOCAL_POSTGRES`].
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| LOCAL_POSTGRES.to_owned())
}

/// The backend under test, from `ALGA_TEST_BACKEND`.
pub fn backend() -> Backend {
    match std::env::var("ALGA_TEST_BACKEND").as_deref() {
        Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") | Err(_) => Backend::Postgres,
        Ok(other) => panic!("ALGA_TEST_BACKEND={other:?}: expected postgres or sqlite"),
    }
}

/// A direct connection to the server's database, to simulate time passing or failures.
pub enum Db {
    /// Postgres, in the server's schema.
    Postgres(sqlx::PgPool),
    /// The server's SQLite file.
    Sqlite(sqlx::SqlitePool),
}

/// Writes held back by [`TestServer::hold_writes`].
pub enum HeldWrites {
    /// A transaction holding the namespace table's lock.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    /// A connection inside `BEGIN IMMEDIATE`.
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl HeldWrites {
    /// Lets the waiting writes go on.
    pub async fn release(self) {
        match self {
            HeldWrites::Postgres(tx) => tx.commit().await.unwrap(),
            HeldWrites::Sqlite(mut connection) => {
                sqlx::query("COMMIT")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Schemas of test servers older than this are dropped by the next run.
const STALE_SCHEMA_SECONDS: u64 = 3600;

/// A running server with its own schema.
pub struct TestServer {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The admin token.
    pub admin_token: String,
    /// The runner token.
    pub runner_token: String,
    /// A pooled client.
    pub client: reqwest::Client,
    /// The backend serving.
    pub backend: Backend,
    /// A direct connection to the server's database.
    pub db: Db,
    /// The server's configuration (its database and secrets), for a second instance.
    pub config: Config,
    scratch: Option<std::path::PathBuf>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A second server process (see [`TestServer::second_instance`]), killed when dropped.
pub struct Instance {
    /// `http://127.0.0.1:port`.
    pub base: String,
    child: std::process::Child,
}

impl Instance {
    /// Starts the server binary (`target/…/alga-storage-server`, built with the tests) on a port
    /// of its own with the environment `env` (no rate limit, no sweeper, warnings only, nothing
    /// else inherited) and waits until it is ready. It is stopped when the answer is dropped.
    pub async fn start(env: &[(&str, &str)]) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(server_binary())
            .env_clear()
            .env("STORAGE_BIND", format!("127.0.0.1:{port}"))
            .env("STORAGE_RATE_LIMIT_PER_SECOND", "0")
            .env("STORAGE_SWEEP_INTERVAL_SECONDS", "0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the server binary");
        let instance = Instance {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/readyz", instance.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return instance;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server binary is not ready"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A provisioned tenant with one install and a browser token for it.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant id.
    pub tenant: Uuid,
    /// Install id.
    pub install: String,
    /// Browser token.
    pub token: String,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Parsed JSON body (`Null` when empty).
    pub body: Value,
}

impl Answer {
    /// The error code of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// `url` with `schema` as its search path.
pub fn schema_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

impl TestServer {
    /// Starts a server on a fresh database of the backend under test.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server on a fresh database, letting the caller adjust the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let backend = backend();
        let (url, scratch) = match backend {
            Backend::Postgres => (fresh_schema().await, None),
            Backend::Sqlite => {
                let dir =
                    std::env::temp_dir().join(format!("alga-test-{}", Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).unwrap();
                (
                    format!("sqlite://{}", dir.join("storage.db").display()),
                    Some(dir),
                )
            }
        };
        let mut config = Config::from_lookup(|name| match name {
            "RUNNER_STORAGE_API_TOKEN" => Some("runner-secret".into()),
            "STORAGE_JWT_SECRET" => Some("jwt-secret".into()),
            "STORAGE_ADMIN_TOKEN" => Some("admin-secret".into()),
            "STORAGE_CORS_ORIGINS" => Some("http://app.example".into()),
            "STORAGE_DB_MAX_CONNECTIONS" => Some("10".into()),
            "STORAGE_RATE_LIMIT_PER_SECOND" => Some("0".into()),
            // Expired records stay until a test sweeps them (the sweeper's own test turns it on).
            "STORAGE_SWEEP_INTERVAL_SECONDS" => Some("0".into()),
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap();
        adjust(&mut config);
        let store = open_store(&config).await.expect("open store");
        let state = app_state(&config, store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let app = router(state, &config.cors_origins);
        tokio::spawn(serve(listener, app, async {
            let _ = rx.await;
        }));
        let db = match backend {
            Backend::Postgres => Db::Postgres(sqlx::PgPool::connect(&url).await.unwrap()),
            Backend::Sqlite => {
                let options = url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true)
                    .busy_timeout(std::time::Duration::from_secs(10));
                Db::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
            }
        };
        TestServer {
            base,
            admin_token: config.admin_token.expose().to_owned(),
            runner_token: config.runner_token.expose().to_owned(),
            client: reqwest::Client::new(),
            backend,
            db,
            config,
            scratch,
            shutdown: Some(tx),
        }
    }

    /// Starts the server binary (`target/…/alga-storage-server`, built with the tests) as a
    /// second process on this server's database with the same secrets: another instance of
    /// one deployment. It is stopped when the answer is dropped.
    pub async fn second_instance(&self) -> Instance {
        let c = &self.config;
        Instance::start(&[
            ("DATABASE_URL", c.database_url.expose()),
            ("RUNNER_STORAGE_API_TOKEN", c.runner_token.expose()),
            ("STORAGE_JWT_SECRET", c.jwt_secret.expose()),
            ("STORAGE_ADMIN_TOKEN", c.admin_token.expose()),
        ])
        .await
    }

    /// The backend's name, as the server reports it.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }

    /// Runs one SQL statement directly on the server's database.
    pub async fn sql(&self, statement: &str) {
        match &self.db {
            Db::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(drop),
            Db::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// Holds writes back: until [`HeldWrites::release`], every write of the server waits
    /// (Postgres: the namespace table locked against writers; SQLite: the database's write
    /// lock, which the server waits on for its busy timeout, 900 ms).
    pub async fn hold_writes(&self) -> HeldWrites {
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("LOCK TABLE ext_storage_namespaces IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                HeldWrites::Postgres(tx)
            }
            Db::Sqlite(pool) => {
                let mut connection = pool.acquire().await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                HeldWrites::Sqlite(connection)
            }
        }
    }

    /// Moves every stored expiry one second into the past, as if the time had come.
    pub async fn expire_all(&self) {
        let past = match self.backend {
            Backend::Postgres => "now() - interval '1 second'".to_owned(),
            Backend::Sqlite => (chrono::Utc::now().timestamp_micros() - 1_000_000).to_string(),
        };
        self.sql(&format!("UPDATE ext_storage_records SET ttl_expires_at = {past} WHERE ttl_expires_at IS NOT NULL")).await;
    }

    /// How many record rows are physically stored (live or expired).
    pub async fn stored_rows(&self) -> i64 {
        let q = "SELECT count(*) FROM ext_storage_records";
        match &self.db {
            Db::Postgres(pool) => sqlx::query_scalar(q).fetch_one(pool).await.unwrap(),
            Db::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await.unwrap(),
        }
    }

    /// The principal of an install as the server stores it (to forge tokens in tests).
    pub async fn principal(
        &self,
        tenant: Uuid,
        install: &str,
    ) -> alga_storage_server::store::Principal {
        let q = "SELECT CAST(generation AS TEXT) FROM ext_storage_installs WHERE install_id = $1";
        let generation: String = match &self.db {
            Db::Postgres(pool) => sqlx::query_scalar(q).bind(install).fetch_one(pool).await,
            Db::Sqlite(pool) => sqlx::query_scalar(q).bind(install).fetch_one(pool).await,
        }
        .unwrap();
        alga_storage_server::store::Principal {
            tenant,
            install: install.parse().unwrap(),
            grants: Vec::new(),
            generation,
        }
    }

    /// Every row of `table`, each as text, in a stable order (to compare before and after).
    pub async fn rows_as_text(&self, table: &str) -> Vec<String> {
        match &self.db {
            Db::Postgres(pool) => {
                sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY t::text"))
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            Db::Sqlite(pool) => {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                let row = columns
                    .iter()
                    .map(|c| format!("quote({c})"))
                    .collect::<Vec<_>>()
                    .join(" || ',' || ");
                sqlx::query_scalar(&format!("SELECT {row} FROM {table} ORDER BY 1"))
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
        }
    }

    /// A snapshot PATCH of `ops` on the namespace's current ETag.
    pub async fn patch_current(&self, t: &Tenant, namespace: &str, ops: Value) -> Answer {
        let etag = format!("\"{}\"", self.snapshot_etag(t, namespace).await);
        let auth = format!("Bearer {}", t.token);
        self.send(
            Method::PATCH,
            &format!("/api/storage?ns={namespace}"),
            &[
                ("authorization", &auth),
                ("if-match", &etag),
                ("x-thesara-app-id", "tests"),
                ("content-type", "application/json"),
            ],
            Some(Value::String(ops.to_string())),
        )
        .await
    }

    /// The snapshot ETag of a namespace, as the snapshot API reports it.
    pub async fn snapshot_etag(&self, t: &Tenant, namespace: &str) -> u64 {
        let auth = format!("Bearer {}", t.token);
        let answer = self
            .send(
                Method::GET,
                &format!("/api/storage?ns={namespace}"),
                &[("authorization", &auth)],
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer.headers["etag"]
            .to_str()
            .unwrap()
            .trim_matches('"')
            .parse()
            .unwrap()
    }

    /// Whether the records table exists.
    pub async fn records_table_exists(&self) -> bool {
        match &self.db {
            Db::Postgres(pool) => sqlx::query_scalar("SELECT to_regclass('ext_storage_records') IS NOT NULL")
                .fetch_one(pool)
                .await
                .unwrap(),
            Db::Sqlite(pool) => sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ext_storage_records')",
            )
            .fetch_one(pool)
            .await
            .unwrap(),
        }
    }

    /// Runs every down migration, then every up migration again.
    pub async fn migrate_down_and_up(&self) -> (bool, bool) {
        use alga_storage_server::store::{postgres, sqlite};
        match &self.db {
            Db::Postgres(pool) => postgres::MIGRATOR.undo(pool, 0).await.unwrap(),
            Db::Sqlite(pool) => sqlite::MIGRATOR.undo(pool, 0).await.unwrap(),
        }
        let after_down = self.records_table_exists().await;
        match &self.db {
            Db::Postgres(pool) => postgres::MIGRATOR.run(pool).await.unwrap(),
            Db::Sqlite(pool) => sqlite::MIGRATOR.run(pool).await.unwrap(),
        }
        (after_down, self.records_table_exists().await)
    }

    /// Sends a request; `body` is sent as JSON unless it is a string, which is sent raw.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req = match body {
            Some(Value::String(raw)) => req.header("content-type", "application/json").body(raw),
            Some(json) => req.json(&json),
            None => req,
        };
        let res = req.send().await.expect("request failed");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Sends an admin request.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let auth = format!("Bearer {}", self.admin_token);
        self.send(
            method,
            &format!("/api/admin{path}"),
            &[("authorization", &auth)],
            body,
        )
        .await
    }

    /// Creates or replaces an install with grants.
    pub async fn install(&self, tenant: Uuid, install: &str, grants: Value) -> Answer {
        let body = json!({ "extensionId": "ext-test", "grants": grants });
        self.admin(
            Method::PUT,
            &format!("/tenants/{tenant}/installs/{install}"),
            Some(body),
        )
        .await
    }

    /// Mints a browser token.
    pub async fn token(&self, tenant: Uuid, install: &str) -> String {
        let answer = self
            .admin(
                Method::POST,
                &format!("/tenants/{tenant}/installs/{install}/tokens"),
                Some(json!({"ttlSeconds": 3600})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        answer.body["token"].as_str().unwrap().to_owned()
    }

    /// A new tenant with one install holding `grants`, and its token.
    pub async fn tenant(&self, grants: Value) -> Tenant {
        let tenant = Uuid::new_v4();
        let install = format!("inst-{}", Uuid::new_v4().simple());
        let answer = self.install(tenant, &install, grants).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        let token = self.token(tenant, &install).await;
        Tenant {
            tenant,
            install,
            token,
        }
    }

    /// A browser REST request with the tenant's token.
    pub async fn rest(
        &self,
        t: &Tenant,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let auth = format!("Bearer {}", t.token);
        let mut all = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.send(method, &format!("/api/ext-storage{path}"), &all, body)
            .await
    }

    /// A runner request for an install.
    pub async fn runner(&self, install: &str, envelope: Value) -> Answer {
        let token = self.runner_token.clone();
        self.send(
            Method::POST,
            &format!("/api/internal/ext-storage/install/{install}"),
            &[("x-runner-auth", &token)],
            Some(envelope),
        )
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The server binary (`target/…/alga-storage-server`, which cargo builds beside the tests).
pub fn server_binary() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|test| Some(test.parent()?.parent()?.join("alga-storage-server")))
        .filter(|b| b.exists())
        .expect("the server binary is built beside the tests (cargo builds it for them)")
}

/// Creates a fresh schema in the test Postgres and returns a URL whose connections use it.
async fn fresh_schema() -> String {
    schema_url(&database_url(), &create_schema().await)
}

/// Creates a fresh schema in the test Postgres (dropping those that earlier runs left more than
/// an hour ago) and answers its name.
pub async fn create_schema() -> String {
    let url = database_url();
    let admin = sqlx::PgPool::connect(&url).await.unwrap_or_else(|e| {
        panic!("Postgres is not reachable at {url}: {e} (run scripts/test.sh, which starts one)")
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    drop_stale_schemas(&admin, now).await;
    let schema = format!(
        "alga_t_{now}_{}",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    schema
}

async fn drop_stale_schemas(pool: &sqlx::PgPool, now: u64) {
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'alga\\_t\\_%'",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for schema in schemas {
        let created: u64 = schema
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > STALE_SCHEMA_SECONDS {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(pool)
                .await;
        }
    }
}

/// The one target folder of every WebAssembly build the tests make (handler components, the
/// browser SDK's tests, the npm package): beside `target/`, because a plain `cargo test` holds
/// the lock of `target/` while the tests run, and these builds run from inside a test.
pub fn wasm_target_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm")
}

/// Removes from `command` the variables cargo and nextest set for a running test
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, `NEXTEST_*`, …), so that a cargo started by a test
/// builds exactly as one started from a shell (build scripts track some of them, and a
/// difference would rebuild their crates, and everything above them, on every run).
pub fn as_from_a_shell(command: &mut std::process::Command) -> &mut std::process::Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_the_test = (name.starts_with("CARGO_")
            && !matches!(name.as_ref(), "CARGO_HOME" | "CARGO_TARGET_DIR"))
            || name.starts_with("NEXTEST")
            || name == "RUST_TEST_THREADS";
        if set_for_the_test {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// The workspace's guides, whose every snippet the suite runs: `README.md`, then `docs/*.md`
/// by name.
pub fn guides() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut docs: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// One fenced code block of a markdown file.
#[derive(Debug, Clone)]
pub struct Snippet {
    /// `file:line` of its opening fence (the file relative to the workspace).
    pub place: String,
    /// The info string (`sh server`, `rust`, `ts`, …).
    pub info: String,
    /// Its text.
    pub text: String,
}

/// The fenced code blocks of a markdown file, in order; panics on a fence never closed.
pub fn snippets(file: &std::path::Path) -> Vec<Snippet> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let name = file
        .strip_prefix(&root)
        .unwrap_or(file)
        .display()
        .to_string();
    let text = std::fs::read_to_string(file).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<Snippet> = None;
    for (n, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Snippet {
                    place: format!("{name}:{}", n + 1),
                    info: info.trim().to_owned(),
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{name}: a fenced block is never closed");
    blocks
}

/// Percent-encodes a path segment.
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An open `{ns}:watch` stream (Server-Sent Events, parsed by `eventsource-stream`).
pub struct Watch {
    events: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<
                        eventsource_stream::Event,
                        eventsource_stream::EventStreamError<reqwest::Error>,
                    >,
                > + Send,
        >,
    >,
}

/// One event of a watch: its name (`change`, `reset`, `error`), id and parsed data.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// `change`, `reset` or `error`.
    pub event: String,
    /// The `id:` field (the sequence number), empty if none.
    pub id: String,
    /// The data, parsed as JSON.
    pub data: Value,
}

impl Watch {
    /// Opens `GET {base}/api/ext-storage/{path}` with a bearer token (and `Last-Event-ID` when
    /// `last_id` is given); an answer that is not a stream comes back as the error.
    pub async fn open(
        base: &str,
        token: &str,
        path: &str,
        last_id: Option<u64>,
    ) -> Result<Watch, Answer> {
        use eventsource_stream::Eventsource;
        use futures_util::StreamExt;
        let mut req = reqwest::Client::new()
            .get(format!("{base}/api/ext-storage{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "text/event-stream");
        if let Some(id) = last_id {
            req = req.header("last-event-id", id.to_string());
        }
        let res = req.send().await.expect("watch request failed");
        let status = res.status();
        let headers = res.headers().clone();
        let is_stream = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !status.is_success() || !is_stream {
            let body = res.json().await.unwrap_or(Value::Null);
            return Err(Answer {
                status,
                headers,
                body,
            });
        }
        Ok(Watch {
            events: res.bytes_stream().eventsource().boxed(),
        })
    }

    /// The next event, or `None` when the stream ended or nothing came within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<WatchEvent> {
        use futures_util::StreamExt;
        let event = tokio::time::timeout(wait, self.events.next())
            .await
            .ok()??
            .ok()?;
        Some(WatchEvent {
            data: serde_json::from_str(&event.data).unwrap_or(Value::String(event.data)),
            event: event.event,
            id: event.id,
        })
    }
}
