//! Every limit of the storage contract, one named constant each.

/// Longest namespace, in characters.
pub const MAX_NAMESPACE_CHARS: usize = 64;
/// Longest key, in Unicode characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest install id, in characters.
pub const MAX_INSTALL_ID_CHARS: usize = 128;
/// Largest serialized `value` of one record, in bytes (64 KiB).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Deepest nesting of arrays and objects in a value or a metadata object (`[[1]]` nests 2
/// deep), the same on every surface.
pub const MAX_VALUE_DEPTH: usize = 100;
/// Largest serialized `metadata` of one record, in bytes (4 KiB).
pub const MAX_METADATA_BYTES: usize = 4 * 1024;
/// Shortest allowed time to live, in seconds.
pub const MIN_TTL_SECONDS: u32 = 60;
/// Longest allowed time to live, in seconds (30 days).
pub const MAX_TTL_SECONDS: u32 = 30 * 24 * 60 * 60;
/// Page size of `list` when the request names none.
pub const DEFAULT_LIST_LIMIT: u8 = 25;
/// Largest page size of `list`.
pub const MAX_LIST_LIMIT: u8 = 100;
/// Most items in one `bulkPut`.
pub const MAX_BULK_ITEMS: usize = 20;
/// Largest total of serialized values and metadata in one `bulkPut`, in bytes (512 KiB).
pub const MAX_BULK_BYTES: usize = 512 * 1024;
/// Most namespaces one principal (extension install) may hold grants for.
pub const MAX_NAMESPACES_PER_PRINCIPAL: usize = 32;
/// Largest revision a guard may name (revisions are stored as signed 64-bit integers).
pub const MAX_REVISION: u64 = i64::MAX as u64;
/// Most operations in one namespace snapshot `PATCH`.
pub const MAX_PATCH_OPS: usize = 100;
