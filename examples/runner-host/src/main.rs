//! `alga-storage-runner`: run an extension handler component once against a storage service.
//!
//! ```text
//! STORAGE_API_BASE_URL=http://127.0.0.1:8787/api RUNNER_STORAGE_API_TOKEN=… \
//!   alga-storage-runner counter.wasm --tenant T --install dev-install --input '{"op":"increment","counter":"visits"}'
//! ```

use alga_storage_runner::{ExecutionContext, Runner, RunnerConfig};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run an Alga extension handler component (wasm32-wasip2) once.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The handler component (.wasm).
    component: PathBuf,
    /// Base URL of the storage service (e.g. http://127.0.0.1:8787/api).
    #[arg(long, env = "STORAGE_API_BASE_URL")]
    base_url: String,
    /// The runner's shared secret, sent as x-runner-auth.
    #[arg(long, env = "RUNNER_STORAGE_API_TOKEN", hide_env_values = true)]
    token: String,
    /// Tenant id of the execution context.
    #[arg(long, default_value = "")]
    tenant: String,
    /// Extension id of the execution context.
    #[arg(long, default_value = "")]
    extension: String,
    /// Install id of the execution context; storage calls fail without one.
    #[arg(long)]
    install: Option<String>,
    /// The handler's input (JSON text).
    #[arg(long, default_value = "{}")]
    input: String,
    /// Print the storage_host_* metrics to stderr afterwards.
    #[arg(long)]
    metrics: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runner = match Runner::new(RunnerConfig::new(&args.base_url, &args.token)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let handler = runner.load(&args.component)?;
        let ctx = ExecutionContext::new(&args.tenant, &args.extension, args.install.as_deref());
        handler.invoke(&ctx, &args.input).await
    }
    .await;
    if args.metrics {
        eprint!("{}", runner.metrics_text());
    }
    match result {
        Ok(Ok(output)) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Ok(Err(message)) => {
            eprintln!("handler error: {message}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
