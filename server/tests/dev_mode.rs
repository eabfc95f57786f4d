//! The first command a new user runs: the server binary with no configuration at all. It must
//! serve on the embedded SQLite store in `./.alga-storage/`, print a token and curl lines that
//! work as printed, and keep the data across a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Server {
    child: Child,
    banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary in `dir` with an empty environment (but PATH) and reads its banner.
fn start(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_alga-storage-server"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("STORAGE_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let last = line.trim_start().starts_with("curl -s http");
        banner.push(line);
        if last {
            return Server { child, banner };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server printed no curl line:\n{}", banner.join("\n"));
}

fn token(banner: &[String]) -> String {
    banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("export TOKEN="))
        .and_then(|rest| rest.split(' ').next())
        .expect("a token line")
        .to_owned()
}

fn curl_lines(banner: &[String]) -> Vec<String> {
    banner
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

fn sh(line: &str, token: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("TOKEN", token)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn with_nothing_configured_the_printed_curl_lines_work_and_data_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("alga-dev-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let first = start(&dir);
    assert!(first.banner.iter().any(|l| l.contains("DEV MODE")));
    let lines = curl_lines(&first.banner);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let put = sh(&lines[0], &token(&first.banner));
    assert!(put.contains(r#""revision":1"#), "{put}");
    let get = sh(&lines[1], &token(&first.banner));
    assert!(get.contains(r#""value":{"hello":"world"}"#), "{get}");
    drop(first);
    assert!(
        dir.join(".alga-storage").join("storage.db").exists(),
        "the data lives in ./.alga-storage"
    );

    // A restart makes new secrets and a new token; the record is still there.
    let second = start(&dir);
    let get = sh(&curl_lines(&second.banner)[1], &token(&second.banner));
    assert!(
        get.contains(r#""revision":1"#) && get.contains("hello"),
        "{get}"
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
