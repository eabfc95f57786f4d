//! The `wasi:keyvalue` imports (`store`, `atomics`, `batch` at 0.2.0-draft2), filled from the
//! storage service through the same runner endpoint as `alga:storage`:
//!
//! | wasi:keyvalue | runner operation |
//! |---|---|
//! | `store.open(id)` | a namespace named `id`; a name that is not a namespace name is `no-such-store`, an ungranted one `access-denied` (checked with a one-key `list`) |
//! | `bucket.get` / `exists` | `get` (`NOT_FOUND` is `none` / `false`) |
//! | `bucket.set` / `delete` | `put` / `delete` (deleting a missing key succeeds) |
//! | `bucket.list-keys(cursor)` | `list` with the cursor: our opaque, signed cursor |
//! | `atomics.increment` | `atomic` with one `increment` |
//! | `atomics.cas` / `swap` | `get`, then `atomic` checking the revision read (0: absent) and putting |
//! | `batch.get-many` | `getMany`, 100 keys per call |
//! | `batch.set-many` / `delete-many` | `atomic`, 20 operations per call |
//!
//! Values are bytes on this side and JSON in the store: [`alga_storage_core::bytes`] maps them.
//! Errors: `NAMESPACE_DENIED` and `UNAUTHORIZED` are `access-denied`; any other is
//! `other("<CODE>: <message>")`.

use crate::host::HostState;
use crate::keyvalue_bindings::wasi::keyvalue::{atomics, batch, store};
use alga_storage_core::bytes::{bytes_of, value_of};
use alga_storage_core::{ErrorKind, StorageError};
use serde_json::{json, Map, Value};
use wasmtime::component::Resource;

/// An open bucket: a namespace.
#[derive(Debug)]
pub struct Bucket {
    namespace: String,
}

/// A compare-and-swap handle: the key, the revision read (0: absent) and the value read.
#[derive(Debug)]
pub struct Cas {
    namespace: String,
    key: String,
    revision: u64,
    current: Option<Vec<u8>>,
}

/// Keys one `getMany` reads.
const GET_MANY: usize = 100;
/// Operations one `atomic` writes.
const ATOMIC: usize = 20;

type Outcome<T> = wasmtime::Result<Result<T, store::Error>>;

/// The last of each key's entries, in the order of those last entries (a later write of a key
/// wins, as it would one by one; one `atomic` takes each key once).
fn last_of_each<T>(entries: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut last = std::collections::HashMap::new();
    for (i, (key, _)) in entries.iter().enumerate() {
        last.insert(key.clone(), i);
    }
    entries
        .into_iter()
        .enumerate()
        .filter(|(i, (key, _))| last.get(key) == Some(i))
        .map(|(_, entry)| entry)
        .collect()
}

/// A contract error as `wasi:keyvalue/store.error`.
fn to_wasi(e: StorageError) -> store::Error {
    match e.kind() {
        ErrorKind::NamespaceDenied | ErrorKind::Unauthorized => store::Error::AccessDenied,
        _ => store::Error::Other(format!("{}: {}", e.code().as_str(), e.message())),
    }
}

fn body(namespace: &str, fields: Value) -> Map<String, Value> {
    let mut body = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    body.insert("namespace".into(), namespace.into());
    body
}

impl HostState {
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.namespace.clone())
    }

    /// The record's revision and bytes, or `(0, None)` when there is none. (The futures own
    /// what they need: the store's data is not `Sync`.)
    fn read(
        &self,
        namespace: &str,
        key: &str,
    ) -> impl std::future::Future<Output = Result<(u64, Option<Vec<u8>>), StorageError>> + Send + 'static
    {
        let get = self.call("get", body(namespace, json!({ "key": key })));
        async move {
            match get.await {
                Ok(record) => Ok((
                    record["revision"].as_u64().unwrap_or(0),
                    Some(bytes_of(&record["value"])),
                )),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok((0, None)),
                Err(e) => Err(e),
            }
        }
    }

    /// `operations` as `atomic` calls of at most [`ATOMIC`] each, one after the other.
    fn atomic_in_chunks(
        &self,
        namespace: &str,
        operations: Vec<Value>,
    ) -> impl std::future::Future<Output = Result<(), StorageError>> + Send + 'static {
        let calls: Vec<_> = operations
            .chunks(ATOMIC)
            .map(|chunk| self.atomic(namespace, json!({ "operations": chunk })))
            .collect();
        async move {
            for call in calls {
                call.await?;
            }
            Ok(())
        }
    }

    fn atomic(
        &self,
        namespace: &str,
        request: Value,
    ) -> impl std::future::Future<Output = Result<Value, StorageError>> + Send + 'static {
        self.call("atomic", body(namespace, request))
    }
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Outcome<Resource<Bucket>> {
        if alga_storage_core::Namespace::new(identifier.clone()).is_err() {
            return Ok(Err(store::Error::NoSuchStore));
        }
        // The install's grants decide: a one-key list answers NAMESPACE_DENIED without one.
        if let Err(e) = self
            .call("list", body(&identifier, json!({ "limit": 1 })))
            .await
        {
            return Ok(Err(to_wasi(e)));
        }
        Ok(Ok(self.table.push(Bucket {
            namespace: identifier,
        })?))
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Option<Vec<u8>>> {
        let namespace = self.bucket(&bucket)?;
        Ok(self
            .read(&namespace, &key)
            .await
            .map(|(_, bytes)| bytes)
            .map_err(to_wasi))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Outcome<()> {
        let namespace = self.bucket(&bucket)?;
        let request = json!({ "key": key, "value": value_of(&value) });
        Ok(self
            .call("put", body(&namespace, request))
            .await
            .map(drop)
            .map_err(to_wasi))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<()> {
        let namespace = self.bucket(&bucket)?;
        Ok(
            match self
                .call("delete", body(&namespace, json!({ "key": key })))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(to_wasi(e)),
            },
        )
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<bool> {
        let namespace = self.bucket(&bucket)?;
        Ok(self
            .read(&namespace, &key)
            .await
            .map(|(_, bytes)| bytes.is_some())
            .map_err(to_wasi))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Outcome<store::KeyResponse> {
        let namespace = self.bucket(&bucket)?;
        let request = match cursor {
            Some(cursor) => json!({ "cursor": cursor }),
            None => json!({}),
        };
        Ok(self
            .call("list", body(&namespace, request))
            .await
            .map(|page| store::KeyResponse {
                keys: page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item["key"].as_str().map(str::to_owned))
                    .collect(),
                cursor: page["nextCursor"].as_str().map(str::to_owned),
            })
            .map_err(to_wasi))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Outcome<i64> {
        let namespace = self.bucket(&bucket)?;
        let request = json!({ "operations": [{ "op": "increment", "key": key, "delta": delta }] });
        Ok(self
            .atomic(&namespace, request)
            .await
            .map(|answer| answer["results"][0]["value"].as_i64().unwrap_or_default())
            .map_err(to_wasi))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas {
            namespace,
            key,
            revision,
            ..
        } = self.table.delete(cas)?;
        let request = json!({
            "checks": [{ "key": key, "revision": revision }],
            "operations": [{ "op": "put", "key": key, "value": value_of(&value) }],
        });
        Ok(match self.atomic(&namespace, request).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::RevisionMismatch => {
                // The handle comes back with what is there now, to retry with.
                match self.read(&namespace, &key).await {
                    Ok((revision, current)) => {
                        Err(atomics::CasError::CasFailed(self.table.push(Cas {
                            namespace,
                            key,
                            revision,
                            current,
                        })?))
                    }
                    Err(e) => Err(atomics::CasError::StoreError(to_wasi(e))),
                }
            }
            Err(e) => Err(atomics::CasError::StoreError(to_wasi(e))),
        })
    }
}

impl atomics::HostCas for HostState {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> Outcome<Resource<Cas>> {
        let namespace = self.bucket(&bucket)?;
        Ok(match self.read(&namespace, &key).await {
            Ok((revision, current)) => Ok(self.table.push(Cas {
                namespace,
                key,
                revision,
                current,
            })?),
            Err(e) => Err(to_wasi(e)),
        })
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Outcome<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Outcome<Vec<Option<(String, Vec<u8>)>>> {
        let namespace = self.bucket(&bucket)?;
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(GET_MANY) {
            let answer = match self
                .call("getMany", body(&namespace, json!({ "keys": chunk })))
                .await
            {
                Ok(answer) => answer,
                Err(e) => return Ok(Err(to_wasi(e))),
            };
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            found.extend(chunk.iter().zip(items).map(|(key, item)| {
                (!item.is_null()).then(|| (key.clone(), bytes_of(&item["value"])))
            }));
        }
        Ok(Ok(found))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Outcome<()> {
        let namespace = self.bucket(&bucket)?;
        let operations = last_of_each(key_values)
            .into_iter()
            .map(|(key, value)| json!({ "op": "put", "key": key, "value": value_of(&value) }))
            .collect();
        Ok(self
            .atomic_in_chunks(&namespace, operations)
            .await
            .map_err(to_wasi))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Outcome<()> {
        let namespace = self.bucket(&bucket)?;
        let operations = last_of_each(keys.into_iter().map(|k| (k, ())).collect())
            .into_iter()
            .map(|(key, ())| json!({ "op": "delete", "key": key }))
            .collect();
        Ok(self
            .atomic_in_chunks(&namespace, operations)
            .await
            .map_err(to_wasi))
    }
}
