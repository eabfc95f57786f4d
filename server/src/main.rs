//! `alga-storage-server`: reads its configuration from the environment and serves.

use alga_storage_server::{app_state, open_store, provision_dev, router, serve, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = run().await {
        eprintln!("alga-storage-server: {e}");
        std::process::exit(1);
    }
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
