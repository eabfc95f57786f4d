//! A handler written against `wasi:keyvalue` alone (`examples/keyvalue-handler`), run on the
//! reference runner host against the real server: bytes and JSON both ways, atomics, batch,
//! paging, and each `wasi:keyvalue` error.

use alga_storage_runner::Handler;
use alga_storage_tests::guest::{component, context, load, runner, KEYVALUE};
use alga_storage_tests::{Tenant, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

/// Runs one command; `Ok` is the handler's JSON answer, `Err` its JSON failure.
async fn call(handler: &Handler, t: &Tenant, input: Value) -> Result<Value, Value> {
    handler
        .invoke(&context(&t.install), &input.to_string())
        .await
        .expect("no trap")
        .map(|ok| serde_json::from_str(&ok).unwrap())
        .map_err(|err| serde_json::from_str(&err).unwrap())
}

/// The WIT under `sdk-guest/wit/deps/keyvalue/` is the published one, byte for byte: the
/// crates.io package `wrpc-wasi-keyvalue` 0.3.0 (fetched into a scratch manifest; cargo's cache
/// makes it instant after the first time).
#[test]
fn the_wasi_keyvalue_wit_is_the_published_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scratch = root.join("target/wit-source");
    std::fs::create_dir_all(scratch.join("src")).unwrap();
    std::fs::write(
        scratch.join("Cargo.toml"),
        "[package]\nname = \"wit-source\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nwrpc-wasi-keyvalue = \"=0.3.0\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(scratch.join("src/lib.rs"), "").unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = alga_storage_tests::as_from_a_shell(&mut std::process::Command::new(cargo))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(scratch.join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        metadata.status.success(),
        "{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let metadata: Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let manifest = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "wrpc-wasi-keyvalue")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("the package is resolved");
    let published = std::path::Path::new(manifest)
        .parent()
        .unwrap()
        .join("wit/deps/keyvalue");
    let ours = root.join("sdk-guest/wit/deps/keyvalue");
    let names = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&ours), names(&published));
    for name in names(&ours) {
        assert!(
            std::fs::read(ours.join(&name)).unwrap()
                == std::fs::read(published.join(&name)).unwrap(),
            "{name} differs from the published file"
        );
    }
}

#[test]
fn the_example_imports_wasi_keyvalue_and_not_alga_storage() {
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::from_file(&engine, component(KEYVALUE))
        .expect("the example is a component");
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    for wanted in ["store", "atomics", "batch"] {
        let name = format!("wasi:keyvalue/{wanted}@0.2.0-draft2");
        assert!(imports.contains(&name), "{name} not in {imports:?}");
    }
    assert!(
        !imports.iter().any(|i| i.starts_with("alga:")),
        "{imports:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_keyvalue_handler_runs_unchanged_on_this_store() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "kv", "access": ["read", "write"]}]))
        .await;
    let runner = runner(&s);
    let handler = load(&runner, KEYVALUE);
    let kv = |op: &str, rest: Value| {
        let mut input = json!({ "op": op, "bucket": "kv" });
        input
            .as_object_mut()
            .unwrap()
            .extend(rest.as_object().unwrap().clone());
        input
    };

    // Bytes that are not JSON round-trip exactly; compact JSON is stored as JSON.
    let raw = vec![0u8, 255, 10, 34, 123];
    call(&handler, &t, kv("set", json!({"key": "raw", "bytes": raw})))
        .await
        .unwrap();
    let got = call(&handler, &t, kv("get", json!({"key": "raw"})))
        .await
        .unwrap();
    assert_eq!(got["bytes"], json!(raw));
    call(
        &handler,
        &t,
        kv("set", json!({"key": "doc", "text": "{\"a\":[1,true]}"})),
    )
    .await
    .unwrap();
    let rest = s.rest(&t, Method::GET, "/kv/doc", &[], None).await;
    assert_eq!(rest.body["value"], json!({"a": [1, true]}));
    let rest = s.rest(&t, Method::GET, "/kv/raw", &[], None).await;
    assert_eq!(rest.body["value"], json!({"$base64": "AP8KIns="}));
    // What a JSON surface writes reads as its compact JSON bytes.
    let put = s
        .rest(
            &t,
            Method::PUT,
            "/kv/from-rest",
            &[],
            Some(json!({"value": {"b": "x", "a": 2.5}})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let got = call(&handler, &t, kv("get", json!({"key": "from-rest"})))
        .await
        .unwrap();
    assert_eq!(got["text"], "{\"a\":2.5,\"b\":\"x\"}");

    // exists, delete (a missing key too), get of a missing key.
    assert_eq!(
        call(&handler, &t, kv("exists", json!({"key": "doc"})))
            .await
            .unwrap()["exists"],
        true
    );
    call(&handler, &t, kv("delete", json!({"key": "doc"})))
        .await
        .unwrap();
    call(&handler, &t, kv("delete", json!({"key": "doc"})))
        .await
        .unwrap();
    assert_eq!(
        call(&handler, &t, kv("exists", json!({"key": "doc"})))
            .await
            .unwrap()["exists"],
        false
    );
    assert_eq!(
        call(&handler, &t, kv("get", json!({"key": "doc"})))
            .await
            .unwrap()["bytes"],
        Value::Null
    );

    // atomics: increment creates and adds; the browser and REST read a number.
    for _ in 0..3 {
        call(
            &handler,
            &t,
            kv("increment", json!({"key": "hits", "delta": 2})),
        )
        .await
        .unwrap();
    }
    let rest = s.rest(&t, Method::GET, "/kv/hits", &[], None).await;
    assert_eq!(rest.body["value"], 6);
    assert_eq!(
        call(&handler, &t, kv("get", json!({"key": "hits"})))
            .await
            .unwrap()["text"],
        "6"
    );
    // cas: two appends in turn, then eight at once: the losers get `cas-failed` with a fresh
    // handle and retry, and no append is lost.
    call(
        &handler,
        &t,
        kv("casAppend", json!({"key": "log", "text": "a"})),
    )
    .await
    .unwrap();
    let second = call(
        &handler,
        &t,
        kv("casAppend", json!({"key": "log", "text": "b"})),
    )
    .await
    .unwrap();
    assert_eq!(second["attempts"], 1);
    assert_eq!(
        call(&handler, &t, kv("get", json!({"key": "log"})))
            .await
            .unwrap()["text"],
        "ab"
    );

    // batch, and list-keys paging with our cursor (the default page is 100 keys).
    let entries: serde_json::Map<String, Value> = (0..130)
        .map(|i| (format!("b{i:03}"), json!(format!("{i}"))))
        .collect();
    call(&handler, &t, kv("setMany", json!({ "entries": entries })))
        .await
        .unwrap();
    let many = call(
        &handler,
        &t,
        kv("getMany", json!({"keys": ["b007", "nope", "b129"]})),
    )
    .await
    .unwrap();
    assert_eq!(many[0]["key"], "b007");
    assert_eq!(many[0]["value"]["text"], "7");
    assert_eq!(many[1], Value::Null);
    assert_eq!(many[2]["value"]["text"], "129");
    let keys = call(&handler, &t, kv("keys", json!({}))).await.unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 130 + 4);
    assert!(keys["pages"].as_u64().unwrap() >= 2, "{keys}");
    let doomed: Vec<String> = (0..130).map(|i| format!("b{i:03}")).collect();
    call(&handler, &t, kv("deleteMany", json!({ "keys": doomed })))
        .await
        .unwrap();
    let keys = call(&handler, &t, kv("keys", json!({}))).await.unwrap();
    assert_eq!(keys["keys"], json!(["from-rest", "hits", "log", "raw"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_wasi_keyvalue_error_is_produced() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "kv", "access": ["read", "write"]}]))
        .await;
    let runner = runner(&s);
    let handler = load(&runner, KEYVALUE);
    // no-such-store: not a namespace name.
    let e = call(
        &handler,
        &t,
        json!({"op": "get", "bucket": "no such store!", "key": "k"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e["error"], "no-such-store", "{e}");
    // access-denied: a namespace the install is not granted.
    let e = call(
        &handler,
        &t,
        json!({"op": "get", "bucket": "other", "key": "k"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e["error"], "access-denied", "{e}");
    // other: the contract's error, code first (an increment of a value that is not a number).
    call(
        &handler,
        &t,
        json!({"op": "set", "bucket": "kv", "key": "s", "text": "\"text\""}),
    )
    .await
    .unwrap();
    let e = call(
        &handler,
        &t,
        json!({"op": "increment", "bucket": "kv", "key": "s", "delta": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(e["error"], "other", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("VALIDATION_FAILED: "),
        "{e}"
    );
    // other, from a key the contract refuses.
    let e = call(
        &handler,
        &t,
        json!({"op": "get", "bucket": "kv", "key": ""}),
    )
    .await
    .unwrap_err();
    assert_eq!(e["error"], "other", "{e}");
}
