//! The `export` and `import` subcommands of `alga-storage-server`: the snapshot format of
//! [`crate::store::transfer`] to and from a file or a pipe, with progress on stderr.

use crate::store::transfer::{self, ExportFilter, Imported, Line, OnConflict};
use crate::store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};

/// Progress on stderr: a bar (count, rate, ETA) on a terminal, a plain line every 2 s
/// otherwise.
pub struct Progress {
    verb: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    total: u64,
    done: u64,
}

impl Progress {
    /// Progress of `verb` (`export`, `import`) of records; the bar appears once the total is
    /// known.
    pub fn new(verb: &'static str) -> Progress {
        Progress {
            verb,
            bar: None,
            started: Instant::now(),
            last_line: Instant::now(),
            total: 0,
            done: 0,
        }
    }

    /// The records expected in all.
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
        if self.bar.is_none() && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {human_pos}/{human_len} records  {rate}  ETA {eta}",
                )
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_prefix(self.verb);
            self.bar = Some(bar);
        }
    }

    /// Records handled so far.
    pub fn set(&mut self, done: u64) {
        self.done = done;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                eprintln!(
                    "{}: {done}/{} records, {:.0}/s",
                    self.verb,
                    self.total,
                    self.rate()
                );
            }
            None => {}
        }
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// Removes the bar; the summary follows.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// `, peak memory N MiB` (the process's peak resident set, where the system reports it).
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!(", peak memory {:.1} MiB", kib / 1024.0))
        })
        .unwrap_or_default()
}

/// `alga-storage-server export`: writes one consistent snapshot to `out` (stdout without one).
pub async fn export(
    store: Arc<dyn Store>,
    filter: ExportFilter,
    out: Option<PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut progress = Progress::new("export");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let task = tokio::spawn(async move { transfer::export(&*store, &filter, &tx).await });
    let mut writer: BufWriter<Box<dyn tokio::io::AsyncWrite + Unpin + Send>> =
        BufWriter::with_capacity(
            256 << 10,
            match &out {
                Some(path) => Box::new(
                    tokio::fs::File::create(path)
                        .await
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
                ),
                None => Box::new(tokio::io::stdout()),
            },
        );
    let mut records = 0u64;
    while let Some(line) = rx.recv().await {
        match &line {
            Line::Header(h) => progress.set_total(h.counts.records),
            Line::Record(_) => {
                records += 1;
                if records % 1000 == 0 {
                    progress.set(records);
                }
            }
            _ => {}
        }
        writer.write_all(line.to_json_line().as_bytes()).await?;
    }
    writer.flush().await?;
    let counts = task.await??;
    progress.finish();
    let seconds = progress.elapsed();
    eprintln!(
        "export: {} records, {} installs, {} quotas, {} schemas, {} namespaces in {seconds:.1} s ({:.0} records/s{}){}",
        counts.records,
        counts.installs,
        counts.quotas,
        counts.schemas,
        counts.namespaces,
        counts.records as f64 / seconds.max(1e-3),
        peak_memory(),
        out.map(|p| format!(" → {}", p.display())).unwrap_or_default(),
    );
    Ok(())
}

/// `alga-storage-server import`: reads an export from `input` (stdin without one).
pub async fn import(
    store: Arc<dyn Store>,
    input: Option<PathBuf>,
    on_conflict: OnConflict,
) -> Result<(), Box<dyn std::error::Error>> {
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &input {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdin()),
    };
    let mut progress = Progress::new("import");
    let mut report = |done: &Imported| {
        progress.set_total(done.announced);
        progress.set(done.records_seen());
    };
    let result = transfer::import(
        &*store,
        BufReader::with_capacity(256 << 10, reader),
        on_conflict,
        &mut report,
    )
    .await;
    progress.finish();
    let seconds = progress.elapsed();
    let summary = |done: &Imported| {
        format!(
            "{} records written, {} rows skipped (existing), {} records expired; {} installs, {} quotas, {} schemas, {} namespace versions; {} lines in {seconds:.1} s ({:.0} records/s{})",
            done.written.records,
            done.skipped,
            done.expired,
            done.written.installs,
            done.written.quotas,
            done.written.schemas,
            done.written.namespaces,
            done.lines,
            done.written.records as f64 / seconds.max(1e-3),
            peak_memory(),
        )
    };
    match result {
        Ok(done) => {
            eprintln!("import: {}", summary(&done));
            Ok(())
        }
        Err(e) => {
            eprintln!("import: imported before it: {}", summary(&e.imported));
            Err(e.into())
        }
    }
}
