//! The conformance corpus and its matcher, shared by every surface's test runner.
//!
//! Each file holds cases; a case is a sequence of steps, each a request in the runner's envelope
//! form (`{"operation": …, …fields}`) with the expected status, error code and body fields. The
//! same cases run on every surface: the runner endpoint sends the envelope as is; browser REST
//! maps it to its route, headers and query; the SDKs map it to their calls.
//!
//! Body expectations are matched as a subset: objects need the listed fields, arrays need the
//! same length and matching elements; `"$absent"` requires a field to be missing, `"$any"` only
//! present, `"$some"` present and not null. Request strings `"$name"` (in requests and
//! expectations) are replaced by values saved from earlier answers
//! (`"save": {"name": "nextCursor"}`), and `{"$repeat": ["a", 100]}` expands to a long string.
//!
//! The files are embedded, so the corpus also runs where there is no file system (WebAssembly in
//! a browser).

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;

/// The corpus files, embedded: (file name, text). A test checks that this is every
/// `tests/conformance/cases-*.json`.
pub const FILES: [(&str, &str); 6] = [
    (
        "cases-atomic.json",
        include_str!("../../conformance/cases-atomic.json"),
    ),
    (
        "cases-bulk.json",
        include_str!("../../conformance/cases-bulk.json"),
    ),
    (
        "cases-changes.json",
        include_str!("../../conformance/cases-changes.json"),
    ),
    (
        "cases-delete.json",
        include_str!("../../conformance/cases-delete.json"),
    ),
    (
        "cases-list.json",
        include_str!("../../conformance/cases-list.json"),
    ),
    (
        "cases-put-get.json",
        include_str!("../../conformance/cases-put-get.json"),
    ),
];

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

impl Case {
    /// The grants the case's install gets.
    pub fn grants(&self) -> Value {
        self.grants
            .clone()
            .unwrap_or_else(|| json!([{"namespace": "conf", "access": ["read", "write"]}]))
    }
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

/// Every case of every corpus file, with its file name.
pub fn cases() -> Vec<(String, Case)> {
    let mut cases = Vec::new();
    for (file, text) in FILES {
        let parsed: Vec<Case> =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
        cases.extend(parsed.into_iter().map(|c| (file.to_owned(), c)));
    }
    assert!(!cases.is_empty(), "the conformance corpus is empty");
    cases
}

/// Runs the steps of one case: `call` sends one envelope and answers `(status, body)`. Returns
/// a description of the first mismatch.
pub async fn run_steps<F, Fut>(case: &Case, surface: &str, mut call: F) -> Result<(), String>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = (u16, Value)>,
{
    let mut vars: HashMap<String, Value> = HashMap::new();
    for (i, step) in case.steps.iter().enumerate() {
        let request = expand(&step.request, &vars);
        let (status, body) = call(request.clone()).await;
        let expect = Expect {
            body: step.expect.body.as_ref().map(|b| expand(b, &vars)),
            ..step.expect.clone()
        };
        check(&expect, status, &body).map_err(|why| {
            format!(
                "step {i} ({}) on {surface}: {why}\n  request: {request}\n  answer: {status} {body}",
                request["operation"]
            )
        })?;
        for (var, field) in &step.save {
            vars.insert(var.clone(), body[field].clone());
        }
    }
    Ok(())
}

/// Replaces `"$name"` strings by saved values and expands `{"$repeat": [unit, n]}`.
pub fn expand(value: &Value, vars: &HashMap<String, Value>) -> Value {
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

/// Checks an answer against an expectation.
pub fn check(expect: &Expect, status: u16, body: &Value) -> Result<(), String> {
    if status != expect.status {
        return Err(format!("status {status} != expected {}", expect.status));
    }
    if let Some(code) = &expect.code {
        let actual = body["error"]["code"].as_str().unwrap_or("");
        if actual != code {
            return Err(format!("code {actual:?} != expected {code:?}"));
        }
    }
    if let Some(expected) = &expect.body {
        subset(expected, body, "body")?;
    }
    Ok(())
}

/// Checks that `actual` matches the expectation `expected` (see the crate docs).
///
/// ```
/// use serde_json::json;
/// use alga_storage_corpus::subset;
/// assert!(subset(&json!({"a": 1, "b": "$absent"}), &json!({"a": 1, "c": 2}), "body").is_ok());
/// assert!(subset(&json!({"a": "$some"}), &json!({"a": null}), "body").is_err());
/// ```
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("cases-") && n.ends_with(".json"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, embedded, "add the new corpus file to FILES");
    }

    #[test]
    fn every_case_parses_and_has_steps() {
        let cases = cases();
        assert!(cases.len() > 30);
        assert!(cases.iter().all(|(_, c)| !c.steps.is_empty()));
    }

    #[test]
    fn check_reports_status_code_and_body_mismatches() {
        let expect = Expect {
            status: 409,
            code: Some("REVISION_MISMATCH".into()),
            body: Some(json!({"error": {"details": {"currentRevision": 2}}})),
        };
        let body =
            json!({"error": {"code": "REVISION_MISMATCH", "details": {"currentRevision": 2}}});
        assert!(check(&expect, 409, &body).is_ok());
        assert!(check(&expect, 400, &body).unwrap_err().contains("status"));
        let other = json!({"error": {"code": "NOT_FOUND"}});
        assert!(check(&expect, 409, &other).unwrap_err().contains("code"));
        let wrong =
            json!({"error": {"code": "REVISION_MISMATCH", "details": {"currentRevision": 3}}});
        assert!(check(&expect, 409, &wrong)
            .unwrap_err()
            .contains("currentRevision"));
    }

    #[test]
    fn expand_substitutes_saved_values_and_repeats() {
        let vars = HashMap::from([("c".to_owned(), json!("abc"))]);
        assert_eq!(
            expand(&json!({"cursor": "$c", "k": {"$repeat": ["x", 3]}}), &vars),
            json!({"cursor": "abc", "k": "xxx"})
        );
    }
}
