//! The change feed's fan-out (DESIGN § "Change feed"): the log in the database is the source of
//! truth; this only tells watchers when to read it.
//!
//! Each namespace with open watches on this instance has one [`Topic`]: a task that reads the
//! namespace's new changes once (whatever the number of watchers) and broadcasts them. It reads
//! when woken: by a write through this instance, by another instance (Postgres `NOTIFY` on
//! [`CHANNEL`], at most one per [`ANNOUNCE_WINDOW`], off the request path), and every [`POLL`]
//! as a safety net, so a lost notification delays a change, never loses it. A watcher
//! subscribes first, then catches up from the log, then follows the broadcast, skipping what it
//! already sent: nothing is missed or sent twice. The broadcast holds at most
//! [`TOPIC_CAPACITY`] changes: a watcher that falls further behind is cut off (it resumes from
//! the log with its last id).

use super::{ChangesQuery, Store};
use alga_storage_core::{Change, StorageError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, Notify};
use uuid::Uuid;

/// The Postgres channel on which instances announce changed namespaces (payload: the sending
/// instance's id, then one `tenant namespace` line each).
pub const CHANNEL: &str = "alga_storage_changes";
/// How often a topic reads its namespace's log without being woken.
pub const POLL: Duration = Duration::from_secs(5);
/// The most changes a topic's broadcast holds for its slowest watcher.
pub const TOPIC_CAPACITY: usize = 1024;
/// How long an instance gathers changed namespaces before it tells the others (the price in
/// cross-instance latency of sending one notification per window instead of one per write).
pub const ANNOUNCE_WINDOW: Duration = Duration::from_millis(20);
/// How often a topic may read its namespace's log: at most once per [`READ_INTERVAL_PER_WATCHER`]
/// for each of its watchers, and at least once per [`MAX_READ_INTERVAL`]. Each read costs one
/// wake-up and one socket write per watcher, and those writes, not the events in them, are
/// what watches cost the server and its clients; under a stream of writes, the changes
/// committed within the interval travel together, so a topic with many watchers does that work
/// once for many changes, at the price of that much latency (none while writes are sparse: a
/// change after a quiet interval is read at once). A watcher alone waits at most 4 ms; 50 or
/// more watchers of one busy namespace get its changes 5 times a second.
pub const READ_INTERVAL_PER_WATCHER: Duration = Duration::from_millis(4);
/// The longest a topic waits between two reads of its log when woken (see
/// [`READ_INTERVAL_PER_WATCHER`]): a fifth of the second within which the design has a write
/// reach every watcher.
pub const MAX_READ_INTERVAL: Duration = Duration::from_millis(200);

/// The longest `NOTIFY` payload sent (Postgres' limit is 8,000 bytes).
const MAX_PAYLOAD: usize = 7000;

/// A change as a topic broadcasts it: serialized once for all its watchers, with and without
/// its value.
#[derive(Debug)]
pub struct Broadcast {
    /// The change.
    pub change: Change,
    /// Its JSON with `value` (when the log read one).
    pub with_value: String,
    /// Its JSON without `value`.
    pub without_value: String,
}

impl Broadcast {
    fn new(change: Change) -> Self {
        let with_value = serde_json::to_string(&change).unwrap_or_default();
        let without_value = if change.value.is_some() {
            serde_json::to_string(&Change {
                value: None,
                ..change.clone()
            })
            .unwrap_or_default()
        } else {
            with_value.clone()
        };
        Broadcast {
            change,
            with_value,
            without_value,
        }
    }
}

/// What a topic broadcasts.
#[derive(Debug, Clone)]
pub enum Event {
    /// A change, in sequence order.
    Change(Arc<Broadcast>),
    /// The topic fell behind the log's retention: changes up to `latest` are unknown.
    Reset {
        /// The namespace's latest sequence number.
        latest: u64,
    },
}

type TopicKey = (Uuid, String);

/// One watched namespace on this instance.
#[derive(Debug)]
pub struct Topic {
    events: broadcast::Sender<Event>,
    wake: Notify,
    /// The namespace's latest sequence number when the topic began: it broadcasts every
    /// change after it. A watcher subscribes, waits for it, then replays the log: whatever it
    /// cannot have replayed comes after this, so it is broadcast.
    start: tokio::sync::OnceCell<u64>,
}

impl Topic {
    async fn started(&self, store: &dyn Store, key: &TopicKey) -> Result<u64, super::StoreError> {
        self.start
            .get_or_try_init(|| async {
                // An `after` past any sequence number answers a reset with the latest one.
                Ok(read(store, key.0, &key.1, i64::MAX as u64)
                    .await?
                    .next_after)
            })
            .await
            .copied()
    }
}

/// A watcher's place in a topic, and its slot in its principal's allowance of open watches.
#[derive(Debug)]
pub struct Subscription {
    /// The topic's changes from the moment of subscribing.
    pub events: broadcast::Receiver<Event>,
    _topic: Arc<Topic>,
    _slot: WatchSlot,
}

/// Counts an open watch against its principal until dropped.
#[derive(Debug)]
struct WatchSlot {
    feed: Weak<Feed>,
    install: String,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        if let Some(feed) = self.feed.upgrade() {
            let mut open = lock(&feed.watches);
            if let Some(n) = open.get_mut(&self.install) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.install);
                }
            }
        }
    }
}

/// The feed of one instance: its topics, its open watches, and its announcements to the others.
#[derive(Debug)]
pub struct Feed {
    instance: Uuid,
    topics: Mutex<HashMap<TopicKey, Weak<Topic>>>,
    watches: Mutex<HashMap<String, usize>>,
    max_watches: std::sync::atomic::AtomicUsize,
    /// Namespaces changed here, for other instances (only when the store can reach them).
    outbox: Mutex<Option<mpsc::UnboundedSender<TopicKey>>>,
}

/// The default of `STORAGE_MAX_WATCHES_PER_PRINCIPAL`.
pub const DEFAULT_MAX_WATCHES: usize = 100;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new(DEFAULT_MAX_WATCHES)
    }
}

impl Feed {
    /// A feed allowing each principal `max_watches` open watches on this instance.
    pub fn new(max_watches: usize) -> Self {
        Feed {
            instance: Uuid::new_v4(),
            topics: Mutex::default(),
            watches: Mutex::default(),
            max_watches: max_watches.into(),
            outbox: Mutex::default(),
        }
    }

    /// Sets how many open watches each principal may hold on this instance.
    pub fn set_max_watches(&self, max_watches: usize) {
        self.max_watches
            .store(max_watches, std::sync::atomic::Ordering::Relaxed);
    }

    /// A namespace changed through this instance: its watchers here read the log, and other
    /// instances are told.
    pub fn changed(&self, tenant: Uuid, namespace: &str) {
        self.wake(tenant, namespace);
        if let Some(outbox) = lock(&self.outbox).as_ref() {
            let _ = outbox.send((tenant, namespace.to_owned()));
        }
    }

    /// Wakes the topic of a namespace, if it has watchers here.
    pub fn wake(&self, tenant: Uuid, namespace: &str) {
        let topic = {
            let topics = lock(&self.topics);
            // Every write comes here: with no watch open, it costs no key to look up.
            if topics.is_empty() {
                return;
            }
            topics
                .get(&(tenant, namespace.to_owned()))
                .and_then(Weak::upgrade)
        };
        if let Some(topic) = topic {
            topic.wake.notify_one();
        }
    }

    /// Wakes every topic (notifications may have been missed).
    pub fn wake_all(&self) {
        let topics: Vec<Arc<Topic>> = lock(&self.topics)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for topic in topics {
            topic.wake.notify_one();
        }
    }

    /// Handles an announcement of another instance (see [`CHANNEL`]).
    pub fn announced(&self, payload: &str) {
        let mut lines = payload.lines();
        if lines.next() == Some(self.instance.to_string().as_str()) {
            return;
        }
        for line in lines {
            if let Some((tenant, namespace)) = line.split_once(' ') {
                if let Ok(tenant) = tenant.parse() {
                    self.wake(tenant, namespace);
                }
            }
        }
    }

    /// Starts announcing this instance's changes to the other instances with `send` (one
    /// payload for whatever changed within [`ANNOUNCE_WINDOW`]; see [`CHANNEL`]).
    /// Stops with the feed.
    pub fn announce_with<F, Fut>(&self, send: F)
    where
        F: Fn(String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), super::StoreError>> + Send,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<TopicKey>();
        *lock(&self.outbox) = Some(tx);
        let instance = self.instance.to_string();
        let send = move |payload: String| {
            let sent = send(payload);
            async move {
                if let Err(e) = sent.await {
                    tracing::warn!(error = %e, "could not announce changes to other instances; their watchers poll");
                }
            }
        };
        runtime.spawn(async move {
            while let Some(first) = rx.recv().await {
                // What else changes meanwhile goes in the same notification: at most one per
                // window, whatever the write rate (each is a transaction of its own).
                tokio::time::sleep(ANNOUNCE_WINDOW).await;
                let mut pending = std::collections::BTreeSet::from([first]);
                while let Ok(more) = rx.try_recv() {
                    pending.insert(more);
                }
                let mut payload = instance.clone();
                for (tenant, namespace) in pending {
                    if payload.len() > MAX_PAYLOAD {
                        send(std::mem::replace(&mut payload, instance.clone())).await;
                    }
                    payload.push('\n');
                    payload.push_str(&tenant.to_string());
                    payload.push(' ');
                    payload.push_str(&namespace);
                }
                send(payload).await;
            }
        });
    }

    /// Opens a watch of a namespace for `install`: refused with `RATE_LIMITED` when the
    /// principal already holds its allowance of open watches on this instance. Once it
    /// returns, every change the log does not yet hold will be broadcast to it.
    pub async fn subscribe(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        install: &str,
        tenant: Uuid,
        namespace: &str,
    ) -> Result<Subscription, super::StoreError> {
        {
            let max = self.max_watches.load(std::sync::atomic::Ordering::Relaxed);
            let mut open = lock(&self.watches);
            let n = open.entry(install.to_owned()).or_default();
            if *n >= max {
                return Err(StorageError::new(
                    alga_storage_core::ErrorCode::RateLimited,
                    format!("at most {max} open watches per install on one server instance"),
                )
                .with_details(serde_json::json!({ "limit": max }))
                .into());
            }
            *n += 1;
        }
        let slot = WatchSlot {
            feed: Arc::downgrade(self),
            install: install.to_owned(),
        };
        let key = (tenant, namespace.to_owned());
        let (topic, events) = {
            let mut topics = lock(&self.topics);
            match topics.get(&key).and_then(Weak::upgrade) {
                // Subscribed under the lock its task checks for watchers before it ends.
                Some(topic) => {
                    let events = topic.events.subscribe();
                    (topic, events)
                }
                None => {
                    let (sender, events) = broadcast::channel(TOPIC_CAPACITY);
                    let topic = Arc::new(Topic {
                        events: sender,
                        wake: Notify::new(),
                        start: tokio::sync::OnceCell::new(),
                    });
                    topics.insert(key.clone(), Arc::downgrade(&topic));
                    tokio::spawn(follow(
                        Arc::downgrade(self),
                        Arc::downgrade(store),
                        topic.clone(),
                        key.clone(),
                    ));
                    (topic, events)
                }
            }
        };
        topic.started(&**store, &key).await?;
        Ok(Subscription {
            events,
            _topic: topic,
            _slot: slot,
        })
    }
}

/// A topic's task: reads the namespace's log whenever woken (or every [`POLL`]) and broadcasts
/// what is new; ends once the topic has no watcher left (checked under the feed's lock, so a
/// watcher never joins a topic whose task has ended).
async fn follow(feed: Weak<Feed>, store: Weak<dyn Store>, topic: Arc<Topic>, key: TopicKey) {
    let (tenant, namespace) = (key.0, key.1.as_str());
    let mut last = None;
    loop {
        {
            let Some(feed) = feed.upgrade() else {
                return;
            };
            let mut topics = lock(&feed.topics);
            if topic.events.receiver_count() == 0 {
                topics.remove(&key);
                return;
            }
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        if last.is_none() {
            match topic.started(&*store, &key).await {
                Ok(start) => last = Some(start),
                Err(e) => tracing::warn!(error = %e, "a watched namespace's log cannot be read"),
            }
        }
        if let Some(after) = last.as_mut() {
            if let Err(e) = publish(&*store, &topic, tenant, namespace, after).await {
                tracing::warn!(error = %e, "a watched namespace's log cannot be read");
            }
        }
        drop(store);
        let read_done = tokio::time::Instant::now();
        let _ = tokio::time::timeout(POLL, topic.wake.notified()).await;
        // Under a stream of writes, what commits meanwhile is read and sent together.
        let watchers = u32::try_from(topic.events.receiver_count()).unwrap_or(u32::MAX);
        let interval = READ_INTERVAL_PER_WATCHER
            .saturating_mul(watchers)
            .min(MAX_READ_INTERVAL);
        tokio::time::sleep_until(read_done + interval).await;
    }
}

/// Reads and broadcasts every change after `after`, advancing it.
async fn publish(
    store: &dyn Store,
    topic: &Topic,
    tenant: Uuid,
    namespace: &str,
    after: &mut u64,
) -> Result<(), super::StoreError> {
    loop {
        let page = read(store, tenant, namespace, *after).await?;
        if page.reset {
            let _ = topic.events.send(Event::Reset {
                latest: page.next_after,
            });
            *after = page.next_after;
            return Ok(());
        }
        let full = page.changes.len() >= usize::from(alga_storage_core::limits::MAX_LIST_LIMIT);
        for change in page.changes {
            let _ = topic
                .events
                .send(Event::Change(Arc::new(Broadcast::new(change))));
        }
        *after = page.next_after;
        if !full {
            return Ok(());
        }
    }
}

async fn read(
    store: &dyn Store,
    tenant: Uuid,
    namespace: &str,
    after: u64,
) -> Result<alga_storage_core::ChangesResponse, super::StoreError> {
    store
        .changes(
            tenant,
            &ChangesQuery {
                namespace,
                after,
                limit: alga_storage_core::limits::MAX_LIST_LIMIT,
                key_prefix: None,
                values: true,
            },
        )
        .await
}
