//! A Postgres cluster of a test's own (`initdb`, `pg_ctl`, its own port and data folder under
//! the temp folder): for tests that stop the database or need server options, never the shared
//! server.

use std::path::PathBuf;
use std::process::Command;

/// A Postgres cluster of the test's own, removed when dropped.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    options: String,
}

impl Cluster {
    /// `initdb` (as the `postgres` user when running as root, which initdb refuses) and start.
    pub fn start() -> Cluster {
        Cluster::start_with("")
    }

    /// [`Cluster::start`] with more server options (`-c name=value …`).
    pub fn start_with(options: &str) -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Postgres' server binaries under /usr/lib/postgresql (scripts/test.sh installs them)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("pg_ctl").exists())
            .max()
            .expect("pg_ctl under /usr/lib/postgresql/*/bin");
        let data =
            std::env::temp_dir().join(format!("alga-fault-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin,
            data,
            port,
            options: options.to_owned(),
        };
        if is_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.data)
                .status()
                .unwrap();
            assert!(owned.success());
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.path(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                // No fsync of the new data folder: the cluster is thrown away, and flushing
                // every file at once stalls the shared server's commits on this machine's disk
                // (the docs test's benchmark saw 30 s writes while another test ran initdb).
                "--no-sync",
            ],
        );
        cluster.pg_ctl("start");
        cluster
    }

    /// The data folder.
    pub fn path(&self) -> String {
        self.data.display().to_string()
    }

    /// Its `postgres://` URL (database `postgres`, trust).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `pg_ctl <action>` (`start`, `stop`).
    pub fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {}",
            self.port,
            self.path(),
            self.options
        );
        let data = self.path();
        let mut args = vec!["-D", data.as_str(), "-w", "-m", "fast"];
        if action == "start" {
            args.extend(["-o", &options, "-l"]);
        }
        let log = self.data.join("server.log").display().to_string();
        if action == "start" {
            args.push(&log);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let out = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut stop = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            Command::new(pg_ctl)
        };
        let _ = stop
            .args(["-D", &self.path(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Whether this process runs as root (initdb refuses to).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
