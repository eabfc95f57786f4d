//! The change feed (DESIGN § "Change feed"): `{ns}:changes` pages and `{ns}:watch` streams, on
//! both backends; across two server processes on one Postgres.

use alga_storage_server::config::Backend;
use alga_storage_tests::{Tenant, TestServer, Watch};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const GRANT: &str = "app";

async fn setup() -> (TestServer, Tenant) {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([
            {"namespace": GRANT, "access": ["read", "write"]},
            {"namespace": "other", "access": ["write"]}
        ]))
        .await;
    (s, t)
}

async fn put(s: &TestServer, t: &Tenant, key: &str, body: Value) -> Value {
    let answer = s
        .rest(t, Method::PUT, &format!("/{GRANT}/{key}"), &[], Some(body))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// Every change after `after`, page by page (`limit` each).
async fn all_changes(s: &TestServer, t: &Tenant, after: u64, limit: u8) -> (Vec<Value>, u64) {
    let mut changes = Vec::new();
    let mut after = after;
    loop {
        let page = s
            .rest(
                t,
                Method::GET,
                &format!("/{GRANT}:changes?after={after}&limit={limit}"),
                &[],
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.get("reset").is_none(), "{}", page.body);
        let got = page.body["changes"].as_array().unwrap().clone();
        let next = page.body["nextAfter"].as_u64().unwrap();
        let done = got.len() < usize::from(limit);
        changes.extend(got);
        if done {
            return (changes, next);
        }
        assert!(next > after, "the page must move on");
        after = next;
    }
}

fn summary(changes: &[Value]) -> Vec<(String, String, Value, bool)> {
    changes
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_owned(),
                c["op"].as_str().unwrap().to_owned(),
                c["revision"].clone(),
                c["expired"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_mutation_on_every_surface_is_in_the_feed_in_order() {
    let (s, t) = setup().await;
    put(&s, &t, "a", json!({"value": 1})).await;
    put(&s, &t, "b", json!({"value": 2, "ttlSeconds": 60})).await;
    put(&s, &t, "a", json!({"value": 3, "ifRevision": 1})).await;
    let del = s
        .rest(&t, Method::DELETE, &format!("/{GRANT}/a"), &[], None)
        .await;
    assert_eq!(del.status, 204);
    let bulk = s
        .rest(
            &t,
            Method::POST,
            &format!("/{GRANT}"),
            &[],
            Some(json!({"items": [{"key": "c", "value": 1}, {"key": "d", "value": 1}]})),
        )
        .await;
    assert_eq!(bulk.status, 200, "{}", bulk.body);
    let atomic = s
        .rest(
            &t,
            Method::POST,
            &format!("/{GRANT}:atomic"),
            &[],
            Some(json!({"operations": [
                {"op": "increment", "key": "n", "delta": 2},
                {"op": "delete", "key": "c"}
            ]})),
        )
        .await;
    assert_eq!(atomic.status, 200, "{}", atomic.body);
    let runner = s
        .runner(
            &t.install,
            json!({"operation": "put", "namespace": GRANT, "key": "r", "value": true}),
        )
        .await;
    assert_eq!(runner.status, 200, "{}", runner.body);
    let patch = s
        .patch_current(
            &t,
            GRANT,
            // Sets not in key order: changes come deletions first, then in request order.
            json!([{"op": "set", "key": "q", "value": 1}, {"op": "del", "key": "d"}, {"op": "set", "key": "p", "value": 1}]),
        )
        .await;
    assert_eq!(patch.status, 200, "{}", patch.body);
    // An expired record is removed by the next write of its namespace: a delete, `expired`.
    s.expire_all().await;
    put(&s, &t, "z", json!({"value": 0})).await;
    // A write refused (guard, another namespace) leaves nothing.
    let refused = s
        .rest(
            &t,
            Method::PUT,
            &format!("/{GRANT}/z"),
            &[],
            Some(json!({"value": 1, "ifRevision": 7})),
        )
        .await;
    assert_eq!(refused.status, 409);
    let elsewhere = s
        .rest(&t, Method::PUT, "/other/x", &[], Some(json!({"value": 1})))
        .await;
    assert_eq!(elsewhere.status, 200);

    let (changes, next) = all_changes(&s, &t, 0, 100).await;
    let expected: Vec<(&str, &str, Value, bool)> = vec![
        ("a", "put", json!(1), false),
        ("b", "put", json!(1), false),
        ("a", "put", json!(2), false),
        ("a", "delete", Value::Null, false),
        ("c", "put", json!(1), false),
        ("d", "put", json!(1), false),
        ("n", "put", json!(1), false),
        ("c", "delete", Value::Null, false),
        ("r", "put", json!(1), false),
        ("d", "delete", Value::Null, false),
        ("q", "put", json!(1), false),
        ("p", "put", json!(1), false),
        ("b", "delete", Value::Null, true),
        ("z", "put", json!(1), false),
    ];
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(k, o, r, e)| (k.to_owned(), o.to_owned(), r, e))
        .collect();
    assert_eq!(summary(&changes), expected, "{changes:#?}");
    let seqs: Vec<u64> = changes.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(next, *seqs.last().unwrap());

    // Small pages walk the same changes; a key prefix filters them.
    let (paged, _) = all_changes(&s, &t, 0, 2).await;
    assert_eq!(paged, changes);
    let (from_middle, _) = all_changes(&s, &t, seqs[5], 3).await;
    assert_eq!(from_middle, changes[6..]);
    let filtered = s
        .rest(
            &t,
            Method::GET,
            &format!("/{GRANT}:changes?keyPrefix=a"),
            &[],
            None,
        )
        .await;
    assert_eq!(filtered.body["changes"].as_array().unwrap().len(), 3);
    assert_eq!(filtered.body["nextAfter"], next);

    // The runner envelope answers the same page.
    let rest = s
        .rest(
            &t,
            Method::GET,
            &format!("/{GRANT}:changes?after=3&limit=4&keyPrefix=c"),
            &[],
            None,
        )
        .await;
    let envelope = s
        .runner(
            &t.install,
            json!({"operation": "changes", "namespace": GRANT, "after": 3, "limit": 4, "keyPrefix": "c"}),
        )
        .await;
    assert_eq!(envelope.status, 200, "{}", envelope.body);
    assert_eq!(envelope.body, rest.body);

    // A position the namespace never reached is a reset to the latest.
    let ahead = s
        .rest(
            &t,
            Method::GET,
            &format!("/{GRANT}:changes?after={}", next + 5),
            &[],
            None,
        )
        .await;
    assert_eq!(
        ahead.body,
        json!({"changes": [], "nextAfter": next, "reset": true})
    );

    // The audit log keeps every row too (the feed is the audit log's record rows).
    let audit = s
        .admin(
            Method::GET,
            &format!("/tenants/{}/audit?limit=100", t.tenant),
            None,
        )
        .await;
    let operations: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert!(operations.contains(&"expire"), "{operations:?}");
}

#[tokio::test]
async fn bad_feed_requests_are_refused_naming_the_parameter() {
    let (s, t) = setup().await;
    for (query, field) in [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("after=1&after=2", "after"),
        ("cursor=x", "cursor"),
        ("includeValues=true", "includeValues"),
        ("keyPrefix=a%01", "keyPrefix"),
    ] {
        let answer = s
            .rest(
                &t,
                Method::GET,
                &format!("/{GRANT}:changes?{query}"),
                &[],
                None,
            )
            .await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.body["error"]["details"]["field"], field, "{query}");
    }
    for (query, field) in [
        ("limit=5", "limit"),
        ("includeValues=yes", "includeValues"),
        ("keyPrefix=a%01", "keyPrefix"),
    ] {
        let answer = Watch::open(&s.base, &t.token, &format!("/{GRANT}:watch?{query}"), None)
            .await
            .err()
            .expect("refused");
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.body["error"]["details"]["field"], field, "{query}");
    }
    let answer = s
        .send(
            Method::GET,
            &format!("/api/ext-storage/{GRANT}:watch"),
            &[
                ("authorization", &format!("Bearer {}", t.token)),
                ("last-event-id", "seven"),
            ],
            None,
        )
        .await;
    assert_eq!(answer.body["error"]["details"]["field"], "last-event-id");
    // Reading the feed needs read access; a write-only grant is not enough.
    let denied = s.rest(&t, Method::GET, "/other:changes", &[], None).await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let denied = Watch::open(&s.base, &t.token, "/other:watch", None)
        .await
        .err()
        .expect("refused");
    assert_eq!(denied.status, 403);
    let anonymous = s
        .send(
            Method::GET,
            &format!("/api/ext-storage/{GRANT}:watch"),
            &[],
            None,
        )
        .await;
    assert_eq!(anonymous.status, 401);
    // Each method has its verb's HTTP method.
    let post = s
        .rest(
            &t,
            Method::POST,
            &format!("/{GRANT}:changes"),
            &[],
            Some(json!({})),
        )
        .await;
    assert_eq!(post.status, 405);
    let get = s
        .rest(&t, Method::GET, &format!("/{GRANT}:atomic"), &[], None)
        .await;
    assert_eq!(get.status, 405);
    let unknown = s
        .rest(&t, Method::GET, &format!("/{GRANT}:frobnicate"), &[], None)
        .await;
    assert_eq!(unknown.status, 404);
    let envelope = s
        .runner(
            &t.install,
            json!({"operation": "changes", "namespace": GRANT, "after": null}),
        )
        .await;
    assert_eq!(envelope.body["error"]["details"]["field"], "after");
}

#[tokio::test]
async fn a_watch_replays_then_follows_with_values_and_prefix() {
    let (s, t) = setup().await;
    put(&s, &t, "note-1", json!({"value": "first"})).await;
    put(&s, &t, "other", json!({"value": 0})).await;
    let mut w = Watch::open(
        &s.base,
        &t.token,
        &format!("/{GRANT}:watch?keyPrefix=note-&includeValues=true"),
        None,
    )
    .await
    .unwrap();
    let first = w.next(Duration::from_secs(5)).await.expect("replayed");
    assert_eq!(first.event, "change");
    assert_eq!(first.id, "1");
    assert_eq!(first.data["value"], "first");
    let started = Instant::now();
    put(&s, &t, "note-2", json!({"value": {"text": "live"}})).await;
    put(&s, &t, "skipped", json!({"value": 1})).await;
    let delete = s
        .rest(&t, Method::DELETE, &format!("/{GRANT}/note-1"), &[], None)
        .await;
    assert_eq!(delete.status, 204);
    let live = w.next(Duration::from_secs(5)).await.expect("live");
    let took = started.elapsed();
    assert_eq!(live.data["key"], "note-2");
    assert_eq!(live.data["value"], json!({"text": "live"}));
    assert_eq!(live.id, live.data["seq"].to_string());
    let gone = w.next(Duration::from_secs(5)).await.expect("delete");
    assert_eq!(
        (gone.data["key"].as_str(), gone.data["op"].as_str()),
        (Some("note-1"), Some("delete"))
    );
    assert!(gone.data.get("value").is_none());
    println!("a write reached a watcher of the same instance after {took:?}");
    // Without includeValues no value travels.
    let mut plain = Watch::open(&s.base, &t.token, &format!("/{GRANT}:watch?after=2"), None)
        .await
        .unwrap();
    let e = plain.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(e.data["key"], "note-2");
    assert!(e.data.get("value").is_none(), "{}", e.data);
}

/// Watchers of one namespace with and without values, one joining while writes stream in and
/// leaving again: each gets exactly what it asked for, in order.
#[tokio::test]
async fn watchers_get_values_exactly_when_they_ask_whoever_else_watches() {
    let (s, t) = setup().await;
    let s = std::sync::Arc::new(s);
    let path = |q: &str| format!("/{GRANT}:watch?{q}");
    let mut plain = Watch::open(&s.base, &t.token, &path("after=0"), None)
        .await
        .unwrap();
    put(&s, &t, "a", json!({"value": "one"})).await;
    let e = plain.next(Duration::from_secs(5)).await.expect("a");
    assert_eq!(e.data["key"], "a");
    assert!(e.data.get("value").is_none(), "{}", e.data);
    // Many writes while a watcher with values joins, so topic reads are in flight when it does.
    let writer = {
        let (s, t) = (s.clone(), t.clone());
        tokio::spawn(async move {
            for i in 0..60 {
                put(&s, &t, &format!("w{i:02}"), json!({ "value": i })).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut valued = Watch::open(&s.base, &t.token, &path("after=1&includeValues=true"), None)
        .await
        .unwrap();
    writer.await.unwrap();
    for i in 0..60 {
        let e = valued
            .next(Duration::from_secs(5))
            .await
            .expect("with value");
        assert_eq!(e.data["key"], format!("w{i:02}"));
        assert_eq!(e.data["value"], i, "{}", e.data);
        let e = plain.next(Duration::from_secs(5)).await.expect("without");
        assert_eq!(e.data["key"], format!("w{i:02}"));
        assert!(e.data.get("value").is_none(), "{}", e.data);
    }
    // The watcher with values leaves: the other goes on without them.
    drop(valued);
    tokio::time::sleep(Duration::from_millis(100)).await;
    put(&s, &t, "z", json!({"value": "last"})).await;
    let e = plain.next(Duration::from_secs(5)).await.expect("z");
    assert_eq!(e.data["key"], "z");
    assert!(e.data.get("value").is_none(), "{}", e.data);
    // A new watcher with values, alone on a fresh topic, gets them.
    drop(plain);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut alone = Watch::open(
        &s.base,
        &t.token,
        &path("after=61&includeValues=true"),
        None,
    )
    .await
    .unwrap();
    let e = alone
        .next(Duration::from_secs(5))
        .await
        .expect("z replayed");
    assert_eq!(
        (e.data["key"].clone(), e.data["value"].clone()),
        (json!("z"), json!("last"))
    );
    put(&s, &t, "y", json!({"value": "live"})).await;
    let e = alone.next(Duration::from_secs(5)).await.expect("y");
    assert_eq!(e.data["value"], "live", "{}", e.data);
}

/// p99 of latencies.
fn p99(mut took: Vec<Duration>) -> Duration {
    took.sort();
    took[(took.len() * 99).div_ceil(100) - 1]
}

/// Puts 100 records through `writer` (one at a time) and measures when each reaches `watch`.
async fn latencies(s: &TestServer, t: &Tenant, writer: &str, watch: &mut Watch) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut took = Vec::new();
    for i in 0..100 {
        let started = Instant::now();
        let res = client
            .put(format!("{writer}/api/ext-storage/{GRANT}/lat-{i}"))
            .header("authorization", format!("Bearer {}", t.token))
            .json(&json!({"value": i}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let event = watch.next(Duration::from_secs(10)).await.expect("event");
        assert_eq!(event.data["key"], format!("lat-{i}"));
        took.push(started.elapsed());
    }
    let _ = s;
    took
}

#[tokio::test]
async fn a_write_reaches_watchers_on_the_same_and_on_another_instance_quickly() {
    let (s, t) = setup().await;
    let mut here = Watch::open(&s.base, &t.token, &format!("/{GRANT}:watch"), None)
        .await
        .unwrap();
    let local = p99(latencies(&s, &t, &s.base, &mut here).await);
    println!(
        "same instance ({}): p99 write → event {local:?}",
        s.backend_name()
    );
    assert!(local <= Duration::from_millis(100), "{local:?}");
    if s.backend != Backend::Postgres {
        return;
    }
    // Another server process on the same Postgres: its watcher hears of A's writes through
    // LISTEN/NOTIFY.
    let b = s.second_instance().await;
    let mut there = Watch::open(
        &b.base,
        &t.token,
        &format!("/{GRANT}:watch?after=100"),
        None,
    )
    .await
    .unwrap();
    let took = latencies(&s, &t, &s.base, &mut there).await;
    let remote = p99(took);
    println!("other instance: p99 write → event {remote:?}");
    assert!(remote <= Duration::from_secs(1), "{remote:?}");
}

#[tokio::test]
async fn a_watcher_resuming_from_its_last_id_misses_nothing_and_sees_nothing_twice() {
    let (s, t) = setup().await;
    let writers = 4;
    let per_writer = 250;
    let writing = {
        let base = s.base.clone();
        let token = t.token.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let tasks: Vec<_> = (0..writers)
                .map(|w| {
                    let (client, base, token) = (client.clone(), base.clone(), token.clone());
                    tokio::spawn(async move {
                        for i in 0..per_writer {
                            let key = format!("w{w}-{}", i % 40);
                            let request = if i % 7 == 6 {
                                client.delete(format!("{base}/api/ext-storage/{GRANT}/{key}"))
                            } else {
                                client
                                    .put(format!("{base}/api/ext-storage/{GRANT}/{key}"))
                                    .json(&json!({"value": i}))
                            };
                            let res = request
                                .header("authorization", format!("Bearer {token}"))
                                .send()
                                .await
                                .unwrap();
                            assert!(res.status().is_success() || res.status() == 404);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    };
    // A watcher that drops its stream after a random number of events and resumes from the
    // last id it saw.
    let mut seen: Vec<u64> = Vec::new();
    let mut last: Option<u64> = None;
    let mut reconnects = 0;
    let mut rng = 7_u64;
    let mut quiet_since = Instant::now();
    loop {
        let mut w = Watch::open(&s.base, &t.token, &format!("/{GRANT}:watch"), last)
            .await
            .unwrap();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let take = 1 + (rng >> 33) % 120;
        let mut taken = 0;
        while taken < take {
            match w.next(Duration::from_millis(500)).await {
                Some(e) if e.event == "change" => {
                    let seq: u64 = e.id.parse().unwrap();
                    seen.push(seq);
                    last = Some(seq);
                    taken += 1;
                    quiet_since = Instant::now();
                }
                Some(other) => panic!("unexpected event {other:?}"),
                None => break,
            }
        }
        reconnects += 1;
        if writing.is_finished() && quiet_since.elapsed() > Duration::from_secs(1) {
            break;
        }
    }
    writing.await.unwrap();
    let (log, _) = all_changes(&s, &t, 0, 100).await;
    let logged: Vec<u64> = log.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    let distinct: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "an event came twice");
    assert_eq!(seen, logged, "the watcher saw exactly the log, in order");
    println!(
        "{} changes over {reconnects} connections, none missed or repeated",
        seen.len()
    );
    assert!(seen.len() >= writers * per_writer * 6 / 7);
}

#[tokio::test]
async fn watches_end_on_revocation_grant_withdrawal_and_token_expiry_and_are_limited_per_install() {
    let s = TestServer::start_with(|c| c.max_watches_per_principal = 2).await;
    let grants = json!([{"namespace": GRANT, "access": ["read", "write"]}]);
    let t = s.tenant(grants).await;
    let path = format!("/{GRANT}:watch");
    let mut first = Watch::open(&s.base, &t.token, &path, None).await.unwrap();
    let second = Watch::open(&s.base, &t.token, &path, None).await.unwrap();
    let third = Watch::open(&s.base, &t.token, &path, None)
        .await
        .err()
        .expect("over the limit");
    assert_eq!(third.status, 429, "{}", third.body);
    assert_eq!(third.body["error"]["code"], "RATE_LIMITED");
    drop(second);
    // A closed watch frees its slot (noticed when the server next writes to it: the heartbeat
    // or a change).
    put(&s, &t, "k", json!({"value": 1})).await;
    assert_eq!(
        first.next(Duration::from_secs(5)).await.unwrap().event,
        "change"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut again = loop {
        match Watch::open(&s.base, &t.token, &path, None).await {
            Ok(w) => break w,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the slot was not freed: {}", e.body),
        }
    };
    assert_eq!(
        again.next(Duration::from_secs(5)).await.unwrap().event,
        "change"
    );

    // Read access withdrawn: both streams end with an error event.
    let write_only = json!([{"namespace": GRANT, "access": ["write"]}]);
    assert_eq!(
        s.install(t.tenant, &t.install, write_only).await.status,
        200
    );
    for w in [&mut first, &mut again] {
        let e = w
            .next(Duration::from_secs(5))
            .await
            .expect("an error event");
        assert_eq!(e.event, "error", "{e:?}");
        assert_eq!(e.data["error"]["code"], "UNAUTHORIZED", "{e:?}");
        assert!(
            w.next(Duration::from_secs(2)).await.is_none(),
            "the stream ends"
        );
    }
    // A watch ends when its token expires (a client with a token provider reconnects).
    let v = s
        .tenant(json!([{"namespace": GRANT, "access": ["read"]}]))
        .await;
    let principal = s.principal(v.tenant, &v.install).await;
    let short = alga_storage_server::auth::TokenKeys::new(&s.config.jwt_secret).mint(&principal, 2);
    let mut w = Watch::open(&s.base, &short, &path, None).await.unwrap();
    let e = w
        .next(Duration::from_secs(6))
        .await
        .expect("an error event");
    assert_eq!(e.event, "error");
    assert_eq!(e.data["error"]["code"], "UNAUTHENTICATED", "{e:?}");
    assert!(
        w.next(Duration::from_secs(2)).await.is_none(),
        "the stream ends"
    );
    // Revoked: the stream of another install's watcher ends too.
    let u = s
        .tenant(json!([{"namespace": GRANT, "access": ["read"]}]))
        .await;
    let mut w = Watch::open(&s.base, &u.token, &path, None).await.unwrap();
    let revoke = format!("/tenants/{}/installs/{}", u.tenant, u.install);
    assert_eq!(s.admin(Method::DELETE, &revoke, None).await.status, 204);
    let e = w
        .next(Duration::from_secs(5))
        .await
        .expect("an error event");
    assert_eq!(e.event, "error");
    assert_eq!(e.data["error"]["code"], "UNAUTHENTICATED", "{e:?}");
}

#[tokio::test]
async fn changes_past_the_retention_are_pruned_and_a_reader_behind_gets_a_reset() {
    let s = TestServer::start_with(|c| {
        c.sweep_interval_seconds = 1;
        c.change_retention.seconds = 0;
        c.change_retention.changes = 2;
    })
    .await;
    let t = s
        .tenant(json!([{"namespace": GRANT, "access": ["read", "write"]}]))
        .await;
    for i in 0..5 {
        put(&s, &t, &format!("k{i}"), json!({"value": i})).await;
    }
    // The sweeper prunes changes 1 to 3 (older than 0 s and behind the last 2).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = s
            .rest(
                &t,
                Method::GET,
                &format!("/{GRANT}:changes?after=0"),
                &[],
                None,
            )
            .await;
        if page.body["reset"] == true {
            assert_eq!(
                page.body,
                json!({"changes": [], "nextAfter": 5, "reset": true})
            );
            break;
        }
        assert!(Instant::now() < deadline, "not pruned: {}", page.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (kept, next) = all_changes(&s, &t, 3, 100).await;
    assert_eq!(kept.len(), 2);
    assert_eq!(next, 5);
    // A watcher behind the retention gets a reset, then the live changes.
    let mut w = Watch::open(&s.base, &t.token, &format!("/{GRANT}:watch"), Some(1))
        .await
        .unwrap();
    let reset = w.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data, json!({"reason": "retention", "nextAfter": 5}));
    assert_eq!(reset.id, "5");
    put(&s, &t, "k9", json!({"value": 9})).await;
    let live = w.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!((live.event.as_str(), live.id.as_str()), ("change", "6"));
}

#[tokio::test]
async fn watchers_of_an_instance_whose_listening_connection_was_cut_still_get_every_change() {
    if alga_storage_tests::backend() != Backend::Postgres {
        println!("one process serves the embedded store: no notification to lose");
        return;
    }
    // A cluster of the test's own: its listening connections are cut below, which must not
    // touch the other tests' servers on the shared Postgres.
    let cluster = alga_storage_tests::cluster::Cluster::start();
    let s = TestServer::start_with(|c| {
        c.database_url = alga_storage_server::config::Secret::new(cluster.url())
    })
    .await;
    let t = s
        .tenant(json!([{"namespace": GRANT, "access": ["read", "write"]}]))
        .await;
    let b = s.second_instance().await;
    let mut there = Watch::open(&b.base, &t.token, &format!("/{GRANT}:watch"), None)
        .await
        .unwrap();
    put(&s, &t, "before", json!({"value": 1})).await;
    let e = there.next(Duration::from_secs(5)).await.expect("announced");
    assert_eq!(e.data["key"], "before");
    // Every instance's LISTEN connection is terminated, then a change is written: whether its
    // notification reaches B's new connection or is lost, the watcher on B must get the change
    // (B reads the log of every watched namespace when it listens again, and polls it anyway).
    let admin = sqlx::PgPool::connect(&cluster.url()).await.unwrap();
    let cut: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%alga_storage_changes%' \
           AND pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!cut.is_empty(), "no listening connection found");
    for pid in &cut {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&admin)
            .await
            .unwrap();
    }
    let started = Instant::now();
    put(&s, &t, "after", json!({"value": 2})).await;
    let e = there
        .next(Duration::from_secs(8))
        .await
        .expect("the change arrives although the listening connections were cut");
    assert_eq!(e.data["key"], "after");
    println!(
        "{} listening connections cut; the change reached the other instance after {:?}",
        cut.len(),
        started.elapsed()
    );
}
