//! Revisions are atomic under concurrency: guarded writers never lose an update.

use alga_storage_tests::TestServer;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

const TASKS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guarded_increments_from_32_tasks_lose_no_update() {
    let s = Arc::new(TestServer::start().await);
    let t = Arc::new(
        s.tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
            .await,
    );
    assert_eq!(
        s.rest(
            &t,
            Method::PUT,
            "/conf/counter",
            &[],
            Some(json!({"value": 0}))
        )
        .await
        .status,
        200
    );
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let (s, t) = (s.clone(), t.clone());
        handles.push(tokio::spawn(async move {
            let (mut successes, mut conflicts) = (0u64, 0u64);
            for _ in 0..200 {
                if successes == 3 {
                    break;
                }
                let current = s.rest(&t, Method::GET, "/conf/counter", &[], None).await;
                let (value, revision) = (
                    current.body["value"].as_u64().unwrap(),
                    current.body["revision"].as_u64().unwrap(),
                );
                let body = json!({"value": value + 1, "ifRevision": revision});
                let answer = s
                    .rest(&t, Method::PUT, "/conf/counter", &[], Some(body))
                    .await;
                match answer.status.as_u16() {
                    200 => successes += 1,
                    409 => {
                        assert_eq!(answer.code(), "REVISION_MISMATCH");
                        assert!(
                            answer.body["error"]["details"]["currentRevision"]
                                .as_u64()
                                .unwrap()
                                > revision
                        );
                        conflicts += 1;
                    }
                    other => panic!("unexpected {other}: {}", answer.body),
                }
            }
            (successes, conflicts)
        }));
    }
    let mut total = 0;
    let mut conflicts = 0;
    for h in handles {
        let (ok, conflict) = h.await.unwrap();
        total += ok;
        conflicts += conflict;
    }
    let end = s.rest(&t, Method::GET, "/conf/counter", &[], None).await;
    assert_eq!(end.body["value"].as_u64().unwrap(), total, "lost updates");
    assert_eq!(end.body["revision"].as_u64().unwrap(), total + 1);
    assert_eq!(
        total,
        (TASKS * 3) as u64,
        "every task reached its three increments"
    );
    println!("{total} increments, {conflicts} conflicts retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_writers_guarded_on_the_same_revision_exactly_one_wins() {
    let s = Arc::new(TestServer::start().await);
    let t = Arc::new(
        s.tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
            .await,
    );
    s.rest(
        &t,
        Method::PUT,
        "/conf/k",
        &[],
        Some(json!({"value": "start"})),
    )
    .await;
    for (guard, label) in [(1, "update"), (0, "create")] {
        let path = if guard == 0 { "/conf/fresh" } else { "/conf/k" };
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let (s, t) = (s.clone(), t.clone());
                tokio::spawn(async move {
                    s.rest(
                        &t,
                        Method::PUT,
                        path,
                        &[],
                        Some(json!({"value": i, "ifRevision": guard})),
                    )
                    .await
                })
            })
            .collect();
        let mut winners = 0;
        for h in handles {
            let answer = h.await.unwrap();
            match answer.status.as_u16() {
                200 => winners += 1,
                409 => assert_eq!(
                    answer.body["error"]["details"]["currentRevision"],
                    guard + 1
                ),
                other => panic!("{label}: unexpected {other}: {}", answer.body),
            }
        }
        assert_eq!(winners, 1, "{label}: exactly one writer wins");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_create_only_bulks_on_one_key_exactly_one_wins() {
    let s = Arc::new(TestServer::start().await);
    let t = Arc::new(
        s.tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
            .await,
    );
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (s, t) = (s.clone(), t.clone());
            tokio::spawn(async move {
                let items = json!({"items": [
                    {"key": format!("own-{i}"), "value": i},
                    {"key": "shared", "value": i, "ifRevision": 0}
                ]});
                s.rest(&t, Method::POST, "/conf", &[], Some(items)).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let answer = h.await.unwrap();
        match answer.status.as_u16() {
            200 => winners.push(i),
            409 => assert_eq!(answer.code(), "BULK_PARTIAL_FAILURE"),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(winners.len(), 1);
    let list = s
        .rest(&t, Method::GET, "/conf?keyPrefix=own-", &[], None)
        .await;
    let keys: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].clone())
        .collect();
    assert_eq!(
        keys,
        vec![json!(format!("own-{}", winners[0]))],
        "losers wrote nothing"
    );
}
