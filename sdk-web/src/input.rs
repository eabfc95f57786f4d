//! JavaScript arguments as the plain values sdk-core's validating constructors take: a string,
//! a whole number, a flag, a JSON value or object, the fields of an options object. Only the
//! JavaScript type is checked here (each error naming its field); every rule of the contract is
//! the constructors'.

use crate::json;
use alga_storage_core::{Metadata, StorageError, WholeNumber, WriteInput};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

/// The fields of an object argument, in order; `undefined` ones are left out, as
/// `JSON.stringify` leaves them out.
pub struct Fields(pub(crate) Vec<(String, JsValue)>);

/// `names` as `a, b, c` (a loop: `join` costs the module a kilobyte of generic code).
pub(crate) fn listed(names: &[&str]) -> String {
    let mut text = String::new();
    for name in names {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(name);
    }
    text
}

impl Fields {
    /// The fields of `value` (`undefined`/`null` = none), each named in `allowed`; another
    /// field is refused as `{prefix}{name}`, `value` not an object as `what`.
    pub fn of(
        value: &JsValue,
        what: &str,
        prefix: &str,
        allowed: &[&str],
    ) -> Result<Fields, StorageError> {
        let fields = entries(value, what)?;
        if let Some((name, _)) = fields.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            return Err(StorageError::validation(
                format!("{prefix}{name}"),
                format!("unknown field; expected {}", listed(allowed)),
            ));
        }
        Ok(Fields(fields))
    }

    /// Takes field `name` out, if it is there.
    pub fn take(&mut self, name: &str) -> Option<JsValue> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(at).1)
    }

    /// Takes a field that must be there (else `{prefix}{name}`: missing field).
    pub fn required(&mut self, name: &str, prefix: &str) -> Result<JsValue, StorageError> {
        self.take(name)
            .ok_or_else(|| StorageError::validation(format!("{prefix}{name}"), "missing field"))
    }

    /// Whether field `name` is there.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// The revision guard `ifRevision` (`null` = unguarded), named `{prefix}ifRevision`.
    pub fn guard(&mut self, prefix: &str) -> Result<Option<i64>, StorageError> {
        self.take("ifRevision")
            .filter(|r| !r.is_null())
            .map(|r| whole(&r, &format!("{prefix}ifRevision")))
            .transpose()
    }

    /// A write's `metadata`, `ttlSeconds` and guard, named `{prefix}field`.
    pub fn write_input(&mut self, prefix: &str) -> Result<WriteInput, StorageError> {
        let named = |name: &str| format!("{prefix}{name}");
        Ok(WriteInput {
            metadata: self
                .take("metadata")
                .map(|m| object(&m, &named("metadata")))
                .transpose()?,
            ttl_seconds: self
                .take("ttlSeconds")
                .map(|t| whole(&t, &named("ttlSeconds")))
                .transpose()?,
            if_revision: self.guard(prefix)?,
        })
    }
}

/// The own enumerable entries of an object (`undefined`/`null` = none; `undefined` values left
/// out), or VALIDATION_FAILED naming `what` for anything but a plain object.
pub fn entries(value: &JsValue, what: &str) -> Result<Vec<(String, JsValue)>, StorageError> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    if !value.is_object() || js_sys::Array::is_array(value) || value.is_function() {
        return Err(StorageError::validation(what, "must be an object"));
    }
    let object: &js_sys::Object = value.unchecked_ref();
    Ok(js_sys::Object::entries(object)
        .iter()
        .filter_map(|entry| {
            let entry: js_sys::Array = entry.unchecked_into();
            let value = entry.get(1);
            Some((entry.get(0).as_string()?, value)).filter(|(_, v)| !v.is_undefined())
        })
        .collect())
}

/// A string.
pub fn string(value: &JsValue, field: &str) -> Result<String, StorageError> {
    value
        .as_string()
        .ok_or_else(|| StorageError::validation(field, "must be a string"))
}

/// A whole number, as the JSON the browser would send for it ([`WholeNumber::from_js_number`]).
pub fn whole(value: &JsValue, field: &str) -> Result<i64, StorageError> {
    value
        .as_f64()
        .and_then(WholeNumber::from_js_number)
        .map(i64::from)
        .ok_or_else(|| StorageError::validation(field, "must be an integer"))
}

/// `true` or `false`.
pub fn flag(value: &JsValue, field: &str) -> Result<bool, StorageError> {
    value
        .as_bool()
        .ok_or_else(|| StorageError::validation(field, "must be true or false"))
}

/// A JSON object (a metadata object or filter).
pub fn object(value: &JsValue, field: &str) -> Result<Metadata, StorageError> {
    match json::from_js_field(value, field)? {
        Value::Object(map) => Ok(map),
        _ => Err(StorageError::validation(field, "must be an object")),
    }
}

/// The elements of an array.
pub fn array(value: &JsValue, field: &str) -> Result<Vec<JsValue>, StorageError> {
    if !js_sys::Array::is_array(value) {
        return Err(StorageError::validation(field, "must be an array"));
    }
    Ok(value.unchecked_ref::<js_sys::Array>().iter().collect())
}
