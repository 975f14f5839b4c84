//! The use-cases of the Plan stage: the plan as saved (or the guide's default), with
//! what Ferry's own data adds to it — the risks it shows, the milestones Ferry
//! completes itself, the suggested window, the acceptable-impact tests — its versions,
//! their comparison, and an owner's approval, which the real run's pre-flight checks.
//! Owners and administrators edit; owners approve.

use super::Ferry;
use crate::{
    DomainError, Result,
    accounts::Actor,
    assess::{
        AssessmentStatus, Report,
        classify::{DataClass, ValueFacts, classify},
        heatmap,
    },
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::ProjectId,
    mapping::{
        Mapping,
        impact::ImpactReport,
        source::{Expression, SourceField},
        versions::normalize_note,
    },
    pagination::{Page, PageRequest},
    plan::{
        AutoDone, ImpactFacts, ImpactTest, PlanChange, PlanDocument, PlanVersion,
        PlanVersionSummary, ProposedRisk, RiskFacts, SuggestedWindow, UserSees, compare,
        impact_tests, propose, suggest_window,
    },
    roles::Permission,
    runs::{Run, RunKind, RunState},
    user_types::{PasswordStrategy, UserTypes},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What saving the plan takes: the document and a note on what changed.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanInput {
    pub document: PlanDocument,
    #[serde(default)]
    pub note: String,
}

/// A user type as the plan's experiences section offers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanUserType {
    pub name: String,
    pub moves: bool,
    /// What its users see given its password strategy.
    pub sees: UserSees,
}

/// A milestone Ferry completes itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoMilestone {
    /// `assessment`, `mapping`, `test_run`, `plan_approved`, `real_run`, `reconciled`,
    /// `purged`.
    pub key: String,
    pub title: String,
    pub done: Option<AutoDone>,
    /// What it waits for, when not done.
    pub waiting_for: String,
}

/// The milestones after the real run: the latest reconciliation found everything as
/// sent, and the imported data was purged.
fn with_close(
    mut milestones: Vec<AutoMilestone>,
    runs: &[Run],
    purged_at: Option<DateTime<Utc>>,
) -> Vec<AutoMilestone> {
    let reconciled = runs
        .iter()
        .filter(|r| r.kind == RunKind::Reconcile && r.state.is_final() && r.finished_at.is_some())
        .max_by_key(|r| r.finished_at);
    let clean = reconciled.filter(|r| r.state == RunState::Succeeded && r.counts.failed == 0);
    milestones.push(AutoMilestone {
        key: "reconciled".into(),
        title: "Reconciliation clean".into(),
        done: clean.and_then(|r| {
            Some(AutoDone {
                at: r.finished_at?,
                detail: format!(
                    "{} users read back from the target, all as sent",
                    crate::numbers::grouped(r.counts.skipped)
                ),
            })
        }),
        waiting_for: match reconciled {
            Some(r) if r.counts.failed > 0 => format!(
                "the {} users the latest reconciliation found different or missing, put right \
                 from the review queue, and a reconciliation after that (Runs page)",
                crate::numbers::grouped(r.counts.failed)
            ),
            _ => "a reconciliation that finds every user as sent (Runs page)".into(),
        },
    });
    milestones.push(AutoMilestone {
        key: "purged".into(),
        title: "Exports purged".into(),
        done: purged_at.map(|at| AutoDone {
            at,
            detail: "the imported data was purged and its key destroyed".into(),
        }),
        waiting_for: "the purge of the imported data once the retention period ends (Report page)"
            .into(),
    });
    milestones
}

/// The Plan page in one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanView {
    /// The latest saved version's document, or the guide's default before any.
    pub document: PlanDocument,
    pub latest: Option<PlanVersionSummary>,
    /// The latest version an owner approved.
    pub approved: Option<PlanVersionSummary>,
    pub user_types: Vec<PlanUserType>,
    pub proposals: Vec<ProposedRisk>,
    pub milestones: Vec<AutoMilestone>,
    pub suggestion: Option<SuggestedWindow>,
    /// Why there is no suggestion, when there is none.
    pub suggestion_missing: Option<String>,
    /// Last logins by weekday (Monday first) and hour in the plan's time zone.
    pub heatmap: Option<Vec<Vec<u64>>>,
    /// Today in the plan's time zone (where new periods start from).
    pub today: chrono::NaiveDate,
    pub facts: ImpactFacts,
    pub impact: Vec<ImpactTest>,
    pub may_approve: bool,
}

/// What a check of the plan before the real run finds.
pub(super) enum PlanStanding {
    /// No plan saved: nothing to hold the run to.
    None,
    Approved(u32),
    NotApproved(u32),
    /// Approved, but these limits are not met by the latest impact.
    Unmet(u32, Vec<ImpactTest>),
}

/// What the users of a type see, from its password strategy.
fn sees(moves: bool, strategy: PasswordStrategy) -> UserSees {
    match (moves, strategy) {
        (false, _) => UserSees::Disabled,
        (true, PasswordStrategy::SilentMigration) => UserSees::SilentMigration,
        (true, _) => UserSees::Invitation,
    }
}

/// Target attributes the rules fill from personal data: a normalized field naming a
/// person, or an attribute the assessment (or an administrator) classed as such.
fn pii_targets(mapping: &Mapping, classes: &[(String, DataClass)]) -> Vec<String> {
    let personal = |field: &SourceField| match field {
        SourceField::Username
        | SourceField::Email
        | SourceField::Emails
        | SourceField::Phone
        | SourceField::Phones
        | SourceField::GivenName
        | SourceField::FamilyName
        | SourceField::DisplayName => true,
        SourceField::Attribute(path) => {
            let path = path.join(".");
            let class = classes
                .iter()
                .find(|(p, _)| *p == path)
                .map_or_else(|| classify(&path, &ValueFacts::default()).0, |(_, c)| *c);
            class == DataClass::Pii
        }
        _ => false,
    };
    let mut targets: Vec<String> = mapping
        .rules
        .iter()
        .filter(|rule| {
            Expression::parse(&rule.source).is_ok_and(|e| e.fields().into_iter().any(&personal))
        })
        .map(|rule| rule.target.clone())
        .collect();
    targets.dedup();
    targets
}

impl Ferry {
    async fn may_plan(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        Ok(())
    }

    /// The Plan page: the document with what Ferry's data adds to it, now.
    pub async fn plan(&self, actor: &Actor, project: ProjectId) -> Result<PlanView> {
        self.may_plan(actor, project).await?;
        self.plan_view(actor, project).await
    }

    async fn plan_view(&self, actor: &Actor, project: ProjectId) -> Result<PlanView> {
        let found = self.project(actor, project).await?;
        let mut view = self.plan_of(&found).await?;
        view.may_approve = actor.role.allows(Permission::ApprovePlans);
        Ok(view)
    }

    /// The plan of `found`, as nobody in particular sees it.
    pub(crate) async fn plan_of(&self, found: &crate::projects::Project) -> Result<PlanView> {
        let (project, purged_at) = (found.id, found.purged_at);
        let latest = self.store.plan_version(project, None).await?;
        let approved = self.approved_plan(project).await?;
        let document = latest
            .as_ref()
            .map_or_else(PlanDocument::default, |v| v.document.clone());
        let zone = document.zone().unwrap_or(chrono_tz::UTC);
        let now = self.now();
        let report = self.assessment_report(project).await?;
        let Measured {
            user_types,
            impact,
            impact_at,
            runs,
            facts,
        } = self.measured(project).await?;
        let test_run = latest_test_run(&runs);
        let rate = test_run.and_then(rate_of);
        let (suggestion, suggestion_missing) = match (&report, facts.run_seconds, rate) {
            (None, _, _) => (
                None,
                Some(
                    "assess the data: the heatmap of last logins shows when users are away"
                        .to_string(),
                ),
            ),
            (_, None, _) | (_, _, None) => (
                None,
                Some("run a test: its measured rate tells how long the real run takes".to_string()),
            ),
            (Some(report), Some(seconds), Some(rate)) => {
                let hours = heatmap(&report.logins, zone);
                let basis = format!("{rate:.0} users a second (the latest test run)");
                match suggest_window(&hours, seconds, zone, now, &basis) {
                    Some(window) => (Some(window), None),
                    None => (None, Some("the export carries no last-login times (or the run needs more than a week): no quiet stretch to suggest".to_string())),
                }
            }
        };
        let latest_mapping = self.store.mapping_version(project, None).await?;
        let classes = self.store.attribute_classes(project).await?;
        let silent = user_types
            .user_types
            .iter()
            .any(|t| t.include && t.password == PasswordStrategy::SilentMigration);
        let silent_without_hash = match (&report, silent) {
            (Some(report), true) if self.legacy_for(project).await?.is_none() => {
                report.totals.without_password
            }
            _ => 0,
        };
        let risk_facts = RiskFacts {
            quality: report
                .as_ref()
                .map(|r| {
                    r.quality
                        .iter()
                        .map(|q| (q.label.clone(), q.count))
                        .collect()
                })
                .unwrap_or_default(),
            rejected: impact.as_ref().map(|i| i.rejected),
            colliding: impact.as_ref().map(colliding),
            silent_without_hash,
            run_seconds: facts.run_seconds,
            pii_targets: latest_mapping
                .as_ref()
                .map(|m| pii_targets(&m.mapping, &classes))
                .unwrap_or_default(),
        };
        let proposals = propose(&risk_facts, &document);
        let grid = report.as_ref().filter(|r| !r.logins.is_empty()).map(|r| {
            heatmap(&r.logins, zone)
                .iter()
                .map(|d| d.to_vec())
                .collect()
        });
        let milestones = self
            .auto_milestones(
                project,
                &runs,
                test_run,
                impact.as_ref(),
                impact_at,
                approved.as_ref(),
            )
            .await?;
        let milestones = with_close(milestones, &runs, purged_at);
        Ok(PlanView {
            impact: impact_tests(&document.acceptable, &facts),
            document,
            latest: latest.map(|v| v.summary),
            approved,
            user_types: user_types
                .user_types
                .iter()
                .map(|t| PlanUserType {
                    name: t.name.clone(),
                    moves: t.include,
                    sees: sees(t.include, t.password),
                })
                .collect(),
            proposals,
            milestones,
            suggestion,
            suggestion_missing,
            heatmap: grid,
            today: now.with_timezone(&zone).date_naive(),
            facts,
            may_approve: false,
        })
    }

    /// The latest version an owner approved.
    async fn approved_plan(&self, project: ProjectId) -> Result<Option<PlanVersionSummary>> {
        let versions = self
            .store
            .plan_versions(project, PageRequest::new(Some(0), Some(100)))
            .await?;
        Ok(versions.items.into_iter().find(|v| v.approved_at.is_some()))
    }

    async fn assessment_report(&self, project: ProjectId) -> Result<Option<Report>> {
        let Some(row) = self.store.assessment(project).await? else {
            return Ok(None);
        };
        match (row.status, row.sealed_report) {
            (AssessmentStatus::Ready, Some(sealed)) => Ok(Some(
                self.workers
                    .assessments
                    .open_report(project, &sealed)
                    .await?,
            )),
            _ => Ok(None),
        }
    }

    /// What the acceptable impact is checked against: the saved user types, the
    /// current impact (and when it was computed), the runs and the facts from them.
    async fn measured(&self, project: ProjectId) -> Result<Measured> {
        let user_types = self.saved_user_types(project).await?.user_types;
        let (impact, impact_at) = match self.current_impact(project, &user_types).await? {
            Some((report, at)) => (Some(report), at),
            None => (None, None),
        };
        let runs = self
            .store
            .runs(project, PageRequest::new(Some(0), Some(200)))
            .await?
            .items;
        let facts = self
            .impact_facts(
                project,
                &user_types,
                impact.as_ref(),
                latest_test_run(&runs),
            )
            .await?;
        Ok(Measured {
            user_types,
            impact,
            impact_at,
            runs,
            facts,
        })
    }

    /// The impact of the latest mapping with the saved user types, if computed, with
    /// when it finished.
    async fn current_impact(
        &self,
        project: ProjectId,
        user_types: &UserTypes,
    ) -> Result<Option<(ImpactReport, Option<DateTime<Utc>>)>> {
        let latest = self.store.mapping_version(project, None).await?;
        let Some(row) = self.store.impact(project).await? else {
            return Ok(None);
        };
        match (row.sealed_report, latest) {
            (Some(sealed), Some(latest))
                if row.status == AssessmentStatus::Ready
                    && row.mapping == latest.mapping
                    && row.user_types == *user_types =>
            {
                Ok(Some((
                    self.workers.records.open_impact(project, &sealed).await?,
                    row.finished_at,
                )))
            }
            _ => Ok(None),
        }
    }

    /// Who moves, who resets, what fails, and how long the run takes at the latest
    /// test run's rate (all records counted when the impact is not current).
    async fn impact_facts(
        &self,
        project: ProjectId,
        user_types: &UserTypes,
        impact: Option<&ImpactReport>,
        test_run: Option<&Run>,
    ) -> Result<ImpactFacts> {
        let moving = impact.map(|i| i.accepted + i.rejected);
        let resets = impact.map(|i| {
            user_types
                .user_types
                .iter()
                .zip(&i.user_types.user_types)
                .filter(|(t, _)| t.include && t.password != PasswordStrategy::SilentMigration)
                .map(|(_, n)| *n)
                .sum()
        });
        let failing = impact.map(|i| i.rejected + colliding(i));
        let users = match moving {
            Some(n) => n,
            None => self.store.count_records(project).await?,
        };
        let run_seconds = test_run
            .and_then(rate_of)
            .map(|rate| (users as f64 / rate).ceil() as u64);
        Ok(ImpactFacts {
            moving,
            resets,
            failing,
            run_seconds,
        })
    }

    async fn auto_milestones(
        &self,
        project: ProjectId,
        runs: &[Run],
        test_run: Option<&Run>,
        impact: Option<&ImpactReport>,
        impact_at: Option<DateTime<Utc>>,
        approved: Option<&PlanVersionSummary>,
    ) -> Result<Vec<AutoMilestone>> {
        let assessed = self
            .store
            .assessment(project)
            .await?
            .filter(|a| a.status == AssessmentStatus::Ready)
            .and_then(|a| a.finished_at);
        let mapping_done = impact.filter(|i| colliding(i) == 0).and(impact_at);
        let test_done = match test_run {
            Some(run) => {
                let (_, sealed) = self.store.run_finish(run.id).await?;
                let clean = match sealed {
                    Some(sealed) => {
                        let readback = self.workers.runs.open_readback(run, &sealed).await?;
                        readback.missing == 0
                            && readback.unreadable == 0
                            && readback.mismatches.is_empty()
                            && readback.more_mismatches == 0
                    }
                    None => false,
                };
                clean.then_some(run.finished_at).flatten()
            }
            None => None,
        };
        // Finished, with or without failures (those wait in review).
        let real = runs
            .iter()
            .filter(|r| {
                r.kind == RunKind::RealRun
                    && matches!(r.state, RunState::Succeeded | RunState::Failed)
                    && r.finished_at.is_some()
            })
            .max_by_key(|r| r.finished_at);
        let milestone =
            |key: &str, title: &str, at: Option<DateTime<Utc>>, detail: String, waiting: &str| {
                AutoMilestone {
                    key: key.into(),
                    title: title.into(),
                    done: at.map(|at| AutoDone { at, detail }),
                    waiting_for: waiting.into(),
                }
            };
        Ok(vec![
            milestone(
                "assessment",
                "Data assessed",
                assessed,
                "the assessment finished".into(),
                "the assessment of the uploads (Assessment page)",
            ),
            milestone(
                "mapping",
                "Mapping ready",
                mapping_done,
                "the impact of the latest mapping was computed with nothing colliding".into(),
                "the impact of the latest mapping, computed with nothing colliding (Mapping page)",
            ),
            milestone(
                "test_run",
                "Test run passed",
                test_done,
                "a test run succeeded and its read-back found every user as sent".into(),
                "a test run that succeeds with a clean read-back (Runs page)",
            ),
            milestone(
                "plan_approved",
                "Plan approved",
                approved.and_then(|v| v.approved_at),
                approved
                    .map(|v| {
                        format!(
                            "version {} approved by {}",
                            v.version,
                            v.approved_by_email.as_deref().unwrap_or("a former member")
                        )
                    })
                    .unwrap_or_default(),
                "an owner's approval of the latest version (below)",
            ),
            milestone(
                "real_run",
                "Real run finished",
                real.and_then(|r| r.finished_at),
                real.map(|r| {
                    format!(
                        "{} created, {} updated, {} failed into review",
                        crate::numbers::grouped(r.counts.created),
                        crate::numbers::grouped(r.counts.updated),
                        crate::numbers::grouped(r.counts.failed)
                    )
                })
                .unwrap_or_default(),
                "the real run (Runs page)",
            ),
        ])
    }

    /// Saves the plan as its next version; the page comes back as it now stands.
    pub async fn save_plan(
        &self,
        actor: &Actor,
        project: ProjectId,
        input: PlanInput,
    ) -> Result<PlanView> {
        self.writable_project(actor, project).await?;
        self.may_plan(actor, project).await?;
        input.document.check()?;
        let note = normalize_note(&input.note)?;
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::PlanSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(if note.is_empty() {
            "no note".to_string()
        } else {
            note.clone()
        });
        self.store
            .save_plan_version(
                project,
                &input.document,
                &note,
                Some(actor.account_id),
                now,
                &audit,
            )
            .await?;
        self.plan_view(actor, project).await
    }

    pub async fn plan_versions(
        &self,
        actor: &Actor,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<PlanVersionSummary>> {
        self.may_plan(actor, project).await?;
        self.store.plan_versions(project, page).await
    }

    pub async fn plan_version(
        &self,
        actor: &Actor,
        project: ProjectId,
        version: u32,
    ) -> Result<PlanVersion> {
        self.may_plan(actor, project).await?;
        self.store
            .plan_version(project, Some(version))
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("plan version {version}")))
    }

    /// What changed from version `from` to version `to`.
    pub async fn compare_plan(
        &self,
        actor: &Actor,
        project: ProjectId,
        from: u32,
        to: u32,
    ) -> Result<Vec<PlanChange>> {
        let before = self.plan_version(actor, project, from).await?;
        let after = self.plan_version(actor, project, to).await?;
        Ok(compare(&before.document, &after.document))
    }

    /// An owner approves the latest version (an older one would hold the run to a
    /// plan that no longer says what the team decided).
    pub async fn approve_plan(
        &self,
        actor: &Actor,
        project: ProjectId,
        version: u32,
    ) -> Result<PlanView> {
        self.writable_project(actor, project).await?;
        self.may_plan(actor, project).await?;
        actor.require(Permission::ApprovePlans)?;
        let latest = self
            .store
            .plan_version(project, None)
            .await?
            .ok_or_else(|| DomainError::NotFound("plan".into()))?;
        if version > latest.summary.version {
            return Err(DomainError::NotFound(format!("plan version {version}")));
        }
        if latest.summary.version != version {
            return Err(DomainError::invalid(
                "version",
                format!(
                    "only the latest version ({}) can be approved",
                    latest.summary.version
                ),
            ));
        }
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::PlanApproved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("version {version}"));
        self.store
            .approve_plan_version(project, version, actor.account_id, now, &audit)
            .await?;
        self.plan_view(actor, project).await
    }

    /// Where the plan stands for the real run: the latest version approved and its
    /// acceptable-impact numbers met by the latest impact.
    pub(super) async fn plan_standing(&self, project: ProjectId) -> Result<PlanStanding> {
        let Some(latest) = self.store.plan_version(project, None).await? else {
            return Ok(PlanStanding::None);
        };
        let version = latest.summary.version;
        if latest.summary.approved_at.is_none() {
            return Ok(PlanStanding::NotApproved(version));
        }
        let facts = self.measured(project).await?.facts;
        let unmet: Vec<ImpactTest> = impact_tests(&latest.document.acceptable, &facts)
            .into_iter()
            .filter(|t| !t.met)
            .collect();
        Ok(if unmet.is_empty() {
            PlanStanding::Approved(version)
        } else {
            PlanStanding::Unmet(version, unmet)
        })
    }
}

/// See [`Ferry::measured`].
struct Measured {
    user_types: UserTypes,
    impact: Option<ImpactReport>,
    impact_at: Option<DateTime<Utc>>,
    runs: Vec<Run>,
    facts: ImpactFacts,
}

/// The latest test run that succeeded: the rate the plan's estimates use.
fn latest_test_run(runs: &[Run]) -> Option<&Run> {
    runs.iter()
        .filter(|r| r.kind == RunKind::TestRun && r.state == RunState::Succeeded)
        .max_by_key(|r| r.finished_at)
}

/// Records colliding on a unique attribute.
fn colliding(impact: &ImpactReport) -> u64 {
    impact.rules.iter().map(|r| r.collisions).sum()
}

/// Users a second a finished run handled.
fn rate_of(run: &Run) -> Option<f64> {
    let seconds = (run.finished_at? - run.started_at?).num_milliseconds() as f64 / 1000.0;
    let done = run.counts.created + run.counts.updated + run.counts.skipped + run.counts.failed;
    (seconds > 0.0 && done > 0).then(|| done as f64 / seconds)
}
