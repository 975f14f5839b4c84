//! The use-cases of goals and strategy: the user types (read, save, count live on a
//! sample), the preview of mapped records, the impact of a mapping over the whole
//! data set (computed in the background), and the estimate of the real run. Owners
//! and administrators only.

use super::Ferry;
use crate::{
    DomainError, Result,
    accounts::Actor,
    assess::{
        AssessmentStatus,
        classify::{DataClass, ValueFacts, classify},
    },
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::ProjectId,
    mapping::{
        CompiledMapping, Mapping, RuleProblem,
        impact::{Evaluator, ImpactReport},
        source::{Expression, SourceField},
    },
    ports::Sample,
    scim::{discovery::TestStepKind, target::TargetRole},
    user_types::{UserTypeCounts, UserTypeProblem, UserTypes},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Records a live count looks at; beyond it, counts are estimated from a sample.
pub const COUNT_SAMPLE: u32 = 10_000;
/// Records one preview shows.
pub const PREVIEW_RECORDS: u32 = 20;

/// One record as `mapping` makes it: each rule's value or error (rules in `hidden`
/// left out), its user type, and the resource.
pub(super) fn preview_record(
    mapping: &Mapping,
    compiled: &CompiledMapping,
    hidden: &[usize],
    placed: Option<&crate::user_types::CompiledUserTypes>,
    user_types: &UserTypes,
    user: &crate::import::NormalizedUser,
) -> PreviewRecord {
    // One mapping pass gives both the resource and each rule's value.
    let mut values: Vec<(usize, Json)> = Vec::new();
    let mapped = compiled.map_seeing(user, |i, value| values.push((i, value.clone())));
    let user_type = placed.and_then(|p| p.place(user));
    let rules = mapping
        .rules
        .iter()
        .enumerate()
        .filter(|(i, _)| compiled.has_rule(*i) && !hidden.contains(i))
        .map(|(i, rule)| RulePreview {
            rule: i,
            target: rule.target.clone(),
            source: compiled.source_value(i, user),
            value: values.iter().find(|(v, _)| *v == i).map(|(_, j)| j.clone()),
            error: mapped
                .failures
                .iter()
                .find(|f| f.rule == i)
                .map(|f| f.message.clone()),
        })
        .collect();
    PreviewRecord {
        source_id: user.source_id.clone(),
        user_type: user_type
            .and_then(|s| user_types.user_types.get(s))
            .map(|s| s.name.clone()),
        moves: match (placed, user_type) {
            (Some(p), Some(s)) => p.included(s),
            _ => false,
        },
        rules,
        resource: mapped.resource,
    }
}

/// The user types as the editor shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserTypesView {
    #[serde(alias = "segments")]
    pub user_types: UserTypes,
    pub problems: Vec<UserTypeProblem>,
    /// `None` until they are first saved (the default: everyone moves).
    pub saved_at: Option<DateTime<Utc>>,
    pub saved_by_email: Option<String>,
}

/// How many users each user type holds, counted on a sample or on every record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserTypeEstimate {
    pub counts: UserTypeCounts,
    /// The project's records; `counts` covers all of them when `counts.counted`
    /// equals it, otherwise a random sample to scale.
    pub records: u64,
}

/// One rule applied to one record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulePreview {
    pub rule: usize,
    pub target: String,
    /// What the rule reads, before its transforms.
    pub source: Option<String>,
    /// What it writes; `None` when nothing (or when it fails).
    pub value: Option<Json>,
    pub error: Option<String>,
}

/// One record as the mapping makes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewRecord {
    pub source_id: String,
    /// The user type it falls in; `None` for none.
    #[serde(alias = "segment")]
    pub user_type: Option<String>,
    pub moves: bool,
    pub rules: Vec<RulePreview>,
    /// The SCIM resource the target would receive.
    pub resource: Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
    /// What is wrong with the rules; rules with problems are left out of the records.
    pub problems: Vec<RuleProblem>,
    pub records: Vec<PreviewRecord>,
    /// Records looked at to find them (a search stops after a bounded number).
    pub scanned: u64,
    pub total: u64,
}

/// The impact computation as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImpactView {
    pub status: AssessmentStatus,
    pub records_total: u64,
    pub records_done: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// The rules and user types it was computed for.
    pub mapping: Mapping,
    #[serde(alias = "segments")]
    pub user_types: UserTypes,
    /// Whether those are the latest saved mapping and the saved user types.
    pub current: bool,
    pub report: Option<ImpactReport>,
}

/// How long the real run would take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Estimate {
    /// Users that would move, and whether that is counted on every record.
    pub moving: u64,
    pub exact: bool,
    /// Users per second the estimate assumes; `None` without a measurement.
    pub users_per_second: Option<f64>,
    pub seconds: Option<u64>,
    /// Where the rate comes from.
    pub basis: String,
}

/// The goals page in one: user types, their live counts and the estimate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoalsView {
    #[serde(alias = "segments")]
    pub user_types: UserTypesView,
    pub estimate: UserTypeEstimate,
    pub run: Estimate,
}

/// Whether reading an attribute path would read something confidential: the path
/// itself (an administrator's class wins over the one its name gives), or anything
/// inside it — a rule reading `app_metadata` reads the MFA seed kept under it.
fn confidential(path: &str, classes: &[(String, DataClass)]) -> bool {
    let own = classes
        .iter()
        .find(|(p, _)| p == path || p.strip_suffix("[]") == Some(path));
    let itself = match own {
        Some((_, class)) => *class == DataClass::Confidential,
        None => classify(path, &ValueFacts::default()).0 == DataClass::Confidential,
    };
    let (object, list) = (format!("{path}."), format!("{path}[]"));
    itself
        || classes.iter().any(|(p, class)| {
            *class == DataClass::Confidential && (p.starts_with(&object) || p.starts_with(&list))
        })
}

impl Ferry {
    async fn may_set_goals(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        actor.require(crate::roles::Permission::ManageProjects)?;
        self.project(actor, project).await?;
        Ok(())
    }

    /// Rules reading confidential attributes (secrets: password hashes, MFA seeds,
    /// tokens), which never move.
    pub(super) async fn confidential_problems(
        &self,
        project: ProjectId,
        mapping: &Mapping,
    ) -> Result<Vec<RuleProblem>> {
        let classes = self.store.attribute_classes(project).await?;
        let mut problems = Vec::new();
        for (i, rule) in mapping.rules.iter().enumerate() {
            let Ok(expression) = Expression::parse(&rule.source) else {
                continue;
            };
            for field in expression.fields() {
                if let SourceField::Attribute(path) = field {
                    let path = path.join(".");
                    if confidential(&path, &classes) {
                        problems.push(RuleProblem {
                            rule: Some(i),
                            field: "source".into(),
                            message: format!(
                                "attributes.{path} is confidential and cannot be mapped \
                                 (an administrator can change its class on the Assessment page)"
                            ),
                        });
                    }
                }
            }
        }
        Ok(problems)
    }

    /// Compiles the rules for use on records, leaving out those with problems and
    /// those reading a confidential attribute, whose values must never be read.
    pub(super) async fn compile_for_records(
        &self,
        project: ProjectId,
        mapping: &Mapping,
    ) -> Result<(CompiledMapping, Vec<RuleProblem>)> {
        let discovery = self.production_discovery(project).await?;
        let secret = self.confidential_problems(project, mapping).await?;
        let mut safe = mapping.clone();
        for rule in secret.iter().filter_map(|p| p.rule) {
            if let Some(rule) = safe.rules.get_mut(rule) {
                rule.source = String::new();
            }
        }
        let (compiled, mut problems) = safe.compile_lenient(discovery.as_ref());
        problems.retain(|p| !(p.field == "source" && secret.iter().any(|s| s.rule == p.rule)));
        problems.extend(secret);
        problems.sort_by_key(|p| p.rule);
        Ok((compiled, problems))
    }

    pub(super) async fn saved_user_types(&self, project: ProjectId) -> Result<UserTypesView> {
        let stored = self.store.user_types(project).await?;
        let (user_types, saved_at, saved_by_email) = match stored {
            Some(s) => (s.user_types, Some(s.saved_at), s.saved_by_email),
            None => (UserTypes::default(), None, None),
        };
        let problems = user_types.compile(self.now()).err().unwrap_or_default();
        Ok(UserTypesView {
            user_types,
            problems,
            saved_at,
            saved_by_email,
        })
    }

    pub async fn user_types(&self, actor: &Actor, project: ProjectId) -> Result<UserTypesView> {
        self.may_set_goals(actor, project).await?;
        self.saved_user_types(project).await
    }

    /// Saves the user types. Like mapping versions, they are kept with their problems
    /// (work in progress), which come back with them; runs refuse them until fixed.
    pub async fn save_user_types(
        &self,
        actor: &Actor,
        project: ProjectId,
        user_types: UserTypes,
    ) -> Result<UserTypesView> {
        self.writable_project(actor, project).await?;
        self.may_set_goals(actor, project).await?;
        if user_types.user_types.len() > crate::user_types::MAX_SEGMENTS {
            return Err(DomainError::invalid(
                "user_types",
                format!("at most {} user types", crate::user_types::MAX_SEGMENTS),
            ));
        }
        let now = self.now();
        let included = user_types.user_types.iter().filter(|s| s.include).count();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::UserTypesSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{} user types, {included} moving",
            user_types.user_types.len()
        ));
        self.store
            .save_user_types(project, &user_types, Some(actor.account_id), now, &audit)
            .await?;
        self.saved_user_types(project).await
    }

    /// Counts users per user type: on every record up to `COUNT_SAMPLE`, beyond that
    /// on a random sample of that size.
    pub async fn count_user_types(
        &self,
        actor: &Actor,
        project: ProjectId,
        user_types: &UserTypes,
    ) -> Result<UserTypeEstimate> {
        self.may_set_goals(actor, project).await?;
        self.counted(project, user_types).await
    }

    /// The counts, for a caller that checked the actor already.
    async fn counted(
        &self,
        project: ProjectId,
        user_types: &UserTypes,
    ) -> Result<UserTypeEstimate> {
        let work = self.workers.records.as_ref();
        let compiled = user_types.compile(self.now()).map_err(|problems| {
            let first = &problems[0];
            DomainError::invalid(first.field.clone(), first.message.clone())
        })?;
        let records = self.store.count_records(project).await?;
        let sampled = work
            .sample(project, &Sample::Random { seed: 0 }, COUNT_SAMPLE)
            .await?;
        let mut counts = UserTypeCounts::new(compiled.len());
        for user in &sampled.records {
            counts.add(compiled.place(user), &compiled);
        }
        Ok(UserTypeEstimate { counts, records })
    }

    /// The goals page: saved user types with their counts and the run estimate.
    pub async fn goals(&self, actor: &Actor, project: ProjectId) -> Result<GoalsView> {
        self.may_set_goals(actor, project).await?;
        let user_types = self.saved_user_types(project).await?;
        let estimate = if user_types.problems.is_empty() {
            self.counted(project, &user_types.user_types).await?
        } else {
            UserTypeEstimate {
                counts: UserTypeCounts::new(user_types.user_types.user_types.len()),
                records: self.store.count_records(project).await?,
            }
        };
        let run = self
            .estimate(project, &user_types.user_types, &estimate)
            .await?;
        Ok(GoalsView {
            user_types,
            estimate,
            run,
        })
    }

    /// The run's duration from the users that move (the impact's exact count when it
    /// is current, else the sample scaled) and the production target's measured speed.
    async fn estimate(
        &self,
        project: ProjectId,
        user_types: &UserTypes,
        sample: &UserTypeEstimate,
    ) -> Result<Estimate> {
        let work = self.workers.records.as_ref();
        let exact_impact = match self.store.impact(project).await? {
            Some(row) if row.status == AssessmentStatus::Ready && row.user_types == *user_types => {
                match row.sealed_report {
                    Some(sealed) => work.open_impact(project, &sealed).await.ok(),
                    None => None,
                }
            }
            _ => None,
        };
        let (moving, exact) = match exact_impact {
            Some(report) => (report.accepted + report.rejected, true),
            None if sample.counts.counted == 0 => (0, sample.records == 0),
            None => {
                let scaled = (sample.counts.moving as f64 * sample.records as f64
                    / sample.counts.counted as f64)
                    .round() as u64;
                (scaled, sample.counts.counted == sample.records)
            }
        };
        let round_trip = self
            .store
            .target(project, TargetRole::Production)
            .await?
            .and_then(|t| t.last_test)
            .filter(|r| r.passed())
            .and_then(|r| {
                r.steps
                    .iter()
                    .find(|s| s.kind == TestStepKind::ServiceProviderConfig)
                    .map(|s| s.millis.max(1))
            });
        Ok(match round_trip {
            Some(ms) => {
                let rate = 1000.0 / ms as f64;
                Estimate {
                    moving,
                    exact,
                    users_per_second: Some(rate),
                    seconds: Some((moving as f64 / rate).ceil() as u64),
                    basis: format!(
                        "one user per round trip of the production target's connection test \
                         ({ms} ms): a first guess that leaves out the target's own work on each \
                         user, so the real run most likely takes longer; a test run measures \
                         the real rate"
                    ),
                }
            }
            None => Estimate {
                moving,
                exact,
                users_per_second: None,
                seconds: None,
                basis: "test the production target's connection to estimate the run".into(),
            },
        })
    }

    /// Maps sample records with the rules as they are being edited (saved or not).
    pub async fn preview(
        &self,
        actor: &Actor,
        project: ProjectId,
        mapping: &Mapping,
        sample: &Sample,
    ) -> Result<Preview> {
        let work = self.workers.records.as_ref();
        self.may_set_goals(actor, project).await?;
        if let Sample::Search { text } = sample
            && text.trim().is_empty()
        {
            return Err(DomainError::invalid("text", "type something to search for"));
        }
        let (compiled, problems) = self.compile_for_records(project, mapping).await?;
        let user_types = self.saved_user_types(project).await?;
        let placed = user_types.user_types.compile(self.now()).ok();
        let total = self.store.count_records(project).await?;
        let sampled = work.sample(project, sample, PREVIEW_RECORDS).await?;
        let hidden: Vec<usize> = problems.iter().filter_map(|p| p.rule).collect();
        let records = sampled
            .records
            .iter()
            .map(|user| {
                preview_record(
                    mapping,
                    &compiled,
                    &hidden,
                    placed.as_ref(),
                    &user_types.user_types,
                    user,
                )
            })
            .collect::<Vec<_>>();
        let what = match sample {
            Sample::Random { .. } => "a random sample".to_string(),
            Sample::Search { .. } => "a search".to_string(),
            Sample::Ids { ids } => format!("{} chosen records", ids.len()),
        };
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::MappingPreviewed,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("{} records from {what}", records.len()));
        self.store.append_audit(&audit).await?;
        Ok(Preview {
            problems,
            records,
            scanned: sampled.scanned,
            total,
        })
    }

    /// Starts computing the impact of `mapping` (saved or being edited) with the saved
    /// user types over every record, in the background.
    pub async fn start_impact(
        &self,
        actor: &Actor,
        project: ProjectId,
        mapping: Mapping,
    ) -> Result<ImpactView> {
        let work = self.workers.records.as_ref();
        self.writable_project(actor, project).await?;
        self.may_set_goals(actor, project).await?;
        let user_types = self.saved_user_types(project).await?;
        let placed = user_types
            .user_types
            .compile(self.now())
            .map_err(|problems| {
                DomainError::invalid(
                    "user_types",
                    format!(
                        "the user types have problems; fix them first ({})",
                        problems[0].message
                    ),
                )
            })?;
        let (compiled, _) = self.compile_for_records(project, &mapping).await?;
        let total = self.store.count_records(project).await?;
        if total == 0 {
            return Err(DomainError::invalid(
                "records",
                "the project has no records yet: upload an export first",
            ));
        }
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::ImpactStarted,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{} rules over {total} records",
            mapping.rules.len()
        ));
        self.store
            .start_impact(
                project,
                total,
                &mapping,
                &user_types.user_types,
                now,
                &audit,
            )
            .await?;
        let count = user_types.user_types.user_types.len();
        work.spawn_impact(
            project,
            Evaluator {
                mapping: compiled,
                user_types: placed,
            },
            mapping,
            count,
        );
        self.impact(actor, project)
            .await?
            .ok_or_else(|| DomainError::Internal("the impact vanished".into()))
    }

    /// The last impact computation, running or done; `None` before the first.
    pub async fn impact(&self, actor: &Actor, project: ProjectId) -> Result<Option<ImpactView>> {
        let work = self.workers.records.as_ref();
        self.may_set_goals(actor, project).await?;
        let Some(row) = self.store.impact(project).await? else {
            return Ok(None);
        };
        let latest = self.store.mapping_version(project, None).await?;
        let saved = self.saved_user_types(project).await?;
        let current =
            latest.is_some_and(|v| v.mapping == row.mapping) && saved.user_types == row.user_types;
        let report = match &row.sealed_report {
            // A colliding value is a user's (an address, a name): shown masked, like the
            // assessment's examples; the two records' ids say where to look.
            Some(sealed) => Some(work.open_impact(project, sealed).await?).map(|mut report| {
                for collision in &mut report.collisions {
                    collision.value = crate::assess::mask(&collision.value);
                }
                report
            }),
            None => None,
        };
        let records_done = match row.status {
            AssessmentStatus::Running => work.impact_progress(project).unwrap_or(row.records_done),
            _ => row.records_done,
        };
        Ok(Some(ImpactView {
            status: row.status,
            records_total: row.records_total,
            records_done,
            started_at: row.started_at,
            finished_at: row.finished_at,
            error: row.error,
            mapping: row.mapping,
            user_types: row.user_types,
            current,
            report,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_of_a_confidential_attribute_is_confidential_too() {
        let classes = vec![
            ("app_metadata.plan".to_string(), DataClass::Other),
            ("app_metadata.mfa.seed".to_string(), DataClass::Confidential),
            ("department".to_string(), DataClass::Other),
            ("tokens[]".to_string(), DataClass::Confidential),
        ];
        assert!(confidential("app_metadata", &classes));
        assert!(confidential("app_metadata.mfa", &classes));
        assert!(confidential("tokens", &classes));
        assert!(!confidential("app_metadata.plan", &classes));
        assert!(!confidential("department", &classes));
        // Without an assessment, the name decides.
        assert!(confidential("password_hash", &[]));
    }
}
