//! The `ferry` binary: reads the configuration, sets up logging, and serves. (The
//! benchmarks and the export generator are `ferry-bench`, a crate of their own.)

use clap::Parser;
use server::config::{Config, LogFormat};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match config.log_format {
        LogFormat::Json => registry.with(fmt::layer().json()).init(),
        LogFormat::Text => registry.with(fmt::layer()).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `serve` (the command) and no command both serve.
    let config = Config::parse();
    init_tracing(&config);
    tracing::info!(config = ?config, "starting Ferry {}", env!("CARGO_PKG_VERSION"));
    let state = server::build_state(&config).await?;
    server::announce_setup(&state).await?;
    server::resume_uploads(&state).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!("Ferry is listening on {}", config.public_url());
    server::serve(state, listener, server::shutdown_signal()).await?;
    tracing::info!("Ferry stopped");
    Ok(())
}
