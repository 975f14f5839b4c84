//! The `ferry` binary: reads the configuration, sets up logging, and serves (or runs
//! one of the tool commands: `gen-export`, `bench-ingest`, `bench-scim`).

use clap::Parser;
use server::config::{Command, Config, LogFormat};
use std::io::Write;
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
    let config = Config::parse();
    match &config.command {
        None | Some(Command::Serve) => {}
        Some(Command::GenExport {
            format,
            users,
            seed,
            out,
        }) => {
            let mut sink: Box<dyn Write> = match out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            return server::gen_export::write(*format, *users, *seed, &mut sink);
        }
        Some(Command::BenchIngest { files, assess }) => {
            // Progress lines would drown the figures: only warnings are logged.
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new("warn"))
                .with_writer(std::io::stderr)
                .init();
            server::bench::run(files, *assess).await?;
            return Ok(());
        }
        Some(Command::BenchScim { users, peer }) => {
            tracing_subscriber::fmt()
                .with_env_filter(EnvFilter::new("warn"))
                .with_writer(std::io::stderr)
                .init();
            server::bench_scim::run(*users, peer.clone()).await?;
            return Ok(());
        }
        Some(Command::BenchRun {
            users,
            peer,
            postgres,
        }) => {
            // RUST_LOG=server::runs=debug shows each batch's timings.
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
                )
                .with_writer(std::io::stderr)
                .init();
            server::bench_run::run(*users, peer.clone(), postgres.clone()).await?;
            return Ok(());
        }
        Some(Command::BenchMap { records }) => {
            println!(
                "{:<34} {:>9} {:>9} {:>9} {:>12}",
                "pass", "records", "failures", "seconds", "records/s"
            );
            server::bench_scim::run_map(*records)?;
            return Ok(());
        }
    }
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
