//! `client.watch(ns, options)`: a namespace's changes as an async iterator over the server's
//! `{ns}:watch` Server-Sent Events, read with `fetch` (the bearer token travels in a header,
//! which `EventSource` cannot send). `transport.js` runs the iteration: it connects with
//! [`Watch::connect`], parses the stream with `eventsource-parser` (the WHATWG algorithm, fed the
//! chunks as they arrive), hands each event to [`Watch::take`], and reconnects after a dropped
//! connection or a server that cut a slow reader off, resuming after the last event yielded, so
//! nothing is missed or yielded twice.

use crate::error::to_js;
use crate::json;
use crate::transport::{set, Call, Connection, Reply, RequestOptions};
use alga_storage_core::{ErrorCode, StorageError, TransportCause};
use std::cell::Cell;
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

/// A watch: where it stands.
#[wasm_bindgen(skip_typescript)]
pub struct Watch {
    /// `/api/ext-storage/{ns}:watch?…` (the position travels as `Last-Event-ID`).
    path: String,
    /// The sequence number of the last change yielded (or skipped to by a reset).
    last_id: Cell<Option<u64>>,
    /// Whether the token comes from a provider (which can renew it).
    provider: bool,
    /// Whether the last connection was made after the token expired (so another expiry before
    /// any change is an error, not a reason to renew again).
    renewed: Cell<bool>,
}

impl Watch {
    /// A watch of `path` after `after`.
    pub(crate) fn new(connection: &Connection, path: String, after: Option<u64>) -> Watch {
        Watch {
            path,
            last_id: Cell::new(after),
            provider: connection.provider,
            renewed: Cell::new(false),
        }
    }

    /// What one event yields; an `error` event is the iteration's error.
    fn handle(&self, kind: &str, id: &str, data: &str) -> Result<Option<JsValue>, StorageError> {
        match kind {
            "change" => {
                self.renewed.set(false);
                let change = json::parse(data)?;
                set(&change, "type", &"change".into());
                self.last_id.set(id.parse().ok().or(self.last_id.get()));
                Ok(Some(change))
            }
            "reset" => {
                let reset = json::parse_value(data).ok_or_else(StorageError::internal)?;
                // A slow reader is cut off right after: it resumes from its last id.
                let Some(next) = reset["nextAfter"].as_u64() else {
                    return Ok(None);
                };
                self.last_id.set(Some(next));
                let value = js_sys::Object::new();
                set(&value, "type", &"reset".into());
                set(&value, "nextAfter", &(next as f64).into());
                Ok(Some(value.into()))
            }
            "error" => {
                let body = json::parse_value(data);
                let code = body
                    .as_ref()
                    .and_then(|v| v["error"]["code"].as_str())
                    .and_then(ErrorCode::from_name)
                    .unwrap_or(ErrorCode::InternalError);
                Err(StorageError::from_envelope_json(
                    code.http_status(),
                    body.as_ref(),
                ))
            }
            _ => Ok(None),
        }
    }
}

#[wasm_bindgen]
impl Watch {
    /// The call that opens the stream after the last id (`signal` ends it).
    pub fn connect(&self, signal: AbortSignal) -> Call {
        let mut headers = vec![("accept", "text/event-stream".to_owned())];
        if let Some(id) = self.last_id.get() {
            headers.push(("last-event-id", id.to_string()));
        }
        // A stream may last: no timeout.
        let options = RequestOptions {
            signal: Some(signal),
            timeout_ms: Some(0),
        };
        Call::new("GET", self.path.clone(), options, Reply::Stream).with_headers(headers)
    }

    /// What an event of the stream (its type, id and data) yields: `undefined` for nothing,
    /// `null` for "connect again now" (the token expired while the stream was open: a provider
    /// gives a fresh one, once in a row). An `error` event the server sent is thrown.
    pub fn take(
        &self,
        kind: Option<String>,
        id: Option<String>,
        data: &str,
    ) -> Result<JsValue, JsValue> {
        let kind = kind.unwrap_or_default();
        match self.handle(&kind, id.as_deref().unwrap_or_default(), data) {
            Ok(value) => Ok(value.unwrap_or(JsValue::UNDEFINED)),
            Err(e)
                if e.code() == ErrorCode::Unauthenticated
                    && self.provider
                    && !self.renewed.replace(true) =>
            {
                Ok(JsValue::NULL)
            }
            Err(e) => Err(to_js(&e)),
        }
    }

    /// Whether a failure to connect is worth another attempt: no answer, a database or server
    /// unavailable, a rate limit (not an abort). Reads only what it needs of the `StorageError`.
    pub fn retryable(&self, error: &JsValue) -> bool {
        let get = |value: &JsValue, name: &str| {
            js_sys::Reflect::get(value, &name.into()).unwrap_or(JsValue::UNDEFINED)
        };
        if !crate::error::is_storage_error(error) {
            return false;
        }
        let status = get(error, "status").as_f64().unwrap_or(0.0);
        let code = get(error, "code").as_string();
        let cause = get(&get(error, "details"), "cause").as_string();
        cause.as_deref() != Some(TransportCause::Aborted.as_str())
            && (status >= 500.0 || code.as_deref() == Some(ErrorCode::RateLimited.as_str()))
    }
}
