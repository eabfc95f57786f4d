//! JavaScript values ↔ JSON, with the browser's own `JSON.stringify` / `JSON.parse`, so values
//! behave exactly as a web developer expects (`toJSON` is honoured, `Date`s become strings,
//! `undefined` properties are dropped) and big answers are parsed by the engine, not by us.

use alga_storage_core::limits::MAX_VALUE_DEPTH;
use alga_storage_core::StorageError;
use alga_storage_core::WholeNumber;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

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
    // JSON.stringify writes a lone surrogate as an escape (and a pair as it is): one test of
    // the text finds any, so each string needs no check of its own.
    if has_lone_surrogate(&text) {
        return Err(StorageError::validation(
            field,
            "is not JSON: a string holds a lone surrogate",
        ));
    }
    let plain = parse(&text)?;
    plain_value(&plain, field, 0)
}

#[wasm_bindgen(inline_js = r#"
export function jsonKind(v) {
  if (v === null) return 0;
  switch (typeof v) {
    case "boolean": return 1;
    case "number": return 2;
    case "string": return 3;
  }
  return Array.isArray(v) ? 4 : 5;
}
export function hasLoneSurrogate(text) {
  return /(?:^|[^\\])(?:\\\\)*\\ud[89a-f]/.test(text);
}
"#)]
extern "C" {
    /// What `JSON.parse` made `v`: 0 null, 1 boolean, 2 number, 3 string, 4 array, 5 object
    /// (one call instead of one per type asked about).
    #[wasm_bindgen(js_name = jsonKind)]
    fn json_kind(v: &JsValue) -> u8;

    /// Whether JSON text holds a `\uD800`-`\uDFFF` escape (not itself escaped).
    #[wasm_bindgen(js_name = hasLoneSurrogate)]
    fn has_lone_surrogate(text: &str) -> bool;
}

/// How deep the walk goes before it gives up (a guard for the stack, well past the contract's
/// [`MAX_VALUE_DEPTH`], which sdk-core checks on what the walk returns: a deeper value gets
/// the same error either way).
const STACK_GUARD: usize = 10 * MAX_VALUE_DEPTH;

/// A value `JSON.parse` made (null, a boolean, a number, a string, an array, a plain object).
fn plain_value(value: &JsValue, field: &str, depth: usize) -> Result<Value, StorageError> {
    let kind = json_kind(value);
    if kind < 4 {
        return Ok(match kind {
            1 => Value::Bool(value.is_truthy()),
            2 => number(value.unchecked_ref::<js_sys::Number>().value_of()),
            3 => Value::String(String::from(value.unchecked_ref::<js_sys::JsString>())),
            _ => Value::Null,
        });
    }
    if depth == STACK_GUARD {
        return Err(StorageError::too_deep(field));
    }
    if kind == 4 {
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
        let name = String::from(entry.get(0).unchecked_ref::<js_sys::JsString>());
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

/// JSON text of a request body or query value. (serde_json's own `to_string`, whose error
/// cannot happen for these types: no formatting of it is linked into the module.)
pub fn text(value: &impl serde::Serialize) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|_| StorageError::internal())
}

/// A [`serde_json::Value`] as a JavaScript value.
pub fn to_js(value: &Value) -> JsValue {
    text(value)
        .and_then(|text| parse(&text))
        .unwrap_or(JsValue::NULL)
}
