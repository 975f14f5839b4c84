//! The use-cases of retention and purge: how long a project's imported data is kept,
//! purging an upload or the whole project (by an owner, or by Ferry when the period
//! ends), and the project read only from then on.

use super::{Ferry, FinalReport};
use crate::{
    DomainError, Result,
    accounts::Actor,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::{ProjectId, UploadId},
    projects::Project,
    retention::{PurgeOutcome, Retention, RetentionView, UploadPurge},
    roles::Permission,
};

impl Ferry {
    /// Refuses (409) changes to a project whose data was purged or that is archived.
    pub(crate) fn refuse_if_closed(project: &Project) -> Result<()> {
        if let Some(at) = project.purged_at {
            return Err(DomainError::Conflict(format!(
                "the project's imported data was purged on {}; the project is read only",
                at.format("%Y-%m-%d")
            )));
        }
        if project.archived {
            return Err(DomainError::Conflict(
                "the project is archived and read only; restore it first".into(),
            ));
        }
        Ok(())
    }

    pub async fn retention(&self, actor: &Actor, project: ProjectId) -> Result<RetentionView> {
        actor.require(Permission::ManageProjects)?;
        let found = self.project(actor, project).await?;
        let retention = self.store.retention(project).await?;
        let finished = self.store.real_run_finished_at(project).await?;
        let own_key = !matches!(
            self.store.project_key(project).await?,
            crate::retention::StoredKey::Server
        );
        Ok(RetentionView {
            purge_due_at: found
                .purged_at
                .is_none()
                .then(|| retention.due_at(finished))
                .flatten(),
            retention,
            real_run_finished_at: finished,
            purged_at: found.purged_at,
            own_key,
            holding: self.store.holding(project).await?,
        })
    }

    /// Sets the retention period and what a purge keeps. Owners only.
    pub async fn save_retention(
        &self,
        actor: &Actor,
        project: ProjectId,
        retention: Retention,
    ) -> Result<RetentionView> {
        actor.require(Permission::PurgeData)?;
        let found = self.project(actor, project).await?;
        Self::refuse_if_closed(&found)?;
        retention.validate()?;
        let detail = match retention.days {
            Some(days) => format!("{days} days after the real run"),
            None => "kept until purged by hand".into(),
        };
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::RetentionSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(detail);
        self.store
            .save_retention(project, &retention, &audit)
            .await?;
        self.retention(actor, project).await
    }

    /// Purges the project's imported data now. `confirm` must be the project's name.
    /// Refused while a run of the project is under way.
    pub async fn purge_project(
        &self,
        actor: &Actor,
        project: ProjectId,
        confirm: &str,
    ) -> Result<PurgeOutcome> {
        actor.require(Permission::PurgeData)?;
        let found = self.project(actor, project).await?;
        if confirm.trim() != found.name {
            return Err(DomainError::invalid(
                "confirm",
                "type the project's name exactly to confirm the purge",
            ));
        }
        let report = self.final_report(actor, project).await?;
        self.purge(Some(actor), &found, report).await
    }

    /// Purges every project whose retention period has ended, as Ferry's own doing.
    /// Returns the projects purged; one that cannot be purged now (a run under way)
    /// waits for the next round.
    pub async fn purge_due(&self) -> Result<Vec<ProjectId>> {
        let mut purged = Vec::new();
        for id in self.store.projects_due_for_purge(self.now()).await? {
            let Some(found) = self.store.project(id).await? else {
                continue;
            };
            let report = self.final_report_of(&found).await?;
            match self.purge(None, &found, report).await {
                Ok(_) => purged.push(id),
                Err(DomainError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(purged)
    }

    async fn purge(
        &self,
        actor: Option<&Actor>,
        found: &Project,
        report: FinalReport,
    ) -> Result<PurgeOutcome> {
        if found.purged_at.is_some() {
            return Err(DomainError::Conflict(
                "the project's data was purged already".into(),
            ));
        }
        self.no_active_run(found.id).await?;
        let retention = self.store.retention(found.id).await?;
        let kept_report = if retention.keep_report {
            let now = self.now();
            let mut report = FinalReport {
                purged_at: Some(now),
                ..report
            };
            for milestone in &mut report.milestones {
                if milestone.key == "purged" {
                    milestone.done = Some(crate::plan::AutoDone {
                        at: now,
                        detail: "the imported data was purged and its key destroyed".into(),
                    });
                }
            }
            let json = serde_json::to_vec(&report)
                .map_err(|e| DomainError::Internal(format!("report encoding: {e}")))?;
            Some(self.workers.keys.seal_kept_report(found.id, &json))
        } else {
            None
        };
        let now = self.now();
        let audit = match actor {
            Some(actor) => NewAuditEntry::by(
                actor,
                now,
                AuditAction::ProjectPurged,
                ObjectKind::Project,
                found.id,
            ),
            None => NewAuditEntry::scheduled(
                now,
                AuditAction::ProjectPurged,
                ObjectKind::Project,
                found.id,
            ),
        }
        .in_project(found.id);
        let (outcome, uploads) = self
            .store
            .purge_project(found.id, retention.keep_crosswalk, kept_report, now, &audit)
            .await?;
        self.workers.keys.purged(found.id, &uploads).await;
        Ok(outcome)
    }

    /// Destroys one upload's file, and the records whose newest version it brought.
    pub async fn purge_upload(
        &self,
        actor: &Actor,
        project: ProjectId,
        upload: UploadId,
    ) -> Result<UploadPurge> {
        actor.require(Permission::PurgeData)?;
        let found = self.project(actor, project).await?;
        Self::refuse_if_closed(&found)?;
        let stored = self
            .store
            .upload(upload)
            .await?
            .filter(|u| u.project_id == project)
            .ok_or_else(|| DomainError::NotFound("upload".into()))?;
        if stored.status == crate::uploads::UploadStatus::Parsing {
            return Err(DomainError::Conflict(
                "the upload is being read; wait until it finishes".into(),
            ));
        }
        self.no_active_run(project).await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::UploadPurged,
            ObjectKind::Upload,
            upload,
        )
        .in_project(project)
        .detail(stored.file_name.clone());
        let records = self
            .store
            .purge_upload(project, upload, self.now(), &audit)
            .await?;
        self.workers.keys.upload_purged(upload).await;
        Ok(UploadPurge { upload, records })
    }
}
