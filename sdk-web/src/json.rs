//! JavaScript values ↔ JSON, with the browser's own `JSON.stringify` / `JSON.parse`, so values
//! behave exactly as a web developer expects (`toJSON` is honoured, `Date`s become strings,
//! `undefined` properties are dropped) and big answers are parsed by the engine, not by us.

use alga_storage_core::StorageError;
use serde_json::Value;
use wasm_bindgen::JsValue;

/// `JSON.stringify(value)`, or why the value is not JSON (`field` names it in the error).
pub fn stringify(value: &JsValue, field: &str) -> Result<String, StorageError> {
    match js_sys::JSON::stringify(value) {
        Ok(text) => text.as_string().ok_or_else(|| {
            StorageError::validation(
                field,
                "must be a JSON value (undefined, a function or a symbol is not)",
            )
        }),
        Err(e) => Err(StorageError::validation(
            field,
            format!("is not JSON: {}", crate::error::js_message(&e)),
        )),
    }
}

/// A JavaScript value as a [`serde_json::Value`] (see [`stringify()`]).
pub fn from_js(value: &JsValue) -> Result<Value, StorageError> {
    from_js_field(value, "value")
}

/// [`from_js`] naming the field that holds the value.
pub fn from_js_field(value: &JsValue, field: &str) -> Result<Value, StorageError> {
    let text = stringify(value, field)?;
    serde_json::from_str(&text).map_err(|e| StorageError::validation(field, e.to_string()))
}

/// `JSON.parse` of JSON text the server sent.
pub fn parse(text: &str) -> Result<JsValue, StorageError> {
    js_sys::JSON::parse(text).map_err(|_| StorageError::internal())
}

/// A [`serde_json::Value`] as a JavaScript value.
pub fn to_js(value: &Value) -> JsValue {
    parse(&value.to_string()).unwrap_or(JsValue::NULL)
}
