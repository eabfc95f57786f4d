//! `GET /openapi.json`: the OpenAPI 3.1 description of every route.
//!
//! The document is built here, next to the router, from the contract's own constants (limits,
//! error codes, TTL range), so the numbers it states are the numbers the server enforces. An
//! OpenAPI-driven test (`tests/tests/openapi.rs`) sends requests to every operation it
//! describes and checks that each answer's status is documented for that operation and that
//! its body matches the documented schema.

use alga_storage_core::limits::{
    MAX_BULK_ITEMS, MAX_KEY_CHARS, MAX_LIST_LIMIT, MAX_NAMESPACES_PER_PRINCIPAL,
    MAX_NAMESPACE_CHARS, MAX_PATCH_OPS, MAX_TTL_SECONDS, MIN_TTL_SECONDS,
};
use alga_storage_core::ErrorCode;
use serde_json::{json, Map, Value};

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(schema_name: &str, description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema(schema_name) } }
    })
}

fn error(description: &str) -> Value {
    json_body("ErrorEnvelope", description)
}

/// The error answers of an operation, by status.
fn errors(statuses: &[u16]) -> Map<String, Value> {
    statuses
        .iter()
        .map(|s| {
            let text = match s {
                400 => "VALIDATION_FAILED (details name the field), or BULK_PARTIAL_FAILURE",
                401 => "UNAUTHENTICATED: missing, malformed, expired or unknown credentials",
                403 => "UNAUTHORIZED: the principal holds no grant for this",
                404 => "NOT_FOUND",
                409 => "REVISION_MISMATCH (details: currentRevision), or BULK_PARTIAL_FAILURE",
                412 => "PRECONDITION_FAILED: stale If-Match (details: currentEtag)",
                413 => "PAYLOAD_TOO_LARGE",
                429 => {
                    "QUOTA_EXCEEDED (details: quota, limit, current) or RATE_LIMITED (Retry-After)"
                }
                _ => "an error",
            };
            (s.to_string(), error(text))
        })
        .collect()
}

fn responses(ok: &[(u16, Value)], error_statuses: &[u16]) -> Value {
    let mut all = errors(error_statuses);
    // Any operation that reaches the database may find it unreachable.
    let mut unavailable =
        error("UNAVAILABLE: the database cannot be reached now; retry after Retry-After seconds");
    unavailable["headers"] =
        json!({ "Retry-After": { "schema": { "type": "integer", "minimum": 1 } } });
    all.insert("503".into(), unavailable);
    for (status, answer) in ok {
        all.insert(status.to_string(), answer.clone());
    }
    Value::Object(all)
}

fn path_param(name: &str, schema_name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": schema(schema_name) })
}

fn query_param(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description,
            "schema": schema })
}

fn header_param(name: &str, required: bool, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "header", "required": required, "description": description,
            "schema": schema })
}

fn request_body(schema_name: &str, example: Value) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": schema(schema_name), "example": example } }
    })
}

fn no_content(description: &str) -> Value {
    json!({ "description": description })
}

/// The components: every body the server accepts or answers.
fn components() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let timestamp = json!({ "type": "string", "format": "date-time" });
    let nullable_timestamp = json!({ "type": ["string", "null"], "format": "date-time" });
    let ttl = json!({ "type": "integer", "minimum": MIN_TTL_SECONDS, "maximum": MAX_TTL_SECONDS,
                      "description": "Seconds until the record expires." });
    let guard = json!({ "type": ["integer", "null"], "minimum": 0,
                        "description": "Absent/null: unconditional; 0: create only; n: only if the current revision is n." });
    json!({
        "securitySchemes": {
            "extensionToken": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A browser token minted by the admin API (HS256; sub = install, tenant, exp)." },
            "runnerAuth": { "type": "apiKey", "in": "header", "name": "x-runner-auth",
                "description": "RUNNER_STORAGE_API_TOKEN." },
            "adminToken": { "type": "http", "scheme": "bearer",
                "description": "STORAGE_ADMIN_TOKEN." }
        },
        "schemas": {
            "JsonValue": {
                "description": "Any JSON value (at most 64 KiB serialized, arrays and objects nested at most 100 deep) with no U+0000 in any string or member name.",
                "anyOf": [
                    schema("JsonText"),
                    { "type": ["number", "boolean", "null"] },
                    { "type": "array", "items": schema("JsonValue") },
                    { "type": "object", "propertyNames": schema("JsonText"), "additionalProperties": schema("JsonValue") }
                ]
            },
            "JsonText": { "type": "string", "pattern": "^[^\\u0000]*$", "description": "A string without U+0000." },
            "Metadata": { "type": "object", "propertyNames": schema("JsonText"), "additionalProperties": schema("JsonValue"),
                          "description": "A JSON object (at most 4 KiB serialized)." },
            "Namespace": { "type": "string", "minLength": 1, "maxLength": MAX_NAMESPACE_CHARS,
                           "pattern": "^[a-z0-9][a-z0-9_-]*$" },
            "Key": { "type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS,
                     "pattern": "^[^/\\u0000-\\u001f\\u007f-\\u009f]+$",
                     "description": "No '/' and no control characters (C0, DEL, C1); percent-encode it in paths." },
            "KeyPrefix": { "type": "string", "maxLength": MAX_KEY_CHARS, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
                           "description": "A literal key prefix (no control characters)." },
            "InstallId": { "type": "string", "minLength": 1, "maxLength": 128,
                           "pattern": "^[A-Za-z0-9._-]+$" },
            "TenantId": { "type": "string", "format": "uuid" },
            "ErrorCode": { "type": "string", "enum": codes },
            "ErrorEnvelope": {
                "type": "object", "required": ["error"], "additionalProperties": false,
                "properties": { "error": {
                    "type": "object", "required": ["code", "message"], "additionalProperties": false,
                    "properties": {
                        "code": schema("ErrorCode"),
                        "message": { "type": "string" },
                        "details": { "description": "What and where, by code." }
                    }
                } }
            },
            "PutBody": {
                "type": "object", "required": ["value"], "additionalProperties": false,
                "properties": { "value": schema("JsonValue"), "metadata": schema("Metadata"),
                                "ttlSeconds": ttl, "ifRevision": guard }
            },
            "PutResponse": {
                "type": "object", "additionalProperties": false,
                "required": ["namespace", "key", "revision", "ttlExpiresAt", "createdAt", "updatedAt"],
                "properties": { "namespace": schema("Namespace"), "key": schema("Key"),
                    "revision": { "type": "integer", "minimum": 1 },
                    "ttlExpiresAt": nullable_timestamp, "createdAt": timestamp, "updatedAt": timestamp }
            },
            "Record": {
                "type": "object", "additionalProperties": false,
                "required": ["namespace", "key", "revision", "value", "metadata", "ttlExpiresAt", "createdAt", "updatedAt"],
                "properties": { "namespace": schema("Namespace"), "key": schema("Key"),
                    "revision": { "type": "integer", "minimum": 1 }, "value": schema("JsonValue"),
                    "metadata": schema("Metadata"), "ttlExpiresAt": nullable_timestamp,
                    "createdAt": timestamp, "updatedAt": timestamp }
            },
            "ListItem": {
                "type": "object", "additionalProperties": false, "required": ["namespace", "key", "revision"],
                "properties": { "namespace": schema("Namespace"), "key": schema("Key"),
                    "revision": { "type": "integer", "minimum": 1 }, "value": schema("JsonValue"),
                    "metadata": schema("Metadata"), "ttlExpiresAt": nullable_timestamp,
                    "createdAt": timestamp, "updatedAt": timestamp }
            },
            "ListResponse": {
                "type": "object", "additionalProperties": false, "required": ["items", "nextCursor"],
                "properties": { "items": { "type": "array", "items": schema("ListItem"), "maxItems": MAX_LIST_LIMIT },
                                "nextCursor": { "type": ["string", "null"] } }
            },
            "BulkPutItem": {
                "type": "object", "required": ["key", "value"], "additionalProperties": false,
                "properties": { "key": schema("Key"), "value": schema("JsonValue"), "metadata": schema("Metadata"),
                                "ttlSeconds": ttl, "ifRevision": guard }
            },
            "BulkPutBody": {
                "type": "object", "required": ["items"], "additionalProperties": false,
                "description": "The items' keys must be distinct (a repeated key is 400 naming it).",
                "properties": { "items": { "type": "array", "minItems": 1, "maxItems": MAX_BULK_ITEMS,
                                           "items": schema("BulkPutItem") } }
            },
            "BulkPutResponse": {
                "type": "object", "required": ["items"], "additionalProperties": false,
                "properties": { "items": { "type": "array", "items": {
                    "type": "object", "required": ["key", "revision"], "additionalProperties": false,
                    "properties": { "key": schema("Key"), "revision": { "type": "integer", "minimum": 1 },
                        "ttlExpiresAt": nullable_timestamp, "createdAt": timestamp, "updatedAt": timestamp }
                } } }
            },
            "GetManyBody": {
                "type": "object", "required": ["keys"], "additionalProperties": false,
                "description": "1-100 distinct keys.",
                "properties": { "keys": { "type": "array", "minItems": 1, "maxItems": alga_storage_core::MAX_GET_MANY_KEYS, "items": schema("Key") } }
            },
            "GetManyResponse": {
                "type": "object", "required": ["items"], "additionalProperties": false,
                "properties": { "items": { "type": "array", "items": { "anyOf": [schema("Record"), { "type": "null" }] } } }
            },
            "Change": {
                "type": "object", "required": ["seq", "key", "op", "revision"], "additionalProperties": false,
                "properties": {
                    "seq": { "type": "integer", "minimum": 1, "description": "The change's sequence number in its namespace (strictly increasing)." },
                    "key": schema("Key"),
                    "op": { "type": "string", "enum": ["put", "delete"] },
                    "revision": { "type": ["integer", "null"], "minimum": 1, "description": "The revision written; null after a delete." },
                    "expired": { "const": true, "description": "Present when the record was removed because its TTL had passed." },
                    "value": { "$ref": "#/components/schemas/JsonValue", "description": "Watches with includeValues only: the value written, while the record still has this revision." }
                }
            },
            "ChangesResponse": {
                "type": "object", "required": ["changes", "nextAfter"], "additionalProperties": false,
                "properties": {
                    "changes": { "type": "array", "maxItems": MAX_LIST_LIMIT, "items": schema("Change") },
                    "nextAfter": { "type": "integer", "minimum": 0, "description": "Pass as `after` for the next page." },
                    "reset": { "const": true, "description": "`after` is older than the log keeps (or past the latest change): read the namespace anew and go on from nextAfter." }
                }
            },
            "AtomicCheck": {
                "type": "object", "required": ["key", "revision"], "additionalProperties": false,
                "properties": { "key": schema("Key"), "revision": { "type": "integer", "minimum": 0, "maximum": i64::MAX,
                                "description": "The current revision must be this one; 0: the record must not exist." } }
            },
            "AtomicOperation": {
                "oneOf": [
                    { "type": "object", "required": ["op", "key", "value"], "additionalProperties": false,
                      "properties": { "op": { "const": "put" }, "key": schema("Key"), "value": schema("JsonValue"),
                                      "metadata": schema("Metadata"), "ttlSeconds": ttl } },
                    { "type": "object", "required": ["op", "key"], "additionalProperties": false,
                      "properties": { "op": { "const": "delete" }, "key": schema("Key") } },
                    { "type": "object", "required": ["op", "key", "delta"], "additionalProperties": false,
                      "properties": { "op": { "const": "increment" }, "key": schema("Key"),
                                      "delta": { "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }, "ttlSeconds": ttl } }
                ]
            },
            "AtomicBody": {
                "type": "object", "required": ["operations"], "additionalProperties": false,
                "description": "Checks, then operations on distinct keys, all or nothing (at most 512 KiB of values and metadata).",
                "properties": {
                    "checks": { "type": "array", "maxItems": alga_storage_core::MAX_ATOMIC_CHECKS, "items": schema("AtomicCheck") },
                    "operations": { "type": "array", "minItems": 1, "maxItems": alga_storage_core::MAX_ATOMIC_OPERATIONS, "items": schema("AtomicOperation") }
                }
            },
            "AtomicResponse": {
                "type": "object", "required": ["results"], "additionalProperties": false,
                "properties": { "results": { "type": "array", "items": {
                    "type": "object", "required": ["key", "revision"], "additionalProperties": false,
                    "properties": { "key": schema("Key"), "revision": { "type": ["integer", "null"], "minimum": 1 },
                                    "value": { "type": "integer", "description": "The new value, for an increment." } }
                } } }
            },
            "RunnerRequest": {
                "description": "The contract request of one operation plus `operation`, with exactly the fields of that operation.",
                "oneOf": [
                    { "type": "object", "required": ["operation", "namespace", "key", "value"], "additionalProperties": false,
                      "properties": { "operation": { "const": "put" }, "namespace": schema("Namespace"), "key": schema("Key"),
                                      "value": schema("JsonValue"), "metadata": schema("Metadata"), "ttlSeconds": ttl, "ifRevision": guard } },
                    { "type": "object", "required": ["operation", "namespace", "key"], "additionalProperties": false,
                      "properties": { "operation": { "const": "get" }, "namespace": schema("Namespace"), "key": schema("Key"),
                                      "ifRevision": guard } },
                    { "type": "object", "required": ["operation", "namespace"], "additionalProperties": false,
                      "properties": { "operation": { "const": "list" }, "namespace": schema("Namespace"),
                                      "keyPrefix": schema("KeyPrefix"), "metadata": schema("Metadata"), "cursor": { "type": ["string", "null"] },
                                      "limit": { "type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT },
                                      "includeValues": { "type": "boolean" }, "includeMetadata": { "type": "boolean" } } },
                    { "type": "object", "required": ["operation", "namespace", "key"], "additionalProperties": false,
                      "properties": { "operation": { "const": "delete" }, "namespace": schema("Namespace"), "key": schema("Key"),
                                      "ifRevision": guard } },
                    { "type": "object", "required": ["operation", "namespace", "keys"], "additionalProperties": false,
                      "properties": { "operation": { "const": "getMany" }, "namespace": schema("Namespace"),
                                      "keys": { "type": "array", "minItems": 1, "maxItems": alga_storage_core::MAX_GET_MANY_KEYS, "items": schema("Key") } } },
                    { "type": "object", "required": ["operation", "namespace", "operations"], "additionalProperties": false,
                      "properties": { "operation": { "const": "atomic" }, "namespace": schema("Namespace"),
                                      "checks": { "type": "array", "maxItems": alga_storage_core::MAX_ATOMIC_CHECKS, "items": schema("AtomicCheck") },
                                      "operations": { "type": "array", "minItems": 1, "maxItems": alga_storage_core::MAX_ATOMIC_OPERATIONS, "items": schema("AtomicOperation") } } },
                    { "type": "object", "required": ["operation", "namespace"], "additionalProperties": false,
                      "properties": { "operation": { "const": "changes" }, "namespace": schema("Namespace"),
                                      "after": { "type": "integer", "minimum": 0, "maximum": i64::MAX },
                                      "limit": { "type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT },
                                      "keyPrefix": schema("KeyPrefix") } },
                    { "type": "object", "required": ["operation", "namespace", "items"], "additionalProperties": false,
                      "properties": { "operation": { "const": "bulkPut" }, "namespace": schema("Namespace"),
                                      "items": { "type": "array", "minItems": 1, "maxItems": MAX_BULK_ITEMS, "items": schema("BulkPutItem") } } }
                ]
            },
            "RunnerResponse": {
                "description": "The answer of the browser route for the same operation.",
                "anyOf": [schema("PutResponse"), schema("Record"), schema("ListResponse"), schema("BulkPutResponse"),
                          schema("GetManyResponse"), schema("AtomicResponse"), schema("ChangesResponse")]
            },
            "Snapshot": { "type": "object", "description": "The whole live namespace: key → value.",
                          "additionalProperties": schema("JsonValue") },
            "PatchOps": {
                "type": "array", "minItems": 1, "maxItems": MAX_PATCH_OPS,
                "items": { "oneOf": [
                    { "type": "object", "required": ["op", "key", "value"], "additionalProperties": false,
                      "properties": { "op": { "const": "set" }, "key": schema("Key"), "value": schema("JsonValue") } },
                    { "type": "object", "required": ["op", "key"], "additionalProperties": false,
                      "properties": { "op": { "const": "del" }, "key": schema("Key") } }
                ] }
            },
            "Grant": {
                "type": "object", "required": ["namespace", "access"], "additionalProperties": false,
                "properties": { "namespace": schema("Namespace"),
                    "access": { "type": "array", "minItems": 1,
                                "items": { "type": "string", "enum": ["read", "write"] } } }
            },
            "InstallBody": {
                "type": "object", "required": ["extensionId", "grants"], "additionalProperties": false,
                "properties": { "extensionId": { "type": "string", "minLength": 1, "maxLength": 256 },
                    "grants": { "type": "array", "maxItems": MAX_NAMESPACES_PER_PRINCIPAL, "items": schema("Grant") } }
            },
            "Install": {
                "type": "object", "required": ["tenantId", "installId", "extensionId", "grants"], "additionalProperties": false,
                "properties": { "tenantId": schema("TenantId"), "installId": schema("InstallId"),
                    "extensionId": { "type": "string" }, "grants": { "type": "array", "items": schema("Grant") } }
            },
            "TokenBody": {
                "type": "object", "additionalProperties": false,
                "properties": { "ttlSeconds": { "type": "integer", "minimum": 60, "maximum": crate::http::admin::MAX_TOKEN_TTL } }
            },
            "Token": {
                "type": "object", "required": ["token", "expiresAt"], "additionalProperties": false,
                "properties": { "token": { "type": "string" }, "expiresAt": timestamp }
            },
            "JsonSchema": { "type": "object", "propertyNames": schema("JsonText"), "additionalProperties": schema("JsonValue"),
                            "description": "A JSON Schema (2020-12), no U+0000 in it." },
            "SchemaVersion": {
                "type": "object", "required": ["namespace", "version"], "additionalProperties": false,
                "properties": { "namespace": schema("Namespace"), "version": { "type": "integer", "minimum": 1 } }
            },
            "AuditPage": {
                "type": "object", "required": ["items", "nextAfter"], "additionalProperties": false,
                "properties": {
                    "items": { "type": "array", "items": {
                        "type": "object", "additionalProperties": false,
                        "required": ["seq", "principal", "namespace", "key", "operation", "revision", "surface", "at"],
                        "properties": { "seq": { "type": "integer" }, "principal": { "type": "string" },
                            "namespace": { "type": ["string", "null"] }, "key": { "type": ["string", "null"] },
                            "operation": { "type": "string" }, "revision": { "type": ["integer", "null"] },
                            "surface": { "type": "string", "enum": ["rest", "runner", "snapshot", "admin"] },
                            "at": timestamp }
                    } },
                    "nextAfter": { "type": ["integer", "null"] }
                }
            },
            "Quotas": {
                "type": "object", "additionalProperties": false,
                "description": "Each a whole number, or null: as overrides, the server's default; as limits in force, no limit.",
                "properties": {
                    "maxNamespaces": { "type": ["integer", "null"], "minimum": 1, "maximum": MAX_NAMESPACES_PER_PRINCIPAL },
                    "maxKeysPerNamespace": { "type": ["integer", "null"], "minimum": 0 },
                    "maxBytes": { "type": ["integer", "null"], "minimum": 0 }
                }
            },
            "Usage": {
                "type": "object", "additionalProperties": false,
                "required": ["tenantId", "quotas", "overrides", "bytes", "namespaces"],
                "properties": { "tenantId": schema("TenantId"), "quotas": schema("Quotas"),
                    "overrides": schema("Quotas"), "bytes": { "type": "integer", "minimum": 0 },
                    "namespaces": { "type": "array", "items": {
                        "type": "object", "required": ["namespace", "keys", "bytes"], "additionalProperties": false,
                        "properties": { "namespace": { "type": "string" },
                            "keys": { "type": "integer", "minimum": 1 }, "bytes": { "type": "integer", "minimum": 0 } }
                    } } }
            },
            "Health": {
                "type": "object", "required": ["status"],
                "properties": { "status": { "type": "string" }, "backend": { "type": "string" } }
            }
        }
    })
}

/// The OpenAPI 3.1 document of the server.
pub fn document() -> Value {
    let ns = || path_param("ns", "Namespace", "The namespace.");
    let key = || path_param("key", "Key", "The record key, percent-encoded.");
    let tenant = || path_param("tenant", "TenantId", "The tenant.");
    let install = || path_param("install", "InstallId", "The install (principal).");
    let revision_header = || {
        header_param(
            "If-Revision-Match",
            false,
            json!({ "type": "string", "pattern": crate::http::extract::REVISION_HEADER_PATTERN }),
            "Only if the current revision is this one (else 409).",
        )
    };
    let ext = json!([{ "extensionToken": [] }]);
    let admin = json!([{ "adminToken": [] }]);
    let record_errors = [400, 401, 403, 404, 409, 413, 429];
    let mut snapshot_ns = query_param("ns", schema("Namespace"), "The namespace.");
    snapshot_ns["required"] = true.into();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Alga extension storage",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Durable multi-tenant key/value storage for extensions: browser REST, the runner's internal endpoint, the namespace snapshot API and the admin API. Every error is `{\"error\":{\"code\",\"message\",\"details\"}}`."
        },
        "paths": {
            "/api/ext-storage/{ns}": {
                "parameters": [ns()],
                "get": {
                    "operationId": "list", "summary": "List keys in order, a page at a time.", "description": "`cursor` must be a `nextCursor` this server issued for the same listing (else 400).", "security": ext.clone(),
                    "parameters": [
                        query_param("keyPrefix", schema("KeyPrefix"), "A literal key prefix."),
                        query_param("limit", json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT }), "Page size (default 25)."),
                        query_param("cursor", json!({ "type": "string" }), "The previous page's nextCursor."),
                        query_param("includeValues", json!({ "type": "boolean" }), "Return values."),
                        query_param("includeMetadata", json!({ "type": "boolean" }), "Return metadata."),
                        json!({ "name": "metadata", "in": "query", "required": false,
                                "description": "A JSON object every listed record's metadata contains.",
                                "content": { "application/json": { "schema": schema("Metadata") } } })
                    ],
                    "responses": responses(&[(200, json_body("ListResponse", "One page."))], &[400, 401, 403, 429])
                },
                "post": {
                    "operationId": "bulkPut", "summary": "Write up to 20 records of one namespace, all or nothing.", "description": "The items' keys must be distinct (else 400).", "security": ext.clone(),
                    "requestBody": request_body("BulkPutBody", json!({ "items": [{ "key": "a", "value": 1 }, { "key": "b", "value": { "n": 2 } }] })),
                    "responses": responses(&[(200, json_body("BulkPutResponse", "Every item written."))], &record_errors)
                }
            },
            "/api/ext-storage/{ns}:getMany": {
                "parameters": [ns()],
                "post": {
                    "operationId": "getMany", "summary": "Read up to 100 records of one namespace at one point in time.",
                    "description": "Keys must be distinct (else 400). `null` where a record is missing or expired.", "security": ext.clone(),
                    "requestBody": request_body("GetManyBody", json!({ "keys": ["a", "b"] })),
                    "responses": responses(&[(200, json_body("GetManyResponse", "One entry per key, in request order."))], &[400, 401, 403, 413, 429])
                }
            },
            "/api/ext-storage/{ns}:changes": {
                "parameters": [ns()],
                "get": {
                    "operationId": "changes", "summary": "A page of the namespace's change feed: the changes after a sequence number, oldest first.",
                    "description": "Every put, delete and expiry of a record, through any surface, has a sequence number strictly increasing within the namespace. The log keeps a change at least 24 h or among the last 10,000 of its namespace (configurable); a position older than that (or past the latest change) answers `reset`.",
                    "security": ext.clone(),
                    "parameters": [
                        query_param("after", json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX }), "The last sequence number seen (default 0)."),
                        query_param("limit", json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT }), "Page size (default 100)."),
                        query_param("keyPrefix", schema("KeyPrefix"), "Only changes of keys with this literal prefix.")
                    ],
                    "responses": responses(&[(200, json_body("ChangesResponse", "One page."))], &[400, 401, 403, 429])
                }
            },
            "/api/ext-storage/{ns}:watch": {
                "parameters": [ns()],
                "get": {
                    "operationId": "watch", "summary": "The namespace's changes as Server-Sent Events, live.",
                    "description": "Replays the log after `Last-Event-ID` (or `after`), then streams live changes: `event: change`, `id:` the sequence number, `data:` a Change. `event: reset` with `{\"reason\":\"retention\",\"nextAfter\":n}` when the position is older than the log keeps (the stream goes on after n), or `{\"reason\":\"slow\"}` before a reader that fell too far behind is cut off (resume from the last id). `event: error` with the error envelope ends the stream (install revoked, read grant withdrawn). A comment line every 15 s. At most 100 open watches per install on one server instance (configurable; 429 past it).",
                    "security": ext.clone(),
                    "parameters": [
                        query_param("after", json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX }), "Start after this sequence number (default 0; `Last-Event-ID` wins)."),
                        query_param("keyPrefix", schema("KeyPrefix"), "Only changes of keys with this literal prefix."),
                        query_param("includeValues", json!({ "type": "boolean" }), "Send the value written with each put."),
                        header_param("Last-Event-ID", false, json!({ "type": "string", "pattern": "^[0-9]{1,19}$" }), "Resume after this sequence number.")
                    ],
                    "responses": responses(&[(200, json!({ "description": "An endless event stream.",
                        "content": { "text/event-stream": { "schema": { "type": "string" } } } }))], &[400, 401, 403, 429])
                }
            },
            "/api/ext-storage/{ns}:atomic": {
                "parameters": [ns()],
                "post": {
                    "operationId": "atomic", "summary": "Checks, then put/delete/increment operations, all or nothing.",
                    "description": "Operation keys must be distinct, and check keys distinct (else 400). A failed check is 409 with details.failedChecks; an increment of a non-integer value or past the 64-bit range is 400; nothing is written then.",
                    "security": ext.clone(),
                    "requestBody": request_body("AtomicBody", json!({ "operations": [{ "op": "put", "key": "a", "value": 1 }, { "op": "increment", "key": "visits", "delta": 1 }] })),
                    "responses": responses(&[(200, json_body("AtomicResponse", "Every operation applied."))], &record_errors)
                }
            },
            "/api/ext-storage/{ns}/{key}": {
                "parameters": [ns(), key()],
                "get": {
                    "operationId": "get", "summary": "Read one record.", "security": ext.clone(),
                    "parameters": [revision_header()],
                    "responses": responses(&[(200, json_body("Record", "The record."))], &[400, 401, 403, 404, 409, 429])
                },
                "put": {
                    "operationId": "put", "summary": "Create or replace one record.", "security": ext.clone(),
                    "requestBody": request_body("PutBody", json!({ "value": { "theme": "dark" }, "metadata": { "tag": "ui" } })),
                    "responses": responses(&[(200, json_body("PutResponse", "Written."))], &record_errors)
                },
                "delete": {
                    "operationId": "delete", "summary": "Delete one record (204 also when there was none, unless guarded).", "security": ext.clone(),
                    "parameters": [revision_header()],
                    "responses": responses(&[(204, no_content("Deleted."))], &[400, 401, 403, 404, 409, 429])
                }
            },
            "/api/storage": {
                "parameters": [snapshot_ns],
                "get": {
                    "operationId": "snapshot", "summary": "The whole namespace as one object, with its ETag.",
                    "security": ext.clone(),
                    "responses": responses(&[(200, {
                        let mut ok = json_body("Snapshot", "The namespace ({} when empty).");
                        ok["headers"] = json!({ "ETag": { "schema": { "type": "string" }, "description": "\"<version>\" (\"0\" when empty)." } });
                        ok
                    })], &[400, 401, 403, 429])
                },
                "patch": {
                    "operationId": "patchSnapshot", "summary": "Apply set/del operations atomically if the ETag still matches.", "description": "Each key may appear in one operation only (else 400).",
                    "security": ext.clone(),
                    "parameters": [
                        header_param("If-Match", true, json!({ "type": "string", "pattern": alga_storage_core::ETAG_PATTERN }), "The ETag the changes are based on."),
                        header_param("X-Thesara-App-Id", true, json!({ "type": "string", "minLength": 1 }), "The calling app.")
                    ],
                    "requestBody": request_body("PatchOps", json!([{ "op": "set", "key": "a", "value": 1 }, { "op": "del", "key": "b" }])),
                    "responses": responses(&[
                        (200, json_body("Snapshot", "Applied; the new namespace.")),
                        (201, json_body("Snapshot", "Applied to an empty namespace (If-Match \"0\")."))
                    ], &[400, 401, 403, 412, 413, 429])
                }
            },
            "/api/internal/ext-storage/install/{install}": {
                "parameters": [install()],
                "post": {
                    "operationId": "runner", "summary": "The runner's endpoint: one operation for an install.", "description": "As the REST operation it names: a bulkPut's keys must be distinct and a list cursor must be one this server issued (else 400).",
                    "security": [{ "runnerAuth": [] }],
                    "requestBody": request_body("RunnerRequest", json!({ "operation": "put", "namespace": "settings", "key": "a", "value": 1 })),
                    "responses": responses(&[
                        (200, json_body("RunnerResponse", "As the browser route answers.")),
                        (204, no_content("Deleted."))
                    ], &record_errors)
                }
            },
            "/api/admin/tenants/{tenant}/installs/{install}": {
                "parameters": [tenant(), install()],
                "put": {
                    "operationId": "putInstall", "summary": "Create (201) or replace (200) an install and its grants.", "description": "Each namespace may be granted once (else 400).", "security": admin.clone(),
                    "requestBody": request_body("InstallBody", json!({ "extensionId": "ext-a", "grants": [{ "namespace": "settings", "access": ["read", "write"] }] })),
                    "responses": responses(&[(200, json_body("Install", "Replaced.")), (201, json_body("Install", "Created."))], &[400, 401, 413, 429])
                },
                "delete": {
                    "operationId": "deleteInstall", "summary": "Revoke an install at once.", "security": admin.clone(),
                    "responses": responses(&[(204, no_content("Revoked."))], &[400, 401, 404])
                }
            },
            "/api/admin/tenants/{tenant}/installs/{install}/tokens": {
                "parameters": [tenant(), install()],
                "post": {
                    "operationId": "mintToken", "summary": "Mint a browser token for an install.", "security": admin.clone(),
                    "requestBody": { "required": false, "content": { "application/json": {
                        "schema": schema("TokenBody"), "example": { "ttlSeconds": 3600 } } } },
                    "responses": responses(&[(201, json_body("Token", "The token."))], &[400, 401, 404, 413])
                }
            },
            "/api/admin/tenants/{tenant}/namespaces/{ns}/schema": {
                "parameters": [tenant(), ns()],
                "put": {
                    "operationId": "putSchema", "summary": "Register the namespace's JSON Schema (checked against the 2020-12 meta-schema).", "security": admin.clone(),
                    "requestBody": request_body("JsonSchema", json!({ "type": "object", "required": ["theme"] })),
                    "responses": responses(&[(200, json_body("SchemaVersion", "Registered."))], &[400, 401, 413])
                },
                "delete": {
                    "operationId": "deleteSchema", "summary": "Remove the namespace's schema.", "security": admin.clone(),
                    "responses": responses(&[(204, no_content("Removed."))], &[400, 401, 404])
                }
            },
            "/api/admin/tenants/{tenant}/audit": {
                "parameters": [tenant()],
                "get": {
                    "operationId": "audit", "summary": "The tenant's audit log, oldest first.", "security": admin.clone(),
                    "parameters": [
                        query_param("after", json!({ "type": "integer", "minimum": 0, "maximum": i64::MAX }), "Rows after this sequence number."),
                        query_param("limit", json!({ "type": "integer", "minimum": 1, "maximum": crate::http::admin::MAX_AUDIT_PAGE }), "Rows (default 100).")
                    ],
                    "responses": responses(&[(200, json_body("AuditPage", "One page."))], &[400, 401])
                }
            },
            "/api/admin/tenants/{tenant}/quotas": {
                "parameters": [tenant()],
                "put": {
                    "operationId": "putQuotas", "summary": "Replace the tenant's quota overrides.", "security": admin.clone(),
                    "requestBody": request_body("Quotas", json!({ "maxKeysPerNamespace": 1000, "maxBytes": 10485760 })),
                    "responses": responses(&[(200, json_body("Usage", "The usage and the limits now in force."))], &[400, 401, 413])
                }
            },
            "/api/admin/tenants/{tenant}/usage": {
                "parameters": [tenant()],
                "get": {
                    "operationId": "usage", "summary": "The tenant's usage and quotas (read from counters).", "security": admin.clone(),
                    "responses": responses(&[(200, json_body("Usage", "Usage."))], &[400, 401])
                }
            },
            "/api/admin/tenants/{tenant}/export": {
                "parameters": [tenant()],
                "get": {
                    "operationId": "exportTenant", "security": admin.clone(),
                    "summary": "One consistent snapshot of the tenant as JSON Lines, streamed: a header line (format, version, counts), installs, quotas, schemas, live records, namespace versions, an end line. `alga-storage-server import` reads it; a stream cut short lacks its end line.",
                    "responses": responses(&[(200, json!({ "description": "JSON Lines, one object per line.",
                        "content": { "application/x-ndjson": { "schema": { "type": "string" } } } }))], &[400, 401])
                }
            },
            "/healthz": { "get": { "operationId": "healthz", "summary": "The process answers.",
                "responses": { "200": json_body("Health", "Alive.") } } },
            "/readyz": { "get": { "operationId": "readyz", "summary": "The database answers.",
                "responses": { "200": json_body("Health", "Ready."), "503": json_body("Health", "The database does not answer.") } } },
            "/metrics": { "get": { "operationId": "metrics", "summary": "Prometheus metrics of this instance.",
                "responses": { "200": { "description": "OpenMetrics text.",
                    "content": { "application/openmetrics-text": { "schema": { "type": "string" } } } } } } },
            "/openapi.json": { "get": { "operationId": "openapi", "summary": "This document.",
                "responses": { "200": { "description": "OpenAPI 3.1.",
                    "content": { "application/json": { "schema": { "type": "object" } } } } } } }
        },
        "components": components()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{name} is referenced but not defined"
            );
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
