//! The migration plan as a document: the company's and legal requirements, what each
//! user type will experience, the acceptable impact stated as numbers Ferry checks, the
//! risks with their mitigations, the timeline (milestones, downtime windows, peak
//! periods) — its validation, the risks Ferry proposes from its own data, the quietest
//! stretch of the activity heatmap long enough for the run, the acceptable-impact
//! tests, and the difference between two saved versions.

use crate::{DomainError, Result};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// Items a section holds at most.
pub const MAX_ITEMS: usize = 100;
/// Characters of a title, owner or label.
pub const MAX_SHORT: usize = 200;
/// Characters of a note, message or mitigation.
pub const MAX_LONG: usize = 2_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanDocument {
    /// The IANA time zone the plan's dates, windows and the heatmap are read in.
    pub time_zone: String,
    pub requirements: Vec<Requirement>,
    pub experiences: Vec<Experience>,
    pub acceptable: AcceptableImpact,
    pub risks: Vec<Risk>,
    pub milestones: Vec<Milestone>,
    /// Downtime windows, in the plan's time zone.
    pub windows: Vec<Period>,
    /// Peak usage periods, in the plan's time zone.
    pub peaks: Vec<Period>,
}

impl Default for PlanDocument {
    /// The guide's requirements, all open; nothing else decided.
    fn default() -> Self {
        let requirement = |key: &str, title: &str| Requirement {
            key: key.into(),
            title: title.into(),
            status: RequirementStatus::Open,
            owner: String::new(),
            note: String::new(),
            date: None,
        };
        Self {
            time_zone: "UTC".into(),
            requirements: vec![
                requirement(
                    "legal_basis",
                    "Legal basis for moving the users' personal data",
                ),
                requirement(
                    "data_residency",
                    "Data residency of the target (where its data is kept)",
                ),
                requirement(
                    "retention",
                    "Retention period of the exports and what Ferry keeps",
                ),
                requirement("approver", "Who approves the plan and the cutover"),
                requirement("dpia", "Data protection impact assessment"),
            ],
            experiences: Vec::new(),
            acceptable: AcceptableImpact::default(),
            risks: Vec::new(),
            milestones: Vec::new(),
            windows: Vec::new(),
            peaks: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequirementStatus {
    Open,
    InProgress,
    Met,
    NotApplicable,
}

impl RequirementStatus {
    pub const ALL: [RequirementStatus; 4] = [
        RequirementStatus::Open,
        RequirementStatus::InProgress,
        RequirementStatus::Met,
        RequirementStatus::NotApplicable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RequirementStatus::Open => "Open",
            RequirementStatus::InProgress => "In progress",
            RequirementStatus::Met => "Met",
            RequirementStatus::NotApplicable => "Not applicable",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequirementStatus::Open => "open",
            RequirementStatus::InProgress => "in_progress",
            RequirementStatus::Met => "met",
            RequirementStatus::NotApplicable => "not_applicable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Nothing left to do about it.
    pub fn settled(self) -> bool {
        matches!(
            self,
            RequirementStatus::Met | RequirementStatus::NotApplicable
        )
    }
}

/// A company or legal requirement: its state, who owns it, a note and a date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Requirement {
    /// `legal_basis`, `data_residency`, `retention`, `approver`, `dpia`, or one of the
    /// team's own (any short key).
    pub key: String,
    pub title: String,
    pub status: RequirementStatus,
    pub owner: String,
    pub note: String,
    pub date: Option<NaiveDate>,
}

/// What the users of a type see at the migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserSees {
    /// An invitation to set a new password.
    Invitation,
    /// Nothing: their password moves at their first login.
    SilentMigration,
    /// Their account does not move, or moves disabled.
    Disabled,
}

impl UserSees {
    pub const ALL: [UserSees; 3] = [
        UserSees::Invitation,
        UserSees::SilentMigration,
        UserSees::Disabled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            UserSees::Invitation => "An invitation to set a new password",
            UserSees::SilentMigration => "Nothing: the password moves at first login",
            UserSees::Disabled => "Their account stays behind or is disabled",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserSees::Invitation => "invitation",
            UserSees::SilentMigration => "silent_migration",
            UserSees::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One user type's experience: what they see, the message, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Experience {
    /// The user type's name.
    pub user_type: String,
    pub sees: UserSees,
    pub message: String,
    pub when: String,
}

/// The impact the team accepts, as numbers Ferry checks against the latest impact of
/// the mapping and the run estimate. `None`: no limit stated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcceptableImpact {
    /// Users who need a password reset, in percent of those who move.
    pub max_reset_percent: Option<f64>,
    /// Records that fail their mapping (rejected or colliding) and go to review.
    pub max_failed_records: Option<u64>,
    /// The run's estimated duration, in minutes.
    pub max_downtime_minutes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Low, Level::Medium, Level::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Level::Low => "Low",
            Level::Medium => "Medium",
            Level::High => "High",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// The guide's kinds of risk, and personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskKind {
    DataLoss,
    Compatibility,
    Disruption,
    Privacy,
}

impl RiskKind {
    pub const ALL: [RiskKind; 4] = [
        RiskKind::DataLoss,
        RiskKind::Compatibility,
        RiskKind::Disruption,
        RiskKind::Privacy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskKind::DataLoss => "data_loss",
            RiskKind::Compatibility => "compatibility",
            RiskKind::Disruption => "disruption",
            RiskKind::Privacy => "privacy",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RiskKind::DataLoss => "Data loss",
            RiskKind::Compatibility => "Compatibility",
            RiskKind::Disruption => "Service disruption",
            RiskKind::Privacy => "Personal data",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A risk the plan records, with its mitigation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Risk {
    pub title: String,
    pub kind: RiskKind,
    pub likelihood: Level,
    pub impact: Level,
    pub mitigation: String,
    /// The key of the risk Ferry proposed that this one adopts, if any: its evidence
    /// then stays current beside it.
    #[serde(default)]
    pub proposal: Option<String>,
}

/// A milestone the team keeps (Ferry keeps its own beside them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Milestone {
    pub title: String,
    pub due: Option<NaiveDate>,
    pub owner: String,
    pub done: bool,
}

/// When Ferry saw one of its own milestones done, and what showed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoDone {
    pub at: DateTime<Utc>,
    pub detail: String,
}

/// A stretch of local time in the plan's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Period {
    pub label: String,
    pub starts: NaiveDateTime,
    pub ends: NaiveDateTime,
}

impl Period {
    pub fn minutes(&self) -> i64 {
        (self.ends - self.starts).num_minutes()
    }

    pub fn overlaps(&self, other: &Period) -> bool {
        self.starts < other.ends && other.starts < self.ends
    }
}

fn text(field: String, value: &str, max: usize, required: bool) -> Result<()> {
    if required && value.trim().is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

fn items(field: &str, n: usize) -> Result<()> {
    if n > MAX_ITEMS {
        return Err(DomainError::invalid(
            field,
            format!("at most {MAX_ITEMS} entries"),
        ));
    }
    Ok(())
}

fn periods(field: &str, list: &[Period]) -> Result<()> {
    items(field, list.len())?;
    for (i, p) in list.iter().enumerate() {
        text(format!("{field}[{i}].label"), &p.label, MAX_SHORT, false)?;
        if p.ends <= p.starts {
            return Err(DomainError::invalid(
                format!("{field}[{i}].ends"),
                "must be after its start",
            ));
        }
    }
    Ok(())
}

impl PlanDocument {
    /// Checks every field; the error names the field (`risks[2].title`), never quotes
    /// the value.
    pub fn check(&self) -> Result<()> {
        self.zone()?;
        items("requirements", self.requirements.len())?;
        for (i, r) in self.requirements.iter().enumerate() {
            text(format!("requirements[{i}].key"), &r.key, 64, true)?;
            text(
                format!("requirements[{i}].title"),
                &r.title,
                MAX_SHORT,
                true,
            )?;
            text(
                format!("requirements[{i}].owner"),
                &r.owner,
                MAX_SHORT,
                false,
            )?;
            text(format!("requirements[{i}].note"), &r.note, MAX_LONG, false)?;
        }
        items("experiences", self.experiences.len())?;
        for (i, e) in self.experiences.iter().enumerate() {
            text(
                format!("experiences[{i}].user_type"),
                &e.user_type,
                MAX_SHORT,
                true,
            )?;
            text(
                format!("experiences[{i}].message"),
                &e.message,
                MAX_LONG,
                false,
            )?;
            text(format!("experiences[{i}].when"), &e.when, MAX_SHORT, false)?;
        }
        if let Some(p) = self.acceptable.max_reset_percent
            && !(0.0..=100.0).contains(&p)
        {
            return Err(DomainError::invalid(
                "acceptable.max_reset_percent",
                "must be a percentage from 0 to 100",
            ));
        }
        items("risks", self.risks.len())?;
        for (i, r) in self.risks.iter().enumerate() {
            text(format!("risks[{i}].title"), &r.title, MAX_SHORT, true)?;
            text(
                format!("risks[{i}].mitigation"),
                &r.mitigation,
                MAX_LONG,
                false,
            )?;
        }
        items("milestones", self.milestones.len())?;
        for (i, m) in self.milestones.iter().enumerate() {
            text(format!("milestones[{i}].title"), &m.title, MAX_SHORT, true)?;
            text(format!("milestones[{i}].owner"), &m.owner, MAX_SHORT, false)?;
        }
        periods("windows", &self.windows)?;
        periods("peaks", &self.peaks)?;
        Ok(())
    }

    pub fn zone(&self) -> Result<chrono_tz::Tz> {
        self.time_zone
            .trim()
            .parse()
            .map_err(|_| DomainError::invalid("time_zone", "is not an IANA time zone"))
    }

    /// The downtime window that comes next (or is under way) at `now`.
    pub fn next_window(&self, now: DateTime<Utc>) -> Option<&Period> {
        let zone = self.zone().ok()?;
        self.windows
            .iter()
            .filter(|w| local_to_utc(zone, w.ends).is_some_and(|end| end > now))
            .min_by_key(|w| w.starts)
    }
}

/// A local time in `zone` as UTC (the earlier of two in a fold; a time skipped by a
/// gap is taken an hour later).
pub fn local_to_utc(zone: chrono_tz::Tz, at: NaiveDateTime) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&at)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(at + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

// ---- the suggested window ----------------------------------------------------------

/// The quietest stretch of the week for the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuggestedWindow {
    /// Its next occurrence, in the plan's time zone.
    pub starts: NaiveDateTime,
    pub ends: NaiveDateTime,
    pub hours: u32,
    /// Last logins the heatmap counts in those hours of the week, and in all.
    pub logins: u64,
    pub logins_total: u64,
    /// Why this window and this length, in words.
    pub reason: String,
}

/// The start (weekday from Monday = 0, hour) of the `hours` consecutive hours of the
/// week (wrapping from Sunday into Monday) with the fewest logins in `heatmap`
/// (weekday × hour, Monday first), and their logins. The earliest in the week wins a
/// tie. `None` when the run needs more than a week.
pub fn quietest(heatmap: &[[u64; 24]; 7], hours: u32) -> Option<(usize, usize, u64)> {
    let hours = hours.max(1) as usize;
    if hours > 7 * 24 {
        return None;
    }
    let flat: Vec<u64> = heatmap.iter().flatten().copied().collect();
    let n = flat.len();
    let mut sum: u64 = flat[..hours].iter().sum();
    let mut best = (0usize, sum);
    for start in 1..n {
        sum = sum - flat[start - 1] + flat[(start + hours - 1) % n];
        if sum < best.1 {
            best = (start, sum);
        }
    }
    Some((best.0 / 24, best.0 % 24, best.1))
}

/// The next local time on `weekday` (Monday = 0) at `hour` o'clock, at least an hour
/// after `now`, in `zone`.
pub fn next_occurrence(
    zone: chrono_tz::Tz,
    now: DateTime<Utc>,
    weekday: usize,
    hour: usize,
) -> NaiveDateTime {
    let local = now.with_timezone(&zone).naive_local() + chrono::Duration::hours(1);
    let today = local.weekday().num_days_from_monday() as i64;
    let mut days = (weekday as i64 - today).rem_euclid(7);
    if days == 0 && (local.hour() as usize) > hour {
        days = 7;
    }
    let date = local.date() + chrono::Duration::days(days);
    date.and_hms_opt(hour as u32, 0, 0).unwrap_or(local)
}

/// The window Ferry suggests: the quietest stretch long enough for the run at the
/// measured rate (rounded up to whole hours, plus one hour of margin), next week or
/// sooner. `None` without logins in the heatmap or without a measured run length.
pub fn suggest_window(
    heatmap: &[[u64; 24]; 7],
    run_seconds: u64,
    zone: chrono_tz::Tz,
    now: DateTime<Utc>,
    rate_basis: &str,
) -> Option<SuggestedWindow> {
    let total: u64 = heatmap.iter().flatten().sum();
    if total == 0 {
        return None;
    }
    let hours = u32::try_from(run_seconds.div_ceil(3600)).ok()?.max(1) + 1;
    let (weekday, hour, logins) = quietest(heatmap, hours)?;
    let starts = next_occurrence(zone, now, weekday, hour);
    let ends = starts + chrono::Duration::hours(i64::from(hours));
    Some(SuggestedWindow {
        starts,
        ends,
        hours,
        logins,
        logins_total: total,
        reason: format!(
            "the {hours} quietest consecutive hours of the week in the last logins \
             ({} of {} logins fall in them): the run needs {} at {rate_basis}, plus an hour \
             of margin",
            crate::numbers::grouped(logins),
            crate::numbers::grouped(total),
            duration_words(run_seconds),
        ),
    })
}

/// "3 h 20 min", "45 min", "under a minute".
pub fn duration_words(seconds: u64) -> String {
    if seconds < 60 {
        return "under a minute".into();
    }
    let minutes = seconds.div_ceil(60);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

// ---- the acceptable impact ---------------------------------------------------------

/// What the latest impact and estimate say, for the acceptable-impact tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImpactFacts {
    /// Users who move, of types that reset their password, and records failing their
    /// mapping (rejected, or taking a value another took) — `None` without a current
    /// impact of the mapping.
    pub moving: Option<u64>,
    pub resets: Option<u64>,
    pub failing: Option<u64>,
    /// The run's estimated duration; `None` without a measured rate.
    pub run_seconds: Option<u64>,
}

/// One acceptable-impact number against what Ferry measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImpactTest {
    /// `reset_percent`, `failed_records`, `downtime_minutes`.
    pub name: String,
    pub label: String,
    pub limit: f64,
    /// `None`: Ferry cannot measure it yet (the detail says what to do).
    pub actual: Option<f64>,
    pub met: bool,
    pub detail: String,
}

/// Each stated limit against the facts. A limit Ferry cannot measure yet is not met.
pub fn impact_tests(acceptable: &AcceptableImpact, facts: &ImpactFacts) -> Vec<ImpactTest> {
    let mut tests = Vec::new();
    let mut add = |name: &str, label: &str, limit: f64, actual: Option<f64>, missing: &str| {
        let met = actual.is_some_and(|a| a <= limit + 1e-9);
        tests.push(ImpactTest {
            name: name.into(),
            label: label.into(),
            limit,
            actual,
            met,
            detail: match actual {
                None => missing.into(),
                Some(_) if met => "within the limit".into(),
                Some(_) => "over the limit".into(),
            },
        });
    };
    if let Some(limit) = acceptable.max_reset_percent {
        let share = match (facts.moving, facts.resets) {
            (Some(0), Some(_)) => Some(0.0),
            (Some(m), Some(r)) => Some((r as f64 * 1000.0 / m as f64).round() / 10.0),
            _ => None,
        };
        add(
            "reset_percent",
            "Users needing a password reset (% of those who move)",
            limit,
            share,
            "compute the impact of the mapping (Mapping page)",
        );
    }
    if let Some(limit) = acceptable.max_failed_records {
        add(
            "failed_records",
            "Records failing their mapping",
            limit as f64,
            facts.failing.map(|f| f as f64),
            "compute the impact of the mapping (Mapping page)",
        );
    }
    if let Some(limit) = acceptable.max_downtime_minutes {
        add(
            "downtime_minutes",
            "Downtime: the run's estimated duration (minutes)",
            limit as f64,
            facts.run_seconds.map(|s| s.div_ceil(60) as f64),
            "run a test (or test the target's connection) to measure the rate",
        );
    }
    tests
}

// ---- risks Ferry proposes ----------------------------------------------------------

/// A risk Ferry's own data shows, with its evidence and where to see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposedRisk {
    /// Stable key: `data_quality`, `mapping_rejects`, `collisions`,
    /// `silent_without_hash`, `window_too_short`, `peak_overlap`, `pii_to_target`.
    pub key: String,
    pub title: String,
    pub kind: RiskKind,
    pub likelihood: Level,
    pub impact: Level,
    /// What the data says, in numbers (never a value of the export).
    pub evidence: String,
    /// The project page that shows it: `assessment`, `mapping`, `goals`, `passwords`,
    /// `plan`.
    pub page: String,
    pub mitigation: String,
    /// The plan's risks adopt it.
    pub adopted: bool,
}

/// What Ferry knows that may make a risk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RiskFacts {
    /// Data-quality findings with their counts (duplicate e-mails, …).
    pub quality: Vec<(String, u64)>,
    pub rejected: Option<u64>,
    pub colliding: Option<u64>,
    /// Users of silent-migration types without a usable hash, when no legacy connection
    /// can check them.
    pub silent_without_hash: u64,
    pub run_seconds: Option<u64>,
    /// Target attributes mapped from attributes classed as personal data.
    pub pii_targets: Vec<String>,
}

/// The risks the facts and the plan's own windows and peaks show, most severe first.
pub fn propose(facts: &RiskFacts, plan: &PlanDocument) -> Vec<ProposedRisk> {
    let mut risks = Vec::new();
    let mut add = |key: &str,
                   title: String,
                   kind: RiskKind,
                   (likelihood, impact): (Level, Level),
                   evidence: String,
                   page: &str,
                   mitigation: &str| {
        risks.push(ProposedRisk {
            key: key.into(),
            title,
            kind,
            likelihood,
            impact,
            evidence,
            page: page.into(),
            mitigation: mitigation.into(),
            adopted: plan
                .risks
                .iter()
                .any(|r| r.proposal.as_deref() == Some(key)),
        });
    };
    let findings: Vec<&(String, u64)> = facts.quality.iter().filter(|(_, n)| *n > 0).collect();
    if !findings.is_empty() {
        let words: Vec<String> = findings
            .iter()
            .map(|(label, n)| format!("{label}: {}", crate::numbers::grouped(*n)))
            .collect();
        add(
            "data_quality",
            "Data-quality findings in the export".into(),
            RiskKind::DataLoss,
            (Level::Medium, Level::Medium),
            words.join("; "),
            "assessment",
            "Fix the records at the source or with corrections, or map around them; \
             the run sends what fails to review",
        );
    }
    if let Some(n) = facts.rejected.filter(|n| *n > 0) {
        add(
            "mapping_rejects",
            format!("{} records fail their mapping", crate::numbers::grouped(n)),
            RiskKind::DataLoss,
            (Level::High, Level::Medium),
            format!(
                "the latest impact of the mapping rejects {} records",
                crate::numbers::grouped(n)
            ),
            "mapping",
            "Change the rules that reject them, or plan the review of those records",
        );
    }
    if let Some(n) = facts.colliding.filter(|n| *n > 0) {
        add(
            "collisions",
            format!(
                "{} records collide on a unique attribute",
                crate::numbers::grouped(n)
            ),
            RiskKind::Compatibility,
            (Level::High, Level::High),
            format!(
                "{} records take a value another record took",
                crate::numbers::grouped(n)
            ),
            "mapping",
            "Map a unique value (the legacy id is one), or accept that they fail into review",
        );
    }
    if facts.silent_without_hash > 0 {
        add(
            "silent_without_hash",
            "Users who keep their password have no hash to check it against".into(),
            RiskKind::Disruption,
            (Level::High, Level::Medium),
            format!(
                "up to {} users of silent-migration types carry no usable hash (the export \
                 has that many without one), and no legacy identity provider is connected \
                 to check their passwords",
                crate::numbers::grouped(facts.silent_without_hash)
            ),
            "passwords",
            "Connect the legacy identity provider (Passwords page) or move these users \
             to a forced-reset type",
        );
    }
    let zone = plan.zone().ok();
    if let Some(seconds) = facts.run_seconds {
        let needed = i64::try_from(seconds).unwrap_or(i64::MAX);
        let short: Vec<String> = plan
            .windows
            .iter()
            .filter(|w| w.minutes().saturating_mul(60) < needed)
            .map(|w| {
                format!(
                    "\"{}\" lasts {}",
                    w.label,
                    duration_words(u64::try_from(w.minutes()).unwrap_or(0) * 60)
                )
            })
            .collect();
        if !short.is_empty() {
            add(
                "window_too_short",
                "The run does not fit its downtime window".into(),
                RiskKind::Disruption,
                (Level::High, Level::High),
                format!(
                    "the run needs {} at the measured rate; {}",
                    duration_words(seconds),
                    short.join("; ")
                ),
                "plan",
                "Choose a longer window (Ferry suggests one), or split the run over several",
            );
        }
    }
    if zone.is_some() {
        let overlapping: Vec<String> = plan
            .windows
            .iter()
            .flat_map(|w| {
                plan.peaks
                    .iter()
                    .filter(move |p| p.overlaps(w))
                    .map(move |p| format!("\"{}\" overlaps \"{}\"", w.label, p.label))
            })
            .collect();
        if !overlapping.is_empty() {
            add(
                "peak_overlap",
                "A downtime window falls in a peak period".into(),
                RiskKind::Disruption,
                (Level::High, Level::High),
                overlapping.join("; "),
                "plan",
                "Move the window out of the peak period",
            );
        }
    }
    if !facts.pii_targets.is_empty() {
        add(
            "pii_to_target",
            "Personal data goes to the target".into(),
            RiskKind::Privacy,
            (Level::High, Level::Medium),
            format!(
                "{} target attributes are mapped from attributes classed as personal data: {}",
                facts.pii_targets.len(),
                facts.pii_targets.join(", ")
            ),
            "mapping",
            "Confirm the legal basis and the target's data residency (requirements), and \
             leave out what the target does not need",
        );
    }
    risks.sort_by_key(|r| std::cmp::Reverse((r.impact, r.likelihood)));
    risks
}

// ---- versions ----------------------------------------------------------------------

/// A saved version of the plan in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanVersionSummary {
    pub version: u32,
    pub note: String,
    pub saved_by_email: Option<String>,
    pub saved_at: DateTime<Utc>,
    pub approved_by_email: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
}

/// A saved version with its document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanVersion {
    #[serde(flatten)]
    pub summary: PlanVersionSummary,
    pub document: PlanDocument,
}

/// One field that differs between two versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanChange {
    /// `risks[1].mitigation`, `acceptable.max_failed_records`, `windows[0]` (added or
    /// removed whole).
    pub path: String,
    /// As JSON text; `None` where the field did not exist.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Every field that differs between `before` and `after`, sections in alphabetical
/// order, items in theirs.
pub fn compare(before: &PlanDocument, after: &PlanDocument) -> Vec<PlanChange> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(before), serde_json::to_value(after)) else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    walk("", Some(&a), Some(&b), &mut changes);
    changes
}

fn walk(
    path: &str,
    a: Option<&serde_json::Value>,
    b: Option<&serde_json::Value>,
    out: &mut Vec<PlanChange>,
) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().collect();
            keys.extend(y.keys().filter(|k| !x.contains_key(*k)));
            for key in keys {
                walk(&join(key), x.get(key), y.get(key), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        (x, y) if x != y => out.push(PlanChange {
            path: path.into(),
            before: x.map(|v| v.to_string()),
            after: y.map(|v| v.to_string()),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
