//! `alga-storage-server`: reads its configuration from the environment and serves; `export`
//! and `import` move a store's contents as JSON Lines.

use alga_storage_core::Namespace;
use alga_storage_server::store::transfer::{ExportFilter, OnConflict};
use alga_storage_server::{app_state, cli, open_store, provision_dev, router, serve, Config};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// The reference server of Alga extension storage. Configured by the environment
/// (`DATABASE_URL`, default: the embedded SQLite file `.alga-storage/storage.db`); see docs/server.md.
#[derive(Debug, Parser)]
#[command(name = "alga-storage-server", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the APIs (what runs without a subcommand).
    Serve,
    /// Writes one consistent snapshot of DATABASE_URL as JSON Lines: installs, grants, schemas,
    /// quotas and live records with revisions, timestamps and TTLs.
    Export {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<uuid::Uuid>,
        /// Only this namespace (of each tenant exported); installs and quotas are left out.
        #[arg(long, value_parser = namespace)]
        namespace: Option<Namespace>,
        /// The file to write (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Reads an export into DATABASE_URL in batched transactions.
    Import {
        /// The file to read (default: stdin).
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// What to do with a row that exists already.
        #[arg(long, value_enum, default_value_t = OnConflict::Fail)]
        on_conflict: OnConflict,
    },
}

fn namespace(text: &str) -> Result<Namespace, String> {
    Namespace::new(text).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve));
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(if serving { "info" } else { "warn" }));
    // Export writes its lines to stdout: logs go to stderr there.
    if serving {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let result = match cli.command {
        None | Some(Command::Serve) => run().await,
        Some(Command::Export {
            tenant,
            namespace,
            out,
        }) => match store().await {
            Ok(store) => cli::export(store, ExportFilter { tenant, namespace }, out).await,
            Err(e) => Err(e),
        },
        Some(Command::Import { input, on_conflict }) => match store().await {
            Ok(store) => cli::import(store, input, on_conflict).await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        eprintln!("alga-storage-server: {e}");
        std::process::exit(1);
    }
}

/// The store `DATABASE_URL` names, migrated.
async fn store(
) -> Result<std::sync::Arc<dyn alga_storage_server::store::Store>, Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    Ok(open_store(&config)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let store = open_store(&config)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let state = app_state(&config, store);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot bind {}: {e}", config.bind))?;
    let addr = listener.local_addr()?;
    if config.dev_mode {
        let dev = provision_dev(&state).await?;
        print_dev_banner(&config, addr, &dev);
    }
    tracing::info!(%addr, backend = state.store.backend(), "listening");
    serve(
        listener,
        router(state, &config.cors_origins),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

fn print_dev_banner(
    config: &Config,
    addr: std::net::SocketAddr,
    dev: &alga_storage_server::DevInstall,
) {
    let base = format!("http://{addr}");
    println!(
        "\nalga-storage-server is running in DEV MODE on {base} (no secrets configured; they were generated).\n\
         \n  tenant        {tenant}\n  install       {install} (namespace \"dev\": read, write)\n\
         \nIn another terminal, paste this line: a browser token for the dev install (valid 24 h),\
         \nthe admin token and the runner token:\n\
         \n  export TOKEN={token} ADMIN_TOKEN={admin} RUNNER_TOKEN={runner}\n\
         \nTry it:\n\n  curl -s -X PUT {base}/api/ext-storage/dev/hello -H \"Authorization: Bearer $TOKEN\" \
         -H 'content-type: application/json' -d '{{\"value\":{{\"hello\":\"world\"}}}}'\
         \n  curl -s {base}/api/ext-storage/dev/hello -H \"Authorization: Bearer $TOKEN\"\n",
        tenant = dev.tenant,
        install = dev.install,
        admin = config.admin_token.expose(),
        runner = config.runner_token.expose(),
        token = dev.token,
    );
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
