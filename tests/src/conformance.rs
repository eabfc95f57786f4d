//! The conformance corpus (`tests/conformance/*.json`) and its runner.
//!
//! Each file holds cases; a case is a sequence of steps, each a request in the runner's envelope
//! form (`{"operation": …, …fields}`) with the expected status, error code and body fields. The
//! same cases run on every surface: the runner endpoint sends the envelope as is; browser REST
//! maps it to its route, headers and query.
//!
//! Body expectations are matched as a subset: objects need the listed fields, arrays need the
//! same length and matching elements; `"$absent"` requires a field to be missing, `"$any"` only
//! present, `"$some"` present and not null. Request strings `"$name"` (in requests and expectations) are replaced by values saved
//! from earlier answers (`"save": {"name": "nextCursor"}`), and `{"$repeat": ["a", 100]}` expands to a long string.

use crate::{seg, Answer, Tenant, TestServer};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// One case of the corpus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// Grants of the case's install (default: read and write on `conf`).
    #[serde(default)]
    pub grants: Option<Value>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One request and what must come back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The request, in envelope form.
    pub request: Value,
    /// The expected answer.
    pub expect: Expect,
    /// Values to remember from the answer body: variable name → top-level field.
    #[serde(default)]
    pub save: HashMap<String, String>,
}

/// An expected answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// HTTP status.
    pub status: u16,
    /// Error code, for an error answer.
    #[serde(default)]
    pub code: Option<String>,
    /// Fields of the body (subset match).
    #[serde(default)]
    pub body: Option<Value>,
}

/// The surfaces a case can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Browser REST with a Bearer token.
    Rest,
    /// The runner's internal endpoint.
    Runner,
}

/// Every case of every corpus file, with its file name.
pub fn load() -> Vec<(String, Case)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/conformance exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("case"))
        })
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed: Vec<Case> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        cases.extend(parsed.into_iter().map(|c| (name.clone(), c)));
    }
    assert!(!cases.is_empty(), "the conformance corpus is empty");
    cases
}

/// Runs one case on a surface for a fresh tenant; returns a description of the first mismatch.
pub async fn run(server: &TestServer, surface: Surface, case: &Case) -> Result<(), String> {
    run_via(
        server,
        case,
        &format!("{surface:?}"),
        |tenant, request| async move {
            match surface {
                Surface::Runner => server.runner(&tenant.install, request).await,
                Surface::Rest => rest_call(server, &tenant, &request).await,
            }
        },
    )
    .await
}

/// Runs every case of the corpus on a built-in surface; panics listing every failing case.
pub async fn assert_corpus(server: &TestServer, surface: Surface) {
    let mut failures = Vec::new();
    let cases = load();
    for (file, case) in &cases {
        if let Err(why) = run(server, surface, case).await {
            failures.push(format!("{file} / {}: {why}", case.name));
        }
    }
    report(&failures, cases.len());
}

/// Runs every case of the corpus through `call` (see [`run_via`]); panics listing every
/// failing case.
pub async fn assert_corpus_via<F, Fut>(server: &TestServer, surface: &str, call: F)
where
    F: Fn(Tenant, Value) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let mut failures = Vec::new();
    let cases = load();
    for (file, case) in &cases {
        if let Err(why) = run_via(server, case, surface, &call).await {
            failures.push(format!("{file} / {}: {why}", case.name));
        }
    }
    report(&failures, cases.len());
}

fn report(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs one case through any surface: `call` sends one envelope for a tenant and answers
/// what came back (the guest SDK surface lives in [`crate::guest`]).
pub async fn run_via<F, Fut>(
    server: &TestServer,
    case: &Case,
    surface: &str,
    call: F,
) -> Result<(), String>
where
    F: Fn(Tenant, Value) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let grants = case
        .grants
        .clone()
        .unwrap_or_else(|| json!([{"namespace": "conf", "access": ["read", "write"]}]));
    let tenant = server.tenant(grants).await;
    let mut vars: HashMap<String, Value> = HashMap::new();
    for (i, step) in case.steps.iter().enumerate() {
        let request = expand(&step.request, &vars);
        let answer = call(tenant.clone(), request.clone()).await;
        let expect = Expect {
            body: step.expect.body.as_ref().map(|b| expand(b, &vars)),
            ..step.expect.clone()
        };
        check(&expect, &answer).map_err(|why| {
            format!(
                "step {i} ({}) on {surface}: {why}\n  request: {request}\n  answer: {} {}",
                request["operation"], answer.status, answer.body
            )
        })?;
        for (var, field) in &step.save {
            vars.insert(var.clone(), answer.body[field].clone());
        }
    }
    Ok(())
}

fn expand(value: &Value, vars: &HashMap<String, Value>) -> Value {
    match value {
        Value::String(s) if s.starts_with('$') && vars.contains_key(&s[1..]) => {
            vars[&s[1..]].clone()
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("$repeat") => {
            let spec = &map["$repeat"];
            let unit = spec[0].as_str().expect("$repeat unit");
            Value::String(unit.repeat(spec[1].as_u64().expect("$repeat count") as usize))
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), expand(v, vars)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| expand(v, vars)).collect()),
        other => other.clone(),
    }
}

fn check(expect: &Expect, answer: &Answer) -> Result<(), String> {
    if answer.status.as_u16() != expect.status {
        return Err(format!(
            "status {} != expected {}",
            answer.status.as_u16(),
            expect.status
        ));
    }
    if let Some(code) = &expect.code {
        if answer.code() != code {
            return Err(format!("code {:?} != expected {code:?}", answer.code()));
        }
    }
    if let Some(body) = &expect.body {
        subset(body, &answer.body, "body")?;
    }
    Ok(())
}

/// Checks that `actual` matches the expectation `expected` (see the module docs).
pub fn subset(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(s), _) if s == "$any" => Ok(()),
        (Value::String(s), Value::Null) if s == "$some" => Err(format!("{at} is null")),
        (Value::String(s), _) if s == "$some" => Ok(()),
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                match (v, a.get(k)) {
                    (Value::String(s), None) if s == "$absent" => {}
                    (Value::String(s), Some(_)) if s == "$absent" => {
                        return Err(format!("{at}.{k} should be absent"))
                    }
                    (_, None) => return Err(format!("{at}.{k} is missing")),
                    (v, Some(actual)) => subset(v, actual, &format!("{at}.{k}"))?,
                }
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{at} has {} items, expected {}", a.len(), e.len()));
            }
            e.iter()
                .zip(a)
                .enumerate()
                .try_for_each(|(i, (e, a))| subset(e, a, &format!("{at}[{i}]")))
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{at} is {a}, expected {e}")),
    }
}

fn take(map: &mut Map<String, Value>, field: &str) -> Value {
    map.remove(field).unwrap_or(Value::Null)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sends an envelope through browser REST: the route, headers and query that mean the same.
pub async fn rest_call(server: &TestServer, tenant: &Tenant, envelope: &Value) -> Answer {
    let mut fields = envelope.as_object().cloned().unwrap_or_default();
    let op = text(&take(&mut fields, "operation"));
    let ns = seg(&text(&take(&mut fields, "namespace")));
    let revision_header = |fields: &mut Map<String, Value>| match take(fields, "ifRevision") {
        Value::Null => None,
        v => Some(text(&v)),
    };
    match op.as_str() {
        "put" => {
            let key = seg(&text(&take(&mut fields, "key")));
            server
                .rest(
                    tenant,
                    Method::PUT,
                    &format!("/{ns}/{key}"),
                    &[],
                    Some(Value::Object(fields)),
                )
                .await
        }
        "get" | "delete" => {
            let key = seg(&text(&take(&mut fields, "key")));
            let method = if op == "get" {
                Method::GET
            } else {
                Method::DELETE
            };
            let guard = revision_header(&mut fields);
            let headers: Vec<(&str, &str)> = guard
                .iter()
                .map(|g| ("if-revision-match", g.as_str()))
                .collect();
            server
                .rest(tenant, method, &format!("/{ns}/{key}"), &headers, None)
                .await
        }
        "list" => {
            let query: String = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", seg(&text(v))))
                .collect::<Vec<_>>()
                .join("&");
            server
                .rest(tenant, Method::GET, &format!("/{ns}?{query}"), &[], None)
                .await
        }
        "bulkPut" => {
            server
                .rest(
                    tenant,
                    Method::POST,
                    &format!("/{ns}"),
                    &[],
                    Some(Value::Object(fields)),
                )
                .await
        }
        other => panic!("the corpus uses an unknown operation {other:?}"),
    }
}
