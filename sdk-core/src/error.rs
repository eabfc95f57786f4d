//! Error codes, their HTTP statuses, and the one error envelope of every surface.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Every error code of the contract. The same names appear in Rust, WIT, JSON and TypeScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// An `ifRevision` / `If-Revision-Match` guard did not match (409).
    RevisionMismatch,
    /// A namespace or tenant quota would be exceeded (429).
    QuotaExceeded,
    /// The request is malformed or breaks a limit or a schema (400).
    ValidationFailed,
    /// The record is missing or expired (404).
    NotFound,
    /// The principal lacks the grant the operation needs (403).
    Unauthorized,
    /// The credentials are missing, malformed, expired or revoked (401).
    Unauthenticated,
    /// Too many requests from this principal (429, with `Retry-After`).
    RateLimited,
    /// A body, value or metadata exceeds its size limit (413).
    PayloadTooLarge,
    /// A snapshot `PATCH` named a stale ETag (412).
    PreconditionFailed,
    /// At least one item of a `bulkPut` failed; nothing was written (status of the item error).
    BulkPartialFailure,
    /// An unexpected server failure; no internals are exposed (500).
    InternalError,
    /// The storage service cannot serve now (its database is unreachable); retry after the
    /// `Retry-After` seconds (503).
    Unavailable,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::RevisionMismatch,
        ErrorCode::QuotaExceeded,
        ErrorCode::ValidationFailed,
        ErrorCode::NotFound,
        ErrorCode::Unauthorized,
        ErrorCode::Unauthenticated,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::PreconditionFailed,
        ErrorCode::BulkPartialFailure,
        ErrorCode::InternalError,
        ErrorCode::Unavailable,
    ];

    /// The HTTP status of this code. `BULK_PARTIAL_FAILURE` takes the status of its first
    /// failing item; on its own it defaults to 400.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::RevisionMismatch => 409,
            ErrorCode::QuotaExceeded => 429,
            ErrorCode::ValidationFailed => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Unauthorized => 403,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::RateLimited => 429,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::BulkPartialFailure => 400,
            ErrorCode::InternalError => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// The code of a wire name (`"NOT_FOUND"` → [`ErrorCode::NotFound`]); `None` for another.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The wire name, e.g. `"REVISION_MISMATCH"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RevisionMismatch => "REVISION_MISMATCH",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::PreconditionFailed => "PRECONDITION_FAILED",
            ErrorCode::BulkPartialFailure => "BULK_PARTIAL_FAILURE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A storage error: a stable code, a human message and optional machine-readable details.
///
/// It serialises as the contract's envelope:
/// `{"error":{"code":"REVISION_MISMATCH","message":"…","details":{…}}}`.
///
/// ```
/// use alga_storage_core::{ErrorCode, StorageError};
/// let err = StorageError::revision_mismatch(4);
/// assert_eq!(err.code(), ErrorCode::RevisionMismatch);
/// assert_eq!(err.status(), 409);
/// let json = serde_json::to_value(&err).unwrap();
/// assert_eq!(json["error"]["details"]["currentRevision"], 4);
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StorageError {
    code: ErrorCode,
    message: String,
    details: Option<Value>,
    status: u16,
}

/// Why a call got no answer from the storage service (`details.cause` of a transport failure,
/// see [`StorageError::transport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportCause {
    /// The network failed: connection refused or reset, DNS, CORS, a broken answer.
    Network,
    /// No answer in time.
    Timeout,
    /// The caller gave up (an `AbortSignal`).
    Aborted,
}

impl TransportCause {
    /// The cause `details.cause` spells `name`, if any.
    pub fn from_name(name: &str) -> Option<TransportCause> {
        [
            TransportCause::Network,
            TransportCause::Timeout,
            TransportCause::Aborted,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// The cause as `details.cause` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportCause::Network => "network",
            TransportCause::Timeout => "timeout",
            TransportCause::Aborted => "aborted",
        }
    }
}

/// The kind of a storage error as a WASM guest sees it: the cases of the WIT `storage-error`
/// variant (`alga:storage/storage`). Several codes share a kind; the code itself travels too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `UNAUTHORIZED` (a grant lacks the access) or `UNAUTHENTICATED`.
    Unauthorized,
    /// `UNAUTHORIZED` because the namespace is not granted at all.
    NamespaceDenied,
    /// `REVISION_MISMATCH` (or a snapshot's `PRECONDITION_FAILED`).
    RevisionMismatch,
    /// `QUOTA_EXCEEDED`.
    QuotaExceeded,
    /// `VALIDATION_FAILED`, `PAYLOAD_TOO_LARGE` or `BULK_PARTIAL_FAILURE`.
    ValidationFailed,
    /// `NOT_FOUND`.
    NotFound,
    /// `RATE_LIMITED`.
    RateLimited,
    /// The storage service could not be reached, or answered `UNAVAILABLE`: worth a retry.
    Transport,
    /// `INTERNAL_ERROR`, or a failure of the host itself.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of the WIT variant.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Unauthorized,
        ErrorKind::NamespaceDenied,
        ErrorKind::RevisionMismatch,
        ErrorKind::QuotaExceeded,
        ErrorKind::ValidationFailed,
        ErrorKind::NotFound,
        ErrorKind::RateLimited,
        ErrorKind::Transport,
        ErrorKind::Internal,
    ];

    /// The code an error of this kind has when nothing more precise is known.
    pub const fn default_code(self) -> ErrorCode {
        match self {
            ErrorKind::Unauthorized | ErrorKind::NamespaceDenied => ErrorCode::Unauthorized,
            ErrorKind::RevisionMismatch => ErrorCode::RevisionMismatch,
            ErrorKind::QuotaExceeded => ErrorCode::QuotaExceeded,
            ErrorKind::ValidationFailed => ErrorCode::ValidationFailed,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::RateLimited => ErrorCode::RateLimited,
            ErrorKind::Transport | ErrorKind::Internal => ErrorCode::InternalError,
        }
    }
}

/// One failing item of a `bulkPut`, as listed in the details of `BULK_PARTIAL_FAILURE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkItemError {
    /// Position of the item in the request.
    pub index: usize,
    /// Key of the item.
    pub key: String,
    /// Why it failed.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
    /// Details of the item's own error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl BulkItemError {
    /// The failure of item `index` (with `key`) for the reason `error`.
    pub fn new(index: usize, key: impl Into<String>, error: &StorageError) -> Self {
        BulkItemError {
            index,
            key: key.into(),
            code: error.code(),
            message: error.message().to_owned(),
            details: error.details().cloned(),
        }
    }

    /// The item as JSON, as its `Serialize` writes it (a test keeps the two the same). Built by
    /// hand: `serde_json::to_value` would link serde_json's whole `Value` serializer (3.7 KB)
    /// into the browser module, which reports a bulk write's bad items before sending.
    fn into_json(self) -> Value {
        let kept = usize::from(self.details.is_some());
        let mut entries = [
            ("index", Value::from(self.index as u64)),
            ("key", Value::String(self.key)),
            ("code", Value::String(self.code.as_str().to_owned())),
            ("message", Value::String(self.message)),
            ("details", self.details.unwrap_or_default()),
        ];
        details(&mut entries[..4 + kept])
    }
}

/// `s` in double quotes, escaped as JSON escapes it: how a message names a value the caller sent.
/// (Not `{:?}`: Rust's debug escaping links its Unicode tables into the browser module.)
pub(crate) fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The `details` object `{ name: value, … }`. Built by hand rather than with `json!`, whose
/// `to_value(…).unwrap()` would link serde_json's error formatting into the browser module.
fn details(entries: &mut [(&str, Value)]) -> Value {
    let mut object = serde_json::Map::new();
    for (name, value) in entries {
        object.insert((*name).to_owned(), value.take());
    }
    Value::Object(object)
}

impl StorageError {
    /// An error with a code and message, and the code's own HTTP status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        StorageError {
            code,
            message: message.into(),
            details: None,
            status: code.http_status(),
        }
    }

    /// Attaches machine-readable details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Sets the HTTP status an answer carried (a client rebuilding a server's error keeps the
    /// status it saw, e.g. `BULK_PARTIAL_FAILURE` with the status of its first item).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// `VALIDATION_FAILED` naming the field (a JSON path such as `items[2].key`, or `body`) and why.
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        StorageError::new(ErrorCode::ValidationFailed, format!("{field}: {reason}")).with_details(
            details(&mut [("field", field.into()), ("reason", reason.into())]),
        )
    }

    /// `PAYLOAD_TOO_LARGE` naming the field, its limit and its actual size in bytes.
    pub fn too_large(field: impl Into<String>, limit: usize, actual: usize) -> Self {
        let field = field.into();
        StorageError::new(
            ErrorCode::PayloadTooLarge,
            format!("{field}: {actual} bytes exceeds the limit of {limit} bytes"),
        )
        .with_details(details(&mut [
            ("field", field.into()),
            ("limit", limit.into()),
            ("actual", actual.into()),
        ]))
    }

    /// `VALIDATION_FAILED`: `field` nests arrays and objects deeper than
    /// [`MAX_VALUE_DEPTH`](crate::limits::MAX_VALUE_DEPTH).
    pub fn too_deep(field: impl Into<String>) -> Self {
        StorageError::validation(
            field,
            format!(
                "must nest arrays and objects at most {} deep",
                crate::limits::MAX_VALUE_DEPTH
            ),
        )
    }

    /// `REVISION_MISMATCH` with the current revision (`0` when the record does not exist).
    pub fn revision_mismatch(current_revision: u64) -> Self {
        StorageError::new(
            ErrorCode::RevisionMismatch,
            format!("revision guard failed; current revision is {current_revision}"),
        )
        .with_details(details(&mut [("currentRevision", current_revision.into())]))
    }

    /// `NOT_FOUND` for a record.
    pub fn not_found() -> Self {
        StorageError::new(ErrorCode::NotFound, "record not found")
    }

    /// `UNAUTHENTICATED` with a reason.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        StorageError::new(ErrorCode::Unauthenticated, message)
    }

    /// `UNAVAILABLE`: the database cannot be reached now; `Retry-After` says when to try again.
    pub fn unavailable(retry_after_seconds: u64) -> Self {
        StorageError::new(
            ErrorCode::Unavailable,
            "the storage service is unavailable; retry shortly",
        )
        .with_details(details(&mut [(
            "retryAfterSeconds",
            retry_after_seconds.into(),
        )]))
    }

    /// `INTERNAL_ERROR` with a fixed message that reveals nothing.
    pub fn internal() -> Self {
        StorageError::new(ErrorCode::InternalError, "internal error")
    }

    /// `BULK_PARTIAL_FAILURE` listing the failing items; its status is that of the first one.
    /// Items must not be empty.
    pub fn bulk_partial_failure(items: Vec<BulkItemError>) -> Self {
        let status = items.first().map_or(400, |i| i.code.http_status());
        let message = format!(
            "{} of the bulk items failed; nothing was written",
            items.len()
        );
        let items = Value::Array(items.into_iter().map(BulkItemError::into_json).collect());
        let details = details(&mut [("items", items)]);
        StorageError {
            code: ErrorCode::BulkPartialFailure,
            message,
            details: Some(details),
            status,
        }
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A failure to reach the storage service at all (connection refused, timeout, broken
    /// response, the caller's abort), as an SDK or the runner host reports it after its
    /// retries: the one spelling of a transport failure on every surface. It carries the
    /// `INTERNAL_ERROR` code (the server never sends it), status 503 and
    /// `details = {"reason": "transport", "cause": "network" | "timeout" | "aborted"}`;
    /// [`StorageError::is_transport`] tells it apart, [`StorageError::transport_cause`] says why.
    ///
    /// ```
    /// use alga_storage_core::{ErrorKind, StorageError, TransportCause};
    /// let err = StorageError::transport(TransportCause::Timeout, "no answer in 5 s");
    /// assert!(err.is_transport());
    /// assert_eq!(err.kind(), ErrorKind::Transport);
    /// assert_eq!(err.status(), 503);
    /// assert_eq!(err.transport_cause(), Some(TransportCause::Timeout));
    /// assert_eq!(err.details().unwrap()["cause"], "timeout");
    /// ```
    pub fn transport(cause: TransportCause, message: impl Into<String>) -> Self {
        StorageError {
            status: 503,
            ..StorageError::new(ErrorCode::InternalError, message).with_details(details(&mut [
                ("reason", "transport".into()),
                ("cause", cause.as_str().into()),
            ]))
        }
    }

    /// Why a transport failure got no answer (`None` for any other error).
    pub fn transport_cause(&self) -> Option<TransportCause> {
        if !self.is_transport() {
            return None;
        }
        TransportCause::from_name(self.details.as_ref()?.get("cause")?.as_str()?)
    }

    /// Whether this error is a transport failure (see [`StorageError::transport`]).
    pub fn is_transport(&self) -> bool {
        self.code == ErrorCode::InternalError
            && self
                .details
                .as_ref()
                .and_then(|d| d.get("reason"))
                .is_some_and(|r| r == "transport")
    }

    /// The guest-facing kind of this error: the case of the WIT `storage-error` variant.
    ///
    /// `UNAUTHORIZED` becomes [`ErrorKind::NamespaceDenied`] when the namespace is not granted
    /// at all; `PAYLOAD_TOO_LARGE` and `BULK_PARTIAL_FAILURE` are validation failures (their
    /// exact code travels with them).
    pub fn kind(&self) -> ErrorKind {
        match self.code {
            ErrorCode::Unauthorized => {
                let reason = self.details.as_ref().and_then(|d| d.get("reason"));
                if reason.is_some_and(|r| r == "namespaceNotGranted") {
                    ErrorKind::NamespaceDenied
                } else {
                    ErrorKind::Unauthorized
                }
            }
            ErrorCode::Unauthenticated => ErrorKind::Unauthorized,
            ErrorCode::RevisionMismatch | ErrorCode::PreconditionFailed => {
                ErrorKind::RevisionMismatch
            }
            ErrorCode::QuotaExceeded => ErrorKind::QuotaExceeded,
            ErrorCode::ValidationFailed
            | ErrorCode::PayloadTooLarge
            | ErrorCode::BulkPartialFailure => ErrorKind::ValidationFailed,
            ErrorCode::NotFound => ErrorKind::NotFound,
            ErrorCode::RateLimited => ErrorKind::RateLimited,
            ErrorCode::InternalError if self.is_transport() => ErrorKind::Transport,
            ErrorCode::InternalError => ErrorKind::Internal,
            ErrorCode::Unavailable => ErrorKind::Transport,
        }
    }

    /// Rebuilds an error from what crossed a boundary as parts: its kind, wire code, message and
    /// details as JSON text (the WIT `error-info`). An unknown code falls back to the kind's
    /// own; the status follows the code, as on the server.
    ///
    /// ```
    /// use alga_storage_core::{ErrorCode, ErrorKind, StorageError};
    /// let err = StorageError::revision_mismatch(4);
    /// let details = err.details().map(|d| d.to_string());
    /// let back = StorageError::from_parts(err.kind(), err.code().as_str(), err.message(), details.as_deref());
    /// assert_eq!(back, err);
    /// ```
    pub fn from_parts(
        kind: ErrorKind,
        code: &str,
        message: impl Into<String>,
        details: Option<&str>,
    ) -> Self {
        let details: Option<Value> = details.and_then(|d| serde_json::from_str(d).ok());
        if kind == ErrorKind::Transport && code != ErrorCode::Unavailable.as_str() {
            let cause = details
                .as_ref()
                .and_then(|d| d.get("cause"))
                .and_then(|c| TransportCause::from_name(c.as_str()?))
                .unwrap_or(TransportCause::Network);
            let mut err = StorageError::transport(cause, message);
            if let (Some(Value::Object(extra)), Some(Value::Object(mine))) =
                (details, err.details.as_mut())
            {
                for (k, v) in extra {
                    mine.entry(k).or_insert(v);
                }
            }
            return err;
        }
        let code = ErrorCode::from_name(code).unwrap_or_else(|| kind.default_code());
        let status = match code {
            ErrorCode::BulkPartialFailure => details
                .as_ref()
                .and_then(|d| d.pointer("/items/0/code"))
                .and_then(|c| ErrorCode::from_name(c.as_str()?))
                .map_or(400, ErrorCode::http_status),
            other => other.http_status(),
        };
        StorageError {
            code,
            message: message.into(),
            details,
            status,
        }
    }

    /// Rebuilds an error from an HTTP status and a response body holding the envelope.
    /// A body that is not an envelope becomes `INTERNAL_ERROR` (5xx) or a code derived from the
    /// status, so a client always gets a typed error.
    pub fn from_envelope(status: u16, body: &[u8]) -> Self {
        StorageError::from_envelope_json(status, serde_json::from_slice(body).ok().as_ref())
    }

    /// [`StorageError::from_envelope`] of a body already parsed as JSON (`None`: not JSON).
    ///
    /// ```
    /// use alga_storage_core::{ErrorCode, StorageError};
    /// let body = serde_json::json!({"error": {"code": "NOT_FOUND", "message": "no record"}});
    /// let e = StorageError::from_envelope_json(404, Some(&body));
    /// assert_eq!((e.code(), e.message()), (ErrorCode::NotFound, "no record"));
    /// assert_eq!(StorageError::from_envelope_json(412, None).code(), ErrorCode::PreconditionFailed);
    /// ```
    pub fn from_envelope_json(status: u16, body: Option<&Value>) -> Self {
        let error = body.and_then(|b| b.get("error"));
        let code = error
            .and_then(|e| e.get("code")?.as_str())
            .and_then(ErrorCode::from_name);
        let message = error.and_then(|e| e.get("message")?.as_str());
        match (code, message) {
            (Some(code), Some(message)) => StorageError {
                code,
                message: message.to_owned(),
                details: error
                    .and_then(|e| e.get("details"))
                    .filter(|d| !d.is_null())
                    .cloned(),
                status,
            },
            _ => {
                let code = ErrorCode::ALL
                    .into_iter()
                    .find(|c| c.http_status() == status && *c != ErrorCode::BulkPartialFailure)
                    .unwrap_or(ErrorCode::InternalError);
                StorageError {
                    status,
                    ..StorageError::new(code, format!("HTTP status {status}"))
                }
            }
        }
    }
}

impl Serialize for StorageError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: ErrorCode,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            details: Option<&'a Value>,
        }
        Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
        }
        .serialize(serializer)
    }
}
