//! # alga-storage-guest
//!
//! Durable key/value storage for Alga extension handlers compiled to WASM components
//! (`wasm32-wasip2`). The handler imports the WIT interface `alga:storage/storage@0.1.0`
//! (in this crate's `wit/` folder); the runner fills it by calling the storage service on the
//! handler's behalf, scoped to the install that runs it.
//!
//! This crate wraps the generated bindings in a typed API over the contract of
//! [`alga_storage_core`]: values are any `serde` type, every input is validated in the guest with
//! exactly the errors the server would give (nothing crosses the boundary that the server would
//! refuse for its shape), and every failure is one error type, [`StorageError`], whose
//! [`kind`](StorageError::kind) is the WIT variant case and whose [`code`](StorageError::code) is
//! the contract's code.
//!
//! ```no_run
//! use alga_storage_guest::{Namespace, Record, StorageError, ErrorCode};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Prefs { theme: String }
//!
//! # fn main() -> Result<(), StorageError> {
//! let ns = Namespace::open("settings")?;
//! ns.put("prefs", &Prefs { theme: "dark".into() })?;
//! let rec: Option<Record<Prefs>> = ns.get("prefs")?;
//! assert_eq!(rec.unwrap().value.theme, "dark");
//!
//! // Optimistic concurrency: write only if nobody wrote since we read.
//! let current: Record<u64> = ns.get("visits")?.expect("exists");
//! match ns.write("visits", &(current.value + 1)).if_revision(current.revision).send() {
//!     Ok(done) => println!("now at revision {}", done.revision),
//!     Err(e) if e.code() == ErrorCode::RevisionMismatch => println!("lost the race; retry"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! Outside a WASM component (e.g. in native unit tests) the imports do not exist: calling them
//! panics. Build with `cargo build --target wasm32-wasip2`.
#![deny(missing_docs)]

mod api;
mod wire;

/// The bindings `wit-bindgen` generates for the `storage-client` world (the `alga:storage`
/// import alone). Handler crates that export a world of their own map the import onto these
/// with `with: { "alga:storage/storage@0.1.0": alga_storage_guest::bindings::alga::storage::storage }`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "storage-client",
        path: "wit",
        generate_all,
    });
}

pub use alga_storage_core as core;
pub use alga_storage_core::{
    AtomicResponse, AtomicResult, BulkPutResponse, BulkPutResultItem, ErrorCode, ErrorKind,
    ListItem, ListResponse, Metadata, PutResponse, Record, StorageError,
};
pub use api::{Atomic, BulkPut, List, ListIter, Namespace, Write, WriteOptions};
pub use wire::execute;

/// The Rust snippets of the guides (`README.md`, `docs/guest.md`), compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
#[doc = include_str!("../../docs/guest.md")]
pub struct Guides;

/// The result of every storage call.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The WIT package's text, for runners and tools that want to embed or check it.
pub const WIT: &str = include_str!("../wit/storage.wit");
