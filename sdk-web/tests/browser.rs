//! The browser SDK in real headless Chromium against the real server.
//!
//! Run by `cargo test -p alga-storage-tests --test browser`, which starts the servers, builds
//! this crate for `wasm32-unknown-unknown` and runs these tests with `wasm-bindgen-test-runner`
//! and chromedriver. The servers' addresses arrive as compile-time variables:
//! `ALGA_WEB_TEST_BASE_URL` (the server, CORS `*`), `ALGA_WEB_TEST_LIMITED_URL` (a second server
//! allowing 1 request per second), `ALGA_WEB_TEST_HANG_URL` (accepts connections, never
//! answers), `ALGA_WEB_TEST_CLOSED_URL` (nothing listens), `ALGA_WEB_TEST_ADMIN_TOKEN`, and
//! `ALGA_WEB_TEST_KV_TOKEN` (a token for the namespace `kv` a `wasi:keyvalue` guest wrote in).
#![cfg(target_arch = "wasm32")]

use alga_storage_core::{ErrorCode, StorageError};
use alga_storage_web::{error, json, StorageClient};
use gloo_net::http::{Method, RequestBuilder};
use serde_json::{json, Map, Value};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn env(value: Option<&'static str>, name: &str) -> &'static str {
    value.unwrap_or_else(|| {
        panic!("{name} is not set: run these tests through the end-to-end suite: `cargo nextest run -p alga-storage-tests -E 'test(browser)'`")
    })
}

fn base() -> &'static str {
    env(
        option_env!("ALGA_WEB_TEST_BASE_URL"),
        "ALGA_WEB_TEST_BASE_URL",
    )
}

fn admin_token() -> &'static str {
    env(
        option_env!("ALGA_WEB_TEST_ADMIN_TOKEN"),
        "ALGA_WEB_TEST_ADMIN_TOKEN",
    )
}

/// Calls the admin API of the server at `base`.
async fn admin(base: &str, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let response = RequestBuilder::new(&format!("{base}/api/admin{path}"))
        .method(method)
        .header("authorization", &format!("Bearer {}", admin_token()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap()
        .send()
        .await
        .expect("the admin API answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `crypto.randomUUID()` (the page is served from localhost, a secure context).
fn uuid() -> String {
    web_sys::window().unwrap().crypto().unwrap().random_uuid()
}

/// A fresh tenant with one install holding `grants` on the server at `base`: (tenant, token).
async fn tenant_at(base: &str, grants: Value) -> (String, String) {
    let tenant = uuid();
    let install = format!("inst-{}", &uuid()[..8]);
    let (status, body) = admin(
        base,
        Method::PUT,
        &format!("/tenants/{tenant}/installs/{install}"),
        &json!({"extensionId": "ext-web", "grants": grants}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin(
        base,
        Method::POST,
        &format!("/tenants/{tenant}/installs/{install}/tokens"),
        &json!({"ttlSeconds": 3600}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (tenant, body["token"].as_str().unwrap().to_owned())
}

async fn token(grants: Value) -> String {
    tenant_at(base(), grants).await.1
}

fn rw(namespaces: &[&str]) -> Value {
    Value::Array(
        namespaces
            .iter()
            .map(|ns| json!({"namespace": ns, "access": ["read", "write"]}))
            .collect(),
    )
}

fn client_at(base: &str, token: &str) -> StorageClient {
    StorageClient::new(json::to_js(
        &json!({"baseUrl": base, "token": token, "appId": "web-tests"}),
    ))
    .map_err(|e| error::from_js(&e))
    .expect("a client")
}

async fn client(namespaces: &[&str]) -> StorageClient {
    client_at(base(), &token(rw(namespaces)).await)
}

fn js(value: Value) -> JsValue {
    json::to_js(&value)
}

fn opts<T: JsCast>(value: Value) -> Option<T> {
    Some(json::to_js(&value).unchecked_into())
}

/// Awaits a call: its value as JSON (`undefined` as null) or the `StorageError` it rejected with.
async fn call(promise: js_sys::Promise) -> Result<Value, StorageError> {
    match JsFuture::from(promise).await {
        Ok(v) if v.is_undefined() => Ok(Value::Null),
        Ok(v) => Ok(json::from_js(&v).unwrap()),
        Err(e) => Err(error::from_js(&e).unwrap_or_else(|| panic!("not a StorageError: {e:?}"))),
    }
}

async fn fails(promise: js_sys::Promise) -> StorageError {
    match call(promise).await {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}

fn field(e: &StorageError) -> &str {
    e.details().and_then(|d| d["field"].as_str()).unwrap_or("")
}

/// Calls `object[method]()` and awaits the promise it returns (the async iterator protocol).
async fn step(object: &JsValue, method: &str) -> Result<JsValue, JsValue> {
    let f = js_sys::Reflect::get(object, &method.into())?;
    let promise = f.unchecked_ref::<js_sys::Function>().call0(object)?;
    JsFuture::from(promise.unchecked_into::<js_sys::Promise>()).await
}

/// Sends a corpus envelope through the SDK's methods: what an HTTP surface would answer.
async fn sdk_call(client: &StorageClient, envelope: Value) -> (u16, Value) {
    let mut fields: Map<String, Value> = envelope.as_object().cloned().unwrap_or_default();
    let op = fields
        .remove("operation")
        .and_then(|o| o.as_str().map(str::to_owned));
    let mut arg = |name: &str| fields.remove(name).map_or(JsValue::UNDEFINED, js);
    let ns = arg("namespace");
    let promise = match op.as_deref() {
        Some("put") => {
            let (key, value) = (arg("key"), arg("value"));
            client.put(ns, key, value, opts(Value::Object(fields)))
        }
        Some("get") => {
            let key = arg("key");
            client.get(ns, key, opts(Value::Object(fields)))
        }
        Some("delete") => {
            let key = arg("key");
            client.delete(ns, key, opts(Value::Object(fields)))
        }
        Some("list") => client.list(ns, opts(Value::Object(fields))),
        Some("bulkPut") => {
            let items = arg("items");
            client.bulk_put(ns, items, opts(Value::Object(fields)))
        }
        Some("getMany") => {
            let keys = arg("keys");
            client.get_many(ns, keys, opts(Value::Object(fields)))
        }
        Some("changes") => client.changes(ns, opts(Value::Object(fields))),
        Some("atomic") => {
            // Through the builder, one call per check and operation, as a UI writes it.
            let checks = fields.remove("checks").unwrap_or(json!([]));
            let operations = fields.remove("operations").unwrap_or(json!([]));
            let mut write = client.atomic(ns);
            for c in checks.as_array().cloned().unwrap_or_default() {
                write = write.check(js(c["key"].clone()), js(c["revision"].clone()));
            }
            for op in operations.as_array().cloned().unwrap_or_default() {
                let key = js(op["key"].clone());
                write = match op["op"].as_str() {
                    Some("put") => {
                        let mut options = op.as_object().cloned().unwrap_or_default();
                        for name in ["op", "key", "value"] {
                            options.remove(name);
                        }
                        write.put(key, js(op["value"].clone()), opts(Value::Object(options)))
                    }
                    Some("delete") => write.delete(key),
                    Some("increment") => write.increment(key, js(op["delta"].clone())),
                    other => panic!("the corpus uses an unknown atomic op {other:?}"),
                };
            }
            write.commit(opts(Value::Object(fields)))
        }
        other => panic!("the corpus uses an unknown operation {other:?}"),
    };
    match (call(promise).await, op.as_deref()) {
        (Ok(Value::Null), Some("get")) => (
            404,
            serde_json::to_value(StorageError::not_found()).unwrap(),
        ),
        (Ok(_), Some("delete")) => (204, Value::Null),
        (Ok(items), Some("getMany")) => (200, json!({ "items": items })),
        (Ok(body), _) => (200, body),
        (Err(e), _) => (e.status(), serde_json::to_value(&e).unwrap()),
    }
}

#[wasm_bindgen_test]
async fn the_conformance_corpus_passes_through_the_browser_sdk() {
    let cases = alga_storage_corpus::cases();
    let mut failures = Vec::new();
    for (file, case) in &cases {
        let client = client_at(base(), &token(case.grants()).await);
        let result = alga_storage_corpus::run_steps(case, "browser SDK", |request| {
            let client = &client;
            async move { sdk_call(client, request).await }
        })
        .await;
        if let Err(why) = result {
            failures.push(format!("{file} / {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// `n` arrays, one inside the other.
fn nested(n: usize) -> Value {
    (0..n).fold(json!(1), |inner, _| json!([inner]))
}

#[wasm_bindgen_test]
async fn values_are_plain_javascript_values() {
    let c = client(&["vals"]).await;
    let values = [
        // Whole numbers past 2^53 travel as the digits JSON.stringify writes for them.
        // A surrogate pair is a character; the text of an escape is only text.
        json!({"emoji": "😀", "escaped": "\\ud800 and \\\\ud800 are text"}),
        json!({"big": 1152921504606846976_u64, "bigger": 10000000000000000000_u64, "huge": 1e21, "small": 0.1, "neg": -9007199254740992_i64}),
        nested(100),
        json!({"text": "héllo ✓", "tags": ["a", "b"], "n": 1.5, "big": 9007199254740991_i64, "neg": -3, "ok": true, "none": null}),
        json!([1, [2, [3]], {"deep": {"er": []}}]),
        json!("just a string"),
        json!(42),
        json!(false),
        json!(null),
    ];
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{i}");
        let put = call(c.put(js(json!("vals")), js(json!(key)), js(value.clone()), None))
            .await
            .unwrap();
        assert_eq!(put["revision"], 1);
        let record = call(c.get(js(json!("vals")), js(json!(key)), None))
            .await
            .unwrap();
        assert_eq!(&record["value"], value, "{key}");
        assert_eq!(record["metadata"], json!({}));
    }
    // A Date travels as JSON.stringify sends it (its toJSON), not as an empty object.
    let date = js_sys::Date::new(&JsValue::from_f64(0.0));
    call(c.put(js(json!("vals")), js(json!("date")), date.into(), None))
        .await
        .unwrap();
    let record = call(c.get(js(json!("vals")), js(json!("date")), None))
        .await
        .unwrap();
    assert_eq!(record["value"], "1970-01-01T00:00:00.000Z");
    // The record the server answered is a plain object, not a JSON string.
    let raw = JsFuture::from(c.get(js(json!("vals")), js(json!("k0")), None))
        .await
        .unwrap();
    let value = js_sys::Reflect::get(&raw, &"value".into()).unwrap();
    assert!(value.is_object());
}

#[wasm_bindgen_test]
async fn put_get_delete_with_metadata_ttl_and_revision_guards() {
    let c = client(&["notes"]).await;
    let ns = || js(json!("notes"));
    let key = || js(json!("n1"));
    let put = call(c.put(
        ns(),
        key(),
        js(json!({"t": 1})),
        opts(json!({"metadata": {"kind": "memo"}, "ttlSeconds": 3600})),
    ))
    .await
    .unwrap();
    assert_eq!(put["revision"], 1);
    assert!(put["ttlExpiresAt"].is_string());
    let record = call(c.get(ns(), key(), None)).await.unwrap();
    assert_eq!(record["metadata"], json!({"kind": "memo"}));
    assert!(record["ttlExpiresAt"].is_string());

    // Create-only on an existing record: REVISION_MISMATCH with the current revision.
    let e = fails(c.put(ns(), key(), js(json!(2)), opts(json!({"ifRevision": 0})))).await;
    assert_eq!((e.code(), e.status()), (ErrorCode::RevisionMismatch, 409));
    assert_eq!(e.details().unwrap()["currentRevision"], 1);
    let put = call(c.put(ns(), key(), js(json!(2)), opts(json!({"ifRevision": 1}))))
        .await
        .unwrap();
    assert_eq!(put["revision"], 2);
    assert_eq!(
        put["ttlExpiresAt"],
        Value::Null,
        "a put without ttlSeconds keeps forever"
    );

    // Guarded reads.
    assert_eq!(
        call(c.get(ns(), key(), opts(json!({"ifRevision": 2}))))
            .await
            .unwrap()["value"],
        2
    );
    let e = fails(c.get(ns(), key(), opts(json!({"ifRevision": 1})))).await;
    assert_eq!(e.code(), ErrorCode::RevisionMismatch);

    // Guarded and unguarded deletes.
    let e = fails(c.delete(ns(), key(), opts(json!({"ifRevision": 9})))).await;
    assert_eq!(e.code(), ErrorCode::RevisionMismatch);
    assert_eq!(
        call(c.delete(ns(), key(), opts(json!({"ifRevision": 2}))))
            .await
            .unwrap(),
        Value::Null
    );
    assert_eq!(
        call(c.get(ns(), key(), None)).await.unwrap(),
        Value::Null,
        "get of a missing record is null"
    );
    call(c.delete(ns(), key(), None))
        .await
        .expect("an unguarded delete of nothing succeeds");
    let e = fails(c.delete(ns(), key(), opts(json!({"ifRevision": 1})))).await;
    assert_eq!((e.code(), e.status()), (ErrorCode::NotFound, 404));

    // Keys travel percent-encoded.
    for key in ["a b", "ü?#&=%", "x.y", "..."] {
        call(c.put(ns(), js(json!(key)), js(json!(key)), None))
            .await
            .unwrap();
        let record = call(c.get(ns(), js(json!(key)), None)).await.unwrap();
        assert_eq!(record["key"], key);
        assert_eq!(record["value"], key);
    }
}

#[wasm_bindgen_test]
async fn list_pages_and_list_all_walks_every_page() {
    let c = client(&["items"]).await;
    let items: Vec<Value> = (0..45)
        .map(|i| json!({"key": format!("item-{i:02}"), "value": i, "metadata": {"even": i % 2 == 0}}))
        .collect();
    for chunk in items.chunks(20) {
        let written = call(c.bulk_put(js(json!("items")), js(json!(chunk)), None))
            .await
            .unwrap();
        assert_eq!(written["items"].as_array().unwrap().len(), chunk.len());
    }
    call(c.put(js(json!("items")), js(json!("other")), js(json!(0)), None))
        .await
        .unwrap();

    let page = call(c.list(
        js(json!("items")),
        opts(json!({"limit": 10, "keyPrefix": "item-", "includeValues": true})),
    ))
    .await
    .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    assert_eq!(page["items"][0]["value"], 0);
    assert!(page["nextCursor"].is_string());
    let next = call(c.list(
        js(json!("items")),
        opts(json!({"limit": 10, "keyPrefix": "item-", "cursor": page["nextCursor"]})),
    ))
    .await
    .unwrap();
    assert_eq!(next["items"][0]["key"], "item-10");
    assert!(
        next["items"][0].get("value").is_none(),
        "values only when asked for"
    );

    // listAll: the async iteration protocol, as `for await` drives it.
    let iterable = c.list_all(js(json!("items")), opts(json!({"limit": 7, "keyPrefix": "item-", "includeMetadata": true, "metadata": {"even": true}})));
    let make = js_sys::Reflect::get(&iterable, &js_sys::Symbol::async_iterator()).unwrap();
    let iterator = make
        .unchecked_ref::<js_sys::Function>()
        .call0(&iterable)
        .unwrap();
    let mut keys = Vec::new();
    loop {
        let step = json::from_js(&step(&iterator, "next").await.unwrap()).unwrap();
        if step["done"] == true {
            break;
        }
        assert_eq!(step["value"]["metadata"]["even"], true);
        keys.push(step["value"]["key"].as_str().unwrap().to_owned());
    }
    let expected: Vec<String> = (0..45)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("item-{i:02}"))
        .collect();
    assert_eq!(
        keys, expected,
        "every matching record, in key order, across 4 pages"
    );

    // Breaking out early ends the walk.
    let iterable = c.list_all(js(json!("items")), opts(json!({"limit": 5})));
    let first = json::from_js(&step(&iterable, "next").await.unwrap()).unwrap();
    assert_eq!(first["done"], false);
    step(&iterable, "return").await.unwrap();
    let after = json::from_js(&step(&iterable, "next").await.unwrap()).unwrap();
    assert_eq!(after["done"], true);

    // A bad option rejects the first step.
    let iterable = c.list_all(js(json!("items")), opts(json!({"limit": 1000})));
    let thrown = step(&iterable, "next").await.unwrap_err();
    let e = error::from_js(&thrown).expect("a StorageError");
    assert_eq!(
        (e.code(), field(&e)),
        (ErrorCode::ValidationFailed, "limit")
    );
}

#[wasm_bindgen_test]
async fn increment_get_many_and_atomic_writes() {
    let c = client(&["atomic"]).await;
    let ns = || js(json!("atomic"));
    for expected in [5, 3] {
        let delta = if expected == 5 { 5 } else { -2 };
        let value = call(c.increment(ns(), js(json!("n")), js(json!(delta)), None))
            .await
            .unwrap();
        assert_eq!(value, json!(expected));
    }
    let done = call(
        c.atomic(ns())
            .check(js(json!("n")), js(json!(2)))
            .check(js(json!("fresh")), js(json!(0)))
            .put(
                js(json!("fresh")),
                js(json!({"a": 1})),
                opts(json!({"ttlSeconds": 3600})),
            )
            .increment(js(json!("n")), js(json!(1)))
            .commit(None),
    )
    .await
    .unwrap();
    assert_eq!(done["results"][1]["value"], 4, "{done}");
    let items = call(c.get_many(ns(), js(json!(["fresh", "none", "n"])), None))
        .await
        .unwrap();
    assert_eq!(items[0]["value"], json!({"a": 1}));
    assert_eq!(items[1], Value::Null);
    assert_eq!(items[2]["value"], 4);
    // A stale check rejects the whole write; a bad argument rejects before any request.
    let e = fails(
        c.atomic(ns())
            .check(js(json!("n")), js(json!(1)))
            .delete(js(json!("fresh")))
            .commit(None),
    )
    .await;
    assert_eq!(e.code(), ErrorCode::RevisionMismatch);
    assert_eq!(
        e.details().unwrap()["failedChecks"][0]["currentRevision"],
        3
    );
    let e = fails(c.increment(ns(), js(json!("n")), js(json!(1.5)), None)).await;
    assert_eq!(e.code(), ErrorCode::ValidationFailed);
    let e = fails(c.atomic(ns()).commit(None)).await;
    assert_eq!(field(&e), "operations");
}

/// What a `wasi:keyvalue` guest wrote as bytes (run by the runner host before these tests)
/// reads as JSON here, and what this writes the guest reads (after these tests).
#[wasm_bindgen_test]
async fn values_a_wasi_keyvalue_guest_wrote_read_as_json_and_back() {
    let token = env(
        option_env!("ALGA_WEB_TEST_KV_TOKEN"),
        "ALGA_WEB_TEST_KV_TOKEN",
    );
    let c = client_at(base(), token);
    let ns = || js(json!("kv"));
    let doc = call(c.get(ns(), js(json!("from-wasi")), None))
        .await
        .unwrap();
    assert_eq!(doc["value"], json!({"hello": "wasi"}));
    let visits = call(c.get(ns(), js(json!("visits")), None)).await.unwrap();
    assert_eq!(visits["value"], 5);
    let raw = call(c.get(ns(), js(json!("raw")), None)).await.unwrap();
    assert_eq!(raw["value"], json!({"$base64": "AP8="}));
    call(c.put(
        ns(),
        js(json!("from-browser")),
        js(json!({"hi": "browser", "n": [1, 2]})),
        None,
    ))
    .await
    .unwrap();
    let value = call(c.increment(ns(), js(json!("visits")), js(json!(1)), None))
        .await
        .unwrap();
    assert_eq!(value, 6);
}

#[wasm_bindgen_test]
async fn changes_pages_and_a_live_watch_that_resumes() {
    let c = client(&["feed"]).await;
    let ns = || js(json!("feed"));
    for (key, value) in [("a", 1), ("b", 2)] {
        call(c.put(ns(), js(json!(key)), js(json!(value)), None))
            .await
            .unwrap();
    }
    let page = call(c.changes(ns(), opts(json!({"limit": 1}))))
        .await
        .unwrap();
    assert_eq!(page["changes"][0]["key"], "a");
    assert_eq!(page["nextAfter"], 1);
    let rest = call(c.changes(ns(), opts(json!({"after": 1}))))
        .await
        .unwrap();
    assert_eq!(rest["changes"][0]["key"], "b");
    assert_eq!(rest["nextAfter"], 2);
    let e = fails(c.changes(ns(), opts(json!({"limit": 0})))).await;
    assert_eq!(field(&e), "limit");

    // watch: the async iteration protocol, as `for await` drives it: the log first, then live.
    let controller = web_sys::AbortController::new().unwrap();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"includeValues".into(), &true.into()).unwrap();
    js_sys::Reflect::set(&options, &"after".into(), &1.into()).unwrap();
    js_sys::Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    let iterable = c.watch(ns(), Some(options.unchecked_into()));
    let make = js_sys::Reflect::get(&iterable, &js_sys::Symbol::async_iterator()).unwrap();
    let watch = make
        .unchecked_ref::<js_sys::Function>()
        .call0(&iterable)
        .unwrap();
    let next = |watch: JsValue| async move {
        json::from_js(&step(&watch, "next").await.unwrap()).unwrap()
    };
    let replayed = next(watch.clone()).await;
    assert_eq!(replayed["value"]["type"], "change");
    assert_eq!(replayed["value"]["key"], "b");
    assert_eq!(replayed["value"]["value"], 2);
    let waiting = step(&watch, "next");
    call(c.put(ns(), js(json!("c")), js(json!({"live": true})), None))
        .await
        .unwrap();
    let live = json::from_js(&waiting.await.unwrap()).unwrap();
    assert_eq!(live["value"]["key"], "c");
    assert_eq!(live["value"]["value"], json!({"live": true}));
    assert_eq!(live["value"]["seq"], 3);
    // Aborting the signal ends the iteration.
    let pending = step(&watch, "next");
    controller.abort();
    call(c.delete(ns(), js(json!("a")), None)).await.unwrap();
    let end = json::from_js(&pending.await.unwrap()).unwrap();
    assert_eq!(end["done"], true, "{end}");
    // A bad option rejects the first step, before any request.
    let bad = c.watch(ns(), opts(json!({"includeValues": "yes"})));
    let e = step(&bad, "next").await.unwrap_err();
    assert_eq!(field(&error::from_js(&e).unwrap()), "includeValues");
}

#[wasm_bindgen_test]
async fn a_watch_whose_connection_drops_resumes_after_the_last_change_it_yielded() {
    let c = client(&["drops"]).await;
    let ns = || js(json!("drops"));
    for (key, value) in [("a", 1), ("b", 2)] {
        call(c.put(ns(), js(json!(key)), js(json!(value)), None))
            .await
            .unwrap();
    }
    // The first attempt of this watch gets no answer (a network failure, retried); the next two
    // connections pass one chunk of the stream, then fail as a dropped connection does;
    // `connections()` counts them all.
    let install = js_sys::Function::new_no_args(
        r#"
        const real = globalThis.fetch;
        let opened = 0;
        globalThis.fetch = async (request) => {
          if (!String(request.url).includes("/drops:watch")) return real(request);
          opened += 1;
          if (opened === 1) throw new TypeError("Failed to fetch");
          const res = await real(request);
          if (opened > 3) return res;
          const reader = res.body.getReader();
          let passed = false;
          const body = new ReadableStream({
            async pull(controller) {
              if (passed) { controller.error(new TypeError("network error")); return; }
              const chunk = await reader.read();
              if (chunk.done) { controller.close(); return; }
              passed = true;
              controller.enqueue(chunk.value);
            },
          });
          return new Response(body, { status: res.status, headers: res.headers });
        };
        return { connections: () => opened, restore: () => { globalThis.fetch = real; } };
        "#,
    );
    let patched = install.call0(&JsValue::UNDEFINED).unwrap();
    let controller = web_sys::AbortController::new().unwrap();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    let watch = c.watch(ns(), Some(options.unchecked_into()));
    let mut seen = Vec::new();
    let mut waiting = None;
    while seen.len() < 3 {
        let next = step(&watch, "next");
        if seen.len() == 2 && waiting.is_none() {
            // The third change is written live, while the watch waits (reconnecting).
            waiting = Some(());
            call(c.put(ns(), js(json!("c")), js(json!(3)), None))
                .await
                .unwrap();
        }
        let event = json::from_js(&next.await.unwrap()).unwrap();
        assert_eq!(event["done"], false, "{event}");
        seen.push((
            event["value"]["key"].as_str().unwrap().to_owned(),
            event["value"]["seq"].as_u64().unwrap(),
        ));
    }
    controller.abort();
    let method = |name: &str| {
        js_sys::Reflect::get(&patched, &name.into())
            .unwrap()
            .unchecked_into::<js_sys::Function>()
            .call0(&JsValue::UNDEFINED)
            .unwrap()
    };
    let connections = method("connections").as_f64().unwrap();
    method("restore");
    let expected: Vec<(String, u64)> = vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 3)];
    assert_eq!(seen, expected, "nothing missed, nothing twice");
    assert!(
        connections >= 2.0,
        "the watch reconnected ({connections} connections)"
    );
}

#[wasm_bindgen_test]
async fn a_watch_reads_a_stream_cut_into_single_bytes() {
    let c = client(&["bytes"]).await;
    let ns = || js(json!("bytes"));
    let text = "caf\u{e9} \u{1f642}";
    for (key, value) in [("a", json!({ "text": text })), ("b", json!(2))] {
        call(c.put(ns(), js(json!(key)), js(value), None))
            .await
            .unwrap();
    }
    // Every byte of the stream arrives as a chunk of its own: lines, events and UTF-8
    // characters are all cut.
    let install = js_sys::Function::new_no_args(
        r#"
        const real = globalThis.fetch;
        globalThis.fetch = async (request) => {
          const res = await real(request);
          if (!String(request.url).includes("/bytes:watch")) return res;
          const reader = res.body.getReader();
          let pending = [];
          const body = new ReadableStream({
            async pull(controller) {
              while (pending.length === 0) {
                const chunk = await reader.read();
                if (chunk.done) { controller.close(); return; }
                pending = [...chunk.value];
              }
              controller.enqueue(new Uint8Array([pending.shift()]));
            },
          });
          return new Response(body, { status: res.status, headers: res.headers });
        };
        return () => { globalThis.fetch = real; };
        "#,
    );
    let restore: js_sys::Function = install.call0(&JsValue::UNDEFINED).unwrap().unchecked_into();
    let controller = web_sys::AbortController::new().unwrap();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    js_sys::Reflect::set(&options, &"includeValues".into(), &true.into()).unwrap();
    let watch = c.watch(ns(), Some(options.unchecked_into()));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = json::from_js(&step(&watch, "next").await.unwrap()).unwrap();
        seen.push(event["value"].clone());
    }
    controller.abort();
    restore.call0(&JsValue::UNDEFINED).unwrap();
    assert_eq!(seen[0]["key"], "a", "{seen:?}");
    assert_eq!(seen[0]["value"]["text"], text, "{seen:?}");
    assert_eq!(
        (&seen[1]["key"], &seen[1]["value"]),
        (&json!("b"), &json!(2))
    );
}

#[wasm_bindgen_test]
async fn a_watch_whose_token_expires_asks_the_provider_for_a_fresh_one_once() {
    let good = token(rw(&["renew"])).await;
    let writer = client_at(base(), &good);
    call(writer.put(js(json!("renew")), js(json!("a")), js(json!(1)), None))
        .await
        .unwrap();
    // The first `expiries` connections of a watch of "renew" end with the error event a server
    // sends when the token expires while the stream is open.
    let install = js_sys::Function::new_with_args(
        "expiries",
        r#"
        const real = globalThis.fetch;
        let opened = 0;
        globalThis.fetch = async (request) => {
          if (!String(request.url).includes("/renew:watch")) return real(request);
          opened += 1;
          if (opened > expiries) return real(request);
          const expired = 'event: error\ndata: {"error":{"code":"UNAUTHENTICATED","message":"token expired"}}\n\n';
          return new Response(expired, { status: 200, headers: { "content-type": "text/event-stream" } });
        };
        return () => { globalThis.fetch = real; };
        "#,
    );
    let asked = Rc::new(Cell::new(0));
    let provider = {
        let (asked, good) = (asked.clone(), good.clone());
        Closure::<dyn FnMut() -> JsValue>::new(move || {
            asked.set(asked.get() + 1);
            JsValue::from(good.clone())
        })
    };
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"baseUrl".into(), &base().into()).unwrap();
    js_sys::Reflect::set(&options, &"token".into(), provider.as_ref()).unwrap();
    let c = StorageClient::new(options.into()).unwrap();
    let restore: js_sys::Function = install
        .call1(&JsValue::UNDEFINED, &1.into())
        .unwrap()
        .unchecked_into();
    let controller = web_sys::AbortController::new().unwrap();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    let watch = c.watch(js(json!("renew")), Some(options.clone().unchecked_into()));
    let first = step(&watch, "next").await;
    controller.abort();
    restore.call0(&JsValue::UNDEFINED).unwrap();
    let first = json::from_js(&first.unwrap()).unwrap();
    assert_eq!(first["value"]["key"], "a", "{first}");
    assert_eq!(asked.get(), 2, "a token for each connection");

    // Expired again before any change: the watch ends with the error.
    let restore: js_sys::Function = install
        .call1(&JsValue::UNDEFINED, &2.into())
        .unwrap()
        .unchecked_into();
    let watch = c.watch(js(json!("renew")), None);
    let e = step(&watch, "next").await;
    restore.call0(&JsValue::UNDEFINED).unwrap();
    let e = error::from_js(&e.unwrap_err()).unwrap();
    assert_eq!(e.code(), ErrorCode::Unauthenticated, "{e:?}");
}

#[wasm_bindgen_test]
async fn return_ends_a_watch_that_waits_for_a_change() {
    let c = client(&["quiet"]).await;
    let watch = c.watch(js(json!("quiet")), None);
    let method = |name: &str| {
        js_sys::Reflect::get(&watch, &name.into())
            .unwrap()
            .unchecked_into::<js_sys::Function>()
            .call0(&watch)
            .unwrap()
            .unchecked_into::<js_sys::Promise>()
    };
    // `next()` waits (nothing changes in "quiet"); `return()` ends it, both within 3 s.
    let pending = method("next");
    let returned = method("return");
    let both = js_sys::Promise::all(&js_sys::Array::of2(&pending, &returned));
    let hung = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into()).unwrap();
        let _ = set_timeout.unchecked_ref::<js_sys::Function>().call2(
            &JsValue::UNDEFINED,
            &resolve,
            &3000.into(),
        );
    });
    let settled = JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&both, &hung)))
        .await
        .unwrap();
    assert!(
        settled.is_object(),
        "return() did not end the waiting watch"
    );
    let results = json::from_js(&settled).unwrap();
    assert_eq!(results[0]["done"], true, "{results}");
    assert_eq!(results[1]["done"], true, "{results}");
}

#[wasm_bindgen_test]
async fn bulk_put_is_all_or_nothing() {
    let c = client(&["bulk"]).await;
    call(c.put(js(json!("bulk")), js(json!("a")), js(json!(1)), None))
        .await
        .unwrap();
    let items = json!([
        {"key": "b", "value": 2},
        {"key": "a", "value": 3, "ifRevision": 7},
    ]);
    let e = fails(c.bulk_put(js(json!("bulk")), js(items), None)).await;
    assert_eq!(e.code(), ErrorCode::BulkPartialFailure);
    assert_eq!(e.status(), 409, "the status of the failing item");
    let failed = &e.details().unwrap()["items"][0];
    assert_eq!(
        (failed["index"].clone(), failed["code"].clone()),
        (json!(1), json!("REVISION_MISMATCH"))
    );
    assert_eq!(
        call(c.get(js(json!("bulk")), js(json!("b")), None))
            .await
            .unwrap(),
        Value::Null,
        "nothing was written"
    );
}

#[wasm_bindgen_test]
async fn bad_input_is_refused_in_the_browser_before_any_request() {
    // Nothing listens at this address: a request that left the browser would fail with a
    // transport error, so each VALIDATION_FAILED below was decided in the browser.
    let closed = env(
        option_env!("ALGA_WEB_TEST_CLOSED_URL"),
        "ALGA_WEB_TEST_CLOSED_URL",
    );
    let c = client_at(closed, "any-token");
    let s = |v: &str| js(json!(v));
    let cyclic = js_sys::Object::new();
    js_sys::Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    let not_a_signal = opts(json!({"signal": "stop"}));
    let cases: Vec<(&str, js_sys::Promise, &str)> = vec![
        (
            "namespace with capitals",
            c.put(s("Notes"), s("k"), js(json!(1)), None),
            "namespace",
        ),
        (
            "namespace not a string",
            c.get(js(json!(5)), s("k"), None),
            "namespace",
        ),
        (
            "missing key",
            c.get(s("notes"), JsValue::UNDEFINED, None),
            "key",
        ),
        (
            "key with a slash",
            c.put(s("notes"), s("a/b"), js(json!(1)), None),
            "key",
        ),
        (
            "key that is a dot segment",
            c.get(s("notes"), s(".."), None),
            "key",
        ),
        (
            "value undefined",
            c.put(s("notes"), s("k"), JsValue::UNDEFINED, None),
            "value",
        ),
        (
            "value a function",
            c.put(
                s("notes"),
                s("k"),
                js_sys::Function::new_no_args("").into(),
                None,
            ),
            "value",
        ),
        (
            "value a BigInt",
            c.put(s("notes"), s("k"), js_sys::BigInt::from(1_u32).into(), None),
            "value",
        ),
        (
            "value cyclic",
            c.put(s("notes"), s("k"), cyclic.into(), None),
            "value",
        ),
        (
            "value with a lone surrogate",
            c.put(
                s("notes"),
                s("k"),
                js_sys::JsString::from_char_code1(0xD800).into(),
                None,
            ),
            "value",
        ),
        (
            "value nested 101 deep",
            c.put(s("notes"), s("k"), js(nested(101)), None),
            "value",
        ),
        (
            "metadata nested 101 deep",
            c.put(
                s("notes"),
                s("k"),
                js(json!(1)),
                opts(json!({"metadata": {"m": nested(100)}})),
            ),
            "metadata",
        ),
        (
            "negative ttl",
            c.put(
                s("notes"),
                s("k"),
                js(json!(1)),
                opts(json!({"ttlSeconds": -1})),
            ),
            "ttlSeconds",
        ),
        (
            "metadata not an object",
            c.put(
                s("notes"),
                s("k"),
                js(json!(1)),
                opts(json!({"metadata": [1]})),
            ),
            "metadata",
        ),
        (
            "unknown option",
            c.put(s("notes"), s("k"), js(json!(1)), opts(json!({"ttl": 5}))),
            "ttl",
        ),
        (
            "an argument as an option",
            c.get(s("notes"), s("k"), opts(json!({"namespace": "x"}))),
            "namespace",
        ),
        (
            "limit too big",
            c.list(s("notes"), opts(json!({"limit": 101}))),
            "limit",
        ),
        (
            "include flag not a boolean",
            c.list(s("notes"), opts(json!({"includeValues": "yes"}))),
            "includeValues",
        ),
        (
            "signal not an AbortSignal",
            c.get(s("notes"), s("k"), not_a_signal),
            "signal",
        ),
        (
            "timeout negative",
            c.get(s("notes"), s("k"), opts(json!({"timeoutMs": -5}))),
            "timeoutMs",
        ),
        (
            "no bulk items",
            c.bulk_put(s("notes"), js(json!([])), None),
            "items",
        ),
        (
            "duplicate bulk keys",
            c.bulk_put(
                s("notes"),
                js(json!([{"key": "a", "value": 1}, {"key": "a", "value": 2}])),
                None,
            ),
            "items[1].key",
        ),
        (
            "patch op unknown",
            c.patch(
                s("notes"),
                js(json!([{"op": "add", "key": "a"}])),
                s("\"0\""),
                None,
            ),
            "",
        ),
        (
            "patch etag not an etag",
            c.patch(
                s("notes"),
                js(json!([{"op": "del", "key": "a"}])),
                s("abc"),
                None,
            ),
            "",
        ),
        (
            "options not an object",
            c.get(s("notes"), s("k"), opts(json!("fast"))),
            "options",
        ),
    ];
    for (what, promise, expected_field) in cases {
        let e = fails(promise).await;
        assert_eq!(e.code(), ErrorCode::ValidationFailed, "{what}: {e:?}");
        assert_eq!(e.status(), 400, "{what}");
        if !expected_field.is_empty() {
            assert_eq!(field(&e), expected_field, "{what}: {e:?}");
        }
    }
    // Too large: PAYLOAD_TOO_LARGE (413), also before any request.
    let big = "x".repeat(300 * 1024);
    let e = fails(c.put(s("notes"), s("k"), js(json!(big)), None)).await;
    assert_eq!((e.code(), e.status()), (ErrorCode::PayloadTooLarge, 413));
    // The same rules as the server: the browser's error is the server's error.
    let server = client(&["notes"]).await;
    for (ns, key, value) in [
        ("Notes", "k", json!(1)),
        ("notes", "a/b", json!(1)),
        ("notes", "k", nested(101)),
    ] {
        let local = fails(c.put(s(ns), s(key), js(value.clone()), None)).await;
        let remote = fails(server.put(s(ns), s(key), js(value), None)).await;
        assert_eq!(local, remote);
    }
    // Bad client options throw at once.
    for options in [
        json!({"token": "t"}),
        json!({"baseUrl": "http://x"}),
        json!({"baseUrl": "http://x", "token": ""}),
        json!({"baseUrl": "http://x", "token": "t", "timeout": 5}),
    ] {
        let thrown = StorageClient::new(js(options.clone()))
            .err()
            .expect("a bad option throws");
        let e = error::from_js(&thrown).expect("a StorageError");
        assert_eq!(e.code(), ErrorCode::ValidationFailed, "{options}");
    }
    // A patch needs an app id.
    let no_app = StorageClient::new(js(json!({"baseUrl": closed, "token": "t"}))).unwrap();
    let e = fails(no_app.patch(
        s("notes"),
        js(json!([{"op": "del", "key": "a"}])),
        s("\"0\""),
        None,
    ))
    .await;
    assert_eq!(field(&e), "appId");
}

#[wasm_bindgen_test]
async fn grants_and_tokens_are_enforced() {
    let t = token(json!([
        {"namespace": "shared", "access": ["read"]},
        {"namespace": "mine", "access": ["read", "write"]}
    ]))
    .await;
    let c = client_at(base(), &t);
    let e = fails(c.put(js(json!("shared")), js(json!("k")), js(json!(1)), None)).await;
    assert_eq!((e.code(), e.status()), (ErrorCode::Unauthorized, 403));
    let e = fails(c.get(js(json!("elsewhere")), js(json!("k")), None)).await;
    assert_eq!((e.code(), e.status()), (ErrorCode::Unauthorized, 403));
    assert_eq!(
        call(c.get(js(json!("shared")), js(json!("k")), None))
            .await
            .unwrap(),
        Value::Null
    );

    let bad = client_at(base(), "not-a-token");
    let e = fails(bad.get(js(json!("mine")), js(json!("k")), None)).await;
    assert_eq!((e.code(), e.status()), (ErrorCode::Unauthenticated, 401));

    // A token provider is asked before each call and once more after a 401 (refresh).
    let calls = Rc::new(Cell::new(0));
    let provider = {
        let calls = calls.clone();
        let good = t.clone();
        Closure::<dyn FnMut() -> JsValue>::new(move || {
            calls.set(calls.get() + 1);
            let token = if calls.get() == 1 {
                "expired".to_owned()
            } else {
                good.clone()
            };
            js_sys::Promise::resolve(&JsValue::from(token)).into()
        })
    };
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"baseUrl".into(), &base().into()).unwrap();
    js_sys::Reflect::set(&options, &"token".into(), provider.as_ref()).unwrap();
    let refreshing = StorageClient::new(options.into()).unwrap();
    call(refreshing.put(js(json!("mine")), js(json!("k")), js(json!(1)), None))
        .await
        .unwrap();
    assert_eq!(calls.get(), 2, "a 401, then the refreshed token");
    call(refreshing.get(js(json!("mine")), js(json!("k")), None))
        .await
        .unwrap();
    assert_eq!(calls.get(), 3);

    // A provider that throws: UNAUTHENTICATED, saying so.
    let throwing = js_sys::Function::new_no_args("throw new Error('session over')");
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"baseUrl".into(), &base().into()).unwrap();
    js_sys::Reflect::set(&options, &"token".into(), &throwing).unwrap();
    let c = StorageClient::new(options.clone().into()).unwrap();
    let e = fails(c.get(js(json!("mine")), js(json!("k")), None)).await;
    assert_eq!(e.code(), ErrorCode::Unauthenticated);
    assert!(e.message().contains("session over"), "{}", e.message());

    // What it throws, when not an Error, is in the message as JSON or as String(…) writes it.
    for (thrown, said) in [
        ("throw { reason: 'gone' }", r#"{"reason":"gone"}"#),
        ("throw Symbol('late')", "Symbol(late)"),
    ] {
        js_sys::Reflect::set(
            &options,
            &"token".into(),
            &js_sys::Function::new_no_args(thrown),
        )
        .unwrap();
        let c = StorageClient::new(options.clone().into()).unwrap();
        let e = fails(c.get(js(json!("mine")), js(json!("k")), None)).await;
        assert_eq!(e.code(), ErrorCode::Unauthenticated);
        assert!(e.message().ends_with(said), "{thrown}: {}", e.message());
    }
}

#[wasm_bindgen_test]
async fn a_busy_principal_is_rate_limited() {
    let limited = env(
        option_env!("ALGA_WEB_TEST_LIMITED_URL"),
        "ALGA_WEB_TEST_LIMITED_URL",
    );
    let (_, t) = tenant_at(limited, rw(&["rl"])).await;
    let c = client_at(limited, &t);
    let mut seen = None;
    for _ in 0..5 {
        if let Err(e) = call(c.get(js(json!("rl")), js(json!("k")), None)).await {
            seen = Some(e);
            break;
        }
    }
    let e = seen.expect("the limit fires within 5 quick calls");
    assert_eq!((e.code(), e.status()), (ErrorCode::RateLimited, 429));
}

#[wasm_bindgen_test]
async fn transport_failures_timeouts_and_aborts_are_storage_errors() {
    let cause = |e: &StorageError| e.details().unwrap()["cause"].as_str().unwrap().to_owned();
    let closed = env(
        option_env!("ALGA_WEB_TEST_CLOSED_URL"),
        "ALGA_WEB_TEST_CLOSED_URL",
    );
    let e = fails(client_at(closed, "t").get(js(json!("notes")), js(json!("k")), None)).await;
    assert!(e.is_transport(), "{e:?}");
    assert_eq!(
        (e.code(), e.status(), cause(&e).as_str()),
        (ErrorCode::InternalError, 503, "network")
    );

    // A request the browser refuses to build (a token no header can carry) is refused before
    // anything is sent, not reported as a network failure.
    let e = fails(client_at(closed, "t\nt").get(js(json!("notes")), js(json!("k")), None)).await;
    assert!(!e.is_transport(), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ValidationFailed, "{e:?}");
    assert_eq!(e.details().unwrap()["field"], "request", "{e:?}");

    let hang = env(
        option_env!("ALGA_WEB_TEST_HANG_URL"),
        "ALGA_WEB_TEST_HANG_URL",
    );
    let c = client_at(hang, "t");
    let started = js_sys::Date::now();
    let e = fails(c.get(
        js(json!("notes")),
        js(json!("k")),
        opts(json!({"timeoutMs": 300})),
    ))
    .await;
    let waited = js_sys::Date::now() - started;
    assert_eq!(cause(&e), "timeout", "{e:?}");
    assert!(waited >= 290.0, "gave up after {waited} ms");

    // An AbortSignal: already aborted, and aborted while waiting.
    let controller = web_sys::AbortController::new().unwrap();
    controller.abort();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    let e = fails(c.get(
        js(json!("notes")),
        js(json!("k")),
        Some(options.unchecked_into()),
    ))
    .await;
    assert_eq!(cause(&e), "aborted");

    let controller = web_sys::AbortController::new().unwrap();
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    js_sys::Reflect::set(&options, &"timeoutMs".into(), &0.into()).unwrap();
    let pending = c.get(
        js(json!("notes")),
        js(json!("k")),
        Some(options.unchecked_into()),
    );
    let abort = Closure::once_into_js(move || controller.abort());
    web_sys::window()
        .unwrap()
        .set_timeout_with_callback_and_timeout_and_arguments_0(abort.unchecked_ref(), 100)
        .unwrap();
    let e = fails(pending).await;
    assert_eq!(cause(&e), "aborted");
}

#[wasm_bindgen_test]
async fn snapshot_and_patch_with_etags() {
    let c = client(&["board"]).await;
    let ns = || js(json!("board"));
    let empty = call(c.snapshot(ns(), None)).await.unwrap();
    assert_eq!(empty, json!({"etag": "\"0\"", "data": {}}));

    let created = call(c.patch(ns(), js(json!([{"op": "set", "key": "a", "value": 1}, {"op": "set", "key": "b", "value": {"x": 2}}])), js(empty["etag"].clone()), None))
        .await
        .unwrap();
    assert_eq!(created["created"], true);
    assert_eq!(created["data"], json!({"a": 1, "b": {"x": 2}}));
    let etag = created["etag"].as_str().unwrap().to_owned();
    assert_ne!(etag, "\"0\"");

    let snapshot = call(c.snapshot(ns(), None)).await.unwrap();
    assert_eq!(snapshot["etag"], etag.as_str());
    assert_eq!(snapshot["data"], json!({"a": 1, "b": {"x": 2}}));

    // The record API sees what the patch wrote, and its writes move the ETag.
    assert_eq!(
        call(c.get(ns(), js(json!("a")), None)).await.unwrap()["value"],
        1
    );
    call(c.put(ns(), js(json!("c")), js(json!(3)), None))
        .await
        .unwrap();

    // A stale ETag: PRECONDITION_FAILED with the current one; nothing written.
    let e = fails(c.patch(
        ns(),
        js(json!([{"op": "del", "key": "a"}])),
        js(json!(etag)),
        None,
    ))
    .await;
    assert_eq!((e.code(), e.status()), (ErrorCode::PreconditionFailed, 412));
    let current = e.details().unwrap()["currentEtag"].clone();
    let now = call(c.snapshot(ns(), None)).await.unwrap();
    assert_eq!(now["data"]["a"], 1);
    assert!(now["etag"].as_str().unwrap().contains(
        current
            .as_str()
            .unwrap_or(&current.to_string())
            .trim_matches('"')
    ));

    let updated = call(c.patch(
        ns(),
        js(json!([{"op": "del", "key": "a"}])),
        js(now["etag"].clone()),
        opts(json!({"appId": "other-app"})),
    ))
    .await
    .unwrap();
    assert_eq!(updated["created"], false);
    assert_eq!(updated["data"], json!({"b": {"x": 2}, "c": 3}));

    // Grants apply to the snapshot API too.
    let e = fails(c.snapshot(js(json!("elsewhere")), None)).await;
    assert_eq!(e.code(), ErrorCode::Unauthorized);
}

#[wasm_bindgen_test]
async fn schemas_reject_values_with_the_server_s_paths() {
    let (tenant, t) = tenant_at(base(), rw(&["typed"])).await;
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let (status, body) = admin(
        base(),
        Method::PUT,
        &format!("/tenants/{tenant}/namespaces/typed/schema"),
        &schema,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = client_at(base(), &t);
    call(c.put(
        js(json!("typed")),
        js(json!("ok")),
        js(json!({"n": 1})),
        None,
    ))
    .await
    .unwrap();
    let e = fails(c.put(
        js(json!("typed")),
        js(json!("bad")),
        js(json!({"n": "one"})),
        None,
    ))
    .await;
    assert_eq!((e.code(), e.status()), (ErrorCode::ValidationFailed, 400));
    assert!(
        e.details().unwrap().to_string().contains("/n"),
        "{:?}",
        e.details()
    );
}

#[wasm_bindgen_test]
async fn errors_are_real_error_objects() {
    let c = client(&["notes"]).await;
    let thrown = JsFuture::from(c.put(js(json!("Bad")), js(json!("k")), js(json!(1)), None))
        .await
        .unwrap_err();
    assert!(thrown.is_instance_of::<js_sys::Error>());
    let error: &js_sys::Error = thrown.unchecked_ref();
    assert_eq!(String::from(error.name()), "StorageError");
    assert!(alga_storage_web::is_storage_error(&thrown));
    assert!(!alga_storage_web::is_storage_error(
        &js_sys::Error::new("other").into()
    ));
    assert_eq!(
        js_sys::Reflect::get(&thrown, &"code".into()).unwrap(),
        "VALIDATION_FAILED"
    );
    assert_eq!(
        js_sys::Reflect::get(&thrown, &"status".into()).unwrap(),
        400
    );
}
