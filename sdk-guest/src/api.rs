//! The typed API: [`Namespace`] and its builders.

use crate::wire;
use crate::Result;
use alga_storage_core::{
    AtomicCheck, AtomicOperation, AtomicRequest, AtomicResponse, BulkPutResponse, ChangesRequest,
    ChangesResponse, ErrorCode, FromFields, GetManyRequest, Key, ListItem, ListResponse,
    PutResponse, Record, Revision, StorageError,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
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

    fn apply(&self, fields: &mut Map<String, Value>) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Some(m) = &self.metadata {
            fields.insert("metadata".into(), m.clone());
        }
        if let Some(t) = self.ttl_seconds {
            fields.insert("ttlSeconds".into(), t.into());
        }
        if let Some(r) = self.if_revision {
            fields.insert("ifRevision".into(), r.into());
        }
        Ok(())
    }
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
        let mut fields = Map::new();
        fields.insert("key".into(), self.key.into());
        fields.insert("value".into(), self.value?);
        self.options.apply(&mut fields)?;
        wire::put(self.ns.request(fields)?)
    }
}

/// A page or a walk over a namespace being prepared: see [`Namespace::list`].
#[derive(Debug)]
#[must_use = "a list does nothing until `page` or `iter` is called"]
pub struct List<'a, T = Value> {
    ns: &'a Namespace,
    fields: Map<String, Value>,
    error: Option<StorageError>,
    _value: PhantomData<fn() -> T>,
}

impl<'a, T: DeserializeOwned> List<'a, T> {
    /// Only keys that start with `prefix` (literally: `%` and `_` are ordinary characters).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.fields.insert("keyPrefix".into(), prefix.into());
        self
    }

    /// Page size (1-100, default 25).
    pub fn limit(mut self, limit: u32) -> Self {
        self.fields.insert("limit".into(), limit.into());
        self
    }

    /// Start after the page that returned this cursor.
    pub fn cursor(mut self, cursor: &str) -> Self {
        self.fields.insert("cursor".into(), cursor.into());
        self
    }

    /// Include each record's value (typed as `T`).
    pub fn values(mut self) -> Self {
        self.fields.insert("includeValues".into(), true.into());
        self
    }

    /// Include each record's metadata.
    pub fn with_metadata(mut self) -> Self {
        self.fields.insert("includeMetadata".into(), true.into());
        self
    }

    /// Only records whose metadata contains `filter` (JSON containment).
    pub fn metadata<M: Serialize + ?Sized>(mut self, filter: &M) -> Self {
        match serde_json::to_value(filter) {
            Ok(f) => {
                self.fields.insert("metadata".into(), f);
            }
            Err(e) => self.error = Some(StorageError::validation("metadata", e.to_string())),
        }
        self
    }

    /// Fetch one page.
    pub fn page(&self) -> Result<ListResponse<T>> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        wire::list(self.ns.request(self.fields.clone())?)
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
                            self.list.fields.insert("cursor".into(), cursor.0.into());
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
    items: Vec<Value>,
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
        let index = self.items.len();
        let mut fields = Map::new();
        fields.insert("key".into(), key.into());
        match serde_json::to_value(value) {
            Ok(v) => {
                fields.insert("value".into(), v);
            }
            Err(e) => {
                self.error.get_or_insert_with(|| {
                    StorageError::validation(format!("items[{index}].value"), e.to_string())
                });
            }
        }
        if let Err(e) = options.apply(&mut fields) {
            self.error.get_or_insert(e);
        }
        self.items.push(Value::Object(fields));
        self
    }

    /// Validate and write every item, or none: a failing item fails the whole call with
    /// `BULK_PARTIAL_FAILURE`, listing each failing item in `details.items`.
    pub fn send(self) -> Result<BulkPutResponse> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut fields = Map::new();
        fields.insert("items".into(), Value::Array(self.items));
        wire::bulk_put(self.ns.request(fields)?)
    }
}

/// An atomic write being prepared: checks, then puts, deletes and increments on distinct keys,
/// applied all together or not at all. See [`Namespace::atomic`].
#[derive(Debug)]
#[must_use = "an atomic write does nothing until `commit` is called"]
pub struct Atomic<'a> {
    ns: &'a Namespace,
    checks: Vec<AtomicCheck>,
    operations: Vec<AtomicOperation>,
    error: Option<StorageError>,
}

impl Atomic<'_> {
    fn key(&mut self, field: String, key: &str) -> Option<Key> {
        match Key::new(key) {
            Ok(key) => Some(key),
            Err(e) => {
                self.error
                    .get_or_insert_with(|| StorageError::validation(field, e.reason));
                None
            }
        }
    }

    /// Only if `key` is at `revision` now (`0`: only if it does not exist); else the whole
    /// write fails with `REVISION_MISMATCH`, `details.failedChecks` naming each failed check.
    pub fn check(mut self, key: &str, revision: u64) -> Self {
        let index = self.checks.len();
        let key = self.key(format!("checks[{index}].key"), key);
        // A guard is never dropped: a revision out of range fails the whole write.
        let revision = i64::try_from(revision)
            .map_err(|_| format!("{revision} is past the largest revision"))
            .and_then(|r| Revision::new(r).map_err(|e| e.reason));
        match revision {
            Ok(revision) => {
                if let Some(key) = key {
                    self.checks.push(AtomicCheck { key, revision });
                }
            }
            Err(reason) => {
                self.error.get_or_insert_with(|| {
                    StorageError::validation(format!("checks[{index}].revision"), reason)
                });
            }
        }
        self
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
        let at = format!("operations[{}]", self.operations.len());
        let Some(key) = self.key(format!("{at}.key"), key) else {
            return self;
        };
        let mut fields = Map::new();
        fields.insert("op".into(), "put".into());
        fields.insert("key".into(), key.as_str().into());
        match serde_json::to_value(value) {
            Ok(v) => {
                fields.insert("value".into(), v);
            }
            Err(e) => {
                self.error.get_or_insert_with(|| {
                    StorageError::validation(format!("{at}.value"), e.to_string())
                });
                return self;
            }
        }
        if options.if_revision.is_some() {
            self.error.get_or_insert_with(|| {
                StorageError::validation(
                    format!("{at}.ifRevision"),
                    "an atomic write is guarded by its checks",
                )
            });
            return self;
        }
        if let Err(e) = options.apply(&mut fields) {
            self.error.get_or_insert(e);
            return self;
        }
        match serde_json::from_value::<AtomicOperation>(Value::Object(fields)) {
            Ok(op) => self.operations.push(op),
            Err(e) => {
                self.error
                    .get_or_insert_with(|| StorageError::validation(at, e.to_string()));
            }
        }
        self
    }

    /// Delete `key` (a missing record is no error).
    pub fn delete(mut self, key: &str) -> Self {
        let at = format!("operations[{}].key", self.operations.len());
        if let Some(key) = self.key(at, key) {
            self.operations.push(AtomicOperation::Delete { key });
        }
        self
    }

    /// Add `delta` to the integer value of `key` (a missing record counts as 0 and is
    /// created); the result says the new value.
    pub fn increment(mut self, key: &str, delta: i64) -> Self {
        let at = format!("operations[{}].key", self.operations.len());
        if let Some(key) = self.key(at, key) {
            self.operations.push(AtomicOperation::Increment {
                key,
                delta: delta.into(),
                ttl_seconds: None,
            });
        }
        self
    }

    /// Apply everything or nothing: one result per operation, in order.
    pub fn commit(self) -> Result<AtomicResponse> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let request = AtomicRequest {
            namespace: self.ns.name.clone(),
            checks: self.checks,
            operations: self.operations,
        };
        request.validate()?;
        wire::atomic(request)
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
            value: serde_json::to_value(value)
                .map_err(|e| StorageError::validation("value", e.to_string())),
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
        let mut fields = Map::new();
        fields.insert("key".into(), key.into());
        if let Some(r) = revision {
            fields.insert("ifRevision".into(), r.into());
        }
        match wire::get(self.request(fields)?) {
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
        let mut fields = Map::new();
        fields.insert("key".into(), key.into());
        if let Some(r) = revision {
            fields.insert("ifRevision".into(), r.into());
        }
        wire::delete(self.request(fields)?)
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
            fields: Map::new(),
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
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Key::new(*k).map_err(|e| StorageError::validation(format!("keys[{i}]"), e.reason))
            })
            .collect::<Result<Vec<_>>>()?;
        let request = GetManyRequest {
            namespace: self.name.clone(),
            keys,
        };
        request.validate()?;
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
        let mut fields = Map::new();
        fields.insert("namespace".into(), self.name.as_str().into());
        fields.insert("after".into(), after.into());
        if let Some(limit) = limit {
            fields.insert("limit".into(), limit.into());
        }
        if let Some(prefix) = key_prefix {
            fields.insert("keyPrefix".into(), prefix.into());
        }
        wire::changes(ChangesRequest::from_fields(fields)?)
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

    /// The request of a call in this namespace, built and validated by sdk-core exactly as the
    /// server validates it ([`FromFields`]), so a request the server would refuse is refused
    /// here with the same error.
    fn request<T: FromFields>(&self, mut fields: Map<String, Value>) -> Result<T> {
        fields.insert("namespace".into(), self.name.as_str().into());
        T::from_fields(fields)
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
