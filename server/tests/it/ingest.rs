//! Reading stored uploads end to end, on SQLite and PostgreSQL: sealed files, gzip and
//! zip, every record accounted for, deltas against earlier exports, bombs refused, and
//! reading again after a crash leaving the same result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::Utc;
use common::{TestDb, store};
use domain::{
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::{AccountId, ProjectId, UploadId},
    import::NormalizedUser,
    ports::Store,
    projects::{Project, SourceKind},
    uploads::{NewUpload, Upload, UploadStatus},
};
use server::{
    ingest::{Ingest, ReadOptions},
    vault::Vault,
};
use std::{io::Write, sync::Arc};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../domain/tests/fixtures/import/"
);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap()
}

struct Bench {
    store: Arc<dyn Store>,
    ingest: Ingest,
    project: ProjectId,
    owner: AccountId,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

async fn bench(db: TestDb) -> Bench {
    let store = store(&db).await;
    let ferry = common::service(store.clone(), common::TestClock::new());
    let token = ferry.issue_setup_token().await.unwrap().unwrap();
    let owner = ferry
        .complete_setup(
            &Default::default(),
            &token,
            "olive@example.com",
            "Olive",
            "owner passphrase one",
        )
        .await
        .unwrap()
        .account
        .id;
    let project = ProjectId(uuid::Uuid::now_v7());
    let now = Utc::now();
    let audit = NewAuditEntry::anonymous(
        None,
        now,
        AuditAction::ProjectCreated,
        ObjectKind::Project,
        project,
    );
    store
        .insert_project(
            &Project {
                id: project,
                name: "Imports".into(),
                source_kind: SourceKind::Csv,
                description: String::new(),
                archived: false,
                created_at: now,
                updated_at: now,
                purged_at: None,
            },
            &audit,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::new(
        store.clone(),
        server::keyring::Keyring::new(
            Vault::new(&[9u8; 32]),
            store.clone(),
            dir.path().to_path_buf(),
        ),
        dir.path().to_path_buf(),
        Default::default(),
    );
    Bench {
        store,
        ingest,
        project,
        owner,
        _dir: dir,
        _db: db,
    }
}

impl Bench {
    async fn upload(&self, name: &str, bytes: &[u8]) -> Upload {
        let id = UploadId(uuid::Uuid::now_v7());
        let file = std::fs::File::create(self.ingest.path(id)).unwrap();
        let vault = self.ingest.vault(self.project).await.unwrap();
        let mut writer = vault.writer(file).unwrap();
        writer.write_all(bytes).unwrap();
        writer.finish().unwrap();
        let new = NewUpload {
            id,
            project_id: self.project,
            file_name: name.into(),
            size_bytes: bytes.len() as u64,
            sha256: format!("{:x}", md5ish(bytes)),
            created_by: self.owner,
            created_at: Utc::now(),
        };
        let audit = NewAuditEntry::anonymous(
            None,
            Utc::now(),
            AuditAction::UploadStored,
            ObjectKind::Upload,
            id,
        );
        self.store.insert_upload(&new, &audit).await.unwrap();
        self.ingest.parse(id, ReadOptions::default()).await.unwrap()
    }

    async fn records(&self) -> Vec<NormalizedUser> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        let vault = self.ingest.vault(self.project).await.unwrap();
        loop {
            let page = self
                .store
                .records_with_upload(self.project, after.as_deref(), 2)
                .await
                .unwrap();
            if page.is_empty() {
                return out;
            }
            for (source_id, _, sealed) in &page {
                out.push(server::records::open(&vault, self.project, source_id, sealed).unwrap());
            }
            after = page.last().map(|(id, _, _)| id.clone());
        }
    }
}

/// Any stable text digest works for the test's file identity.
fn md5ish(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0u128, |h, b| {
        h.wrapping_mul(31).wrapping_add(u128::from(*b))
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn story(db: TestDb) {
    let b = bench(db).await;

    // A CSV with good and bad rows: every row is accounted for.
    let bad = b.upload("bad.csv", &fixture("bad.csv")).await;
    assert_eq!(bad.status, UploadStatus::Parsed);
    assert_eq!(
        (bad.format.as_deref(), bad.source.as_deref()),
        (Some("csv"), Some("generic"))
    );
    // A bad date or hash keeps its user; only a short row and one without any id
    // are refused.
    assert_eq!((bad.rows_ok, bad.rows_failed), (4, 2));
    assert_eq!(
        (
            bad.records_new,
            bad.records_changed,
            bad.records_unchanged,
            bad.records_missing
        ),
        (4, 0, 0, 0)
    );
    assert_eq!(
        bad.bytes_read,
        std::fs::metadata(b.ingest.path(bad.id)).unwrap().len()
    );
    let errors = b
        .store
        .record_errors(bad.id, Default::default())
        .await
        .unwrap();
    assert_eq!(errors.total, 2);
    assert_eq!(errors.items[0].location, "line 3");
    assert_eq!(errors.items[1].location, "line 5");
    for error in &errors.items {
        assert!(
            !error.reason.contains("plaintext-secret"),
            "{}",
            error.reason
        );
    }

    // Reading again, as after a crash: the same result, no duplicate errors.
    let again = b
        .ingest
        .parse(bad.id, ReadOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (again.rows_ok, again.rows_failed, again.records_new),
        (4, 2, 4)
    );
    assert_eq!(
        b.store
            .record_errors(bad.id, Default::default())
            .await
            .unwrap()
            .total,
        2
    );

    // The same upload read twice at once: the second is refused before it resets
    // anything of the first, which ends as it would alone.
    let (first, second) = tokio::join!(
        b.ingest.parse(bad.id, ReadOptions::default()),
        b.ingest.parse(bad.id, ReadOptions::default())
    );
    match (first, second) {
        (Ok(won), Err(refused)) | (Err(refused), Ok(won)) => {
            assert_eq!(refused.http_status(), 409);
            assert_eq!((won.rows_ok, won.rows_failed), (4, 2));
        }
        // On a loaded machine the first reading can end before the second begins:
        // then each ends as it would alone.
        (Ok(one), Ok(two)) => {
            assert_eq!((one.rows_ok, one.rows_failed), (4, 2));
            assert_eq!((two.rows_ok, two.rows_failed), (4, 2));
        }
        other => panic!("one reading must win and one be refused: {other:?}"),
    }

    // A newer export, gzipped: one user changed, one gone, one new.
    let newer = "id,email,created_at\na1,ok1@example.com,2020-01-01\na6,changed@example.com,2020-01-02\na7,new@example.com,\n";
    let delta = b.upload("users.csv.gz", &gzip(newer.as_bytes())).await;
    assert_eq!(delta.status, UploadStatus::Parsed, "{:?}", delta.error);
    assert_eq!(
        (
            delta.records_new,
            delta.records_changed,
            delta.records_unchanged,
            delta.records_missing
        ),
        (1, 1, 1, 2)
    );
    let records = b.records().await;
    let ids: Vec<&str> = records.iter().map(|r| r.source_id.as_str()).collect();
    assert_eq!(ids, ["a1", "a3", "a5", "a6", "a7"]);
    assert_eq!(records[3].primary_email(), Some("changed@example.com"));

    // A zip holding two exports.
    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut archive = zip::ZipWriter::new(&mut zipped);
        let options = zip::write::SimpleFileOptions::default();
        archive.start_file("acme-users-0.json", options).unwrap();
        archive.write_all(&fixture("keycloak_realm.json")).unwrap();
        archive.start_file("okta.csv", options).unwrap();
        archive.write_all(&fixture("cognito.csv")).unwrap();
        archive.finish().unwrap();
    }
    let zip_upload = b.upload("export.zip", zipped.get_ref()).await;
    assert_eq!(
        zip_upload.status,
        UploadStatus::Parsed,
        "{:?}",
        zip_upload.error
    );
    assert_eq!((zip_upload.rows_ok, zip_upload.rows_failed), (4, 1));
    let errors = b
        .store
        .record_errors(zip_upload.id, Default::default())
        .await
        .unwrap();
    assert!(
        errors.items[0].location == "acme-users-0.json: $.users[2] (line 76)",
        "an error in an archive names its file: {}",
        errors.items[0].location
    );
    assert_eq!(
        zip_upload.records_missing, 5,
        "the CSV users are not in this export"
    );
    let keycloak_user = b
        .records()
        .await
        .into_iter()
        .find(|r| r.username.as_deref() == Some("ada") && r.credential.is_some())
        .unwrap();
    assert_eq!(
        keycloak_user.credential.unwrap().algorithm(),
        "pbkdf2-sha256"
    );

    // A decompression bomb and files that are not exports fail in one sentence.
    let mut bomb = b"id,email\n".to_vec();
    for i in 0..1000 {
        bomb.extend(format!("b{i},b{i}@example.com\n").bytes());
    }
    bomb.resize(bomb.len() + (80 << 20), b'\n');
    let bomb = b.upload("bomb.csv.gz", &gzip(&bomb)).await;
    assert_eq!(bomb.status, UploadStatus::Failed);
    assert!(
        bomb.error
            .as_deref()
            .unwrap()
            .contains("decompression bomb"),
        "{:?}",
        bomb.error
    );
    let junk = b
        .upload(
            "photo.jpg",
            &[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 250, 251, 252],
        )
        .await;
    assert_eq!(junk.status, UploadStatus::Failed);
    assert_eq!(
        junk.records_missing, 0,
        "a file that was not read says nothing of who is missing"
    );
    assert!(
        junk.error.as_deref().unwrap().contains("binary"),
        "{:?}",
        junk.error
    );
    let truncated = b.upload("truncated.json", &fixture("truncated.json")).await;
    assert_eq!(truncated.status, UploadStatus::Parsed);
    assert_eq!(
        (truncated.rows_ok, truncated.rows_failed),
        (1, 1),
        "what came before the cut is kept"
    );
    let errors = b
        .store
        .record_errors(truncated.id, Default::default())
        .await
        .unwrap();
    assert!(errors.items[0].reason.contains("truncated"));
    let firebase = b.upload("firebase.json", &fixture("firebase.json")).await;
    assert_eq!(firebase.status, UploadStatus::Failed);
    assert!(firebase.error.as_deref().unwrap().contains("Firebase"));

    // LDIF groups listed before their members, in the second file of a zip: users get
    // the groups that name them by DN or by uid, once.
    let ldif = "version: 1\n\n\
        dn: cn=ops,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: ops\n\
        member: UID=lin, ou=people,dc=example,dc=org\n\n\
        dn: cn=posix,ou=groups,dc=example,dc=org\nobjectClass: posixGroup\ncn: posix\n\
        memberUid: lin\nmemberUid: nobody\n\n\
        dn: uid=lin,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: lin\n\
        entryUUID: l-1\nmail: lin@example.org\nmemberOf: cn=ops,ou=groups,dc=example,dc=org\n\n\
        dn: uid=kai,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: kai\n\
        entryUUID: l-2\n";
    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut archive = zip::ZipWriter::new(&mut zipped);
        let options = zip::write::SimpleFileOptions::default();
        archive.start_file("people.csv", options).unwrap();
        archive.write_all(b"id,email\nc1,c1@example.com\n").unwrap();
        archive.start_file("directory.ldif", options).unwrap();
        archive.write_all(ldif.as_bytes()).unwrap();
        archive.finish().unwrap();
    }
    let directory = b.upload("directory.zip", zipped.get_ref()).await;
    assert_eq!(
        (directory.status, directory.rows_ok, directory.rows_failed),
        (UploadStatus::Parsed, 3, 0),
        "{:?}",
        directory.error
    );
    let records = b.records().await;
    let groups_of = |id: &str| {
        records
            .iter()
            .find(|r| r.source_id == id)
            .map(|r| r.groups.clone())
            .unwrap()
    };
    assert_eq!(groups_of("l-1"), ["ops", "posix"]);
    assert!(groups_of("l-2").is_empty());

    // A user found twice in one export is reported where it repeats; the first stays.
    let dupes = b
        .upload(
            "dupes.csv",
            b"id,email\nd1,first@example.com\nd2,b@example.com\nd1,second@example.com\n",
        )
        .await;
    assert_eq!((dupes.rows_ok, dupes.rows_failed), (2, 1));
    let errors = b
        .store
        .record_errors(dupes.id, Default::default())
        .await
        .unwrap();
    assert_eq!(errors.items[0].location, "line 4");
    assert_eq!(errors.items[0].field.as_deref(), Some("source id"));
    assert!(errors.items[0].reason.contains("read before"));
    let records = b.records().await;
    let d1 = records.iter().find(|r| r.source_id == "d1").unwrap();
    assert_eq!(d1.primary_email(), Some("first@example.com"));
    assert!(!errors.items[0].reason.contains("d1"), "no value is quoted");

    // A reading that stops on a storage error leaves the upload failed with a
    // reason, never "being read" for good.
    let doomed = b
        .upload(
            "later.csv",
            b"id,email
z1,z1@example.com
",
        )
        .await;
    // Every write of records fails (a trigger refuses them), after the reading began.
    if b._db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&b._db.url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_records BEFORE INSERT ON records \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .execute(&pool)
        .await
        .unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&b._db.url).await.unwrap();
        for statement in [
            "CREATE FUNCTION refuse_records() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_records BEFORE INSERT ON records \
             FOR EACH ROW EXECUTE FUNCTION refuse_records()",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    }
    let err = b.ingest.parse(doomed.id, ReadOptions::default()).await;
    assert!(err.is_err());
    let settled = b.store.upload(doomed.id).await.unwrap().unwrap();
    assert_eq!(settled.status, UploadStatus::Failed);
    assert!(
        settled
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("storage error"),
        "{:?}",
        settled.error
    );
}

#[tokio::test]
async fn uploads_are_read_into_records_on_sqlite() {
    story(common::sqlite_db()).await;
}

#[tokio::test]
async fn uploads_are_read_into_records_on_postgres() {
    if let Some(db) = common::postgres_db().await {
        story(db).await;
    }
}

/// Every format `ferry gen-export` writes reads back whole: each user a record, and
/// LDIF users with the groups their group entries list.
#[tokio::test]
async fn generated_exports_read_back_whole() {
    use ferry_bench::gen_export::{self, ExportFormat};
    let b = bench(common::sqlite_db()).await;
    for (seed, format) in [
        ExportFormat::Csv,
        ExportFormat::Json,
        ExportFormat::Okta,
        ExportFormat::Cognito,
        ExportFormat::EntraId,
        ExportFormat::Auth0,
        ExportFormat::Keycloak,
        ExportFormat::Ldif,
    ]
    .into_iter()
    .enumerate()
    {
        // A seed per format: the same people would share source ids.
        let mut bytes = Vec::new();
        gen_export::write(format, 300, seed as u64, &mut bytes).unwrap();
        let upload = b.upload(&format!("{format:?}"), &bytes).await;
        assert_eq!(upload.status, UploadStatus::Parsed, "{format:?}");
        let errors = b
            .store
            .record_errors(upload.id, Default::default())
            .await
            .unwrap();
        assert_eq!(
            (upload.rows_ok, upload.rows_failed),
            (300, 0),
            "{format:?}: {:?}",
            errors.items.first()
        );
    }
    let records = b.records().await;
    // LDIF users get their groups by name, the DNs kept beside them.
    let in_ldif_groups = records
        .iter()
        .filter(|r| {
            !r.groups.is_empty()
                && r.attributes
                    .get("group_dns")
                    .and_then(|dns| dns.as_array())
                    .is_some_and(|dns| {
                        dns.iter().any(|d| {
                            d.as_str()
                                .is_some_and(|d| d.ends_with(",ou=groups,dc=example,dc=org"))
                        })
                    })
        })
        .count();
    assert!(in_ldif_groups > 200, "{in_ldif_groups}");
    let with_passwords = records.iter().filter(|r| r.credential.is_some()).count();
    assert!(with_passwords > 900, "{with_passwords}");
}

/// Compressed uploads mutated at random (a fixed seed; `FERRY_FUZZ_CASES` runs more):
/// every one ends read or failed with a reason, never a panic or a stuck reading.
#[tokio::test]
async fn damaged_archives_end_read_or_failed() {
    let b = bench(common::sqlite_db()).await;
    let cases: usize = std::env::var("FERRY_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let sources = [
        fixture("generic.csv"),
        fixture("keycloak_realm.json"),
        fixture("directory.ldif"),
    ];
    for case in 0..cases {
        let source = &sources[case % sources.len()];
        let mut bytes = if case % 2 == 0 {
            gzip(source)
        } else {
            let mut zipped = std::io::Cursor::new(Vec::new());
            {
                let mut archive = zip::ZipWriter::new(&mut zipped);
                let options = zip::write::SimpleFileOptions::default();
                archive.start_file("export.bin", options).unwrap();
                archive.write_all(source).unwrap();
                archive.finish().unwrap();
            }
            zipped.into_inner()
        };
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % bytes.len().max(1);
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => bytes.truncate(at.max(1)),
                _ => {
                    bytes.insert(at, next() as u8);
                }
            }
        }
        let upload = b.upload(&format!("case-{case}"), &bytes).await;
        assert!(
            matches!(upload.status, UploadStatus::Parsed | UploadStatus::Failed),
            "case {case}: {:?}",
            upload.status
        );
        if upload.status == UploadStatus::Failed {
            assert!(upload.error.as_deref().is_some_and(|e| !e.is_empty()));
        }
    }
}
