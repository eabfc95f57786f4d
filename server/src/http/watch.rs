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
use crate::store::feed::Event;
use crate::store::ChangesQuery;
use alga_storage_core::{
    ensure_capability, Access, Change, ChangesRequest, Namespace, Sequence, StorageError,
};
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

/// How often an idle stream sends a comment line.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Events a stream holds for a reader before it waits (then the topic's buffer fills, and a
/// reader that stays behind is cut off).
const STREAM_BUFFER: usize = 16;

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
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let watcher = Watcher {
        state: state.clone(),
        bearer,
        namespace,
        query,
        position: after.get(),
        tx,
    };
    tokio::spawn(watcher.run(subscription));
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), rx))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response())
}

/// One open watch: replays the log, then follows the topic.
struct Watcher {
    state: AppState,
    bearer: crate::auth::Bearer,
    namespace: Namespace,
    query: WatchQuery,
    /// The last sequence number accounted for (sent, or skipped by the key prefix).
    position: u64,
    tx: mpsc::Sender<sse::Event>,
}

/// Why a stream ends.
struct Ended;

impl Watcher {
    async fn run(mut self, mut subscription: crate::store::feed::Subscription) {
        let _ = self.follow(&mut subscription).await;
    }

    async fn follow(
        &mut self,
        subscription: &mut crate::store::feed::Subscription,
    ) -> Result<(), Ended> {
        let mut evictions = self.state.principals.evictions();
        // The token is good until it expires; then the stream ends with UNAUTHENTICATED (a
        // client that can get a fresh token reconnects with it, after its last id).
        let left = self.bearer.expires - chrono::Utc::now().timestamp();
        let expiry = tokio::time::sleep(Duration::from_secs(left.max(0) as u64));
        tokio::pin!(expiry);
        self.replay().await?;
        loop {
            tokio::select! {
                () = &mut expiry => {
                    return self.fail(StorageError::unauthenticated("token expired")).await;
                }
                event = subscription.events.recv() => match event {
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
                                self.send_json(change.seq, data).await?;
                            }
                        }
                    }
                    Ok(Event::Reset { latest }) => {
                        if latest > self.position {
                            self.position = latest;
                            self.send_reset(Some(latest)).await?;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.send_reset(None).await?;
                        return Err(Ended);
                    }
                    Err(broadcast::error::RecvError::Closed) => return Err(Ended),
                },
                changed = evictions.changed() => {
                    if changed.is_err() {
                        return Err(Ended);
                    }
                    self.still_allowed().await?;
                }
                () = self.tx.closed() => return Err(Ended),
            }
        }
    }

    /// Sends what the log holds after the position (the changes before the subscription).
    async fn replay(&mut self) -> Result<(), Ended> {
        let limit = alga_storage_core::limits::MAX_LIST_LIMIT;
        loop {
            let query = ChangesQuery {
                namespace: self.namespace.as_str(),
                after: self.position,
                limit,
                key_prefix: self.query.key_prefix.as_deref(),
                values: self.query.include_values,
            };
            let page = match self.state.store.changes(self.bearer.tenant, &query).await {
                Ok(page) => page,
                Err(e) => return self.fail(ApiError::from(e).0).await,
            };
            if page.reset {
                self.position = page.next_after;
                self.send_reset(Some(page.next_after)).await?;
                continue;
            }
            let full = page.changes.len() >= usize::from(limit);
            for change in &page.changes {
                self.send_change(change).await?;
            }
            self.position = page.next_after;
            if !full {
                return Ok(());
            }
        }
    }

    fn wanted(&self, change: &Change) -> bool {
        self.query
            .key_prefix
            .as_deref()
            .is_none_or(|prefix| change.key.as_str().starts_with(prefix))
    }

    /// Ends the stream with an `error` event if the install was revoked or lost its read grant.
    async fn still_allowed(&mut self) -> Result<(), Ended> {
        let allowed = async {
            let principal =
                recognise(&self.state, &self.bearer.install, Some(&self.bearer)).await?;
            ensure_capability(&principal.grants, &self.namespace, Access::Read)?;
            Ok::<_, ApiError>(())
        };
        match allowed.await {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e.0).await,
        }
    }

    /// Sends a change the replay read (its value only if asked for: the read had it so).
    async fn send_change(&self, change: &Change) -> Result<(), Ended> {
        let data = serde_json::to_string(change).map_err(|_| Ended)?;
        self.send_json(change.seq, &data).await
    }

    async fn send_json(&self, seq: u64, data: &str) -> Result<(), Ended> {
        let event = sse::Event::default()
            .event("change")
            .id(seq.to_string())
            .data(data);
        self.send(event).await
    }

    async fn send_reset(&self, next_after: Option<u64>) -> Result<(), Ended> {
        let event = match next_after {
            Some(n) => sse::Event::default()
                .event("reset")
                .id(n.to_string())
                .data(format!(r#"{{"reason":"retention","nextAfter":{n}}}"#)),
            None => sse::Event::default()
                .event("reset")
                .data(r#"{"reason":"slow"}"#),
        };
        self.send(event).await
    }

    async fn fail(&self, error: StorageError) -> Result<(), Ended> {
        let data = serde_json::to_string(&error).map_err(|_| Ended)?;
        let _ = self
            .send(sse::Event::default().event("error").data(data))
            .await;
        Err(Ended)
    }

    async fn send(&self, event: sse::Event) -> Result<(), Ended> {
        self.tx.send(event).await.map_err(|_| Ended)
    }
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
