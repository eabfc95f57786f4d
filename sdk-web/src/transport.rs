//! What a call sends and what its answer means. Each method prepares a [`Call`] synchronously
//! (reading and checking its arguments); `sdk-web/js/transport.js` does the I/O: the bearer
//! token (fixed, or from a provider asked before every exchange and once more after a 401), the
//! caller's `AbortSignal` and the timeout, `fetch`, and the iteration of walks and watches. It
//! hands every answer and failure back to the call, which turns it into the promise's value or
//! a [`StorageError`]. So the module holds no future of its own.

use crate::error::{js_message, to_js};
use crate::json;
use alga_storage_core::TransportCause as Cause;
use alga_storage_core::{Cursor, ErrorCode, ListRequest, StorageError};
use tsify::Tsify;
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

#[wasm_bindgen(module = "/js/transport.js")]
extern "C" {
    /// Sends `call` over `conn` (`{ base, token }`): a promise of what `call.finish` makes of
    /// the answer, rejected with the `StorageError` of `call.fail` or `call.finish`.
    pub(crate) fn exchange(conn: &JsValue, call: Call) -> js_sys::Promise;
    /// `listAll`'s async iterator: the items of the page `call` asks for, then of each next one.
    pub(crate) fn walk(conn: &JsValue, call: Option<Call>, invalid: JsValue) -> JsValue;
    /// `watch`'s async iterator over what `w` makes of its stream.
    pub(crate) fn watch(
        conn: &JsValue,
        w: Option<crate::watch::Watch>,
        signal: Option<AbortSignal>,
        invalid: JsValue,
    ) -> JsValue;
}

// `transport.js` parses a watch's stream with the vendored `eventsource-parser`: naming its two
// files here is what makes wasm-bindgen copy them beside it.
#[wasm_bindgen(module = "/js/vendor/eventsource-parser/parse.js")]
extern "C" {
    /// What `transport.js` calls (Rust does not).
    #[wasm_bindgen(js_name = createParser)]
    fn _create_parser(config: &JsValue) -> JsValue;
}
#[wasm_bindgen(module = "/js/vendor/eventsource-parser/errors.js")]
extern "C" {
    /// What `parse.js` imports.
    type ParseError;
}

/// The timeout of a call when neither the client nor the call sets one.
pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// Options every call accepts, besides its own.
#[derive(Debug, Clone, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct RequestOptions {
    /// Abort the call: it rejects with a `StorageError` whose `details.cause` is `"aborted"`.
    #[tsify(optional, type = "AbortSignal")]
    pub signal: Option<AbortSignal>,
    /// Give up after this many milliseconds (`details.cause` is `"timeout"`); `0` waits forever.
    /// Default: the client's `timeoutMs`.
    #[tsify(optional)]
    pub timeout_ms: Option<u32>,
}

/// A configured connection to one storage server.
pub struct Connection {
    /// `{ base, token }` as `transport.js` reads it: the base URL without a trailing slash,
    /// and the token or its provider.
    pub js: JsValue,
    /// Whether the token comes from a provider (which can renew it).
    pub provider: bool,
    /// Default timeout in milliseconds (`0` = none).
    pub timeout_ms: u32,
    /// `X-Thesara-App-Id` for snapshot patches.
    pub app_id: Option<String>,
}

impl Connection {
    /// A prepared call made ready to send: the connection's timeout unless the call sets one;
    /// refused if its signal is already aborted.
    pub fn ready(&self, call: Result<Call, StorageError>) -> Result<Call, StorageError> {
        let mut call = call?;
        if call.signal.as_ref().is_some_and(AbortSignal::aborted) {
            return Err(StorageError::transport(
                Cause::Aborted,
                "the call was aborted before it was sent",
            ));
        }
        call.timeout_ms.get_or_insert(self.timeout_ms);
        Ok(call)
    }

    /// The promise of a prepared call: a preparation that failed (or a signal already aborted)
    /// rejects it, and nothing is sent.
    pub fn send(&self, call: Result<Call, StorageError>) -> js_sys::Promise {
        match self.ready(call) {
            Ok(call) => exchange(&self.js, call),
            Err(e) => js_sys::Promise::reject(&to_js(&e)),
        }
    }
}

/// How an answer becomes the promise's value.
pub(crate) enum Reply {
    /// The answer's JSON.
    Json,
    /// The answer's JSON, or `null` for NOT_FOUND.
    OrNull,
    /// `undefined`.
    Nothing,
    /// One field of the answer's JSON.
    Field(&'static str),
    /// `results[0].value` (an increment's new value).
    FirstValue,
    /// `{ etag, data }`, with `created` for a patch.
    Snapshot { patch: bool },
    /// `{ items, next }` of a walk: a list page's items and the call of the next page.
    Page(Box<ListRequest>),
    /// The body unread (a watch's stream).
    Stream,
}

/// One request to the storage server and the meaning of its answer (see the module).
#[wasm_bindgen(skip_typescript)]
pub struct Call {
    method: &'static str,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    signal: Option<AbortSignal>,
    /// `None` until [`Connection::ready`] gives the connection's.
    timeout_ms: Option<u32>,
    reply: Reply,
}

impl Call {
    /// `method path` with the caller's options.
    pub(crate) fn new(
        method: &'static str,
        path: String,
        options: RequestOptions,
        reply: Reply,
    ) -> Call {
        Call {
            method,
            path,
            body: None,
            headers: Vec::new(),
            signal: options.signal,
            timeout_ms: options.timeout_ms,
            reply,
        }
    }

    /// With a JSON body.
    pub(crate) fn with_body(mut self, body: String) -> Call {
        self.headers
            .push(("content-type", "application/json".into()));
        self.body = Some(body);
        self
    }

    /// With more headers.
    pub(crate) fn with_headers(mut self, headers: Vec<(&'static str, String)>) -> Call {
        self.headers.extend(headers);
        self
    }
}

/// Sets `object[name]` on an object this module made (it cannot fail).
pub(crate) fn set(object: &JsValue, name: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(object, &name.into(), value);
}

fn get(object: &JsValue, name: &str) -> Result<JsValue, StorageError> {
    js_sys::Reflect::get(object, &name.into()).map_err(|_| StorageError::internal())
}

#[wasm_bindgen]
impl Call {
    /// What to send: `{ method, path, headers, body, signal, timeoutMs, stream }`.
    pub fn request(&self) -> JsValue {
        let request = js_sys::Object::new();
        let headers = js_sys::Array::new();
        for (name, value) in &self.headers {
            headers.push(&js_sys::Array::of2(&(*name).into(), &value.into()));
        }
        set(&request, "method", &self.method.into());
        set(&request, "path", &self.path.as_str().into());
        set(&request, "headers", &headers);
        if let Some(body) = &self.body {
            set(&request, "body", &body.as_str().into());
        }
        if let Some(signal) = &self.signal {
            set(&request, "signal", signal);
        }
        set(&request, "timeoutMs", &self.timeout_ms.unwrap_or(0).into());
        set(
            &request,
            "stream",
            &matches!(self.reply, Reply::Stream).into(),
        );
        request.into()
    }

    /// The `StorageError` of an exchange that got no answer: `kind` is "token" (the provider
    /// threw `detail`, or gave no token), "request" (the browser refused to build it),
    /// "aborted", "timeout" or "network".
    pub fn fail(&self, kind: &str, detail: JsValue) -> JsValue {
        let error = match kind {
            "token" if detail.is_undefined() => StorageError::unauthenticated(
                "the token provider failed: it did not give a non-empty string",
            ),
            "token" => StorageError::unauthenticated(format!(
                "the token provider failed: {}",
                js_message(&detail)
            )),
            "request" => StorageError::validation("request", js_message(&detail)),
            "aborted" => StorageError::transport(Cause::Aborted, "the call was aborted"),
            "timeout" => StorageError::transport(
                Cause::Timeout,
                format!(
                    "no answer from the storage server within {} ms",
                    self.timeout_ms.unwrap_or(0)
                ),
            ),
            _ => StorageError::transport(
                Cause::Network,
                format!(
                    "the storage server could not be reached: {}",
                    js_message(&detail)
                ),
            ),
        };
        to_js(&error)
    }

    /// The promise's value for an answer (`body` is the text, unread for a successful stream
    /// request, whose `stream` it is), or its `StorageError`.
    pub fn finish(
        &self,
        status: u16,
        etag: Option<String>,
        body: Option<String>,
        stream: JsValue,
    ) -> Result<JsValue, JsValue> {
        let body = body.unwrap_or_default();
        if !(200..300).contains(&status) {
            let error = StorageError::from_envelope_json(status, json::parse_value(&body).as_ref());
            return match self.reply {
                Reply::OrNull if error.code() == ErrorCode::NotFound => Ok(JsValue::NULL),
                _ => Err(to_js(&error)),
            };
        }
        self.value(status, etag, &body, stream)
            .map_err(|e| to_js(&e))
    }
}

impl Call {
    fn value(
        &self,
        status: u16,
        etag: Option<String>,
        body: &str,
        stream: JsValue,
    ) -> Result<JsValue, StorageError> {
        Ok(match &self.reply {
            Reply::Json | Reply::OrNull => json::parse(body)?,
            Reply::Nothing => JsValue::UNDEFINED,
            Reply::Field(name) => get(&json::parse(body)?, name)?,
            Reply::FirstValue => {
                let results = get(&json::parse(body)?, "results")?;
                get(&get(&results, "0")?, "value")?
            }
            Reply::Snapshot { patch } => {
                let result = js_sys::Object::new();
                set(&result, "etag", &etag.as_deref().unwrap_or("\"0\"").into());
                set(&result, "data", &json::parse(body)?);
                if *patch {
                    set(&result, "created", &(status == 201).into());
                }
                result.into()
            }
            Reply::Page(request) => {
                let page = json::parse(body)?;
                let result = js_sys::Object::new();
                set(&result, "items", &get(&page, "items")?);
                if let Some(cursor) = get(&page, "nextCursor")?.as_string() {
                    let mut next = request.clone();
                    next.cursor = Some(Cursor(cursor));
                    let options = RequestOptions {
                        signal: self.signal.clone(),
                        timeout_ms: self.timeout_ms,
                    };
                    let path = crate::client::list_path(&next)?;
                    let call = Call::new(self.method, path, options, Reply::Page(next));
                    set(&result, "next", &call.into());
                }
                result.into()
            }
            Reply::Stream => stream,
        })
    }
}
