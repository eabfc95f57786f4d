//! `client.watch(ns, options)`: a namespace's changes as an async iterator over the server's
//! `{ns}:watch` Server-Sent Events, read with `fetch` (the bearer token travels in a header,
//! which `EventSource` cannot send) and parsed by `sse-parse` (the WHATWG algorithm, fed the
//! chunks as they arrive). It reconnects by itself after a dropped connection or a server that
//! cut a slow reader off, resuming after the last event it yielded, so nothing is missed or
//! yielded twice.

use crate::client::{in_order, step_result};
use crate::json;
use crate::transport::{Connection, Outgoing, RequestOptions, Token};
use alga_storage_core::{ErrorCode, StorageError, TransportCause};
use sse_parse::{Event, SseParser};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal};

/// An open stream: its reader, and the parser of what it has read.
struct Events {
    reader: web_sys::ReadableStreamDefaultReader,
    parser: SseParser,
}

impl Events {
    /// The next event; `None` when the stream ended, an error when reading failed.
    async fn next(&mut self) -> Option<Result<Event, StorageError>> {
        loop {
            if let Some(event) = self.parser.next_event() {
                return Some(Ok(event));
            }
            let result = match JsFuture::from(self.reader.read()).await {
                Ok(result) => result,
                Err(e) => {
                    let message = crate::error::js_message(&e);
                    return Some(Err(StorageError::transport(
                        TransportCause::Network,
                        message,
                    )));
                }
            };
            let get = |name: &str| js_sys::Reflect::get(&result, &name.into()).ok();
            if get("done")?.as_bool().unwrap_or(true) {
                return None;
            }
            self.parser
                .feed(&js_sys::Uint8Array::new(&get("value")?).to_vec());
        }
    }
}

/// The longest pause between two reconnection attempts.
const MAX_PAUSE_MS: u32 = 5_000;

/// An open watch: where it stands and what it has read but not yet yielded.
pub(crate) struct WatchState {
    connection: Rc<Connection>,
    /// `/api/ext-storage/{ns}:watch?…` (the position travels as `Last-Event-ID`).
    path: String,
    /// The sequence number of the last change yielded (or skipped to by a reset).
    last_id: Cell<Option<u64>>,
    events: RefCell<Option<Events>>,
    pending: RefCell<VecDeque<JsValue>>,
    done: Cell<bool>,
    /// The caller's signal: aborting it ends the iteration.
    signal: Option<AbortSignal>,
    /// Aborts the current connection (when the iteration ends).
    current: RefCell<Option<AbortController>>,
    failures: Cell<u32>,
    /// Whether the last connection was made after the token expired (so another expiry before
    /// any change is an error, not a reason to renew again).
    renewed: Cell<bool>,
    /// An error found in the arguments, rejected by the first `next()`.
    invalid: RefCell<Option<StorageError>>,
    previous: RefCell<Option<js_sys::Promise>>,
}

impl WatchState {
    pub(crate) fn new(
        connection: Rc<Connection>,
        watch: Result<(String, Option<u64>, Option<AbortSignal>), StorageError>,
    ) -> Self {
        let (path, after, signal, invalid) = match watch {
            Ok((path, after, signal)) => (path, after, signal, None),
            Err(e) => (String::new(), None, None, Some(e)),
        };
        WatchState {
            connection,
            path,
            last_id: Cell::new(after),
            events: RefCell::new(None),
            pending: RefCell::new(VecDeque::new()),
            done: Cell::new(false),
            signal,
            current: RefCell::new(None),
            failures: Cell::new(0),
            renewed: Cell::new(false),
            invalid: RefCell::new(invalid),
            previous: RefCell::new(None),
        }
    }

    fn aborted(&self) -> bool {
        self.signal.as_ref().is_some_and(AbortSignal::aborted)
    }

    fn close(&self) {
        self.done.set(true);
        self.pending.borrow_mut().clear();
        self.events.borrow_mut().take();
        if let Some(controller) = self.current.borrow_mut().take() {
            controller.abort();
        }
    }

    async fn step(&self) -> Result<JsValue, StorageError> {
        loop {
            if let Some(e) = self.invalid.borrow_mut().take() {
                self.close();
                return Err(e);
            }
            if let Some(value) = self.pending.borrow_mut().pop_front() {
                return Ok(step_result(value, false));
            }
            if self.done.get() || self.aborted() {
                self.close();
                return Ok(step_result(JsValue::UNDEFINED, true));
            }
            let open = self.events.borrow_mut().take();
            let mut events = match open {
                Some(events) => events,
                None => match self.connect().await {
                    Ok(events) => events,
                    Err(e) if retryable(&e) && !self.aborted() => {
                        self.pause().await;
                        continue;
                    }
                    Err(_) if self.aborted() || self.done.get() => continue,
                    Err(e) => {
                        self.close();
                        return Err(e);
                    }
                },
            };
            match events.next().await {
                Some(Ok(event)) => {
                    self.failures.set(0);
                    *self.events.borrow_mut() = Some(events);
                    match self.handle(event) {
                        Ok(()) => {}
                        // The token expired while the stream was open: a token provider gives
                        // a fresh one for the next connection (once in a row).
                        Err(e)
                            if e.code() == ErrorCode::Unauthenticated
                                && matches!(self.connection.token, Token::Provider(_))
                                && !self.renewed.replace(true) =>
                        {
                            self.events.borrow_mut().take();
                        }
                        Err(e) => {
                            self.close();
                            return Err(e);
                        }
                    }
                }
                // The connection ended (dropped, or a slow reader cut off): resume after the
                // last id.
                Some(Err(_)) | None => {
                    if !self.done.get() && !self.aborted() {
                        self.pause().await;
                    }
                }
            }
        }
    }

    /// Reads one event into `pending`; an `error` event is the iteration's error.
    fn handle(&self, event: Event) -> Result<(), StorageError> {
        match event.event.as_str() {
            "change" => {
                self.renewed.set(false);
                let change = json::parse(&event.data)?;
                let _ = js_sys::Reflect::set(&change, &"type".into(), &"change".into());
                self.last_id
                    .set(event.id.parse().ok().or(self.last_id.get()));
                self.pending.borrow_mut().push_back(change);
            }
            "reset" => {
                let reset = json::parse_value(&event.data).ok_or_else(StorageError::internal)?;
                // A slow reader is cut off right after: it resumes from its last id.
                if let Some(next) = reset["nextAfter"].as_u64() {
                    self.last_id.set(Some(next));
                    let value = js_sys::Object::new();
                    let _ = js_sys::Reflect::set(&value, &"type".into(), &"reset".into());
                    let _ =
                        js_sys::Reflect::set(&value, &"nextAfter".into(), &(next as f64).into());
                    let value = JsValue::from(value);
                    self.pending.borrow_mut().push_back(value);
                }
            }
            "error" => {
                let body = json::parse_value(&event.data);
                let code = body
                    .as_ref()
                    .and_then(|v| v["error"]["code"].as_str())
                    .and_then(ErrorCode::from_name)
                    .unwrap_or(ErrorCode::InternalError);
                return Err(StorageError::from_envelope_json(
                    code.http_status(),
                    body.as_ref(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Opens the stream after the last id.
    async fn connect(&self) -> Result<Events, StorageError> {
        let controller = AbortController::new().map_err(|_| StorageError::internal())?;
        let signal = match &self.signal {
            Some(caller) => AbortSignal::any(&js_sys::Array::of2(caller, &controller.signal())),
            None => controller.signal(),
        };
        *self.current.borrow_mut() = Some(controller);
        let options = RequestOptions {
            signal: Some(signal),
            timeout_ms: Some(0),
        };
        let mut headers = vec![("accept", "text/event-stream".to_owned())];
        if let Some(id) = self.last_id.get() {
            headers.push(("last-event-id", id.to_string()));
        }
        let answer = self
            .connection
            .send(Outgoing {
                method: "GET",
                path: self.path.clone(),
                body: None,
                headers,
                options: &options,
                stream: true,
            })
            .await?;
        let body = answer.stream.ok_or_else(StorageError::internal)?;
        Ok(Events {
            reader: body.get_reader().unchecked_into(),
            parser: SseParser::new(),
        })
    }

    /// Waits before reconnecting: 250 ms, doubling with each failure in a row, at most 5 s.
    async fn pause(&self) {
        let failures = self.failures.get();
        self.failures.set(failures.saturating_add(1));
        let ms = (250_u32 << failures.min(5)).min(MAX_PAUSE_MS);
        let wait = js_sys::Promise::new(&mut |resolve, _| {
            let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            match set_timeout {
                Some(f) => {
                    let _ = f.call2(&JsValue::UNDEFINED, &resolve, &ms.into());
                }
                None => {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                }
            }
        });
        let _ = JsFuture::from(wait).await;
    }
}

/// Failures worth another attempt: no answer, a database or server unavailable, a rate limit.
fn retryable(e: &StorageError) -> bool {
    if e.transport_cause() == Some(TransportCause::Aborted) {
        return false;
    }
    e.status() >= 500 || e.code() == ErrorCode::RateLimited
}

/// The changes of a namespace as they happen (see `StorageClient.watch`).
#[wasm_bindgen]
pub struct WatchIterator {
    state: Rc<WatchState>,
}

impl WatchIterator {
    pub(crate) fn new(state: WatchState) -> Self {
        WatchIterator {
            state: Rc::new(state),
        }
    }
}

#[wasm_bindgen]
impl WatchIterator {
    /// The next change (or reset), waiting for it. Calls are served in order.
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<WatchEvent, undefined>>")]
    pub fn next(&self) -> js_sys::Promise {
        let state = self.state.clone();
        in_order(&self.state.previous, async move { state.step().await })
    }

    /// Ends the watch and closes its connection (what `break` in a `for await` calls).
    #[wasm_bindgen(
        js_name = "return",
        unchecked_return_type = "Promise<IteratorResult<WatchEvent, undefined>>"
    )]
    pub fn finish(&self) -> js_sys::Promise {
        self.state.close();
        js_sys::Promise::resolve(&step_result(JsValue::UNDEFINED, true))
    }
}
