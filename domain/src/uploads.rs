//! Uploaded exports: their lifecycle, what reading them found, and the records and
//! errors they leave in the store.

use crate::{
    DomainError, Result,
    ids::{AccountId, ProjectId, UploadId},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an upload is in its life. Changes only through [`UploadStatus::advance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// The file is stored, sealed; reading has not started.
    Stored,
    Parsing,
    Parsed,
    /// The file could not be read at all; `error` says why.
    Failed,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Parsing => "parsing",
            Self::Parsed => "parsed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "stored" => Ok(Self::Stored),
            "parsing" => Ok(Self::Parsing),
            "parsed" => Ok(Self::Parsed),
            "failed" => Ok(Self::Failed),
            other => Err(DomainError::Internal(format!(
                "unknown upload status {other:?}"
            ))),
        }
    }

    /// The allowed transitions. Reading may start again from any settled state (a
    /// restart after a crash, or a retry with another format chosen); a file that
    /// cannot even be recognized fails straight from stored.
    pub fn advance(self, next: UploadStatus) -> Result<UploadStatus> {
        use UploadStatus::*;
        let allowed = matches!(
            (self, next),
            (Stored | Parsed | Failed | Parsing, Parsing)
                | (Parsing | Stored, Failed)
                | (Parsing, Parsed)
        );
        if allowed {
            Ok(next)
        } else {
            Err(DomainError::Conflict(format!(
                "an upload that is {} cannot become {}",
                self.as_str(),
                next.as_str()
            )))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Upload {
    pub id: UploadId,
    pub project_id: ProjectId,
    pub file_name: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub status: UploadStatus,
    /// The format read, as detected or chosen (`csv`, `json`, `ndjson`, `ldif`).
    pub format: Option<String>,
    /// The identity provider the layout belongs to (`okta`, `keycloak`, …).
    pub source: Option<String>,
    /// Bytes of the stored file read so far, for progress.
    pub bytes_read: u64,
    /// Rows or entries read into records, and those that could not be.
    pub rows_ok: u64,
    pub rows_failed: u64,
    /// Against the project's records before this upload: users seen for the first
    /// time, users whose data changed, users unchanged, and users of earlier uploads
    /// not in this one.
    pub records_new: u64,
    pub records_changed: u64,
    pub records_unchanged: u64,
    pub records_missing: u64,
    pub error: Option<String>,
    pub created_by: Option<AccountId>,
    pub created_at: DateTime<Utc>,
    pub parse_started_at: Option<DateTime<Utc>>,
    pub parse_finished_at: Option<DateTime<Utc>>,
    /// Set once the upload was purged: its file destroyed.
    #[serde(default)]
    pub purged_at: Option<DateTime<Utc>>,
}

impl Upload {
    /// Rows in the file appearing twice (same source id); the later one wins.
    pub fn duplicates(&self) -> u64 {
        self.rows_ok
            .saturating_sub(self.records_new + self.records_changed + self.records_unchanged)
    }
}

/// An upload about to be recorded, once its bytes are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUpload {
    pub id: UploadId,
    pub project_id: ProjectId,
    pub file_name: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub created_by: AccountId,
    pub created_at: DateTime<Utc>,
}

/// A normalized record sealed for storage, with a digest of its content to tell a
/// changed record from an unchanged one.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub source_id: String,
    pub digest: String,
    pub data: Vec<u8>,
}

/// A row or entry that could not be read, as listed and downloaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredError {
    /// Order within the upload.
    pub seq: u64,
    pub location: String,
    pub field: Option<String>,
    pub reason: String,
}

/// Progress of a read, saved with each batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseProgress {
    pub bytes_read: u64,
    pub rows_ok: u64,
    pub rows_failed: u64,
}

/// How far the reading of an upload has come, as it happens: sent to the page as
/// server-sent events from memory, without asking the database.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveProgress {
    pub upload_id: UploadId,
    /// Bytes of the stored (sealed, maybe compressed) file read so far.
    pub bytes_read: u64,
    pub size_bytes: u64,
    pub rows_ok: u64,
    pub rows_failed: u64,
    /// Seconds since reading started.
    pub seconds: f64,
}

impl LiveProgress {
    /// Records (read or not) per second since reading started.
    pub fn records_per_second(&self) -> f64 {
        if self.seconds <= 0.0 {
            return 0.0;
        }
        (self.rows_ok + self.rows_failed) as f64 / self.seconds
    }

    /// The share of the file read, 0 to 1.
    pub fn fraction(&self) -> f64 {
        if self.size_bytes == 0 {
            return 0.0;
        }
        (self.bytes_read as f64 / self.size_bytes as f64).min(1.0)
    }
}

pub fn normalize_file_name(raw: &str) -> String {
    // Keep the name for people to recognize, never as a path.
    let name = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let name: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    if name.is_empty() {
        "upload".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_checked() {
        use UploadStatus::*;
        assert_eq!(Stored.advance(Parsing).unwrap(), Parsing);
        assert_eq!(Parsing.advance(Parsed).unwrap(), Parsed);
        assert_eq!(
            Parsing.advance(Parsing).unwrap(),
            Parsing,
            "a restart reads again"
        );
        assert_eq!(Failed.advance(Parsing).unwrap(), Parsing);
        assert!(Stored.advance(Parsed).is_err());
        assert_eq!(Stored.advance(Failed).unwrap(), Failed);
        assert!(Parsed.advance(Failed).is_err());
    }

    #[test]
    fn file_names_are_names_not_paths() {
        assert_eq!(normalize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(normalize_file_name("C:\\exports\\users.csv"), "users.csv");
        assert_eq!(normalize_file_name("  "), "upload");
    }
}
