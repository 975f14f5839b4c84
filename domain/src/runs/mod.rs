//! Runs: their rules (`state`: the states of a run and of its records, and the checked
//! transitions between them) and, here, what a run is asked to do and what it
//! reports: the settings kept with each run as it was made, the test-run sample
//! (random with a recorded seed, or stratified by user type), the pre-flight checks of
//! a real run, how each user type's password is handled in the target, and the
//! read-back comparison of what a test run sent with what the target kept.

mod state;

pub use state::*;

/// The classes a reconciliation gives the users it reads back.
pub mod reconcile {
    /// The target holds what the current mapping makes of the record.
    pub const MATCHES: &str = "matches";
    /// The target holds other values for some of the attributes Ferry sent.
    pub const DIFFERS: &str = "differs_in_target";
    /// The user is no longer in the target (deleted there).
    pub const MISSING: &str = "missing_in_target";
    /// The user's group memberships in the target are not those of its record.
    pub const GROUPS: &str = "groups_differ_in_target";

    /// A class a reconciliation found: the user was in the target once.
    pub fn is_finding(class: &str) -> bool {
        class == DIFFERS || class == MISSING || class == GROUPS
    }
}

/// The cutover delta: what a delta run decides for each user of a newer export, and
/// the classes its outcomes are counted by.
pub mod delta {
    use serde::{Deserialize, Serialize};

    /// A changed user whose differing attributes were PATCHed.
    pub const CHANGED: &str = "delta_changed";
    /// A changed record whose mapped attributes the target already held.
    pub const UNCHANGED: &str = "delta_unchanged";
    /// Gone from the newer export, and deactivated.
    pub const DEACTIVATED: &str = "missing_deactivated";
    /// Gone from the newer export, and deleted.
    pub const DELETED: &str = "missing_deleted";
    /// Gone from the newer export, and left as it is.
    pub const LEFT: &str = "missing_left";
    /// A change of a delta run undone by its rollback.
    pub const RESTORED: &str = "delta_restored";

    /// What becomes of a user the newer export no longer has.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "snake_case")]
    pub enum MissingPolicy {
        /// Nothing: the user stays in the target as it is.
        #[default]
        Leave,
        /// `active` set to false.
        Deactivate,
        /// Deleted from the target.
        Delete,
    }

    impl MissingPolicy {
        pub fn decision(self) -> Decision {
            match self {
                Self::Leave => Decision::Leave,
                Self::Deactivate => Decision::Deactivate,
                Self::Delete => Decision::Delete,
            }
        }

        pub fn label(self) -> &'static str {
            match self {
                Self::Leave => "leave them as they are",
                Self::Deactivate => "deactivate them",
                Self::Delete => "delete them",
            }
        }
    }

    /// What a delta run does with one user.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Decision {
        Create,
        Update,
        Deactivate,
        Delete,
        Leave,
    }

    impl Decision {
        pub const ALL: [Decision; 5] = [
            Decision::Create,
            Decision::Update,
            Decision::Deactivate,
            Decision::Delete,
            Decision::Leave,
        ];

        pub fn as_str(self) -> &'static str {
            match self {
                Self::Create => "create",
                Self::Update => "update",
                Self::Deactivate => "deactivate",
                Self::Delete => "delete",
                Self::Leave => "leave",
            }
        }

        pub fn parse(text: &str) -> Option<Self> {
            Self::ALL.into_iter().find(|d| d.as_str() == text)
        }
    }

    /// A delta run as asked for: the newer export and the policy for users gone
    /// from it.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct DeltaRequest {
        /// The newer export's upload id (read, of this project).
        pub upload: String,
        #[serde(default)]
        pub missing: MissingPolicy,
        /// The pace: at most this many users a minute.
        #[serde(default)]
        pub max_users_per_minute: Option<u32>,
    }
}

use crate::{
    scim::{discovery::Discovery, target::ExistingPolicy},
    user_types::{PasswordStrategy, UserTypes},
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The largest test-run sample.
pub const MAX_SAMPLE: u32 = 10_000;
/// Workers one instance runs for one run, at most.
pub const MAX_CONCURRENCY: u32 = 16;
/// The most records a batch (one claim, usually one bulk request) holds.
pub const MAX_BATCH: u32 = 1_000;
/// Mismatches a read-back keeps (the counts cover every user).
pub const MAX_MISMATCHES: usize = 500;

/// How a run pushes: knobs an administrator may turn, with defaults that suit a
/// WSO2 Identity Server on modest hardware.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Tuning {
    /// Workers sending at once (each its own batch).
    pub concurrency: u32,
    /// Records a worker claims at once; `None`: the target's bulk limit, at most 500.
    pub batch_size: Option<u32>,
    /// Users sent per second, at most; `None`: as fast as the target answers.
    pub max_users_per_second: Option<u32>,
    /// Users sent per minute, at most (invitation waves pace themselves by it).
    #[serde(default)]
    pub max_users_per_minute: Option<u32>,
    /// The run pauses when `failure_threshold` of the last `failure_window` records
    /// failed.
    pub failure_window: u32,
    pub failure_threshold: u32,
    /// Whether groups (and memberships) follow the users.
    pub groups: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            concurrency: 2,
            batch_size: None,
            max_users_per_second: None,
            max_users_per_minute: None,
            failure_window: 200,
            failure_threshold: 100,
            groups: true,
        }
    }
}

impl Tuning {
    /// Users a second at most, from whichever limit is set (the lower of both).
    pub fn rate(&self) -> Option<f64> {
        let per_second = self.max_users_per_second.map(f64::from);
        let per_minute = self.max_users_per_minute.map(|m| f64::from(m) / 60.0);
        match (per_second, per_minute) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Problems name their field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err((
                "concurrency",
                format!("between 1 and {MAX_CONCURRENCY} workers"),
            ));
        }
        if let Some(size) = self.batch_size
            && !(1..=MAX_BATCH).contains(&size)
        {
            return Err(("batch_size", format!("between 1 and {MAX_BATCH} records")));
        }
        if self.max_users_per_minute == Some(0) {
            return Err((
                "max_users_per_minute",
                "at least 1 (or empty for no limit)".into(),
            ));
        }
        if self.max_users_per_second == Some(0) {
            return Err((
                "max_users_per_second",
                "at least 1 (or empty for no limit)".into(),
            ));
        }
        if self.failure_window == 0 || self.failure_window > 100_000 {
            return Err(("failure_window", "between 1 and 100,000 records".into()));
        }
        if self.failure_threshold == 0 || self.failure_threshold > self.failure_window {
            return Err((
                "failure_threshold",
                "at least 1 and at most the failure window".into(),
            ));
        }
        Ok(())
    }
}

/// How a test run's sample is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SampleHow {
    /// Random; the same seed gives the same records.
    Random,
    /// Each moving user type in proportion to its size, each at least once.
    Stratified,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SampleSpec {
    pub size: u32,
    pub how: SampleHow,
    pub seed: u64,
}

/// Everything a run needs kept as it was when it was made: later edits of the user
/// types or the policy do not change a run under way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSettings {
    pub tuning: Tuning,
    #[serde(alias = "segments")]
    pub user_types: UserTypes,
    pub policy: ExistingPolicy,
    pub sample: Option<SampleSpec>,
    /// The downtime window as written, and placed on the timeline.
    pub window: Option<Window>,
    pub placed: Option<Placed>,
}

impl RunSettings {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("the run's settings do not read: {e}"))
    }
}

/// A reconciliation as asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconcileRequest {
    /// Read back this many users chosen at random instead of every one (for very large
    /// targets); `None`: every user in the target.
    #[serde(default)]
    pub sample: Option<u32>,
    /// The pace: at most this many users read a minute (the target's own limits).
    #[serde(default)]
    pub max_users_per_minute: Option<u32>,
}

/// A test run as asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestRunRequest {
    pub size: u32,
    #[serde(default = "random")]
    pub how: SampleHow,
    /// A seed to draw the same sample again; `None`: a new one, recorded.
    #[serde(default)]
    pub seed: Option<u64>,
    /// `test` (the default) or `production`.
    #[serde(default = "test_role")]
    pub target: String,
    #[serde(default)]
    pub tuning: Tuning,
}

fn random() -> SampleHow {
    SampleHow::Random
}

fn test_role() -> String {
    "test".into()
}

/// The real run as asked for: in a window, or now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RealRunRequest {
    /// `None`: start now.
    #[serde(default)]
    pub window: Option<Window>,
    #[serde(default)]
    pub tuning: Tuning,
    /// Colliding records an administrator accepts to fail into review rather than
    /// change the mapping: the number the pre-flight check reported (a different
    /// number means the data or mapping changed since, and is refused). Audited.
    #[serde(default)]
    pub accept_collisions: Option<u64>,
}

/// One pre-flight check and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Check {
    /// `target`, `discovery`, `mapping`, `user_types`, `data`, `passwords`, `active_run`.
    pub name: String,
    pub label: String,
    pub passed: bool,
    pub detail: String,
    /// Colliding records an administrator may accept to fail into review instead of
    /// fixing the mapping (a run started accepting exactly this many may go ahead).
    #[serde(default)]
    pub acceptable: Option<u64>,
}

/// The checks a real run must pass before it may be scheduled or started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preflight {
    pub checks: Vec<Check>,
}

impl Preflight {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn add(&mut self, name: &str, label: &str, outcome: Result<String, String>) {
        let (passed, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.checks.push(Check {
            name: name.into(),
            label: label.into(),
            passed,
            detail,
            acceptable: None,
        });
    }

    /// Refused (422, field `preflight`) unless every check passed.
    pub fn require(&self) -> crate::Result<()> {
        if self.passed() {
            return Ok(());
        }
        Err(crate::DomainError::invalid(
            "preflight",
            format!("the pre-flight checks did not pass: {}", self.failures()),
        ))
    }

    /// The failed checks in one sentence.
    pub fn failures(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.label, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What the target gets for a user's password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordAction {
    /// The flag (a full attribute path such as `urn:scim:wso2:schema:askPassword`) set
    /// to true: the target invites the user to choose a password.
    AskPassword(String),
    /// A strong random password, made for this user, sent once and kept nowhere; the
    /// user's legacy password replaces it at first login.
    RandomPassword,
    /// A random password the user never learns, and the account inactive.
    Disabled,
}

/// The `askPassword` attribute the target's own schemas define for users, if any
/// (its schema differs between WSO2 versions, so it is looked up, not assumed).
pub fn ask_password_attribute(discovery: Option<&Discovery>) -> Option<String> {
    discovery?
        .user_attribute(|a| a.name.eq_ignore_ascii_case("askPassword") && a.kind == "boolean")
        .map(|(path, _)| path)
}

/// The action for a user type's strategy. Without an `askPassword` attribute a forced
/// reset falls back to a random password (the user resets it through the target's
/// "forgot password"); the pre-flight check says so before a real run.
pub fn password_action(strategy: PasswordStrategy, ask_password: Option<&str>) -> PasswordAction {
    match strategy {
        PasswordStrategy::ForcedReset => match ask_password {
            Some(path) => PasswordAction::AskPassword(path.to_string()),
            None => PasswordAction::RandomPassword,
        },
        PasswordStrategy::SilentMigration => PasswordAction::RandomPassword,
        PasswordStrategy::None => PasswordAction::Disabled,
    }
}

/// Writes a password action into a mapped SCIM resource. `password` is the random one
/// made for this user when the action needs it.
pub fn apply_password(
    resource: &mut Json,
    action: &PasswordAction,
    password: impl FnOnce() -> String,
) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    match action {
        PasswordAction::AskPassword(path) => {
            // `urn:…:schema:askPassword` lives in the extension's object.
            let (schema, name) = path.rsplit_once(':').unwrap_or(("", path));
            if schema.is_empty() {
                object.insert(name.into(), Json::Bool(true));
                return;
            }
            let extension = object
                .entry(schema.to_string())
                .or_insert_with(|| Json::Object(Default::default()));
            if let Some(extension) = extension.as_object_mut() {
                extension.insert(name.into(), Json::Bool(true));
            }
            if let Some(Json::Array(schemas)) = object.get_mut("schemas")
                && !schemas.iter().any(|s| s.as_str() == Some(schema))
            {
                schemas.push(Json::String(schema.to_string()));
            }
        }
        PasswordAction::RandomPassword => {
            object.insert("password".into(), Json::String(password()));
        }
        PasswordAction::Disabled => {
            object.insert("password".into(), Json::String(password()));
            object.insert("active".into(), Json::Bool(false));
        }
    }
}

/// Draws a stratified sample: `placed` are candidate records (source id and the
/// user type each falls in, in a random order); each moving user type gets a share
/// of `size` in proportion to its candidates, and at least one when it has any.
pub fn stratify(
    placed: &[(String, Option<usize>)],
    included: impl Fn(usize) -> bool,
    size: usize,
) -> Vec<String> {
    let mut by_type: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
    for (id, user_type) in placed {
        if let Some(s) = user_type.filter(|s| included(*s)) {
            by_type.entry(s).or_default().push(id);
        }
    }
    let moving: usize = by_type.values().map(Vec::len).sum();
    if moving == 0 || size == 0 {
        return Vec::new();
    }
    let mut quota: Vec<(usize, usize)> = by_type
        .iter()
        .map(|(s, ids)| {
            let share = (ids.len() * size).div_ceil(moving).max(1);
            (*s, share.min(ids.len()))
        })
        .collect();
    // Rounding up may give a few too many: the largest types give them back.
    let mut over = quota
        .iter()
        .map(|(_, q)| q)
        .sum::<usize>()
        .saturating_sub(size);
    quota.sort_by_key(|(_, q)| std::cmp::Reverse(*q));
    for (_, q) in quota.iter_mut() {
        let give = over.min(q.saturating_sub(1));
        *q -= give;
        over -= give;
    }
    quota.sort_by_key(|(s, _)| *s);
    quota
        .into_iter()
        .flat_map(|(s, q)| by_type[&s][..q].iter().map(|id| id.to_string()))
        .collect()
}

/// One attribute the target keeps differently from what was sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mismatch {
    pub source_id: String,
    pub scim_id: String,
    /// `name.givenName`, `emails[0].value`, `urn:…:User:department`.
    pub path: String,
    pub sent: Json,
    /// `None`: the target did not keep it at all.
    pub received: Option<Json>,
}

/// Users the target holds that carry an `externalId` but that no run of the project
/// recorded (another tool's, an earlier attempt's duplicate): found by a
/// reconciliation listing the target. Ids only, never other values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtraUsers {
    /// Users the listing read.
    pub listed: u64,
    pub users: Vec<ExtraUser>,
    /// Extra users beyond those kept.
    pub more: u64,
    /// Why the listing stopped early, if it did.
    pub incomplete: Option<String>,
    /// The group memberships compared.
    #[serde(default)]
    pub groups: GroupCheck,
}

/// What a reconciliation found of group memberships: the groups the records name,
/// read from the target with their members, and the users whose memberships differ
/// (each a finding in the review queue). Group names only, never users' values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCheck {
    /// Groups the records name, read from the target.
    pub compared: u64,
    /// Groups the records name that the target does not have.
    pub missing_groups: Vec<String>,
    /// Users whose memberships differ.
    pub users_differing: u64,
    /// Why the comparison stopped early, if it did.
    pub incomplete: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExtraUser {
    pub scim_id: String,
    pub external_id: String,
}

/// Extra users kept by name; the rest are counted.
pub const MAX_EXTRA_USERS: usize = 100;

/// What a test run's read-back found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadBack {
    /// Users read back.
    pub checked: u64,
    /// Users the target keeps exactly as sent.
    pub matching: u64,
    /// Users the target no longer has.
    pub missing: u64,
    /// Users that could not be read (with the first reason).
    pub unreadable: u64,
    pub unreadable_reason: Option<String>,
    pub mismatches: Vec<Mismatch>,
    /// Mismatches beyond those kept.
    pub more_mismatches: u64,
}

/// Attributes the target makes or never returns: not compared.
const NOT_COMPARED: [&str; 5] = ["schemas", "password", "meta", "id", "groups"];

/// Compares what was sent with what the target returned, attribute by attribute.
/// Text is compared exactly except where SCIM makes it case-insensitive by default
/// (the target may fold case); values the target adds are not mismatches.
pub fn diff(sent: &Json, received: &Json) -> Vec<(String, Json, Option<Json>)> {
    let mut out = Vec::new();
    let Some(sent) = sent.as_object() else {
        return out;
    };
    for (key, value) in sent {
        if NOT_COMPARED.contains(&key.as_str()) {
            continue;
        }
        walk(key, value, received.get(key), &mut out);
    }
    out
}

fn walk(
    path: &str,
    sent: &Json,
    received: Option<&Json>,
    out: &mut Vec<(String, Json, Option<Json>)>,
) {
    match (sent, received) {
        (Json::Object(fields), Some(Json::Object(_))) => {
            for (key, value) in fields {
                walk(
                    &format!("{path}.{key}"),
                    value,
                    received.and_then(|r| r.get(key)),
                    out,
                );
            }
        }
        (Json::Array(items), Some(Json::Array(got))) => {
            for (i, item) in items.iter().enumerate() {
                // Multi-valued attributes come back in any order: the one with the same
                // value (or type) is its counterpart.
                let key = |v: &Json| v.get("value").cloned().or_else(|| Some(v.clone()));
                let counterpart = got
                    .iter()
                    .find(|g| same(&key(g), &key(item)))
                    .or_else(|| got.get(i));
                walk(&format!("{path}[{i}]"), item, counterpart, out);
            }
        }
        (Json::Null, None | Some(Json::Null)) => {}
        (_, Some(got)) if same(&Some(sent.clone()), &Some(got.clone())) => {}
        (_, got) => out.push((path.to_string(), sent.clone(), got.cloned())),
    }
}

fn same(a: &Option<Json>, b: &Option<Json>) -> bool {
    match (a, b) {
        (Some(Json::String(a)), Some(Json::String(b))) => a == b || a.eq_ignore_ascii_case(b),
        // Numbers and truth values sometimes come back as text.
        (Some(Json::String(a)), Some(b)) | (Some(b), Some(Json::String(a)))
            if !b.is_object() && !b.is_array() =>
        {
            a == &b.to_string()
        }
        _ => a == b,
    }
}

/// What became of a run's groups (they follow the users).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupSummary {
    pub created: u64,
    pub updated: u64,
    pub failed: u64,
    /// Members added to groups.
    pub memberships: u64,
    /// The first failures, each naming the group.
    pub errors: Vec<String>,
    /// SCIM ids of the groups this run created: a rollback deletes them.
    #[serde(default)]
    pub created_ids: Vec<String>,
    /// Of a rollback: groups the rolled-back run created, deleted.
    #[serde(default)]
    pub deleted: u64,
    /// Of a rollback: groups the rolled-back run created but that hold members it did
    /// not create (someone added them since), kept.
    #[serde(default)]
    pub kept: u64,
}

/// A run's rate and progress as the page shows it (from the worker's memory while it
/// runs here, else from the run's counts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub state: Option<RunState>,
    pub counts: RecordCounts,
    pub total: u64,
    /// Users settled per second over the last few seconds and since the start.
    pub current_rate: Option<f64>,
    pub average_rate: Option<f64>,
    /// Seconds until every record is settled at the current rate.
    pub eta_seconds: Option<u64>,
    /// Seconds since the start and settled count, one point every few seconds.
    pub rate_points: Vec<(u64, u64)>,
    /// Whether it is sent by an instance running the run (else read from the store).
    pub live: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stratified_samples_give_every_moving_type_its_share() {
        let mut placed = Vec::new();
        for i in 0..900 {
            placed.push((format!("a{i}"), Some(0)));
        }
        for i in 0..90 {
            placed.push((format!("b{i}"), Some(1)));
        }
        for i in 0..10 {
            placed.push((format!("c{i}"), Some(2)));
        }
        placed.push(("left".into(), Some(3)));
        placed.push(("none".into(), None));
        let sample = stratify(&placed, |s| s != 3, 100);
        assert_eq!(sample.len(), 100);
        let of = |p: &str| sample.iter().filter(|id| id.starts_with(p)).count();
        assert_eq!((of("a"), of("b"), of("c")), (90, 9, 1));
        assert!(!sample.iter().any(|id| id == "left" || id == "none"));
        // Fewer candidates than asked for: all of them.
        assert_eq!(stratify(&placed[..5], |_| true, 100).len(), 5);
        // A tiny sample still holds every type.
        let tiny = stratify(&placed, |s| s != 3, 3);
        assert_eq!(tiny.len(), 3);
        assert!(
            ["a", "b", "c"]
                .iter()
                .all(|p| tiny.iter().any(|id| id.starts_with(p)))
        );
    }

    #[test]
    fn passwords_follow_the_user_type_and_the_target_schema() {
        let path = "urn:scim:wso2:schema:askPassword";
        let action = password_action(PasswordStrategy::ForcedReset, Some(path));
        let mut user =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a"});
        apply_password(&mut user, &action, || {
            unreachable!("no password for an invite")
        });
        assert_eq!(user["urn:scim:wso2:schema"]["askPassword"], json!(true));
        assert!(
            user["schemas"]
                .as_array()
                .unwrap()
                .contains(&json!("urn:scim:wso2:schema"))
        );
        assert!(user.get("password").is_none());

        let mut user = json!({"userName": "b"});
        apply_password(
            &mut user,
            &password_action(PasswordStrategy::ForcedReset, None),
            || "r4nd0m".into(),
        );
        assert_eq!(user["password"], json!("r4nd0m"));
        let mut user = json!({"userName": "c"});
        apply_password(&mut user, &PasswordAction::Disabled, || "x".into());
        assert_eq!(user["active"], json!(false));
    }

    #[test]
    fn read_back_compares_what_was_sent_with_what_was_kept() {
        let sent = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Ada@Example.com",
            "password": "never compared",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.com", "primary": true}, {"value": "a@work.example"}],
            "active": true,
            "urn:scim:wso2:schema": {"department": "Maths"}
        });
        let kept = json!({
            "id": "42", "meta": {"created": "now"},
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Byron"},
            "emails": [{"value": "a@work.example"}, {"value": "ada@example.com", "primary": "true"}],
            "active": "true",
            "urn:scim:wso2:schema": {}
        });
        let found = diff(&sent, &kept);
        let paths: Vec<&str> = found.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["name.familyName", "urn:scim:wso2:schema.department"]
        );
        assert_eq!(found[0].2, Some(json!("Byron")));
        assert_eq!(found[1].2, None);
        assert!(diff(&sent, &sent).is_empty());
    }

    #[test]
    fn tuning_problems_name_their_field() {
        assert!(Tuning::default().check().is_ok());
        let bad = |t: Tuning| t.check().unwrap_err().0;
        assert_eq!(
            bad(Tuning {
                concurrency: 0,
                ..Tuning::default()
            }),
            "concurrency"
        );
        assert_eq!(
            bad(Tuning {
                batch_size: Some(5000),
                ..Tuning::default()
            }),
            "batch_size"
        );
        assert_eq!(
            bad(Tuning {
                failure_threshold: 500,
                ..Tuning::default()
            }),
            "failure_threshold"
        );
        assert_eq!(
            bad(Tuning {
                max_users_per_second: Some(0),
                ..Tuning::default()
            }),
            "max_users_per_second"
        );
    }
}
