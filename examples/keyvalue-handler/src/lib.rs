//! # Example extension handler on `wasi:keyvalue`
//!
//! A handler component for the `keyvalue-extension` world: it imports only the standard
//! `wasi:keyvalue` interfaces (`store`, `atomics`, `batch` at 0.2.0-draft2), as a handler
//! written for Spin or wasmCloud would, and runs unchanged on the reference runner host, which
//! fills them from this store (buckets are namespaces). Built with
//! `cargo build -p alga-storage-example-keyvalue --target wasm32-wasip2 --release`.
//!
//! The runner calls `handle` with a JSON command; values travel as byte arrays (`"bytes"`) or
//! UTF-8 text (`"text"`):
//!
//! | input | what it does |
//! |---|---|
//! | `{"op":"set","bucket":"kv","key":"k","text":"42"}` | `bucket.set` (or `"bytes":[…]`) |
//! | `{"op":"get","bucket":"kv","key":"k"}` | `bucket.get` → `{"bytes":[…]\|null,"text":…}` (`"times":n` reads it n times) |
//! | `{"op":"exists"…}`, `{"op":"delete"…}` | `bucket.exists`, `bucket.delete` |
//! | `{"op":"keys","bucket":"kv"}` | every key, page by page with `list-keys` → `{"keys":[…],"pages":n}` |
//! | `{"op":"increment","bucket":"kv","key":"n","delta":1}` | `atomics.increment` → `{"value":n}` |
//! | `{"op":"casAppend","bucket":"kv","key":"log","text":"x"}` | appends to a text with `cas`/`swap`, retrying when another writer won → `{"attempts":n}` |
//! | `{"op":"setMany","bucket":"kv","entries":{"a":"1"}}`, `{"op":"getMany","bucket":"kv","keys":[…]}`, `{"op":"deleteMany",…}` | `batch` |
//!
//! A failure answers `Err` with `{"error":"no-such-store"|"access-denied"|"other","message":…}`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "keyvalue-extension",
        path: "../../sdk-guest/wit",
        generate_all,
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// The commands the handler understands.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum Command {
    /// Writes a value.
    Set {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// UTF-8 text to write.
        text: Option<String>,
        /// Bytes to write.
        bytes: Option<Vec<u8>>,
    },
    /// Reads a value (`times` times, for the guest benchmark; default once).
    Get {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// How many times to read it.
        times: Option<u32>,
    },
    /// Whether a key exists.
    Exists {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// Deletes a key.
    Delete {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// Every key of the bucket.
    Keys {
        /// The bucket.
        bucket: String,
    },
    /// Adds to a counter.
    Increment {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What to add.
        delta: i64,
    },
    /// Appends text with compare-and-swap.
    CasAppend {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What to append.
        text: String,
    },
    /// Writes several values.
    SetMany {
        /// The bucket.
        bucket: String,
        /// Key → UTF-8 text.
        entries: Map<String, Value>,
    },
    /// Reads several values.
    GetMany {
        /// The bucket.
        bucket: String,
        /// The keys.
        keys: Vec<String>,
    },
    /// Deletes several keys.
    DeleteMany {
        /// The bucket.
        bucket: String,
        /// The keys.
        keys: Vec<String>,
    },
}

/// How many times `casAppend` tries before giving up.
pub const MAX_ATTEMPTS: u32 = 100;

fn failure(e: store::Error) -> String {
    let (error, message) = match e {
        store::Error::NoSuchStore => ("no-such-store", String::new()),
        store::Error::AccessDenied => ("access-denied", String::new()),
        store::Error::Other(m) => ("other", m),
    };
    json!({ "error": error, "message": message }).to_string()
}

fn shown(bytes: Option<Vec<u8>>) -> Value {
    match bytes {
        Some(b) => json!({ "text": String::from_utf8(b.clone()).ok(), "bytes": b }),
        None => json!({ "text": null, "bytes": null }),
    }
}

fn run(command: Command) -> Result<Value, store::Error> {
    Ok(match command {
        Command::Set {
            bucket,
            key,
            text,
            bytes,
        } => {
            let value = bytes.unwrap_or_else(|| text.unwrap_or_default().into_bytes());
            store::open(&bucket)?.set(&key, &value)?;
            json!({})
        }
        Command::Get { bucket, key, times } => {
            let bucket = store::open(&bucket)?;
            let mut value = None;
            for _ in 0..times.unwrap_or(1).max(1) {
                value = bucket.get(&key)?;
            }
            shown(value)
        }
        Command::Exists { bucket, key } => json!({ "exists": store::open(&bucket)?.exists(&key)? }),
        Command::Delete { bucket, key } => {
            store::open(&bucket)?.delete(&key)?;
            json!({})
        }
        Command::Keys { bucket } => {
            let bucket = store::open(&bucket)?;
            let (mut keys, mut pages, mut cursor) = (Vec::new(), 0, None);
            loop {
                let page = bucket.list_keys(cursor.as_deref())?;
                pages += 1;
                keys.extend(page.keys);
                match page.cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            json!({ "keys": keys, "pages": pages })
        }
        Command::Increment { bucket, key, delta } => {
            let bucket = store::open(&bucket)?;
            json!({ "value": atomics::increment(&bucket, &key, delta)? })
        }
        Command::CasAppend { bucket, key, text } => {
            let bucket = store::open(&bucket)?;
            let mut cas = atomics::Cas::new(&bucket, &key)?;
            for attempt in 1..=MAX_ATTEMPTS {
                let mut value = cas.current()?.unwrap_or_default();
                value.extend_from_slice(text.as_bytes());
                match atomics::swap(cas, &value) {
                    Ok(()) => return Ok(json!({ "attempts": attempt })),
                    Err(atomics::CasError::CasFailed(again)) => cas = again,
                    Err(atomics::CasError::StoreError(e)) => return Err(e),
                }
            }
            return Err(store::Error::Other(format!(
                "gave up after {MAX_ATTEMPTS} attempts"
            )));
        }
        Command::SetMany { bucket, entries } => {
            let pairs: Vec<(String, Vec<u8>)> = entries
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().as_bytes().to_vec()))
                .collect();
            batch::set_many(&store::open(&bucket)?, &pairs)?;
            json!({})
        }
        Command::GetMany { bucket, keys } => {
            let found = batch::get_many(&store::open(&bucket)?, &keys)?;
            Value::Array(
                found
                    .into_iter()
                    .map(|entry| match entry {
                        Some((key, bytes)) => json!({ "key": key, "value": shown(Some(bytes)) }),
                        None => Value::Null,
                    })
                    .collect(),
            )
        }
        Command::DeleteMany { bucket, keys } => {
            batch::delete_many(&store::open(&bucket)?, &keys)?;
            json!({})
        }
    })
}

struct KeyValue;

impl bindings::Guest for KeyValue {
    fn handle(input: String) -> Result<String, String> {
        let command: Command = serde_json::from_str(&input)
            .map_err(|e| json!({ "error": "bad-input", "message": e.to_string() }).to_string())?;
        run(command).map(|v| v.to_string()).map_err(failure)
    }
}

bindings::export!(KeyValue with_types_in bindings);
