//! The typed API: [`Namespace`] and its builders.

use crate::wire;
use crate::Result;
use alga_storage_core::{
    AtomicRequest, AtomicResponse, BulkPutInput, BulkPutRequest, BulkPutResponse, ChangesRequest,
    ChangesResponse, DeleteRequest, ErrorCode, GetManyRequest, GetRequest, ListInput, ListItem,
    ListRequest, ListResponse, Metadata, OperationInput, PutRequest, PutResponse, Record,
    StorageError, WriteInput,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::marker::PhantomData;

/// A namespace of the install that runs the handler: the handle for every storage call.
///
/// Opening one only checks the name; grants are checked by the server on each call (a missing
/// grant is an error of kind [`NamespaceDenied`](crate::ErrorKind::NamespaceDenied) or
/// [`Unauthorized`](crate::ErrorKind::Unauthorized), never a trap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    name: alga_storage_core::Namespace,
}

/// Options of a write: metadata, time to live and the revision guard.
///
/// ```
/// use alga_storage_guest::WriteOptions;
/// let opts = WriteOptions::new().ttl_seconds(3600).if_revision(0);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct WriteOptions {
    metadata: Option<Value>,
    ttl_seconds: Option<u64>,
    if_revision: Option<u64>,
    error: Option<StorageError>,
}

impl WriteOptions {
    /// No metadata, no expiry, no guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attach a metadata object (filterable with [`List::metadata`]).
    pub fn metadata<M: Serialize + ?Sized>(mut self, metadata: &M) -> Self {
        match serde_json::to_value(metadata) {
            Ok(m) => self.metadata = Some(m),
            Err(e) => self.error = Some(StorageError::validation("metadata", e.to_string())),
        }
        self
    }

    /// Expire the record this many seconds after the write.
    pub fn ttl_seconds(mut self, seconds: u64) -> Self {
        self.ttl_seconds = Some(seconds);
        self
    }

    /// Write only if the record is at `revision` now (`0`: only if it does not exist);
    /// otherwise the write fails with `REVISION_MISMATCH` and `details.currentRevision`.
    pub fn if_revision(mut self, revision: u64) -> Self {
        self.if_revision = Some(revision);
        self
    }

    /// The options as sdk-core's constructors take them; errors name `{prefix}field`.
    fn input(&self, prefix: &str) -> Result<WriteInput> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        Ok(WriteInput {
            metadata: self
                .metadata
                .clone()
                .map(|m| object(&format!("{prefix}metadata"), m))
                .transpose()?,
            ttl_seconds: self
                .ttl_seconds
                .map(|t| whole(&format!("{prefix}ttlSeconds"), t))
                .transpose()?,
            if_revision: self
                .if_revision
                .map(|r| whole(&format!("{prefix}ifRevision"), r))
                .transpose()?,
        })
    }
}

/// A `u64` as the whole number sdk-core's constructors check (the contract's numbers are
/// signed 64-bit); one past `i64::MAX` is refused here, naming `field`, never clamped.
fn whole(field: &str, n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| {
        StorageError::validation(field, format!("must be at most {}, got {n}", i64::MAX))
    })
}

/// A serialized metadata value as the JSON object it must be.
fn object(field: &str, value: Value) -> Result<Metadata> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StorageError::validation(field, "must be a JSON object")),
    }
}

/// `value` as JSON (a `Serialize` that fails, e.g. a map with non-string keys, names `field`).
fn json<V: Serialize + ?Sized>(field: &str, value: &V) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| StorageError::validation(field, e.to_string()))
}

/// A `put` being prepared: see [`Namespace::write`].
#[derive(Debug)]
#[must_use = "a write does nothing until `send` is called"]
pub struct Write<'a> {
    ns: &'a Namespace,
    key: String,
    value: Result<Value>,
    options: WriteOptions,
}

impl Write<'_> {
    /// Attach a metadata object.
    pub fn metadata<M: Serialize + ?Sized>(mut self, metadata: &M) -> Self {
        self.options = self.options.metadata(metadata);
        self
    }

    /// Expire the record this many seconds after the write.
    pub fn ttl_seconds(mut self, seconds: u64) -> Self {
        self.options = self.options.ttl_seconds(seconds);
        self
    }

    /// Write only if the record is at `revision` now (`0`: only if it does not exist).
    pub fn if_revision(mut self, revision: u64) -> Self {
        self.options = self.options.if_revision(revision);
        self
    }

    /// Replace all options at once.
    pub fn options(mut self, options: WriteOptions) -> Self {
        self.options = options;
        self
    }

    /// Validate and write.
    pub fn send(self) -> Result<PutResponse> {
        let options = self.options.input("")?;
        wire::put(PutRequest::new(
            self.ns.name(),
            self.key,
            self.value?,
            options,
        )?)
    }
}

/// A page or a walk over a namespace being prepared: see [`Namespace::list`].
#[derive(Debug)]
#[must_use = "a list does nothing until `page` or `iter` is called"]
pub struct List<'a, T = Value> {
    ns: &'a Namespace,
    input: ListInput,
    error: Option<StorageError>,
    _value: PhantomData<fn() -> T>,
}

impl<'a, T: DeserializeOwned> List<'a, T> {
    /// Only keys that start with `prefix` (literally: `%` and `_` are ordinary characters).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.input.key_prefix = Some(prefix.to_owned());
        self
    }

    /// Page size (1-100, default 25).
    pub fn limit(mut self, limit: u32) -> Self {
        self.input.limit = Some(limit.into());
        self
    }

    /// Start after the page that returned this cursor.
    pub fn cursor(mut self, cursor: &str) -> Self {
        self.input.cursor = Some(cursor.to_owned());
        self
    }

    /// Include each record's value (typed as `T`).
    pub fn values(mut self) -> Self {
        self.input.include_values = true;
        self
    }

    /// Include each record's metadata.
    pub fn with_metadata(mut self) -> Self {
        self.input.include_metadata = true;
        self
    }

    /// Only records whose metadata contains `filter` (JSON containment).
    pub fn metadata<M: Serialize + ?Sized>(mut self, filter: &M) -> Self {
        match json("metadata", filter).and_then(|f| object("metadata", f)) {
            Ok(f) => self.input.metadata = Some(f),
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// Fetch one page.
    pub fn page(&self) -> Result<ListResponse<T>> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        wire::list(ListRequest::new(self.ns.name(), self.input.clone())?)
    }

    /// Walk every matching record, page after page, following the cursors. An error ends the
    /// walk after it is yielded.
    pub fn iter(self) -> ListIter<'a, T> {
        ListIter {
            list: self,
            buffered: VecDeque::new(),
            done: false,
        }
    }
}

impl<'a, T: DeserializeOwned> IntoIterator for List<'a, T> {
    type Item = Result<ListItem<T>>;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The iterator of [`List::iter`].
#[derive(Debug)]
pub struct ListIter<'a, T> {
    list: List<'a, T>,
    buffered: VecDeque<ListItem<T>>,
    done: bool,
}

impl<T: DeserializeOwned> Iterator for ListIter<'_, T> {
    type Item = Result<ListItem<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.buffered.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            match self.list.page() {
                Ok(page) => {
                    self.buffered.extend(page.items);
                    match page.next_cursor {
                        Some(cursor) => {
                            self.list.input.cursor = Some(cursor.0);
                        }
                        None => self.done = true,
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// An atomic multi-record write being prepared: see [`Namespace::bulk_put`].
#[derive(Debug)]
#[must_use = "a bulk write does nothing until `send` is called"]
pub struct BulkPut<'a> {
    ns: &'a Namespace,
    items: Vec<BulkPutInput>,
    error: Option<StorageError>,
}

impl BulkPut<'_> {
    /// Add an item.
    pub fn item<V: Serialize + ?Sized>(self, key: &str, value: &V) -> Self {
        self.item_with(key, value, WriteOptions::new())
    }

    /// Add an item with its own metadata, TTL or revision guard.
    pub fn item_with<V: Serialize + ?Sized>(
        mut self,
        key: &str,
        value: &V,
        options: WriteOptions,
    ) -> Self {
        let at = format!("items[{}].", self.items.len());
        let item = json(&format!("{at}value"), value).and_then(|value| {
            Ok(BulkPutInput {
                key: key.to_owned(),
                value,
                options: options.input(&at)?,
            })
        });
        match item {
            Ok(item) => self.items.push(item),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Validate and write every item, or none: a failing item fails the whole call with
    /// `BULK_PARTIAL_FAILURE`, listing each failing item in `details.items`.
    pub fn send(self) -> Result<BulkPutResponse> {
        if let Some(e) = self.error {
            return Err(e);
        }
        wire::bulk_put(BulkPutRequest::new(self.ns.name(), self.items)?)
    }
}

/// An atomic write being prepared: checks, then puts, deletes and increments on distinct keys,
/// applied all together or not at all. See [`Namespace::atomic`].
#[derive(Debug)]
#[must_use = "an atomic write does nothing until `commit` is called"]
pub struct Atomic<'a> {
    ns: &'a Namespace,
    checks: Vec<(String, i64)>,
    operations: Vec<OperationInput>,
    error: Option<StorageError>,
}

impl Atomic<'_> {
    fn fail(mut self, error: StorageError) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// Only if `key` is at `revision` now (`0`: only if it does not exist); else the whole
    /// write fails with `REVISION_MISMATCH`, `details.failedChecks` naming each failed check.
    pub fn check(mut self, key: &str, revision: u64) -> Self {
        // A guard is never dropped: a revision out of range fails the whole write.
        match whole(&format!("checks[{}].revision", self.checks.len()), revision) {
            Ok(revision) => {
                self.checks.push((key.to_owned(), revision));
                self
            }
            Err(e) => self.fail(e),
        }
    }

    /// Create or replace `key` with `value`.
    pub fn put<V: Serialize + ?Sized>(self, key: &str, value: &V) -> Self {
        self.put_with(key, value, WriteOptions::new())
    }

    /// Create or replace `key` with `value`, with metadata or a TTL (a revision guard is a
    /// [`check`](Self::check) here, and is refused in the options).
    pub fn put_with<V: Serialize + ?Sized>(
        mut self,
        key: &str,
        value: &V,
        options: WriteOptions,
    ) -> Self {
        let at = format!("operations[{}].", self.operations.len());
        let put = json(&format!("{at}value"), value).and_then(|value| {
            Ok(OperationInput::Put {
                key: key.to_owned(),
                value,
                options: options.input(&at)?,
            })
        });
        match put {
            Ok(put) => {
                self.operations.push(put);
                self
            }
            Err(e) => self.fail(e),
        }
    }

    /// Delete `key` (a missing record is no error).
    pub fn delete(mut self, key: &str) -> Self {
        self.operations.push(OperationInput::Delete {
            key: key.to_owned(),
        });
        self
    }

    /// Add `delta` to the integer value of `key` (a missing record counts as 0 and is
    /// created); the result says the new value.
    pub fn increment(mut self, key: &str, delta: i64) -> Self {
        self.operations.push(OperationInput::Increment {
            key: key.to_owned(),
            delta,
            ttl_seconds: None,
        });
        self
    }

    /// Apply everything or nothing: one result per operation, in order.
    pub fn commit(self) -> Result<AtomicResponse> {
        if let Some(e) = self.error {
            return Err(e);
        }
        wire::atomic(AtomicRequest::new(
            self.ns.name(),
            self.checks,
            self.operations,
        )?)
    }
}

impl Namespace {
    /// A handle on namespace `name` (1-64 characters of `[A-Za-z0-9._:-]`, see
    /// [`alga_storage_core::limits`]).
    ///
    /// ```
    /// use alga_storage_guest::{ErrorCode, Namespace};
    /// assert!(Namespace::open("settings").is_ok());
    /// let err = Namespace::open("no spaces").unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::ValidationFailed);
    /// assert_eq!(err.details().unwrap()["field"], "namespace");
    /// ```
    pub fn open(name: &str) -> Result<Self> {
        Ok(Namespace {
            name: alga_storage_core::Namespace::new(name)?,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Create or replace `key` with `value`. Same as `self.write(key, value).send()`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("settings")?;
    /// let written = ns.put("theme", "dark")?;
    /// println!("revision {}", written.revision);
    /// # Ok(()) }
    /// ```
    pub fn put<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Result<PutResponse> {
        self.write(key, value).send()
    }

    /// A write of `key` with options: metadata, TTL, revision guard.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("sessions")?;
    /// ns.write("s-1", &serde_json::json!({"user": "u1"}))
    ///     .metadata(&serde_json::json!({"kind": "session"}))
    ///     .ttl_seconds(900)
    ///     .if_revision(0) // only if it does not exist yet
    ///     .send()?;
    /// # Ok(()) }
    /// ```
    pub fn write<V: Serialize + ?Sized>(&self, key: &str, value: &V) -> Write<'_> {
        Write {
            ns: self,
            key: key.to_owned(),
            value: json("value", value),
            options: WriteOptions::new(),
        }
    }

    /// Read `key`: `None` when it does not exist or has expired.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("settings")?;
    /// if let Some(rec) = ns.get::<String>("theme")? {
    ///     println!("{} at revision {}", rec.value, rec.revision);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<Record<T>>> {
        self.get_fields(key, None)
    }

    /// Read `key` only if it is at `revision`; otherwise `REVISION_MISMATCH`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("settings")?;
    /// let unchanged = ns.get_if_revision::<String>("theme", 2)?;
    /// # let _ = unchanged;
    /// # Ok(()) }
    /// ```
    pub fn get_if_revision<T: DeserializeOwned>(
        &self,
        key: &str,
        revision: u64,
    ) -> Result<Option<Record<T>>> {
        self.get_fields(key, Some(revision))
    }

    fn get_fields<T: DeserializeOwned>(
        &self,
        key: &str,
        revision: Option<u64>,
    ) -> Result<Option<Record<T>>> {
        let revision = revision.map(|r| whole("ifRevision", r)).transpose()?;
        match wire::get(GetRequest::new(self.name(), key, revision)?) {
            Ok(record) => Ok(Some(record)),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Delete `key`. Deleting a key that does not exist succeeds (deletes are idempotent).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("notes")?;
    /// ns.delete("draft")?;
    /// // Or only if nobody changed it since revision 3:
    /// ns.delete_if_revision("final", 3)?;
    /// # Ok(()) }
    /// ```
    pub fn delete(&self, key: &str) -> Result<()> {
        self.delete_fields(key, None)
    }

    /// Delete `key` only if it is at `revision`; otherwise `REVISION_MISMATCH` (or `NOT_FOUND`
    /// when it no longer exists).
    pub fn delete_if_revision(&self, key: &str, revision: u64) -> Result<()> {
        self.delete_fields(key, Some(revision))
    }

    fn delete_fields(&self, key: &str, revision: Option<u64>) -> Result<()> {
        let revision = revision.map(|r| whole("ifRevision", r)).transpose()?;
        wire::delete(DeleteRequest::new(self.name(), key, revision)?)
    }

    /// A listing of this namespace in key order (code-point order), one page at a time or as
    /// an iterator over every page.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("notes")?;
    /// for item in ns.list::<String>().prefix("2026-").values().limit(50).iter() {
    ///     let item = item?;
    ///     println!("{} = {:?}", item.key, item.value);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list<T: DeserializeOwned>(&self) -> List<'_, T> {
        List {
            ns: self,
            input: ListInput::default(),
            error: None,
            _value: PhantomData,
        }
    }

    /// Several records read at one point in time: one entry per key (1 to 100 distinct keys),
    /// in order, `None` where a record is missing or expired.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("notes")?;
    /// let [a, b] = <[_; 2]>::try_from(ns.get_many::<String>(&["a", "b"])?).unwrap();
    /// println!("{:?} {:?}", a.map(|r| r.value), b.map(|r| r.value));
    /// # Ok(()) }
    /// ```
    pub fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<Record<T>>>> {
        let request = GetManyRequest::new(self.name(), keys.iter().copied())?;
        Ok(wire::get_many(request)?.items)
    }

    /// A page of the namespace's change feed: the changes after sequence number `after` (0:
    /// from the start), oldest first, at most `limit` (1 to 100, `None`: 100), only of keys
    /// starting with `key_prefix` if given. Pass the page's `next_after` as the next `after`;
    /// a page with `reset` means `after` was older than the log keeps: read the namespace anew.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("notes")?;
    /// let page = ns.changes(0, None, None)?;
    /// for change in &page.changes {
    ///     println!("{} {:?} {}", change.seq, change.op, change.key.as_str());
    /// }
    /// let next = ns.changes(page.next_after, Some(10), Some("draft-"))?;
    /// # let _ = next;
    /// # Ok(()) }
    /// ```
    pub fn changes(
        &self,
        after: u64,
        limit: Option<u8>,
        key_prefix: Option<&str>,
    ) -> Result<ChangesResponse> {
        let request = ChangesRequest::new(
            self.name(),
            Some(whole("after", after)?),
            limit.map(i64::from),
            key_prefix.map(str::to_owned),
        )?;
        wire::changes(request)
    }

    /// An atomic write: checks, then puts, deletes and increments, all or nothing.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("shop")?;
    /// let done = ns
    ///     .atomic()
    ///     .check("order-7", 0)
    ///     .put("order-7", &serde_json::json!({"item": "tea"}))
    ///     .increment("orders", 1)
    ///     .commit()?;
    /// println!("order number {:?}", done.results[1].value);
    /// # Ok(()) }
    /// ```
    pub fn atomic(&self) -> Atomic<'_> {
        Atomic {
            ns: self,
            checks: Vec::new(),
            operations: Vec::new(),
            error: None,
        }
    }

    /// Adds `delta` to the integer value of `key` on the server, in one step (a missing record
    /// counts as 0), and answers the new value. No read-modify-write loop is needed.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// let ns = alga_storage_guest::Namespace::open("stats")?;
    /// let visits = ns.increment("visits", 1)?;
    /// # let _ = visits;
    /// # Ok(()) }
    /// ```
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let done = self.atomic().increment(key, delta).commit()?;
        done.results
            .first()
            .and_then(|r| r.value)
            .ok_or_else(StorageError::internal)
    }

    /// An atomic write of up to 20 records.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), alga_storage_guest::StorageError> {
    /// use alga_storage_guest::WriteOptions;
    /// let ns = alga_storage_guest::Namespace::open("notes")?;
    /// let written = ns
    ///     .bulk_put()
    ///     .item("a", "first")
    ///     .item_with("b", "second", WriteOptions::new().ttl_seconds(60))
    ///     .send()?;
    /// assert_eq!(written.items.len(), 2);
    /// # Ok(()) }
    /// ```
    pub fn bulk_put(&self) -> BulkPut<'_> {
        BulkPut {
            ns: self,
            items: Vec::new(),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Refused in the guest, before anything crosses to the host.
    #[test]
    fn an_atomic_write_never_drops_a_guard_or_a_bad_key() {
        let ns = Namespace::open("notes").unwrap();
        let e = ns.atomic().check("a", u64::MAX).put("a", &1).commit();
        let e = e.unwrap_err();
        assert_eq!(e.code(), ErrorCode::ValidationFailed);
        assert_eq!(e.details().unwrap()["field"], "checks[0].revision");
        let e = ns.atomic().delete("").commit().unwrap_err();
        assert_eq!(e.details().unwrap()["field"], "operations[0].key");
        let e = ns
            .atomic()
            .put_with("a", &1, WriteOptions::new().if_revision(1))
            .commit()
            .unwrap_err();
        assert_eq!(e.details().unwrap()["field"], "operations[0].ifRevision");
        let e = ns.atomic().commit().unwrap_err();
        assert_eq!(e.details().unwrap()["field"], "operations");
    }
}
