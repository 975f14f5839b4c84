//! Reading a stored upload into records: unsealing the file, unpacking gzip or zip
//! (guarded against decompression bombs), detecting the format, transcoding non-UTF-8
//! text, reading record by record, sealing each record, and saving batches with
//! progress. Runs on the blocking pool; the async store is reached through the
//! runtime handle. Reading again after a crash is safe: records are upserted by source
//! id and the upload's errors are cleared when reading starts.

use crate::{keyring::Keyring, progress::Work, records, vault::Vault};
use chrono::Utc;
use domain::{
    DomainError,
    ids::{ProjectId, UploadId},
    import::{
        Location, NormalizedUser, RecordError,
        csv_reader::CsvUsers,
        detect::{self, Compression, Detection, Format, SAMPLE_BYTES, Source, TextEncoding},
        json_stream::JsonLayout,
        json_users::{self, JsonProfile},
        ldif::{LdifItem, LdifReader, Memberships},
    },
    passwords::FirebaseParams,
    ports::Store,
    uploads::{LiveProgress, ParseProgress, SealedRecord, StoredError, Upload, UploadStatus},
};
use std::{
    collections::HashSet,
    fs::File,
    hash::{BuildHasher, RandomState},
    io::{self, BufRead, BufReader, Read},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};
use tokio::sync::broadcast;

/// The kind under which a project's Firebase hash parameters are kept.
pub const FIREBASE: &str = "firebase";

fn secret_context(project: ProjectId, kind: &str) -> String {
    format!("secret:{project}:{kind}")
}

/// Records saved per transaction: large enough that the index pages a batch touches
/// are written once for many records, small enough to keep two batches in memory (the
/// one being filled, and the one being saved, which frees its records as they land).
pub const BATCH: usize = 50_000;
/// An archive may expand to at most this many times its stored size (and at least
/// 64 MiB), which real exports never approach and bombs always pass.
pub const MAX_EXPANSION: u64 = 200;

/// Reads uploads. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    store: Arc<dyn Store>,
    keys: Keyring,
    dir: PathBuf,
    /// Announces each upload whose reading ended (project, upload).
    settled: broadcast::Sender<(ProjectId, UploadId)>,
    background: crate::background::Supervisor,
}

/// Counters a read updates as it goes and the progress stream reads.
#[derive(Default)]
struct Counters {
    bytes_read: Arc<AtomicU64>,
    rows_ok: AtomicU64,
    rows_failed: AtomicU64,
}

struct Live {
    project: ProjectId,
    size_bytes: u64,
    started: Instant,
    counters: Arc<Counters>,
}

/// Takes an upload out of the progress registry when its reading ends, however it
/// ends, and says so to whoever listens.
struct Tracked {
    ingest: Ingest,
    project: ProjectId,
    id: UploadId,
    live: Arc<Live>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ingest
            .background
            .progress()
            .remove(Work::Upload(self.id), &self.live);
        // Nobody listening is fine.
        let _ = self.ingest.settled.send((self.project, self.id));
    }
}

/// What the person uploading chose, overriding detection.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub format: Option<Detection>,
    pub firebase: Option<FirebaseParams>,
}

impl Ingest {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Keyring,
        dir: PathBuf,
        background: crate::background::Supervisor,
    ) -> Self {
        Self {
            store,
            keys,
            dir,
            settled: broadcast::channel(64).0,
            background,
        }
    }

    /// The progress of every upload of `project` being read now.
    pub fn live(&self, project: ProjectId) -> Vec<LiveProgress> {
        let live = self
            .background
            .progress()
            .all::<Live>(|work| matches!(work, Work::Upload(_)));
        let mut out: Vec<LiveProgress> = live
            .iter()
            .filter(|(_, l)| l.project == project)
            .filter_map(|(work, l)| match work {
                Work::Upload(id) => Some((*id, l)),
                _ => None,
            })
            .map(|(id, l)| LiveProgress {
                upload_id: id,
                bytes_read: l.counters.bytes_read.load(Ordering::Relaxed),
                size_bytes: l.size_bytes,
                rows_ok: l.counters.rows_ok.load(Ordering::Relaxed),
                rows_failed: l.counters.rows_failed.load(Ordering::Relaxed),
                seconds: l.started.elapsed().as_secs_f64(),
            })
            .collect();
        out.sort_by_key(|p| p.upload_id.0);
        out
    }

    /// Announcements of uploads whose reading ended: (project, upload).
    pub fn settled(&self) -> broadcast::Receiver<(ProjectId, UploadId)> {
        self.settled.subscribe()
    }

    /// Registers the upload as being read; `None` when it is already.
    fn track(&self, upload: &Upload) -> Option<(Tracked, Arc<Counters>)> {
        let counters = Arc::new(Counters::default());
        let (live, fresh) =
            self.background
                .progress()
                .get_or_insert(Work::Upload(upload.id), || Live {
                    project: upload.project_id,
                    size_bytes: upload.size_bytes,
                    started: Instant::now(),
                    counters: counters.clone(),
                });
        if !fresh {
            return None;
        }
        let tracked = Tracked {
            ingest: self.clone(),
            project: upload.project_id,
            id: upload.id,
            live,
        };
        Some((tracked, counters))
    }

    /// After an upload was removed: its sealed file goes, and the project's assessment
    /// is told (its users may have gone with it).
    pub fn forget(&self, project: ProjectId, id: UploadId) {
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            // The row is gone; a stray sealed file holds nothing anyone can reach.
            Err(err) => {
                tracing::warn!(upload = %id, error = %err, "cannot delete a removed upload's file")
            }
        }
        let _ = self.settled.send((project, id));
    }

    pub fn path(&self, id: UploadId) -> PathBuf {
        upload_path(&self.dir, id)
    }

    /// The vault a project's uploads are sealed under.
    pub async fn vault(&self, project: ProjectId) -> domain::Result<Arc<Vault>> {
        self.keys.vault(project).await
    }

    pub async fn uploads_with_status(&self, status: UploadStatus) -> domain::Result<Vec<Upload>> {
        self.store.uploads_with_status(status).await
    }

    /// Seals a Firebase project's hash parameters for keeping with the project.
    pub async fn seal_firebase(
        &self,
        project: ProjectId,
        params: &FirebaseParams,
    ) -> domain::Result<Vec<u8>> {
        let json = serde_json::to_vec(params)
            .map_err(|e| DomainError::Internal(format!("parameters encoding: {e}")))?;
        Ok(self
            .keys
            .vault(project)
            .await?
            .seal(&json, secret_context(project, FIREBASE).as_bytes()))
    }

    /// The Firebase parameters kept for the project, if any.
    async fn stored_firebase(&self, project: ProjectId) -> domain::Result<Option<FirebaseParams>> {
        let Some(sealed) = self.store.project_secret(project, FIREBASE).await? else {
            return Ok(None);
        };
        let json = self
            .keys
            .vault(project)
            .await?
            .open(&sealed, secret_context(project, FIREBASE).as_bytes())
            .map_err(|e| {
                DomainError::Internal(format!("the project's Firebase parameters: {e}"))
            })?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| DomainError::Internal(format!("the project's Firebase parameters: {e}")))
    }

    /// Reads the upload into records and settles it as parsed or failed. Without
    /// Firebase parameters in `options`, the ones kept for the project are used.
    /// Refused (409) while this instance is reading the same upload.
    pub async fn parse(&self, id: UploadId, options: ReadOptions) -> domain::Result<Upload> {
        let (upload, claim) = self.claim(id).await?;
        self.read_claimed(upload, claim, options).await
    }

    /// Starts reading the upload in the background and returns once it is claimed:
    /// a second start while it is being read is refused here (409), before anything
    /// of the first reading is reset.
    pub async fn start(&self, id: UploadId, options: ReadOptions) -> domain::Result<()> {
        let (upload, claim) = self.claim(id).await?;
        let (this, recover) = (self.clone(), self.clone());
        self.background.spawn(
            "upload read",
            id,
            async move {
                crate::background::reason(this.read_claimed(upload, claim, options).await.map(drop))
            },
            move |reason| async move { recover.fail_unfinished(id, &reason).await },
        );
        Ok(())
    }

    /// An upload whose reading stopped without settling it (a panic), before or while
    /// it was read, is marked failed with the reason, so that "Read again" can take it
    /// up.
    async fn fail_unfinished(&self, id: UploadId, reason: &str) {
        let still_reading = matches!(
            self.store.upload(id).await,
            Ok(Some(upload)) if matches!(upload.status, UploadStatus::Parsing | UploadStatus::Stored)
        );
        if !still_reading {
            return;
        }
        let failed = self
            .store
            .finish_parse(
                id,
                UploadStatus::Failed,
                Some(&format!("reading stopped: {reason}; read it again")),
                Utc::now(),
            )
            .await;
        if let Err(err) = failed {
            tracing::error!(upload = %id, error = %err, "the upload could not be marked failed");
        }
    }

    /// The upload, claimed for reading by this instance.
    async fn claim(&self, id: UploadId) -> domain::Result<(Upload, (Tracked, Arc<Counters>))> {
        let upload = self
            .store
            .upload(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("upload".into()))?;
        upload.status.advance(UploadStatus::Parsing)?;
        let claim = self.track(&upload).ok_or_else(|| {
            DomainError::Conflict("the upload is being read; wait until it finishes".into())
        })?;
        Ok((upload, claim))
    }

    async fn read_claimed(
        &self,
        upload: Upload,
        claim: (Tracked, Arc<Counters>),
        mut options: ReadOptions,
    ) -> domain::Result<Upload> {
        let id = upload.id;
        // Dropped at the end of this function, after the outcome is saved.
        let (_tracked, counters) = claim;
        let prepared = match self.stored_firebase(upload.project_id).await {
            Ok(stored) => self
                .keys
                .vault(upload.project_id)
                .await
                .map(|v| (stored, v)),
            Err(err) => Err(err),
        };
        let outcome = match prepared {
            Ok((stored, vault)) => {
                if options.firebase.is_none() {
                    options.firebase = stored;
                }
                let this = self.clone();
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    this.read_blocking(&handle, vault, upload, options, counters)
                })
                .await
                .unwrap_or_else(|e| {
                    Err(Failure::Store(DomainError::Internal(format!(
                        "reading task: {e}"
                    ))))
                })
            }
            Err(err) => Err(Failure::Store(err)),
        };
        let (status, error) = match outcome {
            Ok(()) => (UploadStatus::Parsed, None),
            Err(Failure::Unreadable(reason)) => (UploadStatus::Failed, Some(reason)),
            // The upload never stays "being read" for good: it fails with a reason a
            // reader can act on, and "Read again" can take it up.
            Err(Failure::Store(err)) => {
                tracing::error!(upload = %id, error = %err, "reading stopped on a storage error");
                let settled = self
                    .store
                    .finish_parse(
                        id,
                        UploadStatus::Failed,
                        Some("reading stopped on a storage error; read it again"),
                        Utc::now(),
                    )
                    .await;
                if let Err(also) = settled {
                    tracing::error!(upload = %id, error = %also, "the upload could not be marked failed");
                }
                return Err(err);
            }
        };
        tracing::info!(upload = %id, status = status.as_str(), "upload read");
        self.store
            .finish_parse(id, status, error.as_deref(), Utc::now())
            .await
    }

    fn read_blocking(
        &self,
        handle: &tokio::runtime::Handle,
        vault: Arc<Vault>,
        upload: Upload,
        options: ReadOptions,
        counters: Arc<Counters>,
    ) -> Result<(), Failure> {
        let bytes_read = counters.bytes_read.clone();
        let mut sink = Sink::new(
            self.store.clone(),
            vault.clone(),
            handle.clone(),
            upload.clone(),
            counters,
        )?;
        let read = self.each_file(
            &vault,
            &upload,
            Some(bytes_read),
            None,
            &mut |index, member, input| {
                sink.member = member.map(str::to_string);
                self.read_export(&mut sink, &upload, index, input, &options)
            },
        );
        // On failure the batch in flight lands before the upload is settled as failed.
        sink.finish(read.err())
    }

    /// Unseals the upload and hands each file in it to `f`, unpacked: the file itself,
    /// the content of a gzip file, or each file of a zip archive (numbered from 0).
    /// With `only`, stops after that file. `counter` counts the stored bytes read.
    fn each_file(
        &self,
        vault: &Vault,
        upload: &Upload,
        counter: Option<Arc<AtomicU64>>,
        only: Option<usize>,
        f: &mut EachFile<'_>,
    ) -> Result<(), Failure> {
        let file = File::open(self.path(upload.id))
            .map_err(|e| Failure::Unreadable(format!("the stored file is missing: {e}")))?;
        let counted = Counting {
            inner: file,
            count: counter.unwrap_or_default(),
        };
        let plain = vault
            .reader(BufReader::new(counted))
            .map_err(|e| Failure::Unreadable(e.to_string()))?;
        let limit = upload
            .size_bytes
            .saturating_mul(MAX_EXPANSION)
            .max(64 << 20);
        let mut input = BufReader::with_capacity(SAMPLE_BYTES, plain);
        let head = input.fill_buf().map_err(unreadable)?.to_vec();
        match detect::compression(&head) {
            Some(Compression::Gzip) => {
                let unpacked = Limited::new(flate2::read::MultiGzDecoder::new(input), limit);
                f(0, None, &mut BufReader::new(unpacked))
            }
            Some(Compression::Zip) => {
                let mut archive = input;
                let mut files = 0;
                loop {
                    let entry = zip::read::read_zipfile_from_stream(&mut archive).map_err(|e| {
                        Failure::Unreadable(format!("the zip archive is damaged: {e}"))
                    })?;
                    let Some(entry) = entry else { break };
                    if entry.is_dir() {
                        continue;
                    }
                    let index = files;
                    files += 1;
                    if only.is_some_and(|only| index < only) {
                        continue;
                    }
                    let name = entry.name().to_string();
                    f(
                        index,
                        Some(&name),
                        &mut BufReader::new(Limited::new(entry, limit)),
                    )?;
                    if only.is_some() {
                        break;
                    }
                }
                if files == 0 {
                    return Err(Failure::Unreadable("the zip archive holds no files".into()));
                }
                Ok(())
            }
            None => f(0, None, &mut input),
        }
    }

    /// The first of two passes over an LDIF file: the memberships its group entries
    /// list, which may come before or after the users they name.
    fn ldif_memberships(
        &self,
        vault: &Vault,
        upload: &Upload,
        index: usize,
        encoding: TextEncoding,
    ) -> Result<Memberships, Failure> {
        let mut memberships = Memberships::default();
        self.each_file(vault, upload, None, Some(index), &mut |_, _, input| {
            // Broken entries are reported by the second pass, which reads everything.
            for item in LdifReader::groups_only(decoded(input, encoding)) {
                if let Ok(LdifItem::Group { dn, name, members }) = item {
                    memberships.add_group(&dn, &name, &members);
                }
            }
            Ok(())
        })?;
        memberships.seal();
        Ok(memberships)
    }

    fn read_export(
        &self,
        sink: &mut Sink,
        upload: &Upload,
        index: usize,
        input: &mut dyn BufRead,
        options: &ReadOptions,
    ) -> Result<(), Failure> {
        // Readers report what they cannot read as bad records; a failure of the file
        // itself (an archive past its limit, a damaged seal) must fail the upload, so
        // it is caught here on its way up.
        let broken = Arc::new(std::sync::Mutex::new(None));
        let mut input = BufReader::new(Watched {
            inner: input,
            broken: broken.clone(),
        });
        let result = self.read_records(sink, upload, index, &mut input, options);
        let broken = broken.lock().ok().and_then(|mut b| b.take());
        match (broken, result) {
            (Some(reason), _) => Err(Failure::Unreadable(reason)),
            (None, result) => result,
        }
    }

    fn read_records<R: BufRead>(
        &self,
        sink: &mut Sink,
        upload: &Upload,
        index: usize,
        mut input: R,
        options: &ReadOptions,
    ) -> Result<(), Failure> {
        let sample = input.fill_buf().map_err(unreadable)?;
        let detection = match options.format {
            Some(chosen) => chosen,
            None => detect::detect(sample).map_err(Failure::Unreadable)?,
        };
        if sink.started.is_none() {
            let (format, source) = describe(&detection);
            sink.handle
                .block_on(
                    self.store
                        .start_parse(upload.id, format, source, Utc::now()),
                )
                .map_err(Failure::Store)?;
            sink.started = Some(detection);
        }
        let input = decoded(input, detection.encoding);
        match detection.format {
            Format::Csv { delimiter } => {
                let mut users = CsvUsers::new(input, delimiter)
                    .map_err(|e| Failure::Unreadable(e.to_string()))?;
                while let Some(item) = users.next() {
                    let line = users.line();
                    sink.take(item, || Location::Line { line })?;
                }
            }
            Format::Json(layout) => {
                let profile = match detection.source {
                    Source::Auth0 => JsonProfile::Auth0,
                    Source::Keycloak => JsonProfile::Keycloak,
                    Source::Firebase => JsonProfile::Firebase(options.firebase.clone().ok_or_else(|| {
                        Failure::Unreadable(
                            "a Firebase export needs the project's password hash parameters (signer key, salt separator, rounds, memory cost)".into(),
                        )
                    })?),
                    _ => JsonProfile::Generic,
                };
                let mut failure = None;
                let result = json_users::read_located(input, layout, &profile, &mut |item, at| {
                    let at = || at.cloned().unwrap_or(Location::Line { line: 0 });
                    if failure.is_none()
                        && let Err(err) = sink.take(item, at)
                    {
                        failure = Some(err);
                    }
                });
                if let Some(failure) = failure {
                    return Err(failure);
                }
                if let Err(err) = result {
                    // The document stops being readable here: keep what came before,
                    // and report the rest as one error.
                    sink.take_error(err)?;
                }
            }
            Format::Ldif => {
                let memberships =
                    self.ldif_memberships(&sink.vault, upload, index, detection.encoding)?;
                let mut entries = LdifReader::new(input);
                while let Some(item) = entries.next() {
                    match item {
                        Ok(LdifItem::User(mut user)) => {
                            memberships.apply(&mut user);
                            let at = entries.location();
                            sink.take(Ok(*user), || at)?
                        }
                        Ok(LdifItem::Group { .. } | LdifItem::Other) => {}
                        Err(err) => sink.take_error(err)?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// What `each_file` hands each file to: its number, its name inside a zip, its content.
type EachFile<'a> = dyn FnMut(usize, Option<&str>, &mut dyn BufRead) -> Result<(), Failure> + 'a;

/// Text in UTF-8, whatever the file's encoding.
fn decoded<'a, R: BufRead + 'a>(input: R, encoding: TextEncoding) -> Box<dyn BufRead + 'a> {
    let encoding = match encoding {
        TextEncoding::Utf8 => return Box::new(input),
        TextEncoding::Utf16Le => encoding_rs::UTF_16LE,
        TextEncoding::Utf16Be => encoding_rs::UTF_16BE,
        _ => encoding_rs::WINDOWS_1252,
    };
    Box::new(BufReader::new(
        encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding))
            .build(input),
    ))
}

fn describe(detection: &Detection) -> (&'static str, &'static str) {
    let format = match detection.format {
        Format::Csv { .. } => "csv",
        Format::Json(JsonLayout::Ndjson) => "ndjson",
        Format::Json(_) => "json",
        Format::Ldif => "ldif",
    };
    let source = match detection.source {
        Source::Generic => "generic",
        Source::Okta => "okta",
        Source::Cognito => "cognito",
        Source::EntraId => "entra_id",
        Source::Auth0 => "auth0",
        Source::Keycloak => "keycloak",
        Source::Firebase => "firebase",
        Source::Ldap => "ldap",
    };
    (format, source)
}

enum Failure {
    /// The file cannot be read (on): the upload fails with this sentence.
    Unreadable(String),
    /// The store failed: reading stops, the upload stays to be read again.
    Store(DomainError),
}

fn unreadable(err: io::Error) -> Failure {
    Failure::Unreadable(format!("cannot read the file: {err}"))
}

/// What the reading thread hands to the sealing thread, in the order it was read.
enum Item {
    User(Box<NormalizedUser>),
    Error(StoredError),
    /// Reading failed: what is not saved yet is dropped, the batch in flight lands.
    Abandon,
}

/// Items handed over at a time: one hand-over per item woke the sealing thread (a
/// system call and a context switch each) for every record.
const HANDOVER: usize = 256;
/// Hand-overs waiting between the reading and the sealing thread: enough to even out
/// their pace, small enough to hold a few megabytes.
const QUEUE: usize = 8;

/// Takes what a reader yields on the reading thread (duplicate ids, counts, error
/// locations) and passes it on to a sealing thread that seals records and saves them
/// in batches. Reading, sealing and the database each keep part of a core busy.
struct Sink {
    /// The vault of the upload's project.
    vault: Arc<Vault>,
    handle: tokio::runtime::Handle,
    counters: Arc<Counters>,
    rows_ok: u64,
    rows_failed: u64,
    started: Option<Detection>,
    /// Hashes of the source ids read so far: a user found twice in one upload is
    /// reported, not saved twice (8 bytes a user).
    seen: HashSet<u64>,
    hasher: RandomState,
    /// The file of a zip archive being read: error locations name it.
    member: Option<String>,
    queue: Option<std::sync::mpsc::SyncSender<Vec<Item>>>,
    /// Items read and not handed over yet.
    pending: Vec<Item>,
    sealing: Option<std::thread::JoinHandle<Result<(), Failure>>>,
}

impl Sink {
    fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        handle: tokio::runtime::Handle,
        upload: Upload,
        counters: Arc<Counters>,
    ) -> Result<Self, Failure> {
        let (queue, items) = std::sync::mpsc::sync_channel(QUEUE);
        let mut batches = Batches {
            store,
            vault: vault.clone(),
            handle: handle.clone(),
            upload,
            counters: counters.clone(),
            records: Vec::with_capacity(BATCH),
            errors: Vec::new(),
            progress: ParseProgress::default(),
            saving: None,
        };
        let sealing = std::thread::Builder::new()
            .name("ferry-seal".into())
            .spawn(move || batches.run(items))
            .map_err(|e| Failure::Store(DomainError::Internal(format!("sealing thread: {e}"))))?;
        Ok(Self {
            vault,
            handle,
            counters,
            rows_ok: 0,
            rows_failed: 0,
            started: None,
            seen: HashSet::new(),
            hasher: RandomState::new(),
            member: None,
            queue: Some(queue),
            pending: Vec::with_capacity(HANDOVER),
            sealing: Some(sealing),
        })
    }

    /// Takes one item a reader yielded; `at` says where a record was found, should it
    /// need reporting.
    fn take(
        &mut self,
        item: Result<NormalizedUser, RecordError>,
        at: impl FnOnce() -> Location,
    ) -> Result<(), Failure> {
        let user = match item {
            Ok(user) => user,
            Err(err) => return self.take_error(err),
        };
        if !self.seen.insert(self.hasher.hash_one(&user.source_id)) {
            return self.take_error(RecordError::new(
                at(),
                Some("source id"),
                "this record's source id was read before in this upload; the first record \
                 with it is kept"
                    .to_string(),
            ));
        }
        self.rows_ok += 1;
        self.counters.rows_ok.store(self.rows_ok, Ordering::Relaxed);
        self.pass(Item::User(Box::new(user)))
    }

    fn take_error(&mut self, err: RecordError) -> Result<(), Failure> {
        self.rows_failed += 1;
        self.counters
            .rows_failed
            .store(self.rows_failed, Ordering::Relaxed);
        let location = match &self.member {
            Some(member) => format!("{member}: {}", err.location),
            None => err.location.to_string(),
        };
        self.pass(Item::Error(StoredError {
            seq: self.rows_failed,
            location,
            field: err.field,
            reason: err.reason,
        }))
    }

    fn pass(&mut self, item: Item) -> Result<(), Failure> {
        self.pending.push(item);
        if self.pending.len() < HANDOVER {
            return Ok(());
        }
        self.hand_over()
    }

    /// Hands the pending items to the sealing thread.
    fn hand_over(&mut self) -> Result<(), Failure> {
        let items = std::mem::replace(&mut self.pending, Vec::with_capacity(HANDOVER));
        let sent = self.queue.as_ref().is_some_and(|q| q.send(items).is_ok());
        if sent {
            return Ok(());
        }
        // The sealing thread stopped early: its reason is the failure.
        self.finish(None)?;
        Err(Failure::Store(DomainError::Internal(
            "the sealing thread stopped".into(),
        )))
    }

    /// Ends the sealing thread and returns its outcome: with `None` everything read is
    /// saved; with a failure, what is not saved yet is dropped and the failure returned
    /// once the batch in flight has landed.
    fn finish(&mut self, failure: Option<Failure>) -> Result<(), Failure> {
        if let Some(queue) = self.queue.take() {
            let mut items = std::mem::take(&mut self.pending);
            if failure.is_some() {
                items.push(Item::Abandon);
            }
            // The thread may be gone already; its own outcome is taken below.
            let _ = queue.send(items);
        }
        let sealed = match self.sealing.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| {
                Err(Failure::Store(DomainError::Internal(
                    "the sealing thread panicked".into(),
                )))
            }),
            None => Ok(()),
        };
        sealed?;
        failure.map_or(Ok(()), Err)
    }
}

/// The sealing thread: seals each record under its context and saves batches in
/// order, one in flight while the next is filled.
struct Batches {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    handle: tokio::runtime::Handle,
    upload: Upload,
    counters: Arc<Counters>,
    records: Vec<SealedRecord>,
    errors: Vec<StoredError>,
    /// What the saved batches hold, saved with them.
    progress: ParseProgress,
    /// The batch being saved.
    saving: Option<tokio::task::JoinHandle<domain::Result<()>>>,
}

impl Batches {
    fn run(&mut self, handovers: std::sync::mpsc::Receiver<Vec<Item>>) -> Result<(), Failure> {
        for item in handovers.into_iter().flatten() {
            match item {
                Item::User(user) => {
                    let sealed = records::seal(&self.vault, self.upload.project_id, &user)
                        .map_err(Failure::Store)?;
                    self.records.push(SealedRecord {
                        data: sealed.data,
                        source_id: user.source_id,
                        digest: sealed.digest,
                    });
                    self.progress.rows_ok += 1;
                }
                Item::Error(error) => {
                    self.errors.push(error);
                    self.progress.rows_failed += 1;
                }
                Item::Abandon => return self.wait(),
            }
            if self.records.len() + self.errors.len() >= BATCH {
                self.send()?;
            }
        }
        self.send()?;
        self.wait()
    }

    /// Waits for the batch being saved, if any.
    fn wait(&mut self) -> Result<(), Failure> {
        if let Some(saving) = self.saving.take() {
            self.handle
                .block_on(saving)
                .map_err(|e| Failure::Store(DomainError::Internal(format!("saving task: {e}"))))?
                .map_err(Failure::Store)?;
        }
        Ok(())
    }

    /// Hands the collected batch to the database once the previous one is saved, so
    /// batches land in order and at most two are in memory.
    fn send(&mut self) -> Result<(), Failure> {
        self.wait()?;
        self.progress.bytes_read = self.counters.bytes_read.load(Ordering::Relaxed);
        let records = in_key_order(std::mem::replace(
            &mut self.records,
            Vec::with_capacity(BATCH),
        ));
        let errors = std::mem::take(&mut self.errors);
        let (store, upload, progress) = (self.store.clone(), self.upload.clone(), self.progress);
        self.saving = Some(self.handle.spawn(async move {
            store
                .save_batch(&upload, records, &errors, progress, Utc::now())
                .await
        }));
        Ok(())
    }
}

/// The batch in source-id order. Saved in that order, each row lands beside the one
/// before in the source-id index: in file order, rows landed all over an index larger
/// than SQLite's page cache, which wrote its pages out and read them back again and
/// again (14 GB written for a million Keycloak users, 5 GB in key order). The order is
/// sorted as numbers and the records moved once: sorting the records themselves moved
/// 72 bytes per swap.
fn in_key_order(records: Vec<SealedRecord>) -> Vec<SealedRecord> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_unstable_by(|&a, &b| records[a].source_id.cmp(&records[b].source_id));
    let mut slots: Vec<Option<SealedRecord>> = records.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// Counts the bytes read from the stored file, for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Remembers the first I/O error of the stream it wraps.
struct Watched<R> {
    inner: R,
    broken: Arc<std::sync::Mutex<Option<String>>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|err| {
            if let Ok(mut broken) = self.broken.lock() {
                broken.get_or_insert_with(|| format!("cannot read the file: {err}"));
            }
        })
    }
}

/// Stops an unpacked stream that grows past its limit.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R> Limited<R> {
    fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "the archive expands past {} MiB, {MAX_EXPANSION} times its size: refused as a possible decompression bomb",
                self.limit >> 20
            ))
        })?;
        Ok(n)
    }
}

pub fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads")
}

/// Where an upload's sealed file lives in `dir`.
pub fn upload_path(dir: &Path, id: UploadId) -> PathBuf {
    dir.join(format!("{id}.sealed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_put_in_source_id_order_with_every_record_kept() {
        let record = |id: &str| SealedRecord {
            source_id: id.into(),
            digest: format!("digest of {id}"),
            data: id.as_bytes().to_vec(),
        };
        let ids = ["m", "b", "z", "a", "mm", "B"];
        let sorted = in_key_order(ids.iter().map(|id| record(id)).collect());
        let order: Vec<&str> = sorted.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(order, ["B", "a", "b", "m", "mm", "z"]);
        assert!(sorted.iter().all(|r| *r == record(&r.source_id)));
        assert!(in_key_order(Vec::new()).is_empty());
    }
}
