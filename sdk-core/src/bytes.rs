//! Values as bytes, for `wasi:keyvalue` guests: the one mapping between the store's JSON values
//! and the byte strings the standard interface reads and writes.
//!
//! - Bytes that are exactly the compact JSON text of a value (as `serde_json` writes it: no
//!   whitespace, keys in order, numbers as they print) are stored as that value, so a counter a
//!   `wasi:keyvalue` guest writes as `42` reads as the number 42 through every JSON surface.
//! - Any other bytes (not UTF-8, not JSON, or JSON written differently) are stored as
//!   `{"$base64": "<standard base64>"}`, and so is JSON text that is itself such an object,
//!   so that every byte string reads back exactly as it was written.
//! - A value written through a JSON surface reads as its compact JSON text, except an object
//!   whose only member is a `$base64` string of valid base64, which reads as the decoded bytes.
//!
//! ```
//! use alga_storage_core::bytes::{bytes_of, value_of};
//! let counter = value_of(b"42");
//! assert_eq!(counter, serde_json::json!(42));
//! assert_eq!(bytes_of(&counter), b"42");
//! let raw = value_of(&[0xff, 0x00]);
//! assert_eq!(raw, serde_json::json!({"$base64": "/wA="}));
//! assert_eq!(bytes_of(&raw), [0xff, 0x00]);
//! ```

use base64::Engine as _;
use serde_json::Value;

/// The member of the object that holds bytes that are not compact JSON.
pub const BASE64_MEMBER: &str = "$base64";

/// The value that stores `bytes`.
pub fn value_of(bytes: &[u8]) -> Value {
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        if encoded(&value).is_none()
            && serde_json::to_vec(&value).is_ok_and(|compact| compact == bytes)
        {
            return value;
        }
    }
    let mut wrapped = serde_json::Map::new();
    wrapped.insert(
        BASE64_MEMBER.to_owned(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    );
    Value::Object(wrapped)
}

/// The bytes `value` reads as.
pub fn bytes_of(value: &Value) -> Vec<u8> {
    encoded(value).unwrap_or_else(|| serde_json::to_vec(value).unwrap_or_default())
}

/// The bytes of a `{"$base64": "…"}` object, if `value` is one.
fn encoded(value: &Value) -> Option<Vec<u8>> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let text = object.get(BASE64_MEMBER)?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn compact_json_is_stored_as_json_and_everything_else_as_base64() {
        for (bytes, stored) in [
            (&b"42"[..], json!(42)),
            (b"\"hi\"", json!("hi")),
            (
                b"{\"a\":1,\"b\":[true,null]}",
                json!({"a": 1, "b": [true, null]}),
            ),
            (b"hello", json!({"$base64": "aGVsbG8="})),
            (b"{ \"a\": 1 }", json!({"$base64": "eyAiYSI6IDEgfQ=="})),
            (
                b"{\"b\":1,\"a\":2}",
                json!({"$base64": "eyJiIjoxLCJhIjoyfQ=="}),
            ),
            (b"1e2", json!({"$base64": "MWUy"})),
            (b"", json!({"$base64": ""})),
            (
                b"{\"$base64\":\"aGk=\"}",
                json!({"$base64": "eyIkYmFzZTY0IjoiYUdrPSJ9"}),
            ),
        ] {
            assert_eq!(
                value_of(bytes),
                stored,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(bytes_of(&stored), bytes);
        }
    }

    #[test]
    fn json_written_elsewhere_reads_as_its_compact_text() {
        assert_eq!(
            bytes_of(&json!({"n": 1.5, "s": "é"})),
            "{\"n\":1.5,\"s\":\"é\"}".as_bytes()
        );
        // Not valid base64, or not alone: ordinary JSON.
        assert_eq!(bytes_of(&json!({"$base64": "!"})), b"{\"$base64\":\"!\"}");
        assert_eq!(
            bytes_of(&json!({"$base64": "aGk=", "x": 1})),
            b"{\"$base64\":\"aGk=\",\"x\":1}"
        );
    }

    proptest! {
        #[test]
        fn every_byte_string_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(bytes_of(&value_of(&bytes)), bytes);
        }

        #[test]
        fn every_json_text_round_trips(n in any::<i64>(), s in ".{0,16}") {
            let bytes = serde_json::to_vec(&json!({"n": n, "s": s})).unwrap();
            prop_assert_eq!(bytes_of(&value_of(&bytes)), bytes);
        }
    }
}
