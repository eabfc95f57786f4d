//! # Example extension handler: counters
//!
//! A handler component for the `alga:storage/extension` world, built with
//! `cargo build -p alga-storage-example-counter --target wasm32-wasip2 --release`.
//! The runner calls `handle` with a JSON command and gets JSON back:
//!
//! | input | what it does |
//! |---|---|
//! | `{"op":"increment","counter":"visits","by":1}` | add on the server in one step (`Namespace::increment`): no read, no retry |
//! | `{"op":"incrementByRetry","counter":"visits","by":1}` | the alternative without atomic operations: read, add, write guarded by the revision it read; retry on `REVISION_MISMATCH` |
//! | `{"op":"seed","counters":{"a":1,"b":2}}` | one atomic bulk write |
//! | `{"op":"totals","pageSize":2}` | walk every counter, page by page, and sum them |
//! | `{"op":"session","id":"s1","ttlSeconds":60}` | a record that expires |
//! | `{"op":"reset","counter":"visits"}` | delete a counter |
//!
//! Counters live in the namespace `counters`, sessions in `sessions`. A storage failure is
//! answered as `Err` with the JSON `{"kind":"…","error":{"code":…,"message":…,"details":…}}`.

use alga_storage_guest::{ErrorCode, Namespace, StorageError, WriteOptions};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "extension",
        path: "../../sdk-guest/wit",
        with: {
            "alga:storage/storage@0.1.0": alga_storage_guest::bindings::alga::storage::storage,
        },
    });
}

/// How many times an increment retries after losing a race.
pub const MAX_ATTEMPTS: u32 = 100;

/// The commands the handler understands.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum Command {
    /// Add `by` (default 1) to a counter on the server, creating it at `by`.
    Increment {
        /// Counter name (a storage key).
        counter: String,
        /// Amount to add.
        #[serde(default = "one")]
        by: i64,
    },
    /// Add `by` with a read and a guarded write, retried when another writer won the race:
    /// what a store without atomic operations forces on a handler.
    #[serde(rename = "incrementByRetry")]
    IncrementByRetry {
        /// Counter name (a storage key).
        counter: String,
        /// Amount to add.
        #[serde(default = "one")]
        by: i64,
    },
    /// Write several counters at once, all or nothing.
    Seed {
        /// Counter name → value.
        counters: Map<String, Value>,
    },
    /// Sum every counter, reading `pageSize` counters per storage call.
    #[serde(rename_all = "camelCase")]
    Totals {
        /// Page size of the walk.
        #[serde(default = "twenty")]
        page_size: u32,
    },
    /// Record a session that expires after `ttlSeconds`.
    #[serde(rename_all = "camelCase")]
    Session {
        /// Session id.
        id: String,
        /// Lifetime in seconds.
        ttl_seconds: u64,
    },
    /// Delete a counter.
    Reset {
        /// Counter name.
        counter: String,
    },
}

fn one() -> i64 {
    1
}

fn twenty() -> u32 {
    20
}

/// Runs one command: the handler's logic, independent of the WIT glue.
pub fn run(command: Command) -> Result<Value, StorageError> {
    let counters = Namespace::open("counters")?;
    match command {
        Command::Increment { counter, by } => {
            let done = counters.atomic().increment(&counter, by).commit()?;
            let result = &done.results[0];
            Ok(json!({
                "counter": counter,
                "value": result.value,
                "revision": result.revision,
                "attempts": 1,
            }))
        }
        Command::IncrementByRetry { counter, by } => {
            for attempt in 1..=MAX_ATTEMPTS {
                let current = counters.get::<i64>(&counter)?;
                let (value, guard) = match &current {
                    Some(rec) => (rec.value + by, rec.revision),
                    None => (by, 0),
                };
                match counters.write(&counter, &value).if_revision(guard).send() {
                    Ok(written) => {
                        return Ok(json!({
                            "counter": counter,
                            "value": value,
                            "revision": written.revision,
                            "attempts": attempt,
                        }))
                    }
                    Err(e) if e.code() == ErrorCode::RevisionMismatch => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(StorageError::revision_mismatch(0))
        }
        Command::Seed { counters: values } => {
            let mut bulk = counters.bulk_put();
            for (name, value) in &values {
                bulk = bulk.item_with(
                    name,
                    value,
                    WriteOptions::new().metadata(&json!({"seeded": true})),
                );
            }
            let written = bulk.send()?;
            Ok(json!({ "written": written.items.len() }))
        }
        Command::Totals { page_size } => {
            let mut all = Map::new();
            let mut total = 0i64;
            for item in counters.list::<i64>().values().limit(page_size) {
                let item = item?;
                let value = item.value.unwrap_or_default();
                total += value;
                all.insert(item.key.into(), value.into());
            }
            Ok(json!({ "counters": all, "total": total }))
        }
        Command::Session { id, ttl_seconds } => {
            let sessions = Namespace::open("sessions")?;
            let written = sessions
                .write(&id, &json!({ "id": id }))
                .ttl_seconds(ttl_seconds)
                .send()?;
            Ok(json!({ "id": id, "expiresAt": written.ttl_expires_at }))
        }
        Command::Reset { counter } => {
            counters.delete(&counter)?;
            Ok(json!({ "counter": counter, "deleted": true }))
        }
    }
}

/// A storage error as the handler's error answer.
pub fn error_answer(e: &StorageError) -> String {
    json!({ "kind": format!("{:?}", e.kind()), "error": e }).to_string()
}

struct Counter;

impl bindings::Guest for Counter {
    fn handle(input: String) -> Result<String, String> {
        let command: Command = serde_json::from_str(&input)
            .map_err(|e| json!({ "kind": "BadInput", "message": e.to_string() }).to_string())?;
        run(command)
            .map(|answer| answer.to_string())
            .map_err(|e| error_answer(&e))
    }
}

bindings::export!(Counter with_types_in bindings);
