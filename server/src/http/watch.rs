//! `GET /api/ext-storage/{ns}:watch`: a namespace's changes as Server-Sent Events (DESIGN §
//! "Change feed").
//!
//! Each change is an event `change` whose `id` is its sequence number and whose data is the
//! change as `{ns}:changes` gives it (with `value` when `includeValues=true` and the record
//! still has that revision). A stream resumes after `Last-Event-ID` (or `?after=`): it first
//! replays the log from there, then follows live changes, never sending one twice. A comment
//! line every [`HEARTBEAT`] keeps proxies from closing an idle stream.
//!
//! An event `reset` says the stream skipped ahead: `{"reason":"retention","nextAfter":n}` (the
//! position is older than the log keeps: read the namespace anew; the stream goes on after
//! `n`), or `{"reason":"slow"}` (the reader fell more than the server buffers behind: the
//! stream ends, and resuming from the last id loses nothing). An event `error` carries the
//! contract's error envelope and ends the stream (the install was revoked, its grant on the
//! namespace withdrawn, the token expired, or the database failed).

use super::extract::{bearer_claims, recognise};
use super::{observe, AppState};
use crate::error::ApiError;
use crate::governance::Surface;
use crate::store::feed::{Event, Subscription};
use crate::store::ChangesQuery;
use alga_storage_core::{
    ensure_capability, Access, Change, ChangesRequest, Namespace, Sequence, StorageError,
};
use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// How often an idle stream sends a comment line.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Events already broadcast are written together, up to about this many bytes a chunk (one
/// socket write instead of one per event). A reader that does not keep up leaves the changes
/// in the topic's buffer; once that is full, it is cut off.
const COALESCE_BYTES: usize = 64 * 1024;

/// What a watch asks for (the query of `{ns}:watch`).
#[derive(Debug, Clone, Default)]
pub struct WatchQuery {
    /// `?after=` (0 when absent; `Last-Event-ID` wins).
    pub after: Sequence,
    /// `?keyPrefix=`.
    pub key_prefix: Option<String>,
    /// `?includeValues=`.
    pub include_values: bool,
}

/// Opens a watch (the handler of `{ns}:watch`; the namespace and query are parsed by the
/// caller, their errors reported after authentication).
pub async fn watch(
    state: AppState,
    headers: HeaderMap,
    request: Result<(Namespace, WatchQuery), ApiError>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let answer = open(&state, &headers, request).await;
    observe(&state, "watch", Surface::Rest, started, answer)
}

async fn open(
    state: &AppState,
    headers: &HeaderMap,
    request: Result<(Namespace, WatchQuery), ApiError>,
) -> Result<Response, ApiError> {
    let bearer = bearer_claims(state, headers)?;
    let principal = super::extract::admit(state, &bearer.install, Some(&bearer)).await?;
    let (namespace, query) = request?;
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|v| Sequence::new(v).ok())
            .ok_or_else(|| {
                StorageError::validation("last-event-id", "must be a sequence number")
            })?,
        None => query.after,
    };
    ensure_capability(&principal.grants, &namespace, Access::Read)?;
    let subscription = state
        .store
        .feed()
        .subscribe(
            &state.store,
            principal.install.as_str(),
            principal.tenant,
            namespace.as_str(),
        )
        .await?;
    // The token is good until it expires; then the stream ends with UNAUTHENTICATED (a client
    // that can get a fresh token reconnects with it, after its last id).
    let left = bearer.expires - chrono::Utc::now().timestamp();
    let watcher = Watcher {
        evictions: state.principals.evictions(),
        expiry: Box::pin(tokio::time::sleep(Duration::from_secs(left.max(0) as u64))),
        heartbeat: Box::pin(tokio::time::sleep(HEARTBEAT)),
        phase: Phase::Replay,
        state: state.clone(),
        bearer,
        namespace,
        query,
        position: after.get(),
        subscription,
    };
    // The stream is the watch: it runs while the client reads it, and ends (dropping its
    // subscription) when the client goes away.
    let stream = futures_util::stream::unfold(watcher, |mut watcher| async move {
        let chunk = watcher.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), watcher))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Where a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sending what the log holds after the position, a page at a time.
    Replay,
    /// Following the topic.
    Live,
    /// Ended (its last event written).
    Ended,
}

/// One open watch: replays the log, then follows the topic. Each call of
/// [`Watcher::next_chunk`] writes the events that are ready as one chunk of the response.
struct Watcher {
    state: AppState,
    bearer: std::sync::Arc<crate::auth::Bearer>,
    namespace: Namespace,
    query: WatchQuery,
    /// The last sequence number accounted for (sent, or skipped by the key prefix).
    position: u64,
    subscription: Subscription,
    evictions: tokio::sync::watch::Receiver<u64>,
    expiry: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// When the stream is idle for long enough to need a heartbeat (moved on by every chunk).
    heartbeat: std::pin::Pin<Box<tokio::time::Sleep>>,
    phase: Phase,
}

/// Why a stream ends (its last event is already written).
struct Ended;

impl Watcher {
    /// The next bytes of the stream: one or more whole events (or a heartbeat comment), or
    /// `None` once the stream has ended.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        while out.is_empty() {
            let step = match self.phase {
                Phase::Replay => self.replay_page(&mut out).await,
                Phase::Live => self.live(&mut out).await,
                Phase::Ended => return None,
            };
            if step.is_err() {
                self.phase = Phase::Ended;
            }
        }
        self.heartbeat
            .as_mut()
            .reset(tokio::time::Instant::now() + HEARTBEAT);
        Some(Bytes::from(out))
    }

    /// Writes one page of what the log holds after the position (the changes from before
    /// the subscription); the last page moves the stream on to the topic.
    async fn replay_page(&mut self, out: &mut Vec<u8>) -> Result<(), Ended> {
        let limit = alga_storage_core::limits::MAX_LIST_LIMIT;
        let query = ChangesQuery {
            namespace: self.namespace.as_str(),
            after: self.position,
            limit,
            key_prefix: self.query.key_prefix.as_deref(),
            values: self.query.include_values,
        };
        let page = match self.state.store.changes(self.bearer.tenant, &query).await {
            Ok(page) => page,
            Err(e) => return fail(out, &ApiError::from(e).0),
        };
        if page.reset {
            self.position = page.next_after;
            write_reset(out, Some(page.next_after));
            return Ok(());
        }
        if page.changes.len() < usize::from(limit) {
            self.phase = Phase::Live;
        }
        for change in &page.changes {
            let data = serde_json::to_string(change).map_err(|_| Ended)?;
            write_change(out, change.seq, &data);
        }
        self.position = page.next_after;
        Ok(())
    }

    /// Waits for what the stream says next: the changes the topic broadcast (all those already
    /// there, in one chunk), a heartbeat, or its end.
    async fn live(&mut self, out: &mut Vec<u8>) -> Result<(), Ended> {
        tokio::select! {
            () = &mut self.expiry => {
                fail(out, &StorageError::unauthenticated("token expired"))
            }
            event = self.subscription.events.recv() => {
                self.take(event, out)?;
                while out.len() < COALESCE_BYTES {
                    let event = match self.subscription.events.try_recv() {
                        Ok(event) => Ok(event),
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            Err(broadcast::error::RecvError::Lagged(n))
                        }
                        Err(broadcast::error::TryRecvError::Closed) => {
                            Err(broadcast::error::RecvError::Closed)
                        }
                    };
                    self.take(event, out)?;
                }
                Ok(())
            }
            changed = self.evictions.changed() => {
                if changed.is_err() {
                    return Err(Ended);
                }
                self.still_allowed(out).await
            }
            () = &mut self.heartbeat => {
                out.extend_from_slice(b":heartbeat\n\n");
                Ok(())
            }
        }
    }

    /// Writes what one broadcast event means for this stream.
    fn take(
        &mut self,
        event: Result<Event, broadcast::error::RecvError>,
        out: &mut Vec<u8>,
    ) -> Result<(), Ended> {
        match event {
            Ok(Event::Change(broadcast)) => {
                let change = &broadcast.change;
                if change.seq > self.position {
                    self.position = change.seq;
                    if self.wanted(change) {
                        let data = if self.query.include_values {
                            &broadcast.with_value
                        } else {
                            &broadcast.without_value
                        };
                        write_change(out, change.seq, data);
                    }
                }
                Ok(())
            }
            Ok(Event::Reset { latest }) => {
                if latest > self.position {
                    self.position = latest;
                    write_reset(out, Some(latest));
                }
                Ok(())
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                write_reset(out, None);
                Err(Ended)
            }
            Err(broadcast::error::RecvError::Closed) => Err(Ended),
        }
    }

    fn wanted(&self, change: &Change) -> bool {
        self.query
            .key_prefix
            .as_deref()
            .is_none_or(|prefix| change.key.as_str().starts_with(prefix))
    }

    /// Ends the stream with an `error` event if the install was revoked or lost its read grant.
    async fn still_allowed(&mut self, out: &mut Vec<u8>) -> Result<(), Ended> {
        let allowed = async {
            let principal =
                recognise(&self.state, &self.bearer.install, Some(&self.bearer)).await?;
            ensure_capability(&principal.grants, &self.namespace, Access::Read)?;
            Ok::<_, ApiError>(())
        };
        match allowed.await {
            Ok(()) => Ok(()),
            Err(e) => fail(out, &e.0),
        }
    }
}

/// Appends one event (`data` is JSON: one line).
fn write_event(out: &mut Vec<u8>, event: &str, id: Option<u64>, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(b"\nid: ");
        out.extend_from_slice(id.to_string().as_bytes());
    }
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

fn write_change(out: &mut Vec<u8>, seq: u64, data: &str) {
    write_event(out, "change", Some(seq), data);
}

fn write_reset(out: &mut Vec<u8>, next_after: Option<u64>) {
    match next_after {
        Some(n) => write_event(
            out,
            "reset",
            Some(n),
            &format!(r#"{{"reason":"retention","nextAfter":{n}}}"#),
        ),
        None => write_event(out, "reset", None, r#"{"reason":"slow"}"#),
    }
}

/// Appends the `error` event that ends a stream.
fn fail(out: &mut Vec<u8>, error: &StorageError) -> Result<(), Ended> {
    if let Ok(data) = serde_json::to_string(error) {
        write_event(out, "error", None, &data);
    }
    Err(Ended)
}

/// Parses the query of `{ns}:changes` (`after`, `limit`, `keyPrefix`) or, with `watch`, of
/// `{ns}:watch` (`after`, `keyPrefix`, `includeValues`): strict, every error naming its
/// parameter.
pub fn feed_query(
    namespace: Namespace,
    query: &str,
    watch: bool,
) -> Result<(ChangesRequest, bool), ApiError> {
    let mut request = ChangesRequest {
        namespace,
        after: Sequence::default(),
        limit: None,
        key_prefix: None,
    };
    let mut include_values = false;
    let mut seen = std::collections::HashSet::new();
    for (name, value) in super::extract::query_pairs(query)? {
        if !seen.insert(name.clone()) {
            return Err(StorageError::validation(name, "given more than once").into());
        }
        let whole = |field: &'static str| {
            value.parse::<i64>().map_err(|_| {
                StorageError::validation(field, format!("{value:?} is not an integer"))
            })
        };
        match (name.as_str(), watch) {
            ("after", _) => request.after = Sequence::new(whole("after")?)?,
            ("keyPrefix", _) => request.key_prefix = Some(value),
            ("limit", false) => {
                request.limit = Some(alga_storage_core::Limit::new(whole("limit")?)?)
            }
            ("includeValues", true) => {
                include_values = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(StorageError::validation(
                            "includeValues",
                            format!("{other:?} is not true or false"),
                        )
                        .into())
                    }
                }
            }
            (other, _) => {
                let expected = if watch {
                    "after, keyPrefix or includeValues"
                } else {
                    "after, limit or keyPrefix"
                };
                return Err(StorageError::validation(
                    other.to_owned(),
                    format!("unknown query parameter; expected {expected}"),
                )
                .into());
            }
        }
    }
    request.validate()?;
    Ok((request, include_values))
}
