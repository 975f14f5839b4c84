//! `ferry bench-ingest`: the reading benchmark. Each export goes the way an upload
//! goes — sealed into the data folder, then unsealed, detected, read, normalized,
//! sealed record by record and saved in batches — into a fresh SQLite database in a
//! temporary folder. Prints records/s and the process's peak resident memory; with
//! `--assess`, also the assessment report's time, rate and peak memory.

use chrono::Utc;
use domain::{
    assess::AssessOptions,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::{ProjectId, UploadId},
    projects::{Project, SourceKind},
    service::{Ferry, Policy},
    uploads::NewUpload,
};
use server::{
    assessment::Assessments,
    ingest::{Ingest, ReadOptions},
    keyring::Keyring,
    security::{Argon2Hasher, OsSecrets, SystemClock, random_bytes},
    store,
    vault::Vault,
};
use sha2::{Digest, Sha256};
use std::{
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{Arc, atomic::AtomicU64},
    time::Instant,
};

/// What one file's reading measured.
#[derive(Debug)]
pub struct Measure {
    pub file: PathBuf,
    pub bytes: u64,
    pub records: u64,
    pub errors: u64,
    pub seal_seconds: f64,
    pub read_seconds: f64,
}

impl Measure {
    pub fn records_per_second(&self) -> f64 {
        (self.records + self.errors) as f64 / self.read_seconds.max(1e-9)
    }
}

/// The peak resident set size of this process so far, in bytes (Linux), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// A size line of `/proc/self/status` (`VmHWM:`, `VmRSS:`), in bytes.
fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Starts measuring the peak resident set size afresh (Linux: writing 5 to
/// `/proc/self/clear_refs` resets `VmHWM`), so one phase's peak is its own.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub(crate) fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |b| {
        format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

/// Computes the assessment of `project` the way the server does, and prints its time,
/// rate and peak memory (measured from its start).
async fn assess(
    store: &Arc<dyn domain::ports::Store>,
    keys: &Keyring,
    project: ProjectId,
    records: u64,
) -> anyhow::Result<()> {
    reset_peak_rss();
    // The reading's page cache and freed memory the allocator keeps are still held.
    let before = status_bytes("VmRSS:");
    let assessments = Assessments::new(store.clone(), keys.clone(), Default::default());
    assessments.begin(project, records, "benchmark").await?;
    let started = Instant::now();
    let options = AssessOptions {
        phone_region: Some("US".into()),
    };
    let sealed = assessments
        .compute(project, options, Arc::new(AtomicU64::new(0)))
        .await?;
    store
        .finish_assessment(project, Ok(&sealed), Utc::now())
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{:<32} {:>10} {:>10} {:>8} {:>9} {:>12.2} {:>14.0}   peak RSS {} ({} held before it)",
        "  assessment",
        "",
        records,
        "",
        "",
        seconds,
        records as f64 / seconds.max(1e-9),
        mib(peak_rss_bytes()),
        mib(before)
    );
    Ok(())
}

/// A new database at `url` with its owner made: the store, the service (its workers
/// holding `vault`, reading uploads from `uploads`) and the owner's account.
pub async fn fresh(
    url: &str,
    vault: &Vault,
    uploads: &std::path::Path,
) -> anyhow::Result<(Arc<dyn domain::ports::Store>, Ferry, domain::ids::AccountId)> {
    let store = store::connect(url).await?;
    std::fs::create_dir_all(uploads)?;
    let workers = server::workers(
        &store,
        vault,
        uploads.to_path_buf(),
        Default::default(),
        &Default::default(),
    );
    let ferry = Ferry::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(OsSecrets),
        Arc::new(Argon2Hasher::new()?),
        Policy::default(),
        workers.ports(),
    );
    let token = ferry
        .issue_setup_token()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the database already has an owner: give an empty one"))?;
    let owner = ferry
        .complete_setup(
            &Default::default(),
            &token,
            "bench@example.com",
            "Benchmark",
            "benchmark passphrase",
        )
        .await?
        .account
        .id;
    Ok((store, ferry, owner))
}

/// Runs the benchmark over `files` and prints one line per file and the peak memory;
/// with `assess`, also computes each project's assessment report.
pub async fn run(files: &[PathBuf], with_assessment: bool) -> anyhow::Result<Vec<Measure>> {
    let dir = tempfile::Builder::new().prefix("ferry-bench-").tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let key: [u8; 32] = random_bytes();
    let uploads = dir.path().join("uploads");
    let (store, _, owner) = fresh(&url, &Vault::new(&key), &uploads).await?;
    let keys = Keyring::new(Vault::new(&key), store.clone(), uploads.clone());
    let ingest = Ingest::new(store.clone(), keys.clone(), uploads, Default::default());
    let mut measures = Vec::new();
    let mut read_peaks = Vec::new();
    println!(
        "{:<32} {:>10} {:>10} {:>8} {:>9} {:>12} {:>14}",
        "file", "MiB", "records", "errors", "seal s", "read s", "records/s"
    );
    for file in files {
        // Each file gets its own project, as a separate migration would.
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (project, measure) = import(
            &store,
            &ingest,
            owner,
            file,
            &format!("Benchmark {}", measures.len() + 1),
        )
        .await?;
        println!(
            "{:<32} {:>10.1} {:>10} {:>8} {:>9.2} {:>12.2} {:>14.0}",
            name,
            measure.bytes as f64 / (1024.0 * 1024.0),
            measure.records,
            measure.errors,
            measure.seal_seconds,
            measure.read_seconds,
            measure.records_per_second()
        );
        let records = measure.records;
        measures.push(measure);
        if with_assessment {
            // Its own peak: the reading's is printed at the end for all files.
            let reading_peak = peak_rss_bytes();
            assess(&store, &keys, project, records).await?;
            read_peaks.push(reading_peak);
        }
    }
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.len() as f64 / (1024.0 * 1024.0))
            .unwrap_or(0.0)
    };
    println!(
        "database: {:.0} MiB (write-ahead log {:.0} MiB)",
        size("bench.db"),
        size("bench.db-wal")
    );
    match read_peaks.first() {
        // With assessments the peaks were reset: the reading's is the one taken before.
        Some(peak) => println!("peak RSS while reading: {}", mib(*peak)),
        None => println!("peak RSS: {}", mib(peak_rss_bytes())),
    }
    Ok(measures)
}

/// Reads `file` into a new project named `name` the way an upload goes (sealed into
/// the data folder, then read); the project and what the reading measured.
pub async fn import(
    store: &Arc<dyn domain::ports::Store>,
    ingest: &Ingest,
    owner: domain::ids::AccountId,
    file: &Path,
    name: &str,
) -> anyhow::Result<(ProjectId, Measure)> {
    let project = ProjectId(uuid::Uuid::now_v7());
    let now = Utc::now();
    store
        .insert_project(
            &Project {
                id: project,
                name: name.into(),
                source_kind: SourceKind::Csv,
                description: String::new(),
                archived: false,
                created_at: now,
                updated_at: now,
                purged_at: None,
            },
            &NewAuditEntry::anonymous(
                None,
                now,
                AuditAction::ProjectCreated,
                ObjectKind::Project,
                project,
            ),
        )
        .await?;
    let id = UploadId(uuid::Uuid::now_v7());
    let started = Instant::now();
    let (bytes, sha256) = seal(ingest, &*ingest.vault(project).await?, id, file)?;
    let seal_seconds = started.elapsed().as_secs_f64();
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new = NewUpload {
        id,
        project_id: project,
        file_name: file_name.clone(),
        size_bytes: bytes,
        sha256,
        created_by: owner,
        created_at: Utc::now(),
    };
    let audit = NewAuditEntry::anonymous(
        None,
        Utc::now(),
        AuditAction::UploadStored,
        ObjectKind::Upload,
        id,
    );
    store.insert_upload(&new, &audit).await?;
    let started = Instant::now();
    let upload = ingest.parse(id, ReadOptions::default()).await?;
    let read_seconds = started.elapsed().as_secs_f64();
    if let Some(error) = &upload.error {
        anyhow::bail!("{file_name} could not be read: {error}");
    }
    Ok((
        project,
        Measure {
            file: file.to_path_buf(),
            bytes,
            records: upload.rows_ok,
            errors: upload.rows_failed,
            seal_seconds,
            read_seconds,
        },
    ))
}

/// Stores `file` sealed as upload `id`, the way the upload handler streams a body.
fn seal(
    ingest: &Ingest,
    vault: &Vault,
    id: UploadId,
    file: &Path,
) -> anyhow::Result<(u64, String)> {
    let mut input = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
    let output = std::fs::File::create(ingest.path(id))?;
    let mut writer = vault.writer(io::BufWriter::new(output))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
    writer.finish()?.flush()?;
    let sha = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((total, sha))
}
