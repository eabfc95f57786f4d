//! JSON Schema (2020-12) validation of written values, per namespace.
//!
//! Compiled validators are cached per server instance with the schema's version. A single put
//! is checked against the remembered schema and written only if that version is still the
//! namespace's (the store compares them in the write's own statement, see `Store::put`); other
//! writes ask the store whether the version is still current first (one indexed lookup that
//! returns the schema itself only when it changed). Either way a schema registered or removed
//! through any instance applies to the very next write.

use crate::store::{SchemaLookup, SchemaVersion, Store, StoreError};
use alga_storage_core::{ErrorCode, Namespace, StorageError};
use jsonschema::Validator;
use serde_json::{json, Value};
use std::sync::Arc;
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

/// What this instance knows of a namespace's schema.
#[derive(Clone)]
pub struct Known {
    /// The schema's version (0: the namespace never had one).
    pub version: SchemaVersion,
    /// The compiled schema, if the namespace has one at that version.
    pub validator: Option<Arc<Validator>>,
}

/// Namespaces whose schema an instance remembers (the least used are forgotten first, then
/// looked up again on their next write).
pub const REMEMBERED_NAMESPACES: usize = 10_000;

/// Attempts at a write whose namespace's schema keeps changing under it.
const WRITE_ATTEMPTS: usize = 4;

/// The compiled schemas of this server instance, by namespace, with their versions.
#[derive(Clone)]
pub struct Schemas {
    cache: Arc<quick_cache::sync::Cache<(Uuid, Namespace), Known>>,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas {
            cache: Arc::new(quick_cache::sync::Cache::new(REMEMBERED_NAMESPACES)),
        }
    }
}

impl Schemas {
    /// The violations of values about to be written to a namespace, as `(position, errors)` for
    /// each value that breaks the namespace's current schema; empty when all match or there is
    /// none.
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

    /// The current validator of a namespace, if it has a schema (one lookup, which returns the
    /// schema itself only when this instance has not compiled that version yet).
    pub async fn validator(
        &self,
        store: &dyn Store,
        tenant: Uuid,
        ns: &Namespace,
    ) -> Result<Option<Arc<Validator>>, StoreError> {
        Ok(self.current(store, tenant, ns).await?.validator)
    }

    /// A single put of `value`: checked against the schema this instance knows for the
    /// namespace (looked up only the first time), then written by `write` given that schema's
    /// version, which the store compares with the current one in the write itself. When the
    /// schema moved meanwhile (on any instance), nothing was written: the current schema is
    /// read, the value checked against it and the write tried again; a value the remembered
    /// schema refuses is checked again against the current one before it is refused. So a
    /// value is always judged by the schema in force, at no lookup per accepted write.
    pub async fn write<T, F, Fut>(
        &self,
        store: &dyn Store,
        tenant: Uuid,
        ns: &Namespace,
        value: &Value,
        mut write: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(SchemaVersion) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let (mut known, mut fresh) = match self.cache.get(&Lookup(tenant, ns.as_str())) {
            Some(known) => (known, false),
            None => (self.current(store, tenant, ns).await?, true),
        };
        for _ in 0..WRITE_ATTEMPTS {
            if let Some(validator) = &known.validator {
                let found = violations(validator, value);
                if !found.is_empty() {
                    if fresh {
                        return Err(schema_error("value", found).into());
                    }
                    // Refused only by the schema in force: the one remembered may be gone.
                    (known, fresh) = (self.current(store, tenant, ns).await?, true);
                    continue;
                }
            }
            match write(known.version).await {
                Err(StoreError::SchemaMoved) => {
                    (known, fresh) = (self.current(store, tenant, ns).await?, true)
                }
                answer => return answer,
            }
        }
        // Registered or removed again before each of the attempts: rare enough to be retried
        // by the caller.
        Err(StorageError::unavailable(1).into())
    }

    /// The namespace's schema as it is now, remembered with its version.
    async fn current(
        &self,
        store: &dyn Store,
        tenant: Uuid,
        ns: &Namespace,
    ) -> Result<Known, StoreError> {
        let key = (tenant, ns.clone());
        let cached = self.cache.get(&key);
        let known = match store
            .schema(tenant, ns, cached.as_ref().map(|k| k.version))
            .await?
        {
            SchemaLookup::None(version) => Known {
                version,
                validator: None,
            },
            SchemaLookup::Unchanged => match cached {
                Some(known) => return Ok(known),
                None => return Err(StoreError::Backend("schema unchanged from nothing".into())),
            },
            SchemaLookup::Current(version, schema) => Known {
                version,
                validator: Some(Arc::new(
                    compile(&schema).map_err(|e| StoreError::Backend(Box::new(e)))?,
                )),
            },
        };
        self.cache.insert(key, known.clone());
        Ok(known)
    }
}

/// A cache key borrowed, so a put finds its namespace without copying the name: it hashes as
/// the stored `(Uuid, Namespace)` does (a `Namespace` hashes as its string).
#[derive(Hash)]
struct Lookup<'a>(Uuid, &'a str);

impl quick_cache::Equivalent<(Uuid, Namespace)> for Lookup<'_> {
    fn equivalent(&self, key: &(Uuid, Namespace)) -> bool {
        self.0 == key.0 && self.1 == key.1.as_str()
    }
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

    /// A put finds what `current` stored, by the borrowed key (same hash, same key).
    #[test]
    fn a_borrowed_key_finds_the_stored_namespace() {
        let cache = quick_cache::sync::Cache::<(Uuid, Namespace), u8>::new(10);
        let tenant = Uuid::from_u128(7);
        cache.insert((tenant, Namespace::new("notes").unwrap()), 1);
        assert_eq!(cache.get(&Lookup(tenant, "notes")), Some(1));
        assert_eq!(cache.get(&Lookup(tenant, "note")), None);
        assert_eq!(cache.get(&Lookup(Uuid::from_u128(8), "notes")), None);
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
