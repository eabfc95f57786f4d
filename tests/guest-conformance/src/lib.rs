//! A test handler component: it takes a request in the runner's envelope form, validates it in
//! the guest exactly as the server would ([`StorageRequest::from_json`]), sends it through the
//! guest SDK ([`alga_storage_guest::execute`]) and the runner host, and answers
//! `{"status": …, "body": …}` as an HTTP surface would, so the conformance corpus can run
//! through the guest SDK unchanged.

use alga_storage_guest::core::StorageRequest;
use alga_storage_guest::StorageError;
use serde_json::{json, Value};

#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "extension",
        path: "../../sdk-guest/wit",
        with: {
            "alga:storage/storage@0.1.0": alga_storage_guest::bindings::alga::storage::storage,
        },
    });
}

/// The status and body an HTTP surface would have answered.
pub fn answer(input: &[u8]) -> Value {
    let error = |e: StorageError| {
        let mut body = serde_json::to_value(&e).expect("errors serialize");
        body["kind"] = format!("{:?}", e.kind()).into();
        json!({ "status": e.status(), "body": body })
    };
    let request = match StorageRequest::from_json(input) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let status = if matches!(request, StorageRequest::Delete(_)) {
        204
    } else {
        200
    };
    match alga_storage_guest::execute(request) {
        Ok(body) => json!({ "status": status, "body": body }),
        Err(e) => error(e),
    }
}

struct Conformance;

impl bindings::Guest for Conformance {
    /// An envelope answers as [`answer`]; `{"repeat": n, "request": envelope}` sends the request
    /// `n` times and answers the last answer (the per-call overhead benchmark).
    fn handle(input: String) -> Result<String, String> {
        let parsed: Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        if let (Some(n), Some(request)) = (parsed["repeat"].as_u64(), parsed.get("request")) {
            let body = request.to_string();
            let mut last = Value::Null;
            for _ in 0..n {
                last = answer(body.as_bytes());
            }
            return Ok(last.to_string());
        }
        Ok(answer(input.as_bytes()).to_string())
    }
}

bindings::export!(Conformance with_types_in bindings);
