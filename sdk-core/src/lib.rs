//! # alga-storage-core
//!
//! The typed contract of Alga extension storage, shared by the guest SDK, the browser SDK and
//! the reference server: requests, responses and records of the five operations (`put`, `get`,
//! `list`, `delete`, `bulkPut`), the runner's `operation` envelope, validated identifiers, every
//! limit as a named constant, error codes with their HTTP statuses, and the capability check.
//!
//! This crate does no I/O and builds for `wasm32-unknown-unknown` and `wasm32-wasip2`.
//!
//! ```
//! use alga_storage_core::{parse_json, PutRequest, ErrorCode};
//! let req: PutRequest = parse_json(br#"{"namespace":"settings","key":"k","value":{"a":1}}"#).unwrap();
//! req.validate().unwrap();
//! let bad = parse_json::<PutRequest>(br#"{"namespace":"Settings","key":"k","value":1}"#).unwrap_err();
//! assert_eq!(bad.code(), ErrorCode::ValidationFailed);
//! assert_eq!(bad.details().unwrap()["field"], "namespace");
//! ```
#![deny(missing_docs)]

mod atomic;
pub mod bytes;
mod capability;
mod changes;
mod construct;
mod error;
pub mod limits;
mod names;
mod ops;
mod snapshot;

pub use atomic::{
    failed_checks, incremented, AtomicBody, AtomicCheck, AtomicOperation, AtomicRequest,
    AtomicResponse, AtomicResult, FailedCheck, GetManyBody, GetManyRequest, GetManyResponse,
    MAX_ATOMIC_CHECKS, MAX_ATOMIC_OPERATIONS, MAX_GET_MANY_KEYS,
};
pub use capability::{ensure_capability, validate_grants, Access, Grant};
pub use changes::{Change, ChangeOp, ChangesRequest, ChangesResponse, LogBounds, Sequence};
pub use construct::{BulkPutInput, ListInput, OperationInput, PatchInput, WriteInput};
pub use error::{BulkItemError, ErrorCode, ErrorKind, StorageError, TransportCause};
pub use names::{
    optional_whole_number, Cursor, InstallId, InvalidValue, Key, Limit, Namespace, Revision,
    TtlSeconds, WholeNumber,
};
pub use ops::{
    canonical_json, check_record, json_contains, json_size, not_null, parse_json, BulkPutBody,
    BulkPutItem, BulkPutRequest, BulkPutResponse, BulkPutResultItem, DeleteRequest, FromFields,
    GetRequest, ListItem, ListRequest, ListResponse, Metadata, PutBody, PutRequest, PutResponse,
    Record, StorageRequest, OPERATIONS,
};
pub use snapshot::{parse_etag, validate_patch, PatchOp, Snapshot, ETAG_PATTERN};

/// TypeScript declarations the generated ones refer to (feature `ts`).
#[cfg(feature = "ts")]
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TS_JSON: &'static str = r#"
/** Any JSON value: what a record's value may be. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A record's metadata: a JSON object (filter lists with it by containment). */
export type Metadata = { [key: string]: JsonValue };
"#;
