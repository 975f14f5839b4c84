//! The final report of a migration: what moved, what was skipped and why, what failed
//! and what became of it, password coverage, the latest reconciliation, the timeline
//! as it happened and who approved which plan — one document, printable and as JSON,
//! with each run's crosswalk to download. Owners and administrators.

use super::{AutoMilestone, Ferry};
use crate::{
    DomainError, Result,
    accounts::Actor,
    ids::ProjectId,
    pagination::PageRequest,
    password_service::TypeCoverage,
    plan::PlanVersionSummary,
    ports::ClassCount,
    review::ReviewSummary,
    roles::Permission,
    runs::{ExtraUsers, RecordState, Run, RunKind},
    scim::target::TargetRole,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The latest reconciliation with what it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconcileResult {
    pub run: Run,
    /// Its users by class (`matches`, `differs_in_target`, `missing_in_target`, …).
    pub classes: Vec<ClassCount>,
    pub extra_users: Option<ExtraUsers>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinalReport {
    pub project: String,
    pub source: String,
    pub generated_at: DateTime<Utc>,
    /// Every user of the project, once: in the target, waiting in review, resolved,
    /// skipped by decision, not attempted.
    pub standing: ReviewSummary,
    /// The runs against production, oldest first: the timeline as it happened.
    pub runs: Vec<Run>,
    /// The latest real run's skipped and failed records by class: why.
    pub classes: Vec<ClassCount>,
    /// Password coverage per user type.
    pub passwords: Vec<TypeCoverage>,
    pub reconciliation: Option<ReconcileResult>,
    /// The milestones Ferry completes, with when.
    pub milestones: Vec<AutoMilestone>,
    /// The plan's approved versions, newest first.
    pub approvals: Vec<PlanVersionSummary>,
    /// Set in the report a purge kept: the report as it stood then.
    #[serde(default)]
    pub purged_at: Option<DateTime<Utc>>,
}

impl Ferry {
    /// The report as it stands; once the project's data was purged, the report the
    /// purge kept (not found when it kept none).
    pub async fn final_report(&self, actor: &Actor, project: ProjectId) -> Result<FinalReport> {
        actor.require(Permission::ManageProjects)?;
        let found = self.project(actor, project).await?;
        if found.purged_at.is_some() {
            let sealed = self.store.kept_report(project).await?.ok_or_else(|| {
                DomainError::NotFound(
                    "report: the project's data was purged without keeping its report".into(),
                )
            })?;
            let json = self.workers.keys.open_kept_report(project, &sealed)?;
            return serde_json::from_slice(&json)
                .map_err(|e| DomainError::Internal(format!("kept report: {e}")));
        }
        self.final_report_of(&found).await
    }

    pub(crate) async fn final_report_of(
        &self,
        found: &crate::projects::Project,
    ) -> Result<FinalReport> {
        let project = found.id;
        let mut runs: Vec<Run> = self
            .store
            .runs(project, PageRequest::new(Some(0), Some(200)))
            .await?
            .items
            .into_iter()
            .filter(|r| r.target_role == TargetRole::Production.as_str())
            .collect();
        runs.sort_by_key(|r| r.created_at);
        let latest = |kind: RunKind| {
            runs.iter()
                .rev()
                .find(|r| r.kind == kind && r.state.is_final())
        };
        let classes = match latest(RunKind::RealRun) {
            Some(run) => self.store.error_classes(run.id).await?,
            None => Vec::new(),
        };
        let reconciliation = match latest(RunKind::Reconcile) {
            Some(run) => {
                let (_, sealed) = self.store.run_finish(run.id).await?;
                let extra_users = match sealed {
                    Some(sealed) => Some(self.workers.runs.open_extra_users(run, &sealed).await?),
                    None => None,
                };
                Some(ReconcileResult {
                    classes: self.store.error_classes(run.id).await?,
                    run: run.clone(),
                    extra_users,
                })
            }
            None => None,
        };
        let plan = self.plan_of(found).await?;
        let approvals = self
            .store
            .plan_versions(project, PageRequest::new(Some(0), Some(100)))
            .await?
            .items
            .into_iter()
            .filter(|v| v.approved_at.is_some())
            .collect();
        Ok(FinalReport {
            purged_at: None,
            project: found.name.clone(),
            source: found.source_kind.label().to_string(),
            generated_at: self.now(),
            standing: self.store.queue_summary(project).await?,
            classes: classes
                .into_iter()
                .filter(|c| matches!(c.state, RecordState::Failed | RecordState::Skipped))
                .collect(),
            passwords: self.store.password_coverage(project, 1).await?.by_type,
            reconciliation,
            milestones: plan.milestones,
            approvals,
            runs,
        })
    }
}
