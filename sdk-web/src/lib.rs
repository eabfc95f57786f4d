//! # alga-storage-web
//!
//! Browser SDK for iframe UIs. Not built yet: the `wasm-bindgen` client and npm package arrive
//! with the browser SDK issue. Today it re-exports the contract types of [`alga_storage_core`].
#![deny(missing_docs)]

pub use alga_storage_core as core;
