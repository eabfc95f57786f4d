//! Every snippet of `README.md` and `docs/*.md` runs as written, in document order, the way a
//! newcomer would paste them: the README's dev server is started with its own command, the
//! `export` line it prints is applied to the shell blocks after it, and every long-running
//! command must start. How each kind of block is run is in `docs/testing.md`; a block of a kind
//! this test does not know fails it.

use alga_storage_core::ErrorCode;
use alga_storage_server::config::Backend;
use alga_storage_tests::{
    as_from_a_shell, backend, create_schema, database_url, guides, schema_url, snippets, Snippet,
};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The environment of the servers the snippets start: the backend under test, on a database of
/// its own (and any Postgres a snippet names, in a schema of its own).
fn server_env(scratch: &Path) -> Vec<(String, String)> {
    let schema = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(create_schema());
    let database = match backend() {
        Backend::Sqlite => format!("sqlite://{}", scratch.join("storage.db").display()),
        Backend::Postgres => database_url(),
    };
    vec![
        ("RUST_LOG".to_owned(), "warn".to_owned()),
        ("PGOPTIONS".into(), format!("-c search_path={schema}")),
        ("DATABASE_URL".into(), database),
    ]
}

/// A long-running command, stopped (with everything it started) when dropped.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(root: &Path, line: &str, env: &[(String, String)]) -> Running {
        use std::os::unix::process::CommandExt;
        let mut child = as_from_a_shell(&mut Command::new("bash"))
            .arg("-c")
            .arg(line)
            .current_dir(root)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{line}: cannot start: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits for a line of output that `ready` accepts; panics if the command ends first.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(480)) {
                Ok(line) => {
                    let done = ready(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "{what}: no ready line within 8 minutes (it may be compiling), or it ended ({:?}):\n{}",
                    self.child.try_wait(),
                    seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// The commands of a block: one per line, comments and continuations joined.
fn commands(text: &str) -> Vec<String> {
    text.replace("\\\n", " ")
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Runs a shell block; it must succeed, and a contract error code may appear in its output
/// only where the block names it.
fn run_shell(root: &Path, block: &Snippet, text: &str, env: &[(String, String)]) {
    println!("docs: running the block at {}", block.place);
    // A block that hangs fails after 10 minutes with what it printed, instead of holding the
    // whole test until the runner's timeout (scripts/test.sh builds what the blocks run first,
    // so no block compiles from nothing here).
    let out = as_from_a_shell(&mut Command::new("timeout"))
        .args([
            "--kill-after=5",
            "600",
            "bash",
            "-euo",
            "pipefail",
            "-c",
            text,
        ])
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the block at {} failed ({}):\n{stdout}\n{stderr}",
        block.place,
        out.status
    );
    for code in ErrorCode::ALL {
        let code = serde_json::to_value(code).unwrap();
        let code = code.as_str().unwrap();
        assert!(
            !stdout.contains(code) || block.text.contains(code),
            "the block at {} answered {code}, which it does not announce:\n{stdout}",
            block.place
        );
    }
}

/// Runs the "move your dev store to Postgres" pipe from the dev server's store into a fresh
/// schema (the block's Postgres URL is replaced by it), and checks the records arrived.
fn move_the_dev_store(
    root: &Path,
    block: &Snippet,
    servers: &[(String, String)],
    env: &[(String, String)],
) {
    let var = |name: &str| {
        servers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    // The dev server's store as one URL (on Postgres, its schema in the URL).
    let mut source = var("DATABASE_URL").unwrap();
    if source.starts_with("postgres") {
        let schema = var("PGOPTIONS")
            .and_then(|o| o.strip_prefix("-c search_path=").map(str::to_owned))
            .unwrap();
        source = schema_url(&source, &schema);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let target = schema_url(&database_url(), &runtime.block_on(create_schema()));
    let literal = "postgres://postgres@127.0.0.1:5432/test";
    assert!(
        block.text.contains(literal),
        "{}: no {literal}",
        block.place
    );
    let text = block.text.replace(literal, &format!("'{target}'"));
    let mut env = env.to_vec();
    env.push(("DATABASE_URL".into(), source));
    run_shell(root, block, &text, &env);
    let moved: i64 = runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&target).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM ext_storage_records")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert!(moved > 0, "{}: no record arrived in Postgres", block.place);
}

/// The benchmark command (its comment lines left out), small: a debug build, 200 records, 1 s
/// per scenario, 50 watches.
fn small_benchmark(text: &str) -> String {
    let command = text.lines().filter(|l| !l.trim_start().starts_with('#'));
    let mut words: Vec<String> = command
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect();
    words.retain(|w| w != "--release");
    words.insert(0, "ALGA_BENCH_PROFILE=dev".into());
    for (flag, value) in [("--records", "200"), ("--seconds", "1")] {
        let at = words
            .iter()
            .position(|w| w == flag)
            .unwrap_or_else(|| panic!("the benchmark command has no {flag}"));
        words[at + 1] = value.to_owned();
    }
    words.extend(["--watches".into(), "50".into()]);
    words.join(" ")
}

/// Whether some crate of the workspace includes `file` in its docs (so its Rust blocks are
/// doc tests).
fn included_in_docs(root: &Path, file: &str) -> bool {
    let file = file.split(':').next().unwrap();
    let needle = format!("{file}\")");
    ["sdk-core", "sdk-guest", "sdk-web", "server", "tests"]
        .iter()
        .flat_map(|krate| walk(&root.join(krate).join("src")))
        .any(|source| {
            let text = std::fs::read_to_string(source).unwrap_or_default();
            text.lines()
                .any(|l| l.contains("#[doc = include_str!(") && l.contains(&needle))
        })
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn every_snippet_in_the_docs_runs_as_written() {
    // The snippets run cargo in `target/`, whose lock a plain `cargo test` holds while its tests
    // run: they would wait forever. cargo-nextest releases it before running tests.
    assert!(
        std::env::var_os("NEXTEST_RUN_ID").is_some() || std::env::var_os("NEXTEST").is_some(),
        "run this test with cargo-nextest, as scripts/test.sh does \
         (cargo nextest run --workspace -E 'test(every_snippet)')"
    );
    let root = root();
    let scratch = std::env::temp_dir().join(format!("alga-docs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let servers = server_env(&scratch);
    let mut env = vec![("RUST_LOG".to_owned(), "warn".to_owned())];
    let all: Vec<Snippet> = guides().iter().flat_map(|doc| snippets(doc)).collect();

    // Snippets that are not run here: their kind is checked, and where they are run.
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    for block in &all {
        match block.info.as_str() {
            "sh" | "sh server" | "sh bench" | "sh move" | "ts" | "json" | "text" => {}
            "sh test-command" => assert!(
                ci.lines().any(|l| l.contains(block.text.trim())),
                "{}: `{}` is not what .ci/run runs",
                block.place,
                block.text.trim()
            ),
            "rust" => assert!(
                included_in_docs(&root, &block.place),
                "{}: a Rust block in a file no crate includes in its docs (so it is never compiled)",
                block.place
            ),
            other => panic!(
                "{}: a block of kind {other:?}, which this test does not know how to run",
                block.place
            ),
        }
    }

    // The dev server, started with the README's first command, on its default port.
    let first = all
        .iter()
        .find(|b| b.info == "sh server")
        .expect("the README starts the server");
    let dev_command = commands(&first.text).remove(0);
    assert!(
        std::net::TcpListener::bind("127.0.0.1:8787").is_ok(),
        "port 8787 is taken: stop the server running there (the docs' snippets use it)"
    );
    let mut dev = Running::start(&root, &dev_command, &servers);
    let banner = dev.wait_for(&dev_command, |l| l.trim_start().starts_with("export "));
    let exports = banner
        .last()
        .unwrap()
        .trim()
        .strip_prefix("export ")
        .unwrap();
    for assignment in exports.split_whitespace() {
        let (name, value) = assignment.split_once('=').unwrap();
        env.push((name.to_owned(), value.to_owned()));
    }

    // The shell blocks and the benchmark, in order, against it.
    for block in &all {
        match block.info.as_str() {
            "sh" => run_shell(&root, block, &block.text, &env),
            // The benchmark drives both backends itself, whichever backend the suite is on:
            // one pass runs it.
            "sh bench" if backend() == Backend::Postgres => {
                run_shell(&root, block, &small_benchmark(&block.text), &env)
            }
            "sh move" => move_the_dev_store(&root, block, &servers, &env),
            _ => {}
        }
    }

    // Every other long-running command starts (beside the dev server, on a port of its own).
    let mut others = servers.clone();
    others.extend(env.iter().skip(1).cloned());
    others.push(("STORAGE_BIND".into(), "127.0.0.1:0".into()));
    for block in all.iter().filter(|b| b.info == "sh server") {
        for command in commands(&block.text) {
            if std::ptr::eq(block, first) && command == dev_command {
                continue;
            }
            println!("docs: starting `{command}` ({})", block.place);
            let mut running = Running::start(&root, &command, &others);
            let seen = running.wait_for(&command, |_| true);
            std::thread::sleep(Duration::from_millis(500));
            assert!(
                matches!(running.child.try_wait(), Ok(None)),
                "{}: `{command}` ended at once:\n{}",
                block.place,
                seen.join("\n")
            );
        }
    }
    drop(dev);
    let _ = std::fs::remove_dir_all(&scratch);
}
