//! The conformance corpus ([`alga_storage_corpus`]) run against a [`TestServer`]: one fresh
//! tenant per case, on the built-in surfaces (runner endpoint, browser REST) or through any
//! other call (the guest SDK).

use crate::{seg, Answer, Tenant, TestServer};
pub use alga_storage_corpus::{cases as load, subset, Case, Expect, Step};
use reqwest::Method;
use serde_json::{Map, Value};

/// The surfaces a case can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Browser REST with a Bearer token.
    Rest,
    /// The runner's internal endpoint.
    Runner,
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
    let tenant = server.tenant(case.grants()).await;
    alga_storage_corpus::run_steps(case, surface, |request| {
        let answer = call(tenant.clone(), request);
        async move {
            let answer = answer.await;
            (answer.status.as_u16(), answer.body)
        }
    })
    .await
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
        "list" | "changes" => {
            let query: String = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", seg(&text(v))))
                .collect::<Vec<_>>()
                .join("&");
            let method = if op == "list" { "" } else { ":changes" };
            server
                .rest(
                    tenant,
                    Method::GET,
                    &format!("/{ns}{method}?{query}"),
                    &[],
                    None,
                )
                .await
        }
        "bulkPut" | "getMany" | "atomic" => {
            let path = match op.as_str() {
                "bulkPut" => format!("/{ns}"),
                method => format!("/{ns}:{method}"),
            };
            server
                .rest(
                    tenant,
                    Method::POST,
                    &path,
                    &[],
                    Some(Value::Object(fields)),
                )
                .await
        }
        other => panic!("the corpus uses an unknown operation {other:?}"),
    }
}
