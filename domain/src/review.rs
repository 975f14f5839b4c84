//! Support staff's review of failed records: the queue's rows, filters and groupings,
//! the review states and actions, the shape of a failure (its pattern and the rule or
//! attribute at fault), the values a user is found by, and corrections of a record.

use crate::{
    DomainError, Result,
    assess::mask,
    ids::{AccountId, RunId},
    import::record::{Email, NormalizedUser},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a queued user stands with support staff. `Skipped` is a decision: the user is
/// deliberately not migrated, with a reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Open,
    InProgress,
    Waiting,
    Resolved,
    Skipped,
}

impl ReviewState {
    pub const ALL: [ReviewState; 5] = [
        Self::Open,
        Self::InProgress,
        Self::Waiting,
        Self::Resolved,
        Self::Skipped,
    ];
    /// States in which a failed user still waits for someone.
    pub const WAITING: [ReviewState; 3] = [Self::Open, Self::InProgress, Self::Waiting];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Waiting => "waiting",
            Self::Resolved => "resolved",
            Self::Skipped => "skipped",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Open => "Open",
            Self::InProgress => "In progress",
            Self::Waiting => "Waiting for the customer",
            Self::Resolved => "Resolved",
            Self::Skipped => "Skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text.trim())
    }
}

/// What became of a queued user last: it failed, or a later run migrated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Failed,
    Migrated,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Migrated => "migrated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "failed" => Some(Self::Failed),
            "migrated" => Some(Self::Migrated),
            _ => None,
        }
    }
}

/// One user in the queue: ids, classes and the target's words, never values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueItem {
    pub source_id: String,
    pub outcome: Outcome,
    /// When the latest outcome settled.
    pub outcome_at: DateTime<Utc>,
    /// The run of the latest failure (or of the success that migrated it).
    pub run_id: RunId,
    /// `test` or `production`.
    pub target_role: String,
    pub error_class: String,
    pub scim_type: Option<String>,
    /// The mapping rule (`rule 3`) or the attribute the failure names, when known.
    pub fault: Option<String>,
    /// The detail with the values it quoted replaced, so like failures group together.
    pub pattern: String,
    pub detail: String,
    pub user_type: Option<String>,
    pub state: ReviewState,
    pub assignee: Option<AccountId>,
    pub assignee_name: Option<String>,
    pub skip_reason: Option<String>,
    /// A correction is kept beside the imported record.
    pub corrected: bool,
    pub first_failed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl QueueItem {
    /// As a viewer who may not see personal data gets it: the target's detail, which
    /// may quote the user's values, replaced by its pattern.
    pub fn redact(&mut self) {
        self.detail = self.pattern.clone();
    }
}

/// Which queued users to show. Empty fields do not filter; with no `state`, the users
/// still waiting for someone (open, in progress, waiting for the customer) whose latest
/// outcome is a failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
pub struct QueueFilter {
    /// An e-mail address, a user name or a legacy id, exactly (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// A member's id, or `none` for users nobody is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// `open`, `in_progress`, `waiting`, `resolved`, `skipped`, `migrated` (users a
    /// later run migrated) or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Text in the target's detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A filter as the store applies it: the search already turned into keyed digests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFilter {
    pub digests: Option<Vec<String>>,
    pub error_class: Option<String>,
    pub fault: Option<String>,
    pub scim_type: Option<String>,
    pub run: Option<RunId>,
    pub user_type: Option<String>,
    /// `Some(None)`: nobody assigned.
    pub assignee: Option<Option<AccountId>>,
    pub view: View,
    pub text: Option<String>,
    /// The text is looked for in the detail's pattern (values taken out), not in the
    /// detail: a viewer who may not see personal data cannot probe for a value.
    pub text_in_pattern: bool,
}

/// Which outcomes and states a filter shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum View {
    /// Failed, and waiting for someone.
    #[default]
    Waiting,
    /// Failed, in this state.
    State(ReviewState),
    /// A later run migrated them.
    Migrated,
    /// Everything ever queued.
    All,
}

impl QueueFilter {
    /// Checks the filter; the search is normalized and digested by `digest`.
    pub fn stored(&self, digest: impl Fn(&str) -> String) -> Result<StoredFilter> {
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        let view = match text(&self.state).as_deref() {
            None | Some("waiting_for_review") => View::Waiting,
            Some("all") => View::All,
            Some("migrated") => View::Migrated,
            Some(other) => View::State(ReviewState::parse(other).ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    "unknown review state; expected open, in_progress, waiting, resolved, skipped, migrated or all",
                )
            })?),
        };
        let assignee = match text(&self.assignee).as_deref() {
            None => None,
            Some("none") => Some(None),
            Some(id) => Some(Some(AccountId(uuid::Uuid::parse_str(id).map_err(
                |_| DomainError::invalid("assignee", "not a member id (or `none`)"),
            )?))),
        };
        Ok(StoredFilter {
            digests: text(&self.search).map(|s| search_digests(&s, &digest)),
            error_class: text(&self.error_class),
            fault: text(&self.fault),
            scim_type: text(&self.scim_type),
            run: self.run,
            user_type: text(&self.user_type),
            assignee,
            view,
            text: text(&self.text),
            text_in_pattern: false,
        })
    }
}

/// The digests a search value is looked up by: the value as a legacy id (exact) and
/// normalized as an e-mail address or user name.
fn search_digests(value: &str, digest: &impl Fn(&str) -> String) -> Vec<String> {
    let mut keys = vec![
        digest(&key_of_id(value.trim())),
        digest(&key_of_name(value)),
    ];
    keys.dedup();
    keys
}

fn key_of_id(id: &str) -> String {
    format!("id:{id}")
}

fn key_of_name(value: &str) -> String {
    format!("name:{}", value.trim().to_lowercase())
}

/// The values a queued user is found by (before keyed digesting): its legacy id, its
/// user name and every e-mail address, normalized.
pub fn search_keys(user: &NormalizedUser) -> Vec<String> {
    let mut keys = vec![key_of_id(&user.source_id), key_of_name(&user.source_id)];
    keys.extend(user.username.iter().map(|u| key_of_name(u)));
    keys.extend(user.emails.iter().map(|e| key_of_name(&e.value)));
    keys.sort();
    keys.dedup();
    keys
}

/// One page of the queue and where the next starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next_after: Option<String>,
}

/// What the queue is grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Class,
    Fault,
    Pattern,
    ScimType,
    UserType,
    Run,
    State,
    Assignee,
}

impl GroupBy {
    pub const ALL: [GroupBy; 8] = [
        Self::Class,
        Self::Fault,
        Self::Pattern,
        Self::ScimType,
        Self::UserType,
        Self::Run,
        Self::State,
        Self::Assignee,
    ];

    /// The column grouped on (from this closed set only).
    pub fn column(self) -> &'static str {
        match self {
            Self::Class => "error_class",
            Self::Fault => "fault",
            Self::Pattern => "pattern",
            Self::ScimType => "scim_type",
            Self::UserType => "user_type",
            Self::Run => "job_id",
            Self::State => "state",
            Self::Assignee => "assignee",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Class => "class",
            Self::Fault => "fault",
            Self::Pattern => "pattern",
            Self::ScimType => "scim_type",
            Self::UserType => "user_type",
            Self::Run => "run",
            Self::State => "state",
            Self::Assignee => "assignee",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Class => "Error class",
            Self::Fault => "Rule or attribute",
            Self::Pattern => "Target's detail",
            Self::ScimType => "scimType",
            Self::UserType => "User type",
            Self::Run => "Run",
            Self::State => "Review state",
            Self::Assignee => "Assignee",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// One group of a grouped view: its key (`None`: no value) and how many users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCount {
    pub key: Option<String>,
    /// The key in words (a member's name, a run's kind and date).
    pub label: String,
    pub count: u64,
}

/// Groups listed at most; the rest are summed as one.
pub const MAX_GROUPS: u32 = 50;

/// Where the project's users stand: every user is migrated, waiting for review,
/// deliberately skipped, or not yet through a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewSummary {
    /// Users in the project.
    pub users: u64,
    /// Users in the target (created, updated or found by a run against production).
    pub migrated: u64,
    /// Of those, users whose user type moves a password (silently or by invitation).
    #[serde(default)]
    pub password_users: u64,
    /// Users whose latest outcome is a failure and that wait for someone.
    pub waiting: u64,
    /// Of those waiting, nobody is assigned to.
    pub unassigned: u64,
    /// Failed users marked resolved without a run migrating them.
    pub resolved: u64,
    /// Users deliberately not migrated.
    pub skipped: u64,
    /// Users no run against production has reached yet.
    pub not_attempted: u64,
    /// When the oldest waiting user first failed.
    pub oldest_waiting_since: Option<DateTime<Utc>>,
}

/// An entry of a queued user's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewEvent {
    pub at: DateTime<Utc>,
    pub actor: Option<AccountId>,
    pub actor_name: Option<String>,
    pub kind: String,
    pub detail: String,
}

/// A new history entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReviewEvent {
    pub kind: &'static str,
    pub detail: String,
}

/// What support staff do to one or many queued users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ReviewAction {
    /// Assign to a member (support staff of the project, an administrator or an
    /// owner); `None` takes the assignment away.
    Assign {
        member: Option<AccountId>,
    },
    /// Open, in progress, waiting for the customer or resolved.
    SetState {
        state: ReviewState,
    },
    /// Deliberately not migrated, with a reason.
    Skip {
        reason: String,
    },
    Comment {
        text: String,
    },
}

/// Longest comment or skip reason kept.
pub const MAX_NOTE_CHARS: usize = 2_000;

impl ReviewAction {
    /// Checks the action's own data.
    pub fn check(&self) -> Result<()> {
        let note = |field: &str, text: &str| {
            if text.trim().is_empty() {
                Err(DomainError::invalid(field, "must not be empty"))
            } else if text.chars().count() > MAX_NOTE_CHARS {
                Err(DomainError::invalid(
                    field,
                    format!("at most {MAX_NOTE_CHARS} characters"),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Self::SetState {
                state: ReviewState::Skipped,
            } => Err(DomainError::invalid(
                "state",
                "skipping needs a reason: use the skip action",
            )),
            Self::Skip { reason } => note("reason", reason),
            Self::Comment { text } => note("text", text),
            _ => Ok(()),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Assign { .. } => "assigned",
            Self::SetState { .. } => "state",
            Self::Skip { .. } => "skipped",
            Self::Comment { .. } => "comment",
        }
    }
}

/// Which queued users an action is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// These legacy ids.
    Ids { ids: Vec<String> },
    /// Everything the filter matches (`expected`: the count the page showed; the
    /// action is refused when the filter now matches a different number).
    Filter {
        filter: Box<QueueFilter>,
        expected: Option<u64>,
    },
}

/// Legacy ids named at once in a selection.
pub const MAX_SELECTED: usize = 1_000;
/// Above this many users, an action runs as background work with progress.
pub const BACKGROUND_FROM: u64 = 100_000;

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionResult {
    /// Users changed (0 when the action goes on in the background).
    pub affected: u64,
    /// A retry: the run that sends them.
    pub run: Option<RunId>,
    /// More users than one request holds: the background task doing it.
    pub task: Option<ReviewTask>,
}

/// How a background action stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// An action on everything a filter matches, done in the background page by page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewTask {
    pub id: uuid::Uuid,
    pub project_id: crate::ids::ProjectId,
    pub action: ReviewAction,
    /// What each user's history says (the action in words).
    pub detail: String,
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub filter: StoredFilter,
    /// Users the filter matched when the task began.
    pub total: u64,
    /// Users acted on so far.
    pub done: u64,
    /// The last legacy id acted on: a restart goes on after it.
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub cursor: Option<String>,
    pub state: TaskState,
    /// Why it failed.
    pub error: Option<String>,
    pub created_by: Option<AccountId>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Users a background action acts on per step (one transaction each).
pub const TASK_STEP: u32 = 2_000;

/// An error class in words: Ferry's own (a mapping rule, a user type, a missing
/// record) and the target's.
pub fn class_label(class: &str) -> String {
    match class {
        "left_behind" => "Left behind (user type)".into(),
        "mapping" => "Mapping rejected".into(),
        "missing_record" => "Record missing".into(),
        "differs_in_target" => "Differs in the target (reconciliation)".into(),
        "missing_in_target" => "Gone from the target (reconciliation)".into(),
        "groups_differ_in_target" => "Groups differ in the target (reconciliation)".into(),
        "matches" => "Matches the target".into(),
        "delta_changed" => "Changed: updated in the target (delta)".into(),
        "delta_unchanged" => "Changed, but the target held it already (delta)".into(),
        "missing_left" => "Gone from the newer export: left (delta)".into(),
        "missing_deactivated" => "Gone from the newer export: deactivated (delta)".into(),
        "missing_deleted" => "Gone from the newer export: deleted (delta)".into(),
        "delta_restored" => "Put back as before the delta (rollback)".into(),
        other => crate::scim::outcome::ErrorClass::parse(other)
            .map(|c| c.label().to_string())
            .unwrap_or_else(|| other.replace('_', " ")),
    }
}

/// The shape of a failure detail: long numbers, quoted text and e-mail addresses replaced,
/// so `userName "ann" exists` and `userName "bob" exists` are one pattern. Whatever a
/// target quoted of a user is gone from the pattern.
pub fn pattern(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len().min(200));
    let mut chars = detail.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                out.push('…');
            }
            // Runs of four digits or more (phone numbers, ids, dates) are a user's;
            // shorter ones (a rule's number, an HTTP status) say what failed.
            c if c.is_ascii_digit() => {
                let mut run = String::from(c);
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    run.push(d);
                }
                if run.len() >= 4 {
                    out.push('#');
                } else {
                    out.push_str(&run);
                }
            }
            c => out.push(c),
        }
    }
    // Words holding an `@` are addresses: replaced whole.
    let words: Vec<String> = out
        .split(' ')
        .map(|w| {
            if w.contains('@') {
                "…".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let mut joined = words.join(" ");
    if let Some((cut, _)) = joined.char_indices().nth(160) {
        joined.truncate(cut);
        joined.push('…');
    }
    joined
}

/// The rule or attribute a failure names: `rule N` of a mapping failure, else the
/// first SCIM attribute the target's detail names.
pub fn fault(error_class: &str, detail: &str) -> Option<String> {
    if error_class == "mapping" {
        let rest = detail.strip_prefix("rule ")?;
        let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return (!number.is_empty()).then(|| format!("rule {number}"));
    }
    const ATTRIBUTES: [&str; 12] = [
        "userName",
        "emails",
        "name.givenName",
        "name.familyName",
        "displayName",
        "phoneNumbers",
        "externalId",
        "password",
        "active",
        "name",
        "addresses",
        "groups",
    ];
    let lower = detail.to_lowercase();
    ATTRIBUTES
        .iter()
        .filter_map(|a| lower.find(&a.to_lowercase()).map(|at| (at, *a)))
        .min_by_key(|(at, a)| (*at, std::cmp::Reverse(a.len())))
        .map(|(_, a)| a.to_string())
}

/// A queued user's failure as a run's finish records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedFailure {
    pub source_id: String,
    pub at: DateTime<Utc>,
    pub error_class: String,
    pub scim_type: Option<String>,
    pub detail: String,
    pub user_type: Option<String>,
    /// Keyed digests of [`search_keys`].
    pub digests: Vec<String>,
}

/// The fields of a record support staff may correct. Empty text clears a field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Correction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The primary e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The primary phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Original fields of the export, by name (as the mapping reads them).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Longest corrected value.
pub const MAX_VALUE_CHARS: usize = 1_000;

impl Correction {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.email.is_none()
            && self.given_name.is_none()
            && self.family_name.is_none()
            && self.display_name.is_none()
            && self.phone.is_none()
            && self.attributes.is_empty()
    }

    /// `user` with the correction applied, and the names of the fields it changed.
    pub fn apply(&self, user: &NormalizedUser) -> Result<(NormalizedUser, Vec<String>)> {
        let mut out = user.clone();
        let mut changed = Vec::new();
        let value = |field: &str, v: &str| -> Result<Option<String>> {
            let v = v.trim();
            if v.chars().count() > MAX_VALUE_CHARS {
                return Err(DomainError::invalid(
                    field,
                    format!("at most {MAX_VALUE_CHARS} characters"),
                ));
            }
            if v.chars().any(char::is_control) {
                return Err(DomainError::invalid(field, "holds a control character"));
            }
            Ok((!v.is_empty()).then(|| v.to_string()))
        };
        let mut set = |field: &str, slot: &mut Option<String>, new: &Option<String>| {
            if let Some(new) = new {
                let new = value(field, new)?;
                if *slot != new {
                    *slot = new;
                    changed.push(field.to_string());
                }
            }
            Ok::<(), DomainError>(())
        };
        set("username", &mut out.username, &self.username)?;
        set("given_name", &mut out.given_name, &self.given_name)?;
        set("family_name", &mut out.family_name, &self.family_name)?;
        set("display_name", &mut out.display_name, &self.display_name)?;
        if let Some(email) = &self.email {
            let new = value("email", email)?;
            if new.as_deref() != out.primary_email() {
                if let Some(new) = &new
                    && crate::accounts::normalize_email(new).is_err()
                {
                    return Err(DomainError::invalid(
                        "email",
                        "is not an e-mail address (name@example.com)",
                    ));
                }
                let primary = out
                    .emails
                    .iter()
                    .position(|e| e.primary)
                    .or((!out.emails.is_empty()).then_some(0));
                match (primary, new) {
                    (Some(at), Some(new)) => {
                        out.emails[at].value = new;
                        out.emails[at].verified = None;
                    }
                    (Some(at), None) => {
                        out.emails.remove(at);
                    }
                    (None, Some(new)) => out.emails.push(Email {
                        value: new,
                        primary: true,
                        verified: None,
                    }),
                    (None, None) => {}
                }
                changed.push("email".into());
            }
        }
        if let Some(phone) = &self.phone {
            let new = value("phone", phone)?;
            let primary = out
                .phones
                .iter()
                .position(|p| p.primary)
                .or((!out.phones.is_empty()).then_some(0));
            let old = primary.map(|at| out.phones[at].value.clone());
            if old != new {
                match (primary, new) {
                    (Some(at), Some(new)) => out.phones[at].value = new,
                    (Some(at), None) => {
                        out.phones.remove(at);
                    }
                    (None, Some(new)) => out.phones.push(crate::import::record::Phone {
                        value: new,
                        kind: None,
                        primary: true,
                    }),
                    (None, None) => {}
                }
                changed.push("phone".into());
            }
        }
        for (name, v) in &self.attributes {
            let field = format!("attributes.{name}");
            let new = value(&field, v)?;
            let old = out.attributes.get(name).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            if old != new {
                match new {
                    Some(new) => {
                        out.attributes
                            .insert(name.clone(), serde_json::Value::String(new));
                    }
                    None => {
                        out.attributes.remove(name);
                    }
                }
                changed.push(field);
            }
        }
        Ok((out, changed))
    }
}

/// A record as a viewer may see it: every value masked unless they may see personal
/// data. Credentials never leave, masked or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordFields {
    /// `(field, value)` in a fixed order: normalized fields, then the export's own.
    pub fields: Vec<(String, String)>,
    pub masked: bool,
}

impl RecordFields {
    pub fn of(user: &NormalizedUser, unmasked: bool) -> Self {
        let show = |v: &str| if unmasked { v.to_string() } else { mask(v) };
        let mut fields = vec![("source_id".to_string(), user.source_id.clone())];
        let mut push = |name: &str, v: Option<&str>| {
            if let Some(v) = v {
                fields.push((name.to_string(), show(v)));
            }
        };
        push("username", user.username.as_deref());
        push("email", user.primary_email());
        push("given_name", user.given_name.as_deref());
        push("family_name", user.family_name.as_deref());
        push("display_name", user.display_name.as_deref());
        for (i, e) in user.emails.iter().enumerate() {
            if user.primary_email() != Some(e.value.as_str()) {
                push(&format!("emails[{i}]"), Some(&e.value));
            }
        }
        for (i, p) in user.phones.iter().enumerate() {
            push(&format!("phones[{i}]"), Some(&p.value));
        }
        let status = format!("{:?}", user.status).to_lowercase();
        fields.push(("status".into(), status));
        if !user.groups.is_empty() {
            fields.push(("groups".into(), user.groups.join(", ")));
        }
        for (name, value) in &user.attributes {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            let secret = crate::assess::classify::secret_like(&text)
                || crate::assess::classify::classify(
                    &format!("attributes.{name}"),
                    &Default::default(),
                )
                .0 == crate::assess::classify::DataClass::Confidential;
            let shown = if secret {
                "(secret, never shown)".to_string()
            } else {
                show(&text)
            };
            fields.push((format!("attributes.{name}"), shown));
        }
        if let Some(c) = &user.credential {
            fields.push((
                "credential".into(),
                format!("{} hash (never shown)", c.algorithm()),
            ));
        }
        Self {
            fields,
            masked: !unmasked,
        }
    }
}

/// One attempt at a queued user in some run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub run_id: RunId,
    pub run_kind: String,
    pub target_role: String,
    pub state: String,
    pub error_class: Option<String>,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub scim_id: Option<String>,
    pub attempts: u32,
    pub at: Option<DateTime<Utc>>,
}

/// A correction as kept: who made it, when, which fields, and whether the export
/// changed the user since (a conflict to look at).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectionInfo {
    pub fields: Vec<String>,
    pub by: Option<AccountId>,
    pub by_name: Option<String>,
    pub at: DateTime<Utc>,
    /// A newer export changed the user after the correction was made.
    pub conflict: bool,
}

/// The columns of the queue's CSV export, in order. The value columns are what a
/// correction may change; re-imported, they become corrections.
pub const EXPORT_COLUMNS: [&str; 19] = [
    "source_id",
    "outcome",
    "review_state",
    "error_class",
    "scim_type",
    "fault",
    "detail",
    "user_type",
    "assignee",
    "skip_reason",
    "first_failed_at",
    "run_id",
    "corrected",
    "username",
    "email",
    "given_name",
    "family_name",
    "display_name",
    "phone",
];

/// Value columns a corrections CSV may carry, besides `attributes.<name>`.
pub const CORRECTABLE: [&str; 6] = [
    "username",
    "email",
    "given_name",
    "family_name",
    "display_name",
    "phone",
];

/// One exported user: its queue row and its values (masked unless the viewer may see
/// personal data).
pub fn export_row(item: &QueueItem, user: Option<&NormalizedUser>, unmasked: bool) -> Vec<String> {
    let show = |v: Option<&str>| match v {
        Some(v) if unmasked => v.to_string(),
        Some(v) => mask(v),
        None => String::new(),
    };
    let u = user;
    vec![
        item.source_id.clone(),
        item.outcome.as_str().into(),
        item.state.as_str().into(),
        item.error_class.clone(),
        item.scim_type.clone().unwrap_or_default(),
        item.fault.clone().unwrap_or_default(),
        // The target's words may quote the user's values: masked viewers get the
        // pattern, with the values taken out.
        if unmasked {
            item.detail.clone()
        } else {
            item.pattern.clone()
        },
        item.user_type.clone().unwrap_or_default(),
        item.assignee_name.clone().unwrap_or_default(),
        item.skip_reason.clone().unwrap_or_default(),
        item.first_failed_at.to_rfc3339(),
        item.run_id.to_string(),
        if item.corrected { "yes" } else { "no" }.into(),
        show(u.and_then(|u| u.username.as_deref())),
        show(u.and_then(|u| u.primary_email())),
        show(u.and_then(|u| u.given_name.as_deref())),
        show(u.and_then(|u| u.family_name.as_deref())),
        show(u.and_then(|u| u.display_name.as_deref())),
        show(
            u.and_then(|u| u.phones.iter().find(|p| p.primary).or(u.phones.first()))
                .map(|p| p.value.as_str()),
        ),
    ]
}

/// A correction read from a CSV row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrectionRow {
    /// The row's line in the file (1-based; the header is line 1).
    pub line: u64,
    pub source_id: String,
    pub correction: Correction,
}

/// A row of a corrections CSV that could not be used: where and why, never the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowProblem {
    pub line: u64,
    pub field: Option<String>,
    pub message: String,
}

/// What importing corrections did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CorrectionsReport {
    /// Rows read (the header not counted).
    pub rows: u64,
    /// Users whose record a row corrected.
    pub corrected: u64,
    /// Rows that changed nothing (every value as it was, masked or empty).
    pub unchanged: u64,
    pub problems: Vec<RowProblem>,
}

/// Rows one corrections CSV may hold.
pub const MAX_CORRECTION_ROWS: usize = 100_000;
/// Problems listed at most (the count says how many rows had one).
pub const MAX_ROW_PROBLEMS: usize = 200;

/// Reads a corrections CSV: a `source_id` column and any of the correctable columns
/// (`attributes.<name>` too); other columns (the export's own) are ignored. An empty
/// cell, or one holding a masked value (`•`), changes nothing.
pub fn parse_corrections(bytes: &[u8]) -> Result<(Vec<CorrectionRow>, Vec<RowProblem>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|_| DomainError::invalid("file", "line 1: not a CSV header row"))?
        .clone();
    let id_at = headers
        .iter()
        .position(|h| h.trim_start_matches('\u{feff}') == "source_id")
        .ok_or_else(|| DomainError::invalid("file", "line 1: there is no source_id column"))?;
    let columns: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| CORRECTABLE.contains(h) || h.starts_with("attributes."))
        .map(|(i, h)| (i, h.to_string()))
        .collect();
    if columns.is_empty() {
        return Err(DomainError::invalid(
            "file",
            format!(
                "line 1: no column to correct; name one of {} or attributes.<name>",
                CORRECTABLE.join(", ")
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, record) in reader.records().enumerate() {
        let line = n as u64 + 2;
        if rows.len() >= MAX_CORRECTION_ROWS {
            return Err(DomainError::invalid(
                "file",
                format!("more than {MAX_CORRECTION_ROWS} rows; split the file"),
            ));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                problems.push(RowProblem {
                    line,
                    field: None,
                    message: "the row is not valid CSV (a quote left open, or not UTF-8)".into(),
                });
                continue;
            }
        };
        let source_id = record.get(id_at).unwrap_or_default().to_string();
        if source_id.is_empty() {
            problems.push(RowProblem {
                line,
                field: Some("source_id".into()),
                message: "empty: each row names the legacy id of the user it corrects".into(),
            });
            continue;
        }
        if !seen.insert(source_id.clone()) {
            problems.push(RowProblem {
                line,
                field: Some("source_id".into()),
                message: "the same legacy id is on an earlier row".into(),
            });
            continue;
        }
        let mut correction = Correction::default();
        for (i, name) in &columns {
            let Some(value) = record.get(*i).filter(|v| !v.is_empty() && !v.contains('•')) else {
                continue;
            };
            let text = value.to_string();
            let value = Some(text.clone());
            match name.as_str() {
                "username" => correction.username = value,
                "email" => correction.email = value,
                "given_name" => correction.given_name = value,
                "family_name" => correction.family_name = value,
                "display_name" => correction.display_name = value,
                "phone" => correction.phone = value,
                other => {
                    let key = other.trim_start_matches("attributes.").to_string();
                    correction.attributes.insert(key, text);
                }
            }
        }
        rows.push(CorrectionRow {
            line,
            source_id,
            correction,
        });
    }
    Ok((rows, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_csv_reports_bad_rows_by_line_and_ignores_masked_cells() {
        let csv = "source_id,email,given_name,detail\n\
                   u1,ann@example.com,a•••,x\n\
                   ,bob@example.com,,\n\
                   u1,x@example.com,,\n\
                   u3,,Carl,\n";
        let (rows, problems) = parse_corrections(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].correction.email.as_deref(), Some("ann@example.com"));
        assert_eq!(rows[0].correction.given_name, None);
        assert_eq!(rows[1].source_id, "u3");
        assert_eq!(rows[1].line, 5);
        assert_eq!(problems.iter().map(|p| p.line).collect::<Vec<_>>(), [3, 4]);
        assert!(problems.iter().all(|p| !p.message.contains("example.com")));
        let err = parse_corrections(b"id,email\n1,a@b.c\n").unwrap_err();
        assert!(err.to_string().contains("source_id"));
    }

    #[test]
    fn patterns_drop_what_the_target_quoted() {
        assert_eq!(
            pattern(r#"userName "ann.lee" is already taken (409) by ann@example.com"#),
            "userName … is already taken (409) by …"
        );
        assert_eq!(
            pattern("rule 12: the value is not an e-mail address"),
            "rule 12: the value is not an e-mail address"
        );
        assert_eq!(
            pattern("phone +1 5550123 is invalid"),
            "phone +1 # is invalid"
        );
        assert_eq!(pattern("x 'b'"), pattern("x 'c'"));
    }

    #[test]
    fn the_fault_is_the_rule_or_the_attribute_named_first() {
        assert_eq!(
            fault("mapping", "rule 3: required; rule 4: x").as_deref(),
            Some("rule 3")
        );
        assert_eq!(
            fault("invalid_data", "Invalid value for emails: bad").as_deref(),
            Some("emails")
        );
        assert_eq!(
            fault("invalid_data", "the name.givenName attribute").as_deref(),
            Some("name.givenName")
        );
        assert_eq!(fault("network", "connection reset"), None);
    }

    #[test]
    fn search_finds_addresses_in_any_case_and_ids_exactly() {
        let user = NormalizedUser {
            source_id: "U-1".into(),
            username: Some("Ann".into()),
            emails: vec![Email {
                value: "Ann@Example.com".into(),
                primary: true,
                verified: None,
            }],
            ..Default::default()
        };
        let keys = search_keys(&user);
        let id = |s: &str| s.to_string();
        for wanted in ["ann@example.com", " ANN@example.COM", "ann", "U-1", "u-1"] {
            assert!(
                search_digests(wanted, &id).iter().any(|k| keys.contains(k)),
                "{wanted}"
            );
        }
        assert!(!search_digests("bob", &id).iter().any(|k| keys.contains(k)));
    }

    #[test]
    fn a_correction_changes_only_what_it_names_and_says_which() {
        let user = NormalizedUser {
            source_id: "1".into(),
            username: Some("ann".into()),
            emails: vec![Email {
                value: "ann@bad".into(),
                primary: true,
                verified: Some(true),
            }],
            given_name: Some("Ann".into()),
            ..Default::default()
        };
        let correction = Correction {
            email: Some("ann@example.com".into()),
            given_name: Some("Ann".into()),
            ..Default::default()
        };
        let (fixed, changed) = correction.apply(&user).unwrap();
        assert_eq!(changed, ["email"]);
        assert_eq!(fixed.primary_email(), Some("ann@example.com"));
        assert_eq!(fixed.emails[0].verified, None);
        assert_eq!(fixed.username, user.username);
        let bad = Correction {
            email: Some("not an address".into()),
            ..Default::default()
        };
        let err = bad.apply(&user).unwrap_err();
        assert_eq!(err.field(), Some("email"));
        assert!(!err.to_string().contains("not an address"));
    }

    #[test]
    fn masked_records_show_no_value_and_never_a_credential() {
        let user = NormalizedUser {
            source_id: "7".into(),
            emails: vec![Email {
                value: "ann@example.com".into(),
                primary: true,
                verified: None,
            }],
            ..Default::default()
        };
        let fields = RecordFields::of(&user, false);
        assert!(fields.masked);
        assert!(
            fields
                .fields
                .iter()
                .all(|(_, v)| !v.contains("ann@example.com"))
        );
        assert!(
            RecordFields::of(&user, true)
                .fields
                .iter()
                .any(|(_, v)| v == "ann@example.com")
        );
    }
}
