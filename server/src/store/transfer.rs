//! Export and import: one consistent snapshot of a store as JSON Lines, and back into any store.
//!
//! The format, its order, the conflict policy, batching, expiry and namespace versions are
//! decided here, once; a backend supplies only a read snapshot ([`ExportTx`]) and a write
//! transaction ([`ImportTx`]) in its dialect.
//!
//! A file is a [`Header`] line (format, version and the snapshot's counts), then installs,
//! quotas, schemas, records (live ones, ordered by tenant, namespace and key) and namespace
//! versions, then an `end` line. A file without its `end` line is truncated, and refused as such.

use super::{Store, StoreError};
use alga_storage_core::{canonical_json, check_record, Grant, InstallId, Key, Metadata, Namespace};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;
use uuid::Uuid;

/// The `format` of the header line.
pub const FORMAT: &str = "alga-storage-export";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Lines an import writes in one transaction.
pub const BATCH: usize = 1000;
/// The longest line an import reads (a record's value is at most 64 KiB of JSON and its
/// metadata 4 KiB, as every write checks, and an import checks them too: a longer line is no
/// record of ours).
pub const MAX_LINE: usize = 8 << 20;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Line {
    /// The first line.
    Header(Header),
    /// An install: its extension, grants and token generation.
    Install(InstallLine),
    /// A tenant's quota overrides.
    Quota(QuotaLine),
    /// A namespace's JSON Schema (`schema: null` once deleted; the version stays).
    Schema(SchemaLine),
    /// A live record.
    Record(RecordLine),
    /// A namespace's snapshot version (its ETag).
    Namespace(NamespaceLine),
    /// The last line.
    End(End),
}

/// The first line: what the file is and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format's version ([`FORMAT_VERSION`] when written by this build).
    pub version: u32,
    /// When the snapshot was taken.
    pub exported_at: DateTime<Utc>,
    /// The backend it was taken from (`postgres`, `sqlite`).
    pub source: String,
    /// The tenant it is limited to, if any.
    pub tenant: Option<Uuid>,
    /// The namespace it is limited to, if any (installs and quotas are then left out).
    pub namespace: Option<Namespace>,
    /// The lines of each kind that follow.
    pub counts: Counts,
}

/// Lines of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Counts {
    /// Install lines.
    pub installs: u64,
    /// Quota lines.
    pub quotas: u64,
    /// Schema lines.
    pub schemas: u64,
    /// Record lines.
    pub records: u64,
    /// Namespace lines.
    pub namespaces: u64,
}

impl Counts {
    /// The counts from the five columns of a backend's count statement: installs, quotas,
    /// schemas, records, namespaces.
    pub fn from_columns<E>(column: impl Fn(usize) -> Result<i64, E>) -> Result<Counts, E> {
        let count = |i| column(i).map(|n| n.max(0) as u64);
        Ok(Counts {
            installs: count(0)?,
            quotas: count(1)?,
            schemas: count(2)?,
            records: count(3)?,
            namespaces: count(4)?,
        })
    }
}

/// An install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallLine {
    /// Its tenant.
    pub tenant: Uuid,
    /// Its id (unique across tenants).
    pub install: InstallId,
    /// The extension installed.
    pub extension: String,
    /// Its grants.
    pub grants: Vec<Grant>,
    /// The generation its browser tokens carry: 32 lowercase hex digits.
    pub generation: String,
    /// When it was provisioned.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A tenant's quota overrides (`null`: the server's default applies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaLine {
    /// The tenant.
    pub tenant: Uuid,
    /// Namespaces one principal may be granted.
    pub max_namespaces: Option<i64>,
    /// Records in one namespace.
    pub max_keys_per_namespace: Option<i64>,
    /// Stored bytes of the tenant.
    pub max_bytes: Option<i64>,
}

/// A namespace's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaLine {
    /// The tenant.
    pub tenant: Uuid,
    /// The namespace.
    pub namespace: Namespace,
    /// The schema's version.
    pub version: i64,
    /// The JSON Schema, `null` once deleted.
    pub schema: Option<Value>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A record, with everything that makes it the same record elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordLine {
    /// The tenant.
    pub tenant: Uuid,
    /// The namespace.
    pub namespace: Namespace,
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Value,
    /// The metadata (`{}` when none).
    pub metadata: Metadata,
    /// The revision.
    pub revision: i64,
    /// When it expires, if ever.
    pub ttl_expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl RecordLine {
    /// Holds the record to the rules every write holds it to (value and metadata limits, no
    /// U+0000, nesting depth, a negative zero stored as 0, a revision from 1): a file edited by
    /// hand cannot store what no write could, nor store it differently on each backend.
    fn admit(&mut self) -> Result<(), String> {
        let what = format!("record {}/{}", self.namespace, self.key);
        canonical_json(&mut self.value);
        self.metadata.values_mut().for_each(canonical_json);
        check_record("", &self.value, Some(&self.metadata))
            .map_err(|e| format!("{what}: {}", e.message()))?;
        if self.revision < 1 {
            return Err(format!(
                "{what}: revision must be at least 1, got {}",
                self.revision
            ));
        }
        Ok(())
    }

    /// The size the quotas count for it.
    pub fn size(&self) -> i64 {
        super::record_size(self.key.as_str(), &self.value, Some(&self.metadata))
    }
}

/// A namespace's snapshot version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceLine {
    /// The tenant.
    pub tenant: Uuid,
    /// The namespace.
    pub namespace: Namespace,
    /// Its version (the snapshot ETag).
    pub version: i64,
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {}

impl Line {
    /// The line as written: compact JSON and a newline.
    pub fn to_json_line(&self) -> String {
        let mut text = serde_json::to_string(self).expect("a line serializes");
        text.push('\n');
        text
    }
}

/// What an export holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// One tenant, or all.
    pub tenant: Option<Uuid>,
    /// One namespace (of every selected tenant), or all. Installs and quotas are left out.
    pub namespace: Option<Namespace>,
}

/// The parts of an export, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Installs.
    Installs,
    /// Quota overrides.
    Quotas,
    /// Schemas.
    Schemas,
    /// Live records.
    Records,
    /// Namespace versions.
    Namespaces,
}

impl Part {
    /// Every part, in order.
    pub const ALL: [Part; 5] = [
        Part::Installs,
        Part::Quotas,
        Part::Schemas,
        Part::Records,
        Part::Namespaces,
    ];
}

/// Where an export's lines go; a send fails once the reader is gone.
pub type Sink = mpsc::Sender<Line>;

/// Sends a line, or fails the export when nobody reads any more.
pub async fn send(out: &Sink, line: Line) -> Result<(), StoreError> {
    out.send(line)
        .await
        .map_err(|_| super::backend(std::io::Error::other("the export's reader went away")))
}

/// One read snapshot of a backend (one read transaction): every call sees the same state.
#[async_trait::async_trait]
pub trait ExportTx: Send {
    /// Lines of each kind `filter` selects. Records are the live ones at the snapshot's time.
    async fn counts(&mut self, filter: &ExportFilter) -> Result<Counts, StoreError>;
    /// Sends every line of `part` that `filter` selects, in key order.
    async fn stream(
        &mut self,
        part: Part,
        filter: &ExportFilter,
        out: &Sink,
    ) -> Result<(), StoreError>;
}

/// One write transaction of an import; dropped without [`ImportTx::commit`], it rolls back.
/// Each write reports whether it wrote: `false` when the row exists and `overwrite` is off.
#[async_trait::async_trait]
pub trait ImportTx: Send {
    /// Writes an install (keeping its generation). An install id of another tenant is an error.
    async fn install(&mut self, line: &InstallLine, overwrite: bool) -> Result<bool, StoreError>;
    /// Writes a tenant's quota overrides (exists: the tenant has an override).
    async fn quota(&mut self, line: &QuotaLine, overwrite: bool) -> Result<bool, StoreError>;
    /// Writes a schema and its version.
    async fn schema(&mut self, line: &SchemaLine, overwrite: bool) -> Result<bool, StoreError>;
    /// Writes records (one namespace or several; no key twice), each with its revision and
    /// timestamps; an existing record that has expired counts as absent. On `overwrite`, a
    /// record's revision becomes the greater of the imported one and its current one plus one.
    /// Returns, per record, whether it was written.
    async fn records(
        &mut self,
        lines: &[&RecordLine],
        overwrite: bool,
    ) -> Result<Vec<bool>, StoreError>;
    /// Advances a namespace's version by `by` (records written into it). An import writes no
    /// change rows: the namespace's change log is marked as ending there (`pruned_seq`), so a
    /// change-feed reader from before the import starts again from a full read.
    async fn bump(
        &mut self,
        tenant: Uuid,
        namespace: &Namespace,
        by: i64,
    ) -> Result<(), StoreError>;
    /// Raises a namespace's version to at least `line.version` (a version never goes back),
    /// marking its change log as ending there.
    async fn namespace(&mut self, line: &NamespaceLine) -> Result<(), StoreError>;
    /// Commits.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Writes one consistent snapshot of what `filter` selects into `out`, header and end line
/// included; returns the counts.
pub async fn export(
    store: &dyn Store,
    filter: &ExportFilter,
    out: &Sink,
) -> Result<Counts, StoreError> {
    let mut tx = store.export_snapshot().await?;
    let mut counts = tx.counts(filter).await?;
    if filter.namespace.is_some() {
        counts.installs = 0;
        counts.quotas = 0;
    }
    let header = Header {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
        exported_at: Utc::now(),
        source: store.backend().to_owned(),
        tenant: filter.tenant,
        namespace: filter.namespace.clone(),
        counts,
    };
    send(out, Line::Header(header)).await?;
    for part in Part::ALL {
        let tenant_wide = matches!(part, Part::Installs | Part::Quotas);
        if !(tenant_wide && filter.namespace.is_some()) {
            tx.stream(part, filter, out).await?;
        }
    }
    send(out, Line::End(End {})).await?;
    Ok(counts)
}

/// What an import does with a line whose row exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnConflict {
    /// Stop at the line, keeping what was imported before it.
    #[default]
    Fail,
    /// Keep the existing row.
    Skip,
    /// Replace it.
    Overwrite,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Lines read (header and end included).
    pub lines: u64,
    /// Installs, quotas, schemas and records written.
    pub written: Counts,
    /// Rows that existed and were kept (`--on-conflict skip`).
    pub skipped: u64,
    /// Records that had expired by the time they were imported (left out).
    pub expired: u64,
    /// The records the header announced (for progress).
    pub announced: u64,
}

impl Imported {
    /// Records handled so far: written, skipped or expired.
    pub fn records_seen(&self) -> u64 {
        self.written.records + self.skipped + self.expired
    }
}

/// Why an import stopped: the line, what was wrong, and what was imported before it (those
/// writes are committed).
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ImportError {
    /// The 1-based line number.
    pub line: u64,
    /// What was wrong.
    pub reason: String,
    /// What was imported before it.
    pub imported: Imported,
}

/// A line read and parsed, with its number.
struct Numbered {
    number: u64,
    line: Line,
}

/// Reads `input` (an export) into `store` in transactions of [`BATCH`] lines. `progress` is
/// called after every batch.
pub async fn import<R: AsyncBufRead + Unpin>(
    store: &dyn Store,
    mut input: R,
    on_conflict: OnConflict,
    progress: &mut (dyn FnMut(&Imported) + Send),
) -> Result<Imported, ImportError> {
    let mut done = Imported::default();
    let mut reader = LineReader::default();
    let fail = |line: u64, reason: String, done: &Imported| ImportError {
        line,
        reason,
        imported: *done,
    };
    let header = match reader.next(&mut input).await {
        Ok(Some(Numbered {
            line: Line::Header(h),
            ..
        })) => h,
        Ok(Some(n)) => {
            return Err(fail(
                n.number,
                "the first line is not a header".into(),
                &done,
            ))
        }
        Ok(None) => return Err(fail(1, "the input is empty".into(), &done)),
        Err((number, reason)) => return Err(fail(number, reason, &done)),
    };
    if header.format != FORMAT {
        return Err(fail(
            1,
            format!("the format is {:?}, not {FORMAT:?}", header.format),
            &done,
        ));
    }
    if header.version != FORMAT_VERSION {
        return Err(fail(
            1,
            format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                header.version
            ),
            &done,
        ));
    }
    done.lines = 1;
    done.announced = header.counts.records;
    let mut seen = Counts::default();
    let mut ended = false;
    while !ended {
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            match reader.next(&mut input).await {
                Ok(Some(n)) => {
                    let is_end = matches!(n.line, Line::End(_));
                    batch.push(n);
                    if is_end {
                        ended = true;
                        break;
                    }
                }
                Ok(None) => {
                    // Whatever was read completely is still imported, then the truncation is
                    // reported.
                    let last = reader.number;
                    apply_or_prefix(store, &batch, on_conflict, &mut done, &mut seen).await?;
                    return Err(fail(
                        last + 1,
                        format!(
                            "the input ends without its end line after line {last}: it is truncated"
                        ),
                        &done,
                    ));
                }
                Err((number, reason)) => {
                    apply_or_prefix(store, &batch, on_conflict, &mut done, &mut seen).await?;
                    return Err(fail(number, reason, &done));
                }
            }
        }
        apply_or_prefix(store, &batch, on_conflict, &mut done, &mut seen).await?;
        progress(&done);
    }
    match reader.next(&mut input).await {
        Ok(None) => {}
        Ok(Some(extra)) => {
            return Err(fail(
                extra.number,
                "a line after the end line".into(),
                &done,
            ))
        }
        Err((number, _)) => return Err(fail(number, "a line after the end line".into(), &done)),
    }
    if seen != header.counts {
        return Err(fail(
            reader.number,
            format!(
                "the file holds {seen:?}, but its header announced {:?}",
                header.counts
            ),
            &done,
        ));
    }
    Ok(done)
}

/// Applies a batch; on a conflict under `fail` (or a line out of place), rolls it back, commits
/// the lines before the offending one, and reports it.
async fn apply_or_prefix(
    store: &dyn Store,
    batch: &[Numbered],
    on_conflict: OnConflict,
    done: &mut Imported,
    seen: &mut Counts,
) -> Result<(), ImportError> {
    match apply(store, batch, on_conflict).await {
        Ok(outcome) => {
            outcome.add_to(done, seen);
            Ok(())
        }
        Err(Failure::At(index, reason)) => {
            if index > 0 {
                match apply(store, &batch[..index], on_conflict).await {
                    Ok(outcome) => outcome.add_to(done, seen),
                    Err(e) => return Err(e.into_error(batch, done)),
                }
            }
            Err(ImportError {
                line: batch[index].number,
                reason,
                imported: *done,
            })
        }
        Err(e) => Err(e.into_error(batch, done)),
    }
}

/// What one batch did.
#[derive(Default)]
struct Outcome {
    lines: u64,
    written: Counts,
    skipped: u64,
    expired: u64,
    seen: Counts,
}

impl Outcome {
    fn add_to(&self, done: &mut Imported, seen: &mut Counts) {
        done.lines += self.lines;
        done.written.installs += self.written.installs;
        done.written.quotas += self.written.quotas;
        done.written.schemas += self.written.schemas;
        done.written.records += self.written.records;
        done.written.namespaces += self.written.namespaces;
        done.skipped += self.skipped;
        done.expired += self.expired;
        seen.installs += self.seen.installs;
        seen.quotas += self.seen.quotas;
        seen.schemas += self.seen.schemas;
        seen.records += self.seen.records;
        seen.namespaces += self.seen.namespaces;
    }
}

/// Why a batch was rolled back.
enum Failure {
    /// The line at this index of the batch: a conflict under `fail`, or a line out of place.
    At(usize, String),
    /// The database refused the batch (a quota, an install id of another tenant, …).
    Store(StoreError, Option<usize>),
}

impl Failure {
    fn into_error(self, batch: &[Numbered], done: &Imported) -> ImportError {
        let (index, reason) = match self {
            Failure::At(index, reason) => (index, reason),
            Failure::Store(e, index) => (index.unwrap_or(0), describe(&e)),
        };
        ImportError {
            line: batch.get(index).map_or(done.lines + 1, |n| n.number),
            reason,
            imported: *done,
        }
    }
}

/// A store error as an operator reads it (contract errors say what; a backend failure says
/// what the database said, since the operator owns it).
fn describe(e: &StoreError) -> String {
    match e {
        StoreError::Contract(e) => match e.details() {
            Some(details) => format!("{} ({details})", e.message()),
            None => e.message().to_owned(),
        },
        StoreError::Backend(e) => format!("the database refused the batch: {e}"),
        StoreError::Unavailable(e) => format!("the database is unavailable: {e}"),
        StoreError::SchemaMoved => e.to_string(),
    }
}

/// Applies one batch in one transaction: records in runs (one statement per run), namespace
/// versions bumped by the records written, every other line on its own.
async fn apply(
    store: &dyn Store,
    batch: &[Numbered],
    on_conflict: OnConflict,
) -> Result<Outcome, Failure> {
    let overwrite = on_conflict == OnConflict::Overwrite;
    let mut out = Outcome::default();
    let mut tx = store
        .import_tx()
        .await
        .map_err(|e| Failure::Store(e, None))?;
    let now = Utc::now();
    let mut i = 0;
    while i < batch.len() {
        let start = i;
        let mut run: Vec<&RecordLine> = Vec::new();
        let mut keys = HashSet::new();
        while let Some(Numbered {
            line: Line::Record(r),
            ..
        }) = batch.get(i)
        {
            if !keys.insert((r.tenant, &r.namespace, &r.key)) {
                return Err(Failure::At(
                    i,
                    format!(
                        "record {}/{} appears twice",
                        r.namespace.as_str(),
                        r.key.as_str()
                    ),
                ));
            }
            out.seen.records += 1;
            if r.ttl_expires_at.is_some_and(|t| t <= now) {
                out.expired += 1;
            } else {
                run.push(r);
            }
            i += 1;
        }
        if i > start {
            let written = tx
                .records(&run, overwrite)
                .await
                .map_err(|e| Failure::Store(e, Some(start)))?;
            let mut bumps: HashMap<(Uuid, &Namespace), i64> = HashMap::new();
            for (r, wrote) in run.iter().zip(&written) {
                if *wrote {
                    out.written.records += 1;
                    *bumps.entry((r.tenant, &r.namespace)).or_default() += 1;
                } else if on_conflict == OnConflict::Fail {
                    let index = batch[start..]
                        .iter()
                        .position(|n| matches!(&n.line, Line::Record(x) if std::ptr::eq(x, *r)))
                        .map_or(start, |p| start + p);
                    return Err(Failure::At(
                        index,
                        format!(
                            "record {}/{} exists (--on-conflict skip or overwrite to import anyway)",
                            r.namespace.as_str(),
                            r.key.as_str()
                        ),
                    ));
                } else {
                    out.skipped += 1;
                }
            }
            for ((tenant, namespace), by) in bumps {
                tx.bump(tenant, namespace, by)
                    .await
                    .map_err(|e| Failure::Store(e, Some(start)))?;
            }
            continue;
        }
        let store_err = |e| Failure::Store(e, Some(i));
        let (wrote, what) = match &batch[i].line {
            Line::Install(l) => {
                out.seen.installs += 1;
                let wrote = tx.install(l, overwrite).await.map_err(store_err)?;
                out.written.installs += u64::from(wrote);
                (wrote, format!("install {}", l.install.as_str()))
            }
            Line::Quota(l) => {
                out.seen.quotas += 1;
                let wrote = tx.quota(l, overwrite).await.map_err(store_err)?;
                out.written.quotas += u64::from(wrote);
                (wrote, format!("the quotas of tenant {}", l.tenant))
            }
            Line::Schema(l) => {
                out.seen.schemas += 1;
                let wrote = tx.schema(l, overwrite).await.map_err(store_err)?;
                out.written.schemas += u64::from(wrote);
                (wrote, format!("the schema of {}", l.namespace.as_str()))
            }
            Line::Namespace(l) => {
                out.seen.namespaces += 1;
                tx.namespace(l).await.map_err(store_err)?;
                out.written.namespaces += 1;
                (true, String::new())
            }
            Line::End(_) => (true, String::new()),
            Line::Header(_) => return Err(Failure::At(i, "a second header".into())),
            Line::Record(_) => unreachable!("records are taken in runs above"),
        };
        if !wrote {
            if on_conflict == OnConflict::Fail {
                return Err(Failure::At(
                    i,
                    format!("{what} exists (--on-conflict skip or overwrite to import anyway)"),
                ));
            }
            out.skipped += 1;
        }
        i += 1;
    }
    tx.commit().await.map_err(|e| Failure::Store(e, None))?;
    out.lines = batch.len() as u64;
    Ok(out)
}

/// Reads numbered lines of at most [`MAX_LINE`] bytes, skipping blank ones.
#[derive(Default)]
struct LineReader {
    number: u64,
    buf: Vec<u8>,
}

impl LineReader {
    async fn next<R: AsyncBufRead + Unpin>(
        &mut self,
        input: &mut R,
    ) -> Result<Option<Numbered>, (u64, String)> {
        use tokio::io::AsyncReadExt;
        loop {
            self.buf.clear();
            let read = (&mut *input)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .await
                .map_err(|e| (self.number + 1, format!("cannot read the input: {e}")))?;
            if read == 0 {
                return Ok(None);
            }
            self.number += 1;
            if self.buf.len() > MAX_LINE {
                return Err((
                    self.number,
                    format!("the line is longer than {MAX_LINE} bytes"),
                ));
            }
            if !self.buf.ends_with(b"\n") {
                return Err((
                    self.number,
                    "the last line is cut off (no newline): the input is truncated".into(),
                ));
            }
            let text = self.buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let mut line = serde_json::from_slice::<Line>(text)
                .map_err(|e| (self.number, format!("not an export line: {e}")))?;
            if let Line::Record(record) = &mut line {
                record.admit().map_err(|reason| (self.number, reason))?;
            }
            return Ok(Some(Numbered {
                number: self.number,
                line,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_line_round_trips_and_unknown_fields_are_refused() {
        let line = Line::Record(RecordLine {
            tenant: Uuid::nil(),
            namespace: Namespace::new("notes").unwrap(),
            key: Key::new("a.b").unwrap(),
            value: serde_json::json!({"n": 1}),
            metadata: Metadata::new(),
            revision: 3,
            ttl_expires_at: None,
            created_at: DateTime::from_timestamp_micros(1).unwrap(),
            updated_at: DateTime::from_timestamp_micros(2).unwrap(),
        });
        let text = line.to_json_line();
        assert!(text.starts_with(r#"{"type":"record","tenant":"#), "{text}");
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
        let extra = text.replacen('{', r#"{"ifRevision":1,"#, 1);
        assert!(serde_json::from_str::<Line>(&extra).is_err());
        let bad_key = text.replace("\"a.b\"", "\"\"");
        assert!(serde_json::from_str::<Line>(&bad_key).is_err());
    }
}
