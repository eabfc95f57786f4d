//! # alga-storage-guest
//!
//! Guest SDK for WASM component handlers. Not built yet: the WIT package and the typed API
//! arrive with the guest SDK issue. Today it re-exports the contract types of
//! [`alga_storage_core`].
#![deny(missing_docs)]

pub use alga_storage_core as core;
