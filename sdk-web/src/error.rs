//! Errors as JavaScript sees them: every failure rejects with a `StorageError`, a real `Error`
//! subclass carrying the contract's `code`, the HTTP `status`, the `message` and the `details`.

use alga_storage_core::{ErrorCode, StorageError};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(inline_js = r#"
export class StorageError extends Error {
  constructor(code, status, message, details) {
    super(message);
    this.name = "StorageError";
    this.code = code;
    this.status = status;
    if (details !== undefined) this.details = details;
  }
}
export function isStorageErrorJs(value) {
  return value instanceof StorageError;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = StorageError)]
    type JsStorageError;

    #[wasm_bindgen(constructor, js_class = "StorageError")]
    fn new(code: &str, status: u16, message: &str, details: JsValue) -> JsStorageError;

    #[wasm_bindgen(js_name = isStorageErrorJs)]
    fn is_storage_error_js(value: &JsValue) -> bool;
}

#[wasm_bindgen(typescript_custom_section)]
const TS_ERROR: &'static str = r#"
/**
 * What every failed call rejects with. `code` and `status` are the contract's (see the
 * server's error table); `details` says what and where, e.g. `{ field, reason }` for
 * VALIDATION_FAILED, `{ currentRevision }` for REVISION_MISMATCH, `{ currentEtag }` for
 * PRECONDITION_FAILED. A request that never got an answer has code INTERNAL_ERROR, status 503
 * and `details.reason === "transport"` with `details.cause` = "network", "timeout" or "aborted".
 */
export interface StorageError extends Error {
  name: "StorageError";
  code: ErrorCode;
  status: number;
  details?: { [key: string]: JsonValue };
}
"#;

/// Whether `value` is an error thrown by this SDK (a `StorageError`).
///
/// Use it in `catch` blocks: `if (isStorageError(e) && e.code === "REVISION_MISMATCH") …`.
#[wasm_bindgen(js_name = isStorageError, unchecked_return_type = "value is StorageError")]
pub fn is_storage_error(#[wasm_bindgen(unchecked_param_type = "unknown")] value: &JsValue) -> bool {
    is_storage_error_js(value)
}

/// The JavaScript `StorageError` for a contract error.
pub fn to_js(error: &StorageError) -> JsValue {
    let details = match error.details() {
        Some(d) => crate::json::to_js(d),
        None => JsValue::UNDEFINED,
    };
    JsStorageError::new(
        error.code().as_str(),
        error.status(),
        error.message(),
        details,
    )
    .into()
}

/// Reads a thrown `StorageError` back into Rust (`None` for anything else).
pub fn from_js(value: &JsValue) -> Option<StorageError> {
    if !is_storage_error_js(value) {
        return None;
    }
    let get = |name: &str| js_sys::Reflect::get(value, &JsValue::from_str(name)).ok();
    let code = ErrorCode::from_name(&get("code")?.as_string()?)?;
    let status = get("status")?.as_f64()? as u16;
    let message = get("message")?.as_string()?;
    let details = get("details")
        .filter(|d| !d.is_undefined())
        .and_then(|d| crate::json::from_js(&d).ok());
    let mut error = StorageError::new(code, message);
    if let Some(d) = details {
        error = error.with_details(d);
    }
    Some(error.with_status(status))
}

#[wasm_bindgen]
extern "C" {
    /// `String(value)` (it throws for an object without `toString`).
    #[wasm_bindgen(catch, js_name = String)]
    fn js_string(value: &JsValue) -> Result<String, JsValue>;
}

/// The message of a thrown JavaScript value: an `Error`'s `message`, a string itself, anything
/// else as `JSON.stringify` writes it or else as `String(…)` does. (Not `{:?}`: wasm-bindgen's
/// debug formatting of a value costs the package half a kilobyte.)
pub fn js_message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    value
        .as_string()
        .or_else(|| js_sys::JSON::stringify(value).ok()?.as_string())
        .or_else(|| js_string(value).ok())
        .unwrap_or_else(|| "a value that has no text".into())
}
