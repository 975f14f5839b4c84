//! Retention and purge: how long a project's imported data is kept after its real run,
//! what a purge keeps, and what a purge destroyed.

use crate::{DomainError, Result, ids::UploadId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The longest retention period Ferry accepts: ten years.
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// A project's retention settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retention {
    /// Days after the latest real run finished until the imported data is purged on
    /// its own; `None` keeps it until someone purges it.
    pub days: Option<u32>,
    /// Keep the crosswalk (each source id with the target's id) after a purge.
    pub keep_crosswalk: bool,
    /// Keep the final report, as it stood at the purge, after a purge.
    pub keep_report: bool,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            days: None,
            keep_crosswalk: true,
            keep_report: true,
        }
    }
}

impl Retention {
    pub fn validate(&self) -> Result<()> {
        match self.days {
            Some(0) => Err(DomainError::invalid(
                "days",
                "must be at least 1 day (purge now instead)",
            )),
            Some(d) if d > MAX_RETENTION_DAYS => Err(DomainError::invalid(
                "days",
                format!("must be at most {MAX_RETENTION_DAYS} days"),
            )),
            _ => Ok(()),
        }
    }

    /// When the data is purged on its own, counted from the end of the latest real run.
    pub fn due_at(&self, real_run_finished: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        Some(real_run_finished? + Duration::days(i64::from(self.days?)))
    }
}

/// A project's retention as its page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetentionView {
    pub retention: Retention,
    /// The end of the latest real run, where the period starts.
    pub real_run_finished_at: Option<DateTime<Utc>>,
    /// When the scheduled purge happens; `None` without a period or a finished real run.
    pub purge_due_at: Option<DateTime<Utc>>,
    /// Set once the project's data was purged: the project is read only from then on.
    pub purged_at: Option<DateTime<Utc>>,
    /// Whether the project's records are sealed under a key of its own, which a purge
    /// destroys (projects made before per-project keys share the server's key: their
    /// purge deletes the data instead).
    pub own_key: bool,
    /// What the project holds now, for the confirmation.
    pub holding: Holding,
}

/// What a project's imported data amounts to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Holding {
    pub records: u64,
    pub uploads: u64,
    pub crosswalk_rows: u64,
}

/// The state of a project's data key as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredKey {
    /// No key yet: the first use makes one.
    None,
    /// Made before keys were per project: sealed under the server's key.
    Server,
    /// The project's own key, sealed by the server's key.
    Own(Vec<u8>),
    /// Destroyed by a purge.
    Destroyed,
}

/// What a purge removed, for its answer and the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurgeOutcome {
    pub records: u64,
    pub uploads: u64,
    /// Crosswalk rows deleted (0 when kept).
    pub crosswalk_rows: u64,
    pub key_destroyed: bool,
    pub kept_crosswalk: bool,
    pub kept_report: bool,
}

impl PurgeOutcome {
    /// The audit log's words, counts only.
    pub fn describe(&self) -> String {
        let mut kept = Vec::new();
        if self.kept_crosswalk {
            kept.push("the crosswalk");
        }
        if self.kept_report {
            kept.push("the final report");
        }
        let kept = if kept.is_empty() {
            "nothing kept".to_string()
        } else {
            format!("kept {}", kept.join(" and "))
        };
        format!(
            "{} and {} destroyed{}; {kept}",
            crate::numbers::counted(self.records, "record", "records"),
            crate::numbers::counted(self.uploads, "upload", "uploads"),
            if self.key_destroyed {
                ", the project's key destroyed"
            } else {
                ""
            }
        )
    }
}

/// What purging one upload removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadPurge {
    pub upload: UploadId,
    /// Records whose newest version came from this upload (no later upload brought
    /// them again), deleted with it.
    pub records: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_counts_from_the_real_run_and_is_bounded() {
        let finished = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let retention = Retention {
            days: Some(30),
            ..Retention::default()
        };
        assert_eq!(
            retention.due_at(Some(finished)).unwrap().to_rfc3339(),
            "2026-03-31T10:00:00+00:00"
        );
        assert_eq!(retention.due_at(None), None);
        assert_eq!(Retention::default().due_at(Some(finished)), None);
        for days in [0, MAX_RETENTION_DAYS + 1] {
            let err = Retention {
                days: Some(days),
                ..Retention::default()
            }
            .validate()
            .unwrap_err();
            assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "days"));
        }
        assert!(retention.validate().is_ok());
    }
}
