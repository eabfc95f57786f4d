//! Slow and stalled clients are cut off (DESIGN § "Operating under faults"): a request head
//! must arrive within 10 s, a body may not stall for 10 s, and a body announced larger than
//! the route takes is refused before any of it is awaited; requests that are not valid HTTP are
//! answered with the envelope. Raw sockets, as such clients send.

use alga_storage_tests::TestServer;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` (and nothing more) and reads until the server answers and closes, or gives up
/// after `patience`; answers what it read and when the connection ended.
async fn send_and_wait(base: &str, head: &str, patience: Duration) -> (String, Duration) {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(patience, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => panic!(
                "still open after {patience:?}, having read {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_stalled_clients_are_cut_off() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let put = |length: usize| {
        format!(
            "PUT /api/ext-storage/conf/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
            t.token
        )
    };
    let patience = Duration::from_secs(15);
    let stalled_body = format!("{}{{\"value\":", put(100));
    let huge_body = put(20 * 1024 * 1024);
    let (head, body, huge) = tokio::join!(
        // A head that never ends: the connection is closed.
        send_and_wait(&s.base, "GET /healthz HTTP/1.1\r\nHost: x\r\n", patience),
        // A body that stops after 10 of its 100 bytes: 400, in the envelope.
        send_and_wait(&s.base, &stalled_body, patience),
        // 20 MiB announced, nothing sent: 413 at once.
        send_and_wait(&s.base, &huge_body, patience),
    );
    assert!(
        head.0.is_empty(),
        "a stalled head gets no answer: {}",
        head.0
    );
    assert!(
        head.1 >= Duration::from_secs(9),
        "closed after {:?}",
        head.1
    );
    assert!(body.0.starts_with("HTTP/1.1 400"), "{}", body.0);
    assert!(body.0.contains("VALIDATION_FAILED"), "{}", body.0);
    assert!(huge.0.starts_with("HTTP/1.1 413"), "{}", huge.0);
    assert!(huge.0.contains("PAYLOAD_TOO_LARGE"), "{}", huge.0);
    assert!(huge.1 < Duration::from_secs(2), "413 after {:?}", huge.1);
    // Nothing was written.
    let get = s.rest(&t, reqwest::Method::GET, "/conf/k", &[], None).await;
    assert_eq!(get.status, 404);
}

/// Requests hyper cannot parse are answered before any handler runs; the answer is still the
/// contract's envelope, with the status HTTP gives the fault, and the connection is closed.
#[tokio::test(flavor = "multi_thread")]
async fn protocol_errors_are_answered_with_the_envelope() {
    let s = TestServer::start().await;
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let big_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        format!("X-Filler: {}\r\n", "b".repeat(1_000)).repeat(120)
    );
    let cases: [(&str, &str, &str, &str); 6] = [
        (
            "bad request line",
            "BLAH\r\n\r\n",
            "400",
            "VALIDATION_FAILED",
        ),
        (
            "header without a colon",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
            "400",
            "VALIDATION_FAILED",
        ),
        (
            "control byte in a header",
            "GET /healthz HTTP/1.1\r\nHost: x\u{1}y\r\n\r\n",
            "400",
            "VALIDATION_FAILED",
        ),
        (
            "unknown HTTP version",
            "GET /healthz HTTP/7.3\r\nHost: x\r\n\r\n",
            "400",
            "VALIDATION_FAILED",
        ),
        (
            "request target too long",
            &long_target,
            "414",
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "headers over 96 KiB",
            &big_headers,
            "431",
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (what, request, status, code) in cases {
        let (answer, _) = send_and_wait(&s.base, request, Duration::from_secs(5)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {answer}"
        );
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
        let body: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body:?}"));
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    }
    // Headers just under the limit are still served.
    let fits = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}\r\n",
        format!("X-Filler: {}\r\n", "b".repeat(1_000)).repeat(60)
    );
    let (answer, _) = send_and_wait(&s.base, &fits, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

/// A client that goes away while its write is being served (here: waiting on a lock the test
/// holds) does not cancel the write halfway through: the request runs to completion, the
/// write is stored, and the connections it used serve the next writes at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_does_not_cancel_its_write() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "conf", "access": ["read", "write"]}]))
        .await;
    let held = s.hold_writes().await;
    let body = r#"{"value":"written"}"#;
    let request = format!(
        "PUT /api/ext-storage/conf/left HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        t.token,
        body.len()
    );
    let mut stream = TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    // The handler is waiting on the lock; the client gives up and closes the connection, and
    // the server notices (it reads the end of the stream) before the lock is released.
    tokio::time::sleep(Duration::from_millis(250)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(250)).await;
    held.release().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let get = s
            .rest(&t, reqwest::Method::GET, "/conf/left", &[], None)
            .await;
        if get.status == 200 {
            assert_eq!(get.body["value"], "written");
            assert_eq!(get.body["revision"], 1);
            break;
        }
        assert_eq!(get.status, 404, "{:?}", get.body);
        assert!(
            Instant::now() < deadline,
            "the write of a client that left was never stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing was left holding a lock: a guarded write of the same record goes through at once.
    let started = Instant::now();
    let put = s
        .rest(
            &t,
            reqwest::Method::PUT,
            "/conf/left",
            &[("if-revision-match", "1")],
            Some(json!({"value": "again"})),
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
