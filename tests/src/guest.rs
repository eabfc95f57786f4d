//! The guest side under test: handler components built for `wasm32-wasip2` from this workspace
//! and run in the reference runner host ([`alga_storage_runner`]) against a [`TestServer`].

use crate::{Answer, TestServer};
use alga_storage_runner::{ExecutionContext, Handler, Runner, RunnerConfig};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The example handler (`examples/counter-handler`).
pub const COUNTER: &str = "alga-storage-example-counter";
/// The example handler on `wasi:keyvalue` alone (`examples/keyvalue-handler`).
pub const KEYVALUE: &str = "alga-storage-example-keyvalue";
/// The conformance handler (`tests/guest-conformance`).
pub const CONFORMANCE: &str = "alga-storage-guest-conformance";

/// Where the components are built: the workspace's one folder for WebAssembly builds.
pub fn target_dir() -> PathBuf {
    crate::wasm_target_dir()
}

/// Builds every handler component of the workspace once (profile `guest`, `wasm32-wasip2`) and answers
/// the path of `package`'s component. Panics with cargo's output if the build fails.
pub fn component(package: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = crate::as_from_a_shell(&mut Command::new(cargo))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args(["build", "--profile", "guest", "--target", "wasm32-wasip2"])
            .args(["-p", COUNTER, "-p", CONFORMANCE, "-p", KEYVALUE])
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(why) = built {
        panic!("building the handler components failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{why}");
    }
    target_dir()
        .join("wasm32-wasip2/guest")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// A runner host pointed at `server`'s runner endpoint.
pub fn runner(server: &TestServer) -> Runner {
    runner_at(&format!("{}/api", server.base), &server.runner_token)
}

/// A runner host pointed at any base URL.
pub fn runner_at(base_url: &str, token: &str) -> Runner {
    Runner::new(RunnerConfig::new(base_url, token)).expect("runner")
}

/// Loads a workspace handler into `runner`.
pub fn load(runner: &Runner, package: &str) -> Handler {
    runner.load(component(package)).expect("load component")
}

/// The execution context of an install.
pub fn context(install: &str) -> ExecutionContext {
    ExecutionContext::new("tenant", "ext-test", Some(install))
}

/// Sends one envelope through the conformance handler, i.e. through the guest SDK and the host,
/// and answers what an HTTP surface would have.
pub async fn conformance_call(handler: &Handler, install: &str, envelope: &Value) -> Answer {
    let output = handler
        .invoke(&context(install), &envelope.to_string())
        .await
        .expect("no trap")
        .expect("the conformance handler always answers");
    let answer: Value = serde_json::from_str(&output).expect("JSON answer");
    Answer {
        status: reqwest::StatusCode::from_u16(answer["status"].as_u64().unwrap() as u16).unwrap(),
        headers: Default::default(),
        body: answer["body"].clone(),
    }
}
