//! # alga-storage-web
//!
//! The browser SDK of Alga extension storage, for iframe UIs: a `StorageClient` with `put`,
//! `get`, `delete`, `bulkPut`, `list`, `listAll` (an async iterator over every page),
//! `getMany`, `atomic`, `increment`, the change feed (`changes`, and `watch`: an async iterator
//! over live changes) and the namespace snapshot API (`snapshot`, `patch`), compiled to WebAssembly and packed by
//! `wasm-pack` into the npm package `alga-storage-web` with TypeScript types generated from the
//! contract types of [`alga_storage_core`].
//!
//! ```js
//! import init, { StorageClient, isStorageError } from "alga-storage-web";
//! await init();
//! const client = new StorageClient({ baseUrl: "https://storage.example.com", token });
//! try {
//!   await client.put("notes", "n1", { text: "hi" }, { ifRevision: 0 });
//! } catch (e) {
//!   if (isStorageError(e) && e.code === "REVISION_MISMATCH") { /* someone else wrote it */ }
//! }
//! ```
//!
//! Every call validates its input in the browser with the server's own rules (sdk-core's
//! validating constructors, `PutRequest::new` and the like), so a bad call rejects with the
//! server's error before any request. Values are plain JavaScript values, converted with the browser's own
//! `JSON.stringify` / `JSON.parse`. Every failure rejects with a `StorageError` carrying `code`,
//! `status`, `message` and `details`.
#![deny(missing_docs)]

mod client;
pub mod error;
pub mod input;
pub mod json;
pub mod transport;
pub mod watch;

// Talc instead of dlmalloc: a smaller module (see sdk-web/Cargo.toml).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

pub use alga_storage_core as core;
pub use client::{AtomicWrite, ClientOptions, NamespaceSnapshot, PatchResult, StorageClient};
pub use error::is_storage_error;
pub use transport::RequestOptions;
