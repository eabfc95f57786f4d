//! The OpenAPI-driven check: every operation `/openapi.json` describes is called with its
//! documented example and with one thing at a time changed (each path parameter, the
//! credentials, the body, each query parameter, each header). Every answer must have a status
//! the document lists for that operation, no 5xx, and a body matching the documented schema;
//! every operation must succeed (2xx) at least once.

use alga_storage_tests::TestServer;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One request to send.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    why: String,
}

/// Values of a path parameter: the first one is valid.
fn path_values(name: &str, path: &str, tenant: &str, install: &str) -> Vec<&'static str> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    match name {
        "ns" if path.starts_with("/api/admin") => vec!["settings", "Bad NS"],
        "ns" => vec!["settings", "ungranted", "Bad%20NS", "x".repeat(65).leak()],
        "key" => vec!["a", "caf%C3%A9", "a%2Fb", "%00"],
        "tenant" => vec![leak(tenant.to_owned()), "not-a-uuid"],
        "install" if path.starts_with("/api/admin") => {
            vec!["victim", "no-such-install", "bad%0Aid"]
        }
        "install" => vec![leak(install.to_owned()), "no-such-install"],
        other => panic!("no values for path parameter {other}"),
    }
}

/// A valid and some invalid values of a query parameter.
fn query_values(name: &str) -> Vec<String> {
    let values: &[&str] = match name {
        "ns" => &["settings", "Bad%20NS", "ungranted"],
        "keyPrefix" => &["a", "%25"],
        "limit" => &["2", "1000", "x"],
        "cursor" => &["garbage"],
        "includeValues" | "includeMetadata" => &["true", "maybe"],
        "metadata" => &["%7B%22tag%22%3A%22ui%22%7D", "%5B1%5D", "%7B"],
        "after" => &["0", "-1"],
        other => panic!("no values for query parameter {other}"),
    };
    values.iter().map(|v| format!("{name}={v}")).collect()
}

fn header_value(name: &str) -> (&'static str, Vec<&'static str>) {
    match name {
        "If-Revision-Match" => ("1", vec!["x", "-1"]),
        // CURRENT: the namespace's ETag, read just before the call.
        "If-Match" => ("CURRENT", vec!["*", "W/\"1\"", "\"99999\""]),
        "X-Thesara-App-Id" => ("app", vec![" "]),
        "Last-Event-ID" => ("0", vec!["x"]),
        other => panic!("no values for header {other}"),
    }
}

/// The calls of one operation: the documented example, then one change at a time.
fn calls(
    doc: &Value,
    path: &str,
    method: &str,
    op: &Value,
    creds: &BTreeMap<&str, String>,
    tenant: &str,
    install: &str,
) -> Vec<Call> {
    let params: Vec<&Value> = doc["paths"][path]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(op["parameters"].as_array().into_iter().flatten())
        .collect();
    let of = |place: &str| -> Vec<&Value> {
        params
            .iter()
            .copied()
            .filter(|p| p["in"] == place)
            .collect()
    };
    let path_params: Vec<(String, Vec<&str>)> = of("path")
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_owned();
            let values = path_values(&name, path, tenant, install);
            (name, values)
        })
        .collect();
    let build_path = |choice: &[usize], query: Option<&str>| {
        let mut out = path.to_owned();
        for ((name, values), i) in path_params.iter().zip(choice) {
            out = out.replace(&format!("{{{name}}}"), values[*i]);
        }
        let mut query: Vec<String> = query.map(str::to_owned).into_iter().collect();
        for q in of("query") {
            if q["required"] == true || q["name"] == "ns" {
                let name = q["name"].as_str().unwrap();
                if !query.iter().any(|s| s.starts_with(&format!("{name}="))) {
                    query.push(query_values(name)[0].clone());
                }
            }
        }
        if !query.is_empty() {
            out = format!("{out}?{}", query.join("&"));
        }
        out
    };
    let scheme = op["security"][0]
        .as_object()
        .and_then(|o| o.keys().next().cloned());
    let auth = |valid: bool| -> Vec<(String, String)> {
        match scheme.as_deref() {
            None => vec![],
            Some("runnerAuth") => vec![(
                "x-runner-auth".into(),
                if valid {
                    creds["runner"].clone()
                } else {
                    "wrong".into()
                },
            )],
            Some(s) => vec![(
                "authorization".into(),
                if valid {
                    format!("Bearer {}", creds[s])
                } else {
                    "Bearer not.a.token".into()
                },
            )],
        }
    };
    let headers: Vec<(String, &'static str, Vec<&'static str>)> = of("header")
        .iter()
        .map(|h| {
            let name = h["name"].as_str().unwrap();
            let (valid, invalid) = header_value(name);
            (name.to_owned(), valid, invalid)
        })
        .collect();
    let required_headers = |skip: Option<&str>| -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(name, _, _)| Some(name.as_str()) != skip)
            .filter(|(name, _, _)| {
                params
                    .iter()
                    .any(|p| p["name"] == name.as_str() && p["required"] == true)
            })
            .map(|(name, valid, _)| (name.to_lowercase(), (*valid).to_owned()))
            .collect()
    };
    let example = op["requestBody"]["content"]["application/json"]["example"].clone();
    let has_body = op.get("requestBody").is_some();
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let base = vec![0; path_params.len()];
    let call = |choice: &[usize],
                query: Option<&str>,
                headers: Vec<(String, String)>,
                body: Option<Value>,
                why: String| Call {
        method: method.clone(),
        path: build_path(choice, query),
        headers,
        body,
        why,
    };
    let body = has_body.then(|| example.clone());
    let mut out = vec![call(
        &base,
        None,
        [auth(true), required_headers(None)].concat(),
        body.clone(),
        "the example".into(),
    )];
    for (i, (name, values)) in path_params.iter().enumerate() {
        for (v, value) in values.iter().enumerate().skip(1) {
            let mut choice = base.clone();
            choice[i] = v;
            out.push(call(
                &choice,
                None,
                [auth(true), required_headers(None)].concat(),
                body.clone(),
                format!("{name} = {value}"),
            ));
        }
    }
    if scheme.is_some() {
        out.push(call(
            &base,
            None,
            required_headers(None),
            body.clone(),
            "no credentials".into(),
        ));
        out.push(call(
            &base,
            None,
            [auth(false), required_headers(None)].concat(),
            body.clone(),
            "wrong credentials".into(),
        ));
    }
    if has_body {
        let bodies = [
            (None, "no body"),
            (Some(json!("not json")), "a body that is not JSON"),
            (Some(json!({})), "an empty object"),
            (Some(json!([])), "an empty array"),
            (Some(json!({"unexpected": true})), "an unknown field"),
            (Some(json!(42)), "a number"),
        ];
        for (b, why) in bodies {
            out.push(call(
                &base,
                None,
                [auth(true), required_headers(None)].concat(),
                b,
                why.into(),
            ));
        }
    }
    for q in of("query") {
        let name = q["name"].as_str().unwrap();
        for value in query_values(name) {
            out.push(call(
                &base,
                Some(&value),
                [auth(true), required_headers(None)].concat(),
                body.clone(),
                format!("query {value}"),
            ));
        }
    }
    if !of("query").is_empty() {
        out.push(call(
            &base,
            Some("unknown=1"),
            [auth(true), required_headers(None)].concat(),
            body.clone(),
            "an unknown query parameter".into(),
        ));
    }
    for (name, valid, invalid) in &headers {
        let mut with = [auth(true), required_headers(Some(name))].concat();
        with.push((name.to_lowercase(), (*valid).to_owned()));
        out.push(call(
            &base,
            None,
            with,
            body.clone(),
            format!("{name}: {valid}"),
        ));
        out.push(call(
            &base,
            None,
            [auth(true), required_headers(Some(name))].concat(),
            body.clone(),
            format!("no {name}"),
        ));
        for bad in invalid {
            let mut with = [auth(true), required_headers(Some(name))].concat();
            with.push((name.to_lowercase(), (*bad).to_owned()));
            out.push(call(
                &base,
                None,
                with,
                body.clone(),
                format!("{name}: {bad}"),
            ));
        }
    }
    out
}

/// Checks one answer against the operation's documented responses; returns the problem.
fn conformance(doc: &Value, op: &Value, status: u16, body: &Value) -> Result<(), String> {
    if status >= 500 {
        return Err(format!("a {status}"));
    }
    let documented = &op["responses"][status.to_string()];
    if documented.is_null() {
        return Err(format!("status {status} is not documented"));
    }
    let Some(content) = documented["content"].as_object() else {
        return if body.is_null() {
            Ok(())
        } else {
            Err(format!("a body where none is documented: {body}"))
        };
    };
    let Some(json_schema) = content.get("application/json").map(|c| &c["schema"]) else {
        return Ok(());
    };
    let mut root = json_schema.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["components"] = doc["components"].clone();
    let validator = jsonschema::validator_for(&root).map_err(|e| format!("bad schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the body does not match: {}; body {body}",
            errors.join("; ")
        ))
    }
}

#[tokio::test]
async fn every_answer_conforms_to_the_openapi_document() {
    let s = TestServer::start().await;
    let t = s
        .tenant(json!([{"namespace": "settings", "access": ["read", "write"]}]))
        .await;
    let doc = s.send(Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(doc.status, 200);
    let doc = doc.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let creds: BTreeMap<&str, String> = [
        ("extensionToken", t.token.clone()),
        ("adminToken", "admin-secret".to_owned()),
        ("runner", "runner-secret".to_owned()),
    ]
    .into_iter()
    .collect();
    let tenant = t.tenant.to_string();
    let mut succeeded: BTreeMap<String, bool> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut sent = 0;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    // Twice: the first round creates what the second reads, replaces and deletes.
    for _round in 0..2 {
        // Writes first and deletions last (across all paths), so reads find what was written.
        let mut ops: Vec<(&String, &String, &Value)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .filter(|(m, _)| *m != "parameters")
                    .map(move |(m, op)| (path, m, op))
            })
            .collect();
        let rank = |m: &str| {
            ["put", "post", "patch", "get", "delete"]
                .iter()
                .position(|x| *x == m)
        };
        ops.sort_by_key(|(_, m, _)| rank(m));
        {
            for (path, method, op) in ops {
                let id = op["operationId"].as_str().unwrap().to_owned();
                succeeded.entry(id.clone()).or_insert(false);
                for call in calls(&doc, path, method, op, &creds, &tenant, &t.install) {
                    let mut call = call;
                    if let Some(h) = call.headers.iter_mut().find(|(_, v)| v == "CURRENT") {
                        let auth = format!("Bearer {}", t.token);
                        let snapshot = s
                            .send(
                                Method::GET,
                                "/api/storage?ns=settings",
                                &[("authorization", &auth)],
                                None,
                            )
                            .await;
                        h.1 = snapshot.headers["etag"].to_str().unwrap().to_owned();
                    }
                    let headers: Vec<(&str, &str)> = call
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    let streams = op["responses"]["200"]["content"]
                        .get("text/event-stream")
                        .is_some();
                    if streams {
                        // An endless event stream: its status and type are checked, and it is
                        // closed without reading on (an error answer is JSON, checked below).
                        let mut req = s.client.get(format!("{}{}", s.base, call.path));
                        for (name, value) in &headers {
                            req = req.header(*name, *value);
                        }
                        let res = req.send().await.unwrap();
                        if res.status().is_success() {
                            sent += 1;
                            *statuses.entry(res.status().as_u16()).or_insert(0) += 1;
                            succeeded.insert(id.clone(), true);
                            let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
                            if !kind.starts_with("text/event-stream") {
                                problems.push(format!("{id} ({}): answered {kind}", call.why));
                            }
                            continue;
                        }
                    }
                    let answer = s
                        .send(call.method.clone(), &call.path, &headers, call.body.clone())
                        .await;
                    sent += 1;
                    let status = answer.status.as_u16();
                    *statuses.entry(status).or_insert(0) += 1;
                    if (200..300).contains(&status) {
                        succeeded.insert(id.clone(), true);
                    }
                    if let Err(problem) = conformance(&doc, op, status, &answer.body) {
                        problems.push(format!(
                            "{id} ({} {}, {}): {problem}",
                            call.method, call.path, call.why
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {sent} answers do not conform:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let never: Vec<&String> = succeeded
        .iter()
        .filter(|(_, ok)| !**ok)
        .map(|(id, _)| id)
        .collect();
    assert!(
        never.is_empty(),
        "operations that never succeeded: {never:?}"
    );
    assert!(sent > 200, "only {sent} requests");
    eprintln!("openapi: {sent} answers conform; by status: {statuses:?}");
    for status in [200, 201, 204, 400, 401, 403, 404, 409, 412] {
        assert!(
            statuses.contains_key(&status),
            "no {status} was exercised: {statuses:?}"
        );
    }
}

#[test]
fn the_check_itself_refuses_what_does_not_conform() {
    let doc = alga_storage_server::openapi::document();
    let put = &doc["paths"]["/api/ext-storage/{ns}/{key}"]["put"];
    let good = json!({"namespace": "settings", "key": "a", "revision": 1, "ttlExpiresAt": null,
                      "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"});
    assert_eq!(conformance(&doc, put, 200, &good), Ok(()));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("revision");
    assert!(conformance(&doc, put, 200, &missing).is_err());
    let mut extra = good.clone();
    extra["surprise"] = json!(1);
    assert!(conformance(&doc, put, 200, &extra).is_err());
    let error = json!({"error": {"code": "NOT_A_CODE", "message": "m"}});
    assert!(conformance(&doc, put, 409, &error).is_err());
    assert!(
        conformance(
            &doc,
            put,
            412,
            &json!({"error": {"code": "PRECONDITION_FAILED", "message": "m"}})
        )
        .is_err(),
        "412 is not documented for put"
    );
    assert!(conformance(&doc, put, 500, &Value::Null).is_err());
}
