//! `StorageClient`: the JavaScript API over the browser REST and snapshot routes.
//!
//! Every method validates its arguments first, exactly as the server would: it builds the
//! request with sdk-core's validating constructors (`PutRequest::new`, …), so a bad call
//! rejects before any request with the server's own error. This module only reads the
//! JavaScript arguments ([`crate::input`]) and sends the request.

use crate::error::to_js;
use crate::input::{self, Fields};
use crate::json;
use crate::transport::{Call, Connection, Reply, RequestOptions, DEFAULT_TIMEOUT_MS};
use alga_storage_core::{
    parse_etag, AtomicBody, AtomicRequest, BulkPutBody, BulkPutInput, BulkPutRequest,
    ChangesRequest, DeleteRequest, GetManyBody, GetManyRequest, GetRequest, Key, ListInput,
    ListRequest, Namespace, OperationInput, PatchInput, PatchOp, PutBody, PutRequest, StorageError,
};
use serde_json::{Map, Value};
use std::rc::Rc;
use tsify::Tsify;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Options of a `StorageClient`.
#[derive(Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ClientOptions {
    /// Where the storage server is, e.g. `"https://storage.example.com"` (`"/"` = this origin).
    pub base_url: String,
    /// The bearer token the host application minted for this install, or a function giving it
    /// (or a promise of it). A function is called before every call and once more after a 401,
    /// so it can refresh an expired token.
    #[tsify(type = "string | (() => string | Promise<string>)")]
    pub token: JsValue,
    /// Default timeout of every call in milliseconds (default 30000; `0` waits forever).
    #[tsify(optional)]
    pub timeout_ms: Option<u32>,
    /// The `X-Thesara-App-Id` header of snapshot patches (a patch may also pass its own).
    #[tsify(optional)]
    pub app_id: Option<String>,
}

/// A namespace as one object, with its ETag. (Its TypeScript declaration; the object itself is
/// built in JavaScript around the engine's `JSON.parse` of the answer, see `snapshot_result`.)
#[derive(Debug, Clone, Tsify)]
pub struct NamespaceSnapshot {
    /// The ETag header as sent, e.g. `"\"3\""`; pass it to `patch`. `"\"0\""` when empty.
    pub etag: String,
    /// The live records as `{ key: value }`.
    #[tsify(type = "{ [key: string]: JsonValue }")]
    pub data: Map<String, Value>,
}

/// The answer to a snapshot `patch` (a TypeScript declaration, as [`NamespaceSnapshot`]).
#[derive(Debug, Clone, Tsify)]
pub struct PatchResult {
    /// The new ETag.
    pub etag: String,
    /// The namespace after the patch, as `{ key: value }`.
    #[tsify(type = "{ [key: string]: JsonValue }")]
    pub data: Map<String, Value>,
    /// Whether the namespace was created by this patch (it was empty: ETag `"0"`, status 201).
    pub created: bool,
}

#[wasm_bindgen(typescript_custom_section)]
const TS_OPTIONS: &'static str = r#"
/** Options of `put`: metadata, time to live and the revision guard, plus signal and timeout. */
export type PutOptions = Omit<PutBody, "value"> & RequestOptions;
/** Options of `get`: `ifRevision` makes a different revision fail with REVISION_MISMATCH. */
export type GetOptions = Pick<GetRequest, "ifRevision"> & RequestOptions;
/** Options of `delete`: with `ifRevision` the record must exist at that revision. */
export type DeleteOptions = Pick<DeleteRequest, "ifRevision"> & RequestOptions;
/** Options of `list` and `listAll`. `limit` is the page size (1-100, default 25). */
export type ListOptions = Omit<ListRequest, "namespace"> & RequestOptions;
/** Options of a snapshot `patch`. */
export type PatchOptions = { appId?: string } & RequestOptions;
/** Options of a `put` inside an atomic write (its guards are the write's checks). */
export type AtomicPutOptions = { metadata?: Metadata; ttlSeconds?: number };
/** Options of `changes`: the last sequence number seen (default 0), a page size (1-100, default 100), a key prefix. */
export type ChangesOptions = { after?: number; limit?: number; keyPrefix?: string } & RequestOptions;
/**
 * Options of `watch`: start after a sequence number (default 0: replay the whole log first),
 * only keys with a prefix, the value written with each put, and a signal that ends the watch.
 */
export type WatchOptions = { after?: number; keyPrefix?: string; includeValues?: boolean; signal?: AbortSignal };
/**
 * What `watch` yields: a change, or a reset (the position was older than the server's log
 * keeps: read the namespace anew; the watch goes on after `nextAfter`).
 */
export type WatchEvent = ({ type: "change" } & Change) | { type: "reset"; nextAfter: number };
"#;

#[wasm_bindgen]
extern "C" {
    /// `PutOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "PutOptions")]
    pub type PutOptionsArg;
    /// `GetOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "GetOptions")]
    pub type GetOptionsArg;
    /// `DeleteOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "DeleteOptions")]
    pub type DeleteOptionsArg;
    /// `RequestOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "RequestOptions")]
    pub type RequestOptionsArg;
    /// `ListOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "ListOptions")]
    pub type ListOptionsArg;
    /// `PatchOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "PatchOptions")]
    pub type PatchOptionsArg;
    /// `AtomicPutOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "AtomicPutOptions")]
    pub type AtomicPutOptionsArg;
    /// `ChangesOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "ChangesOptions")]
    pub type ChangesOptionsArg;
    /// `WatchOptions` as an optional last argument.
    #[wasm_bindgen(typescript_type = "WatchOptions")]
    pub type WatchOptionsArg;
}

/// Fields of the runner envelope each operation accepts as options.
const CHANGES_FIELDS: &[&str] = &["after", "limit", "keyPrefix"];
const WATCH_FIELDS: &[&str] = &["after", "keyPrefix", "includeValues"];
const PUT_FIELDS: &[&str] = &["metadata", "ttlSeconds", "ifRevision"];
const GUARD_FIELDS: &[&str] = &["ifRevision"];
const LIST_FIELDS: &[&str] = &[
    "keyPrefix",
    "limit",
    "cursor",
    "includeValues",
    "includeMetadata",
    "metadata",
];

fn milliseconds(value: &JsValue, field: &str) -> Result<Option<u32>, StorageError> {
    if value.is_undefined() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=2_147_483_647.0).contains(&n) => Ok(Some(n as u32)),
        _ => Err(StorageError::validation(
            field,
            "must be a whole number of milliseconds from 0 to 2147483647",
        )),
    }
}

fn non_empty_string(value: &JsValue, field: &str) -> Result<String, StorageError> {
    match value.as_string() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(StorageError::validation(
            field,
            "must be a non-empty string",
        )),
    }
}

impl ClientOptions {
    fn from_js(value: &JsValue) -> Result<Self, StorageError> {
        if value.is_undefined() || value.is_null() {
            return Err(StorageError::validation(
                "options",
                "required: { baseUrl, token }",
            ));
        }
        let (mut base_url, mut token, mut timeout_ms, mut app_id) = (None, None, None, None);
        for (name, v) in input::entries(value, "options")? {
            match name.as_str() {
                "baseUrl" => base_url = Some(non_empty_string(&v, "baseUrl")?),
                "token" if v.is_function() => token = Some(v),
                "token" => token = Some(non_empty_string(&v, "token")?.into()),
                "timeoutMs" => timeout_ms = milliseconds(&v, "timeoutMs")?,
                "appId" if v.is_undefined() => {}
                "appId" => app_id = Some(non_empty_string(&v, "appId")?),
                _ => {
                    return Err(StorageError::validation(
                        name,
                        "unknown option; expected baseUrl, token, timeoutMs or appId",
                    ))
                }
            }
        }
        Ok(ClientOptions {
            base_url: base_url.ok_or_else(|| StorageError::validation("baseUrl", "required"))?,
            token: token.ok_or_else(|| StorageError::validation("token", "required"))?,
            timeout_ms,
            app_id,
        })
    }
}

/// A call's own options: the request's fields (read by the call), signal/timeout, and `appId`
/// for patches.
struct CallOptions {
    fields: Fields,
    request: RequestOptions,
    app_id: Option<String>,
}

fn call_options(value: &JsValue, wire: &[&str], app_id: bool) -> Result<CallOptions, StorageError> {
    let mut options = CallOptions {
        fields: Fields(Vec::new()),
        request: RequestOptions::default(),
        app_id: None,
    };
    for (name, v) in input::entries(value, "options")? {
        match name.as_str() {
            "signal" if v.is_undefined() || v.is_null() => {}
            "signal" => {
                options.request.signal =
                    Some(v.dyn_into().map_err(|_| {
                        StorageError::validation("signal", "must be an AbortSignal")
                    })?)
            }
            "timeoutMs" => options.request.timeout_ms = milliseconds(&v, "timeoutMs")?,
            "appId" if app_id && v.is_undefined() => {}
            "appId" if app_id => options.app_id = Some(non_empty_string(&v, "appId")?),
            field if wire.contains(&field) => options.fields.0.push((name, v)),
            _ => {
                let mut expected: Vec<&str> = wire.to_vec();
                if app_id {
                    expected.push("appId");
                }
                expected.extend(["signal", "timeoutMs"]);
                return Err(StorageError::validation(
                    name,
                    format!("unknown option; expected {}", input::listed(&expected)),
                ));
            }
        }
    }
    Ok(options)
}

/// The key (`"key"`) and the namespace (`"namespace"`) arguments of a record call.
fn record_args(namespace: &JsValue, key: &JsValue) -> Result<(String, String), StorageError> {
    Ok((
        input::string(namespace, "namespace")?,
        input::string(key, "key")?,
    ))
}

fn segment(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

/// A key that is only dots is a dot-segment in a URL: browsers resolve it away before sending.
fn record_path(ns: &Namespace, key: &Key) -> Result<String, StorageError> {
    if key.as_str().chars().all(|c| c == '.') && key.as_str().len() <= 2 {
        return Err(StorageError::validation(
            "key",
            "\".\" and \"..\" cannot travel in a URL path from a browser; write them with bulkPut or a snapshot patch",
        ));
    }
    Ok(format!(
        "/api/ext-storage/{}/{}",
        segment(ns.as_str()),
        segment(key.as_str())
    ))
}

pub(crate) fn list_path(request: &ListRequest) -> Result<String, StorageError> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(prefix) = &request.key_prefix {
        query.push(("keyPrefix", prefix.clone()));
    }
    if let Some(limit) = request.limit {
        query.push(("limit", limit.get().to_string()));
    }
    if let Some(cursor) = &request.cursor {
        query.push(("cursor", cursor.0.clone()));
    }
    if request.include_values {
        query.push(("includeValues", "true".into()));
    }
    if request.include_metadata {
        query.push(("includeMetadata", "true".into()));
    }
    if let Some(filter) = &request.metadata {
        query.push(("metadata", json::text(filter)?));
    }
    Ok(with_query(
        format!("/api/ext-storage/{}", segment(request.namespace.as_str())),
        &query,
    ))
}

/// `path` with a query of percent-encoded values.
fn with_query(mut path: String, query: &[(&str, String)]) -> String {
    for (i, (name, value)) in query.iter().enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(name);
        path.push('=');
        path.push_str(&segment(value));
    }
    path
}

fn revision_header(revision: Option<alga_storage_core::Revision>) -> Vec<(&'static str, String)> {
    revision
        .map(|r| vec![("if-revision-match", r.get().to_string())])
        .unwrap_or_default()
}

/// `POST /api/ext-storage/{namespace}{suffix}` with a JSON body.
fn post(
    namespace: &Namespace,
    suffix: &str,
    body: &impl serde::Serialize,
    options: RequestOptions,
    reply: Reply,
) -> Result<Call, StorageError> {
    let path = format!("/api/ext-storage/{}{suffix}", segment(namespace.as_str()));
    Ok(Call::new("POST", path, options, reply).with_body(json::text(body)?))
}

/// An atomic write being prepared (see `StorageClient.atomic`): each method adds a check or an
/// operation and returns the write; `commit()` sends it. Arguments are checked at `commit()`,
/// exactly as the server would, before anything is sent.
#[wasm_bindgen]
pub struct AtomicWrite {
    connection: Rc<Connection>,
    namespace: JsValue,
    checks: Vec<(String, i64)>,
    operations: Vec<OperationInput>,
    error: Option<StorageError>,
}

impl AtomicWrite {
    /// Keeps the first error: `commit()` rejects with it.
    fn push(mut self, operation: Result<OperationInput, StorageError>) -> AtomicWrite {
        match operation {
            Ok(op) => self.operations.push(op),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    fn key(&self, key: &JsValue) -> Result<String, StorageError> {
        input::string(key, &format!("operations[{}].key", self.operations.len()))
    }

    /// Sends the write; with `value_of_first`, resolves to the first result's `value` (an
    /// increment's new value) instead of the whole answer.
    fn send(self, options: Option<RequestOptionsArg>, value_of_first: bool) -> js_sys::Promise {
        let connection = self.connection.clone();
        let call = (|| {
            if let Some(e) = self.error {
                return Err(e);
            }
            let options = call_options(&options.into(), &[], false)?;
            let namespace = input::string(&self.namespace, "namespace")?;
            let request = AtomicRequest::new(&namespace, self.checks, self.operations)?;
            let body = AtomicBody {
                checks: request.checks,
                operations: request.operations,
            };
            let reply = if value_of_first {
                Reply::FirstValue
            } else {
                Reply::Json
            };
            post(&request.namespace, ":atomic", &body, options.request, reply)
        })();
        connection.send(call)
    }
}

#[wasm_bindgen]
impl AtomicWrite {
    /// Only if `key` is at `revision` now (`0`: only if it does not exist); a failed check
    /// rejects the whole write with REVISION_MISMATCH, `details.failedChecks` naming each.
    pub fn check(
        mut self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] revision: JsValue,
    ) -> AtomicWrite {
        let at = format!("checks[{}]", self.checks.len());
        let check = input::string(&key, &format!("{at}.key"))
            .and_then(|k| Ok((k, input::whole(&revision, &format!("{at}.revision"))?)));
        match check {
            Ok(check) => self.checks.push(check),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Creates or replaces `key` with `value`; options `{ metadata?, ttlSeconds? }`.
    pub fn put(
        self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "JsonValue")] value: JsValue,
        options: Option<AtomicPutOptionsArg>,
    ) -> AtomicWrite {
        let at = format!("operations[{}].", self.operations.len());
        let put = (|| {
            let key = self.key(&key)?;
            let value = json::from_js_field(&value, &format!("{at}value"))?;
            let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
            let mut fields = Fields::of(
                &options,
                &format!("{at}options"),
                &at,
                &["metadata", "ttlSeconds"],
            )?;
            Ok(OperationInput::Put {
                key,
                value,
                options: fields.write_input(&at)?,
            })
        })();
        self.push(put)
    }

    /// Deletes `key` (a missing record is no error).
    pub fn delete(
        self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> AtomicWrite {
        let delete = self.key(&key).map(|key| OperationInput::Delete { key });
        self.push(delete)
    }

    /// Adds `delta` (a whole number) to the integer value of `key`; a missing record counts
    /// as 0. The result of the operation carries the new value.
    pub fn increment(
        self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] delta: JsValue,
    ) -> AtomicWrite {
        let at = format!("operations[{}].delta", self.operations.len());
        let increment = self.key(&key).and_then(|key| {
            Ok(OperationInput::Increment {
                key,
                delta: input::whole(&delta, &at)?,
                ttl_seconds: None,
            })
        });
        self.push(increment)
    }

    /// Sends the write: every check holds and every operation applies, or nothing does.
    /// Resolves to `{ results: [{ key, revision, value? }] }`, one per operation in order.
    #[wasm_bindgen(unchecked_return_type = "Promise<AtomicResponse>")]
    pub fn commit(self, options: Option<RequestOptionsArg>) -> js_sys::Promise {
        self.send(options, false)
    }
}

/// A client of the storage server for one install, as an iframe UI uses it.
///
/// ```js
/// import init, { StorageClient, isStorageError } from "alga-storage-web";
/// await init();
/// const client = new StorageClient({ baseUrl: "https://storage.example.com", token });
/// await client.put("notes", "n1", { text: "hello" }, { ttlSeconds: 3600 });
/// const record = await client.get("notes", "n1"); // null if there is none
/// ```
#[wasm_bindgen]
pub struct StorageClient {
    connection: Rc<Connection>,
}

#[wasm_bindgen]
impl StorageClient {
    /// Creates a client. Throws a `StorageError` (VALIDATION_FAILED) for bad options.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<StorageClient, JsValue> {
        let options = ClientOptions::from_js(&options).map_err(|e| to_js(&e))?;
        let js = js_sys::Object::new();
        let base = options.base_url.trim_end_matches('/');
        crate::transport::set(&js, "base", &base.into());
        crate::transport::set(&js, "token", &options.token);
        Ok(StorageClient {
            connection: Rc::new(Connection {
                js: js.into(),
                provider: options.token.is_function(),
                timeout_ms: options.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
                app_id: options.app_id,
            }),
        })
    }

    /// Writes a record (creates it or replaces its value) and resolves to its new revision and
    /// times. With `ifRevision` the write happens only if the record is at that revision now
    /// (`0`: only if it does not exist), else it rejects with REVISION_MISMATCH and
    /// `details.currentRevision`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PutResponse>")]
    pub fn put(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "JsonValue")] value: JsValue,
        options: Option<PutOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let mut options = call_options(&options.into(), PUT_FIELDS, false)?;
            let (namespace, key) = record_args(&namespace, &key)?;
            let value = json::from_js_field(&value, "value")?;
            let write = options.fields.write_input("")?;
            let request = PutRequest::new(&namespace, key, value, write)?;
            let path = record_path(&request.namespace, &request.key)?;
            let body = PutBody {
                value: request.value,
                metadata: request.metadata,
                ttl_seconds: request.ttl_seconds,
                if_revision: request.if_revision,
            };
            let body = serde_json::to_string(&body).map_err(|_| StorageError::internal())?;
            Ok(Call::new("PUT", path, options.request, Reply::Json).with_body(body))
        })();
        self.connection.send(call)
    }

    /// Reads a record: `null` if there is none (or it expired). With `ifRevision` a record at
    /// another revision rejects with REVISION_MISMATCH.
    #[wasm_bindgen(unchecked_return_type = "Promise<StorageRecord<JsonValue> | null>")]
    pub fn get(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        options: Option<GetOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let mut options = call_options(&options.into(), GUARD_FIELDS, false)?;
            let (namespace, key) = record_args(&namespace, &key)?;
            let guard = options.fields.guard("")?;
            let request = GetRequest::new(&namespace, key, guard)?;
            let path = record_path(&request.namespace, &request.key)?;
            Ok(Call::new("GET", path, options.request, Reply::OrNull)
                .with_headers(revision_header(request.if_revision)))
        })();
        self.connection.send(call)
    }

    /// Deletes a record. Without a guard it resolves even if there was none; with `ifRevision`
    /// a missing record rejects with NOT_FOUND and another revision with REVISION_MISMATCH.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        options: Option<DeleteOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let mut options = call_options(&options.into(), GUARD_FIELDS, false)?;
            let (namespace, key) = record_args(&namespace, &key)?;
            let guard = options.fields.guard("")?;
            let request = DeleteRequest::new(&namespace, key, guard)?;
            let path = record_path(&request.namespace, &request.key)?;
            Ok(Call::new("DELETE", path, options.request, Reply::Nothing)
                .with_headers(revision_header(request.if_revision)))
        })();
        self.connection.send(call)
    }

    /// Writes up to 20 records of one namespace, all or nothing. If any item fails (a guard,
    /// a schema) nothing is written and it rejects with BULK_PARTIAL_FAILURE listing each
    /// failing item in `details.items`.
    #[wasm_bindgen(js_name = bulkPut, unchecked_return_type = "Promise<BulkPutResponse>")]
    pub fn bulk_put(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "BulkPutItem[]")] items: JsValue,
        options: Option<RequestOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let options = call_options(&options.into(), &[], false)?;
            let namespace = input::string(&namespace, "namespace")?;
            let items = input::array(&items, "items")?
                .iter()
                .enumerate()
                .map(|(i, item)| bulk_item(&format!("items[{i}]"), item))
                .collect::<Result<Vec<_>, _>>()?;
            let request = BulkPutRequest::new(&namespace, items)?;
            let body = BulkPutBody {
                items: request.items,
            };
            post(&request.namespace, "", &body, options.request, Reply::Json)
        })();
        self.connection.send(call)
    }

    /// Reads up to 100 records of one namespace at one point in time and resolves to one entry
    /// per key, in order: the record, or `null` where it is missing or expired.
    #[wasm_bindgen(
        js_name = getMany,
        unchecked_return_type = "Promise<(StorageRecord<JsonValue> | null)[]>"
    )]
    pub fn get_many(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string[]")] keys: JsValue,
        options: Option<RequestOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let options = call_options(&options.into(), &[], false)?;
            let namespace = input::string(&namespace, "namespace")?;
            let keys = input::array(&keys, "keys")?
                .iter()
                .enumerate()
                .map(|(i, key)| input::string(key, &format!("keys[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let request = GetManyRequest::new(&namespace, keys)?;
            let body = GetManyBody { keys: request.keys };
            let reply = Reply::Field("items");
            post(
                &request.namespace,
                ":getMany",
                &body,
                options.request,
                reply,
            )
        })();
        self.connection.send(call)
    }

    /// Starts an atomic write on a namespace: add checks, puts, deletes and increments, then
    /// `commit()` applies them all or none.
    ///
    /// ```js
    /// const done = await client.atomic("shop")
    ///   .check("order-7", 0)             // only if order-7 does not exist yet
    ///   .put("order-7", { item: "tea" })
    ///   .increment("orders", 1)
    ///   .commit();
    /// done.results[1].value;             // the new order count
    /// ```
    #[wasm_bindgen]
    pub fn atomic(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
    ) -> AtomicWrite {
        AtomicWrite {
            connection: self.connection.clone(),
            namespace,
            checks: Vec::new(),
            operations: Vec::new(),
            error: None,
        }
    }

    /// Adds `delta` to the integer value of a record on the server, in one step (a missing
    /// record counts as 0 and is created), and resolves to the new value. A value that is not
    /// an integer, or a sum past the 64-bit range, rejects with VALIDATION_FAILED.
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn increment(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number")] delta: JsValue,
        options: Option<RequestOptionsArg>,
    ) -> js_sys::Promise {
        self.atomic(namespace)
            .increment(key, delta)
            .send(options, true)
    }

    /// Reads one page of a namespace's change feed: the changes after sequence number `after`
    /// (default 0), oldest first. Pass `nextAfter` as the next `after`; `reset: true` means
    /// `after` was older than the server keeps: read the namespace anew, then go on from
    /// `nextAfter`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ChangesResponse>")]
    pub fn changes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        options: Option<ChangesOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let mut options = call_options(&options.into(), CHANGES_FIELDS, false)?;
            let request = changes_request(&namespace, &mut options.fields)?;
            let mut query = vec![("after", request.after.get().to_string())];
            if let Some(limit) = request.limit {
                query.push(("limit", limit.get().to_string()));
            }
            if let Some(prefix) = &request.key_prefix {
                query.push(("keyPrefix", prefix.clone()));
            }
            let path = with_query(
                format!(
                    "/api/ext-storage/{}:changes",
                    segment(request.namespace.as_str())
                ),
                &query,
            );
            Ok(Call::new("GET", path, options.request, Reply::Json))
        })();
        self.connection.send(call)
    }

    /// Follows a namespace's changes as they happen, from any tab, handler or instance:
    /// `for await (const e of client.watch("notes", { includeValues: true })) { … }`. It first
    /// replays the changes after `after` (default 0: the whole log the server keeps), then
    /// waits for new ones; after a dropped connection it reconnects by itself and resumes after
    /// the last event it yielded (nothing missed, nothing twice). A `reset` event says the
    /// position was older than the server keeps. Aborting `signal` (or `break`) ends it; an
    /// error the server gives (the install revoked, its read grant withdrawn) ends it with that
    /// error.
    #[wasm_bindgen(unchecked_return_type = "AsyncIterableIterator<WatchEvent>")]
    pub fn watch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        options: Option<WatchOptionsArg>,
    ) -> JsValue {
        let watch = (|| {
            let options = call_options(&options.into(), WATCH_FIELDS, false)?;
            if options.request.timeout_ms.is_some() {
                return Err(StorageError::validation(
                    "timeoutMs",
                    "a watch has no timeout: end it with signal",
                ));
            }
            let mut fields = options.fields;
            let include_values = fields
                .take("includeValues")
                .map(|v| input::flag(&v, "includeValues"))
                .transpose()?
                .unwrap_or(false);
            let after = fields.has("after");
            let request = changes_request(&namespace, &mut fields)?;
            let mut query = Vec::new();
            if let Some(prefix) = &request.key_prefix {
                query.push(("keyPrefix", prefix.clone()));
            }
            if include_values {
                query.push(("includeValues", "true".to_owned()));
            }
            let path = with_query(
                format!(
                    "/api/ext-storage/{}:watch",
                    segment(request.namespace.as_str())
                ),
                &query,
            );
            Ok((
                path,
                after.then(|| request.after.get()),
                options.request.signal,
            ))
        })();
        let connection = &self.connection;
        match watch {
            Ok((path, after, signal)) => crate::transport::watch(
                &connection.js,
                Some(crate::watch::Watch::new(connection, path, after)),
                signal,
                JsValue::UNDEFINED,
            ),
            Err(e) => crate::transport::watch(&connection.js, None, None, to_js(&e)),
        }
    }

    /// Reads one page of records in key order. Pass the page's `nextCursor` as `cursor` for the
    /// next page (`null` on the last one), or use `listAll` to walk every page.
    #[wasm_bindgen(unchecked_return_type = "Promise<ListResponse<JsonValue>>")]
    pub fn list(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        options: Option<ListOptionsArg>,
    ) -> js_sys::Promise {
        let call = list_request(&namespace, &options.into()).and_then(|(request, options)| {
            Ok(Call::new("GET", list_path(&request)?, options, Reply::Json))
        });
        self.connection.send(call)
    }

    /// Walks every matching record, page after page (`limit` is the page size):
    /// `for await (const item of client.listAll("notes", { includeValues: true })) { … }`.
    /// An error rejects the step that met it and ends the walk.
    #[wasm_bindgen(js_name = listAll, unchecked_return_type = "AsyncIterableIterator<ListItem<JsonValue>>")]
    pub fn list_all(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        options: Option<ListOptionsArg>,
    ) -> JsValue {
        let first = list_request(&namespace, &options.into()).and_then(|(request, options)| {
            let path = list_path(&request)?;
            let reply = Reply::Page(Box::new(request));
            self.connection
                .ready(Ok(Call::new("GET", path, options, reply)))
        });
        let js = &self.connection.js;
        match first {
            Ok(call) => crate::transport::walk(js, Some(call), JsValue::UNDEFINED),
            Err(e) => crate::transport::walk(js, None, to_js(&e)),
        }
    }

    /// Reads a whole namespace as one object with its ETag (the snapshot API).
    #[wasm_bindgen(unchecked_return_type = "Promise<NamespaceSnapshot>")]
    pub fn snapshot(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        options: Option<RequestOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let options = call_options(&options.into(), &[], false)?;
            let namespace = snapshot_namespace(&namespace)?;
            let path = format!("/api/storage?ns={}", segment(namespace.as_str()));
            let reply = Reply::Snapshot { patch: false };
            Ok(Call::new("GET", path, options.request, reply))
        })();
        self.connection.send(call)
    }

    /// Applies `set`/`del` operations to a namespace atomically, if it is still at `etag` (from
    /// `snapshot` or a previous `patch`). If the namespace changed since, nothing is written and
    /// it rejects with PRECONDITION_FAILED and `details.currentEtag`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PatchResult>")]
    pub fn patch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
        #[wasm_bindgen(unchecked_param_type = "PatchOp[]")] ops: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] etag: JsValue,
        options: Option<PatchOptionsArg>,
    ) -> js_sys::Promise {
        let call = (|| {
            let options = call_options(&options.into(), &[], true)?;
            let namespace = snapshot_namespace(&namespace)?;
            let ops = input::array(&ops, "body")?
                .iter()
                .enumerate()
                .map(|(i, op)| patch_input(&format!("[{i}]"), op))
                .collect::<Result<Vec<_>, _>>()?;
            let ops = PatchOp::list(ops)?;
            let ops_text = serde_json::to_string(&ops).map_err(|_| StorageError::internal())?;
            let etag = etag
                .as_string()
                .ok_or_else(|| StorageError::validation("etag", "must be a string"))?;
            let version = parse_etag(&etag)?;
            let app_id = options
                .app_id
                .or_else(|| self.connection.app_id.clone())
                .ok_or_else(|| {
                    StorageError::validation(
                        "appId",
                        "a patch needs an app id: set appId on the client or the call",
                    )
                })?;
            let path = format!("/api/storage?ns={}", segment(namespace.as_str()));
            let reply = Reply::Snapshot { patch: true };
            Ok(Call::new("PATCH", path, options.request, reply)
                .with_body(ops_text)
                .with_headers(vec![
                    ("if-match", format!("\"{version}\"")),
                    ("x-thesara-app-id", app_id),
                ]))
        })();
        self.connection.send(call)
    }
}

fn snapshot_namespace(value: &JsValue) -> Result<Namespace, StorageError> {
    let text = value
        .as_string()
        .ok_or_else(|| StorageError::validation("namespace", "must be a string"))?;
    Ok(Namespace::new(text)?)
}

fn list_request(
    namespace: &JsValue,
    options: &JsValue,
) -> Result<(ListRequest, RequestOptions), StorageError> {
    let mut options = call_options(options, LIST_FIELDS, false)?;
    let namespace = input::string(namespace, "namespace")?;
    let fields = &mut options.fields;
    let text = |v: JsValue, name: &str| input::string(&v, name);
    let list = ListInput {
        key_prefix: fields
            .take("keyPrefix")
            .map(|v| text(v, "keyPrefix"))
            .transpose()?,
        limit: fields
            .take("limit")
            .map(|v| input::whole(&v, "limit"))
            .transpose()?,
        cursor: fields
            .take("cursor")
            .filter(|v| !v.is_null())
            .map(|v| text(v, "cursor"))
            .transpose()?,
        include_values: flag(fields, "includeValues")?,
        include_metadata: flag(fields, "includeMetadata")?,
        metadata: fields
            .take("metadata")
            .map(|v| input::object(&v, "metadata"))
            .transpose()?,
    };
    Ok((ListRequest::new(&namespace, list)?, options.request))
}

/// A flag option (absent: `false`).
fn flag(fields: &mut Fields, name: &str) -> Result<bool, StorageError> {
    Ok(fields
        .take(name)
        .map(|v| input::flag(&v, name))
        .transpose()?
        .unwrap_or(false))
}

/// The request of `changes` or `watch`: the namespace, `after`, `limit` and `keyPrefix`.
fn changes_request(
    namespace: &JsValue,
    fields: &mut Fields,
) -> Result<ChangesRequest, StorageError> {
    let namespace = input::string(namespace, "namespace")?;
    let after = fields
        .take("after")
        .map(|v| input::whole(&v, "after"))
        .transpose()?;
    let limit = fields
        .take("limit")
        .map(|v| input::whole(&v, "limit"))
        .transpose()?;
    let prefix = fields
        .take("keyPrefix")
        .map(|v| input::string(&v, "keyPrefix"))
        .transpose()?;
    ChangesRequest::new(&namespace, after, limit, prefix)
}

/// One item of a `bulkPut` (`at` = `items[i]`).
fn bulk_item(at: &str, item: &JsValue) -> Result<BulkPutInput, StorageError> {
    let prefix = format!("{at}.");
    let allowed = ["key", "value", "metadata", "ttlSeconds", "ifRevision"];
    let mut fields = Fields::of(item, at, &prefix, &allowed)?;
    Ok(BulkPutInput {
        key: input::string(&fields.required("key", &prefix)?, &format!("{prefix}key"))?,
        value: json::from_js_field(
            &fields.required("value", &prefix)?,
            &format!("{prefix}value"),
        )?,
        options: fields.write_input(&prefix)?,
    })
}

/// One operation of a snapshot patch (`at` = `[i]`).
fn patch_input(at: &str, op: &JsValue) -> Result<PatchInput, StorageError> {
    let prefix = format!("{at}.");
    let mut fields = Fields::of(op, at, &prefix, &["op", "key", "value"])?;
    Ok(PatchInput {
        op: input::string(&fields.required("op", &prefix)?, &format!("{prefix}op"))?,
        key: input::string(&fields.required("key", &prefix)?, &format!("{prefix}key"))?,
        value: fields
            .take("value")
            .map(|v| json::from_js_field(&v, &format!("{prefix}value")))
            .transpose()?,
    })
}
