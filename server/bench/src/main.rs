//! `ferry-bench`: writes synthetic exports and measures Ferry — reading exports, the
//! assessment, the SCIM client, the run engine end to end, the mapping engine, the
//! review queue, the password verification service and reconciliation.
//! Each command prints its figures; `scripts/bench.sh` runs them all.

use clap::{Parser, Subcommand};
use ferry_bench::gen_export::ExportFormat;
use std::{io::Write, path::PathBuf};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "ferry-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic export (for benchmarks and demos). Password hashes stand for
    /// the passwords `ferry-demo-0` … `ferry-demo-15`.
    GenExport {
        /// The export format to write.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// How many users.
        #[arg(long, default_value_t = 1000)]
        users: u64,
        /// The same seed writes the same people.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure reading exports: each file is stored sealed and read into a fresh
    /// SQLite database in a temporary folder, then records/s and peak memory are printed.
    BenchIngest {
        /// The export files to read, one after the other.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also compute each file's assessment report, and measure it.
        #[arg(long)]
        assess: bool,
    },
    /// Measure the SCIM client: push synthetic users into an in-process null target
    /// and, given the `scim2-server` executable, into fresh SCIM peers beside the
    /// peer's own ceiling.
    BenchScim {
        /// How many users each pass pushes.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// The `scim2-server` executable (see scripts/scim-peer.sh).
        #[arg(long)]
        peer: Option<PathBuf>,
    },
    /// Measure the run engine end to end: import synthetic users, save a mapping,
    /// write a run's table of records, then run it into an in-process null target and, given
    /// the `scim2-server` executable, into a fresh peer beside the peer's ceiling. On
    /// SQLite, and on PostgreSQL given an empty database's URL.
    BenchRun {
        /// How many users.
        #[arg(long, default_value_t = 100_000)]
        users: usize,
        /// The `scim2-server` executable (see scripts/scim-peer.sh).
        #[arg(long)]
        peer: Option<PathBuf>,
        /// An empty PostgreSQL database to measure on as well.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Measure support staff's queue: write a run's failures into it, then time its
    /// first page, filters, a search, a deep page and grouped views. On SQLite, and on
    /// PostgreSQL given an empty database's URL.
    BenchReview {
        /// How many failed users.
        #[arg(long, default_value_t = 1_000_000)]
        failed: usize,
        /// An empty PostgreSQL database to measure on as well.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Measure the password verification service: start, poll and status as WSO2's
    /// login script drives them, at 1, 16 and 64 logins at once, with salted SHA-256
    /// and bcrypt at cost 10. On SQLite, and on PostgreSQL given an empty database's URL.
    BenchPasswords {
        /// Logins with the cheap scheme at each level of concurrency.
        #[arg(long, default_value_t = 10_000)]
        logins: usize,
        /// An empty PostgreSQL database to measure on as well.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Measure a reconciliation: import synthetic users, move them by a real run into
    /// an in-process null target that keeps them, then read every one back and compare
    /// it. On SQLite, and on PostgreSQL given an empty database's URL.
    BenchReconcile {
        /// How many users.
        #[arg(long, default_value_t = 1_000_000)]
        users: usize,
        /// The SCIM peer's executable (`scim2-server`): also reconcile against it, and
        /// measure its own read ceiling.
        #[arg(long)]
        peer: Option<std::path::PathBuf>,
        /// How many users to move into the peer and read back.
        #[arg(long, default_value_t = 10_000)]
        peer_users: usize,
        /// An empty PostgreSQL database to measure on as well.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Measure the mapping engine: map synthetic normalized records on one thread.
    BenchMap {
        /// How many records.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Progress lines would drown the figures: only warnings are logged (RUST_LOG
    // overrides, e.g. server::runs=debug for each batch's timings).
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::GenExport {
            format,
            users,
            seed,
            out,
        } => {
            let mut sink: Box<dyn Write> = match out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            ferry_bench::gen_export::write(format, users, seed, &mut sink)
        }
        Command::BenchIngest { files, assess } => {
            ferry_bench::ingest::run(&files, assess).await?;
            Ok(())
        }
        Command::BenchScim { users, peer } => {
            ferry_bench::scim::run(users, peer).await?;
            Ok(())
        }
        Command::BenchRun {
            users,
            peer,
            postgres,
        } => {
            ferry_bench::run::run(users, peer, postgres).await?;
            Ok(())
        }
        Command::BenchReview { failed, postgres } => {
            ferry_bench::review::run(failed, postgres).await?;
            Ok(())
        }
        Command::BenchPasswords { logins, postgres } => {
            ferry_bench::passwords::run(logins, postgres).await?;
            Ok(())
        }
        Command::BenchReconcile {
            users,
            peer,
            peer_users,
            postgres,
        } => {
            ferry_bench::reconcile::run(users, peer, peer_users, postgres).await?;
            Ok(())
        }
        Command::BenchMap { records } => {
            println!(
                "{:<34} {:>9} {:>9} {:>9} {:>12}",
                "pass", "records", "failures", "seconds", "records/s"
            );
            ferry_bench::scim::run_map(records)?;
            Ok(())
        }
    }
}
