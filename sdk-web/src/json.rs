//! JavaScript values ↔ JSON, with the browser's own `JSON.stringify` / `JSON.parse`, so values
//! behave exactly as a web developer expects (`toJSON` is honoured, `Date`s become strings,
//! `undefined` properties are dropped) and big answers are parsed by the engine, not by us.

use alga_storage_core::limits::MAX_VALUE_DEPTH;
use alga_storage_core::StorageError;
use alga_storage_core::WholeNumber;
use serde_json::{Map, Value};
use wasm_bindgen::{JsCast, JsValue};

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

/// [`from_js`] naming the field that holds the value: the JSON the browser sends for it
/// (`JSON.stringify`, then `JSON.parse` into plain values), read by walking those values, so
/// no JSON parser ships in the module.
pub fn from_js_field(value: &JsValue, field: &str) -> Result<Value, StorageError> {
    let text = stringify(value, field)?;
    let plain = parse(&text)?;
    plain_value(&plain, field, 0)
}

/// How deep the walk goes before it gives up (a guard for the stack, well past the contract's
/// [`MAX_VALUE_DEPTH`], which sdk-core checks on what the walk returns: a deeper value gets
/// the same error either way).
const STACK_GUARD: usize = 10 * MAX_VALUE_DEPTH;

/// A value `JSON.parse` made (null, a boolean, a number, a string, an array, a plain object).
fn plain_value(value: &JsValue, field: &str, depth: usize) -> Result<Value, StorageError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    if let Some(flag) = value.as_bool() {
        return Ok(Value::Bool(flag));
    }
    if let Some(n) = value.as_f64() {
        return Ok(number(n));
    }
    if value.is_string() {
        return string(value, field).map(Value::String);
    }
    if depth == STACK_GUARD {
        return Err(StorageError::too_deep(field));
    }
    if js_sys::Array::is_array(value) {
        let items: &js_sys::Array = value.unchecked_ref();
        return items
            .iter()
            .map(|item| plain_value(&item, field, depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    let mut map = Map::new();
    for entry in js_sys::Object::entries(value.unchecked_ref()).iter() {
        let entry: js_sys::Array = entry.unchecked_into();
        let name = string(&entry.get(0), field)?;
        map.insert(name, plain_value(&entry.get(1), field, depth + 1)?);
    }
    Ok(Value::Object(map))
}

/// A number as serde_json reads the digits `JSON.stringify` writes for it: a whole number as
/// an integer (unsigned up to 2^64, else signed from -2^63), anything else as a float.
fn number(n: f64) -> Value {
    const U64_END: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if n.fract() == 0.0 && (0.0..U64_END).contains(&n) {
        return Value::from(n as u64);
    }
    match WholeNumber::from_js_number(n) {
        Some(whole) => Value::from(i64::from(whole)),
        None => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
    }
}

/// A string that is valid UTF-16 (a lone surrogate cannot be stored, as on the server).
fn string(value: &JsValue, field: &str) -> Result<String, StorageError> {
    let text: &js_sys::JsString = value.unchecked_ref();
    if !text.is_valid_utf16() {
        return Err(StorageError::validation(
            field,
            "is not JSON: a string holds a lone surrogate",
        ));
    }
    Ok(String::from(text))
}

/// `JSON.parse` of JSON text the server sent, as a [`serde_json::Value`] (`None` if it is
/// not JSON).
pub fn parse_value(text: &str) -> Option<Value> {
    let plain = js_sys::JSON::parse(text).ok()?;
    plain_value(&plain, "body", 0).ok()
}

/// `JSON.parse` of JSON text the server sent.
pub fn parse(text: &str) -> Result<JsValue, StorageError> {
    js_sys::JSON::parse(text).map_err(|_| StorageError::internal())
}

/// A [`serde_json::Value`] as a JavaScript value.
pub fn to_js(value: &Value) -> JsValue {
    parse(&value.to_string()).unwrap_or(JsValue::NULL)
}
