//! JSON Schema (2020-12) validation of written values, per namespace.
//!
//! Compiled validators are cached per server instance and keyed by the schema's version; each
//! write asks the store whether that version is still current (one indexed lookup that returns
//! the schema itself only when it changed), so a schema registered or removed through any
//! instance applies to the very next write.

use crate::store::{SchemaLookup, Store, StoreError};
use alga_storage_core::{ErrorCode, Namespace, StorageError};
use jsonschema::Validator;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Most schema violations reported for one value.
pub const MAX_REPORTED_VIOLATIONS: usize = 20;

/// Checks a schema document: valid against the 2020-12 meta-schema and compilable (no remote
/// references: nothing is fetched). The error names why.
pub fn compile(schema: &Value) -> Result<Validator, StorageError> {
    if serde_json::to_string(schema)
        .unwrap_or_default()
        .contains("\\u0000")
    {
        return Err(StorageError::validation(
            "schema",
            "strings must not contain U+0000",
        ));
    }
    jsonschema::draft202012::meta::validate(schema).map_err(|e| {
        StorageError::validation(
            "schema",
            format!(
                "not a valid JSON Schema 2020-12 at {}: {e}",
                e.instance_path()
            ),
        )
    })?;
    jsonschema::draft202012::new(schema)
        .map_err(|e| StorageError::validation("schema", format!("cannot be compiled: {e}")))
}

/// The violations of `value`, each with its instance path (a JSON pointer) and reason.
pub fn violations(validator: &Validator, value: &Value) -> Vec<Value> {
    validator
        .iter_errors(value)
        .take(MAX_REPORTED_VIOLATIONS)
        .map(|e| json!({ "instancePath": e.instance_path().to_string(), "reason": e.to_string() }))
        .collect()
}

/// `VALIDATION_FAILED` for a value that breaks its namespace's schema.
pub fn schema_error(field: &str, violations: Vec<Value>) -> StorageError {
    StorageError::new(
        ErrorCode::ValidationFailed,
        format!("{field}: does not match the namespace's JSON Schema"),
    )
    .with_details(json!({ "field": field, "reason": "schema", "errors": violations }))
}

type Cached = (i64, Arc<Validator>);

/// The compiled schemas of this server instance.
#[derive(Default, Clone)]
pub struct Schemas {
    cache: Arc<Mutex<HashMap<(Uuid, Namespace), Cached>>>,
}

impl Schemas {
    /// The violations of values about to be written to a namespace, as `(position, errors)` for
    /// each value that breaks the namespace's schema; empty when all match or there is none.
    pub async fn check<'v>(
        &self,
        store: &dyn Store,
        tenant: Uuid,
        ns: &Namespace,
        values: impl IntoIterator<Item = (usize, &'v Value)>,
    ) -> Result<Vec<(usize, Vec<Value>)>, StoreError> {
        let Some(validator) = self.validator(store, tenant, ns).await? else {
            return Ok(Vec::new());
        };
        Ok(values
            .into_iter()
            .map(|(i, value)| (i, violations(&validator, value)))
            .filter(|(_, found)| !found.is_empty())
            .collect())
    }

    /// The current validator of a namespace, if it has a schema.
    pub async fn validator(
        &self,
        store: &dyn Store,
        tenant: Uuid,
        ns: &Namespace,
    ) -> Result<Option<Arc<Validator>>, StoreError> {
        let key = (tenant, ns.clone());
        let cached = self
            .cache
            .lock()
            .map_err(|_| poisoned())?
            .get(&key)
            .cloned();
        match store
            .schema(tenant, ns, cached.as_ref().map(|(v, _)| *v))
            .await?
        {
            SchemaLookup::None => {
                self.cache.lock().map_err(|_| poisoned())?.remove(&key);
                Ok(None)
            }
            SchemaLookup::Unchanged => Ok(cached.map(|(_, validator)| validator)),
            SchemaLookup::Current(version, schema) => {
                let validator =
                    Arc::new(compile(&schema).map_err(|e| StoreError::Backend(Box::new(e)))?);
                self.cache
                    .lock()
                    .map_err(|_| poisoned())?
                    .insert(key, (version, validator.clone()));
                Ok(Some(validator))
            }
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend("schema cache lock poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_schemas_are_refused_with_a_reason() {
        for bad in [
            json!({"type": "nonsense"}),
            json!({"minimum": "x"}),
            json!(5),
            json!({"$ref": "https://example.com/s.json"}),
        ] {
            let err = compile(&bad).unwrap_err();
            assert_eq!(err.details().unwrap()["field"], "schema", "{bad}");
        }
        compile(&json!({"type": "object"})).unwrap();
        compile(&json!(true)).unwrap();
    }

    #[test]
    fn violations_name_the_instance_path() {
        let v = compile(
            &json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        )
        .unwrap();
        assert!(violations(&v, &json!({"n": 1})).is_empty());
        let found = violations(&v, &json!({"n": "x"}));
        assert_eq!(found[0]["instancePath"], "/n");
        assert!(!violations(&v, &json!({})).is_empty());
    }
}
