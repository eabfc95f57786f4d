//! One HTTP exchange with the storage server: the bearer token (fixed or from a provider, asked
//! again once after a 401), the caller's `AbortSignal` and the timeout, and the mapping of every
//! answer and failure onto a [`StorageError`].

use crate::error::js_message;
use alga_storage_core::StorageError;
use alga_storage_core::TransportCause as Cause;
use tsify::Tsify;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

#[wasm_bindgen(module = "/js/transport.js")]
extern "C" {
    /// What `fetchOnce` resolves to: an answer, or a failure with no answer.
    type Exchanged;
    #[wasm_bindgen(js_name = fetchOnce)]
    fn fetch_once(
        url: &str,
        method: &str,
        headers: js_sys::Array,
        body: Option<String>,
        signal: Option<AbortSignal>,
        timeout_ms: u32,
        stream: bool,
    ) -> js_sys::Promise;
    #[wasm_bindgen(method, getter)]
    fn failure(this: &Exchanged) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn message(this: &Exchanged) -> String;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Exchanged) -> u16;
    #[wasm_bindgen(method, getter)]
    fn etag(this: &Exchanged) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn body(this: &Exchanged) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn stream(this: &Exchanged) -> Option<web_sys::ReadableStream>;
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

/// Where the bearer token comes from.
pub enum Token {
    /// The same token on every call.
    Fixed(String),
    /// A function returning the token or a promise of it; called before each call, and once
    /// more after a 401 (so it can refresh an expired token).
    Provider(js_sys::Function),
}

/// What the server answered.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The body text (empty for a stream).
    pub body: String,
    /// The body, unread, when a stream was asked for and the answer is a success.
    pub stream: Option<web_sys::ReadableStream>,
}

/// A configured connection to one storage server.
pub struct Connection {
    /// Base URL without a trailing slash.
    pub base: String,
    /// The bearer token.
    pub token: Token,
    /// Default timeout in milliseconds (`0` = none).
    pub timeout_ms: u32,
    /// `X-Thesara-App-Id` for snapshot patches.
    pub app_id: Option<String>,
}

/// One request to send.
pub struct Outgoing<'a> {
    /// HTTP method, e.g. `"GET"`.
    pub method: &'static str,
    /// Path and query, starting with `/`.
    pub path: String,
    /// JSON body.
    pub body: Option<String>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Signal and timeout.
    pub options: &'a RequestOptions,
    /// Hand back a successful answer's body unread (no timeout then: a stream may last).
    pub stream: bool,
}

impl Connection {
    async fn token(&self) -> Result<String, StorageError> {
        let provider = match &self.token {
            Token::Fixed(token) => return Ok(token.clone()),
            Token::Provider(f) => f,
        };
        let failed = |why: String| {
            StorageError::unauthenticated(format!("the token provider failed: {why}"))
        };
        let mut value = provider
            .call0(&JsValue::UNDEFINED)
            .map_err(|e| failed(js_message(&e)))?;
        if let Some(promise) = value.dyn_ref::<js_sys::Promise>() {
            value = JsFuture::from(promise.clone())
                .await
                .map_err(|e| failed(js_message(&e)))?;
        }
        match value.as_string() {
            Some(token) if !token.is_empty() => Ok(token),
            _ => Err(failed("it did not give a non-empty string".into())),
        }
    }

    /// Sends a request; a 2xx answer is `Ok`, any other answer or failure a [`StorageError`].
    pub async fn send(&self, request: Outgoing<'_>) -> Result<Answer, StorageError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let answer = self.send_once(&request, &token).await?;
            if answer.status == 401 && !retried && matches!(self.token, Token::Provider(_)) {
                retried = true;
                continue;
            }
            if (200..300).contains(&answer.status) {
                return Ok(answer);
            }
            return Err(StorageError::from_envelope_json(
                answer.status,
                crate::json::parse_value(&answer.body).as_ref(),
            ));
        }
    }

    async fn send_once(&self, request: &Outgoing<'_>, token: &str) -> Result<Answer, StorageError> {
        let caller = request.options.signal.as_ref();
        if caller.is_some_and(AbortSignal::aborted) {
            return Err(StorageError::transport(
                Cause::Aborted,
                "the call was aborted before it was sent",
            ));
        }
        let timeout = match request.stream {
            true => 0,
            false => request.options.timeout_ms.unwrap_or(self.timeout_ms),
        };
        let headers = js_sys::Array::of1(&js_sys::Array::of2(
            &"authorization".into(),
            &format!("Bearer {token}").into(),
        ));
        if request.body.is_some() {
            headers.push(&js_sys::Array::of2(
                &"content-type".into(),
                &"application/json".into(),
            ));
        }
        for (name, value) in &request.headers {
            headers.push(&js_sys::Array::of2(&(*name).into(), &value.into()));
        }
        let exchanged: Exchanged = JsFuture::from(fetch_once(
            &format!("{}{}", self.base, request.path),
            request.method,
            headers,
            request.body.clone(),
            caller.cloned(),
            timeout,
            request.stream,
        ))
        .await
        .map_err(|_| StorageError::internal())?
        .unchecked_into();
        if let Some(failure) = exchanged.failure() {
            let message = exchanged.message();
            return Err(match failure.as_str() {
                "request" => StorageError::validation("request", message),
                "aborted" => StorageError::transport(Cause::Aborted, "the call was aborted"),
                "timeout" => StorageError::transport(
                    Cause::Timeout,
                    format!("no answer from the storage server within {timeout} ms"),
                ),
                _ => StorageError::transport(
                    Cause::Network,
                    format!("the storage server could not be reached: {message}"),
                ),
            });
        }
        Ok(Answer {
            status: exchanged.status(),
            etag: exchanged.etag(),
            body: exchanged.body().unwrap_or_default(),
            stream: exchanged.stream(),
        })
    }
}
