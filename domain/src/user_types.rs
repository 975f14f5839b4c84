//! User types: named user types of the source users, each defined by conditions over the
//! normalized record (group or role membership, e-mail domain, status, last login,
//! any field equal to, containing or matching a value), included in the migration or
//! left behind, and carrying the password strategy its users get. A user belongs to
//! the first user type whose conditions hold; users in no user type are counted and
//! reported, never silently dropped.

use crate::{
    import::record::{NormalizedUser, UserStatus},
    mapping::source::{SourceField, Value},
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The most user types a project may define, and conditions per user type.
pub const MAX_SEGMENTS: usize = 50;
pub const MAX_CONDITIONS: usize = 20;

/// What one condition tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// The user is a member of the group named by `value` (case ignored).
    InGroup,
    HasRole,
    /// The primary e-mail address ends in `@value` (case ignored).
    EmailDomain,
    /// `active`, `disabled`, `pending` or `unknown`.
    Status,
    /// Last login before `value`: a date (`2025-01-31`), a date and time, or an age
    /// (`365 days`, `365d`) counted back from when the user types are evaluated.
    LastLoginBefore,
    LastLoginAfter,
    NeverLoggedIn,
    /// `field` (any source field: `email`, `attributes.department`) equals `value`
    /// (case ignored); a list holds when one of its values does.
    Equals,
    Contains,
    /// `field` matches the regular expression `value`.
    Matches,
    /// `field` has no value.
    Empty,
}

impl Test {
    pub const ALL: [Test; 11] = [
        Test::InGroup,
        Test::HasRole,
        Test::EmailDomain,
        Test::Status,
        Test::LastLoginBefore,
        Test::LastLoginAfter,
        Test::NeverLoggedIn,
        Test::Equals,
        Test::Contains,
        Test::Matches,
        Test::Empty,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Test::InGroup => "in_group",
            Test::HasRole => "has_role",
            Test::EmailDomain => "email_domain",
            Test::Status => "status",
            Test::LastLoginBefore => "last_login_before",
            Test::LastLoginAfter => "last_login_after",
            Test::NeverLoggedIn => "never_logged_in",
            Test::Equals => "equals",
            Test::Contains => "contains",
            Test::Matches => "matches",
            Test::Empty => "empty",
        }
    }

    pub fn parse(text: &str) -> Option<Test> {
        Test::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Test::InGroup => "is in group",
            Test::HasRole => "has role",
            Test::EmailDomain => "has e-mail domain",
            Test::Status => "has status",
            Test::LastLoginBefore => "last logged in before",
            Test::LastLoginAfter => "last logged in after",
            Test::NeverLoggedIn => "never logged in",
            Test::Equals => "field equals",
            Test::Contains => "field contains",
            Test::Matches => "field matches",
            Test::Empty => "field is empty",
        }
    }

    /// Whether the test reads the `field` of its condition.
    pub fn takes_field(self) -> bool {
        matches!(
            self,
            Test::Equals | Test::Contains | Test::Matches | Test::Empty
        )
    }

    /// Whether the test compares with the `value` of its condition.
    pub fn takes_value(self) -> bool {
        !matches!(self, Test::NeverLoggedIn | Test::Empty)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Condition {
    pub test: Test,
    /// The source field, for the tests that read one.
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub value: String,
    /// Holds when the test does not.
    #[serde(default)]
    pub negate: bool,
}

/// How a user type's conditions combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Every condition holds.
    #[default]
    All,
    /// At least one holds.
    Any,
}

/// What a user type's users do about their password in the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PasswordStrategy {
    /// The target invites the user to set a password (`askPassword`).
    #[default]
    ForcedReset,
    /// The account is created with a strong random password; the legacy password is
    /// checked and set at the user's first login.
    SilentMigration,
    /// The account is created disabled, without a usable password.
    None,
}

impl PasswordStrategy {
    pub const ALL: [PasswordStrategy; 3] = [
        PasswordStrategy::ForcedReset,
        PasswordStrategy::SilentMigration,
        PasswordStrategy::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PasswordStrategy::ForcedReset => "forced_reset",
            PasswordStrategy::SilentMigration => "silent_migration",
            PasswordStrategy::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// What the choice means for the user type's users.
    pub fn label(self) -> &'static str {
        match self {
            PasswordStrategy::ForcedReset => {
                "forced reset: users get an invitation to set a password"
            }
            PasswordStrategy::SilentMigration => {
                "silent migration: users keep their password, moved at their first login"
            }
            PasswordStrategy::None => "none: accounts are created disabled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserType {
    pub name: String,
    #[serde(default)]
    pub combine: Combine,
    /// No conditions: every user not taken by an earlier user type.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Whether the user type's users move; an excluded user type leaves them behind.
    pub include: bool,
    #[serde(default)]
    pub password: PasswordStrategy,
}

/// A project's user types, in the order they are tried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserTypes {
    #[serde(alias = "segments")]
    pub user_types: Vec<UserType>,
}

impl Default for UserTypes {
    /// Before any are defined, everyone moves with a forced reset.
    fn default() -> Self {
        Self {
            user_types: vec![UserType {
                name: "Everyone".into(),
                combine: Combine::All,
                conditions: Vec::new(),
                include: true,
                password: PasswordStrategy::ForcedReset,
            }],
        }
    }
}

/// Something wrong with a user type definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserTypeProblem {
    /// The user type's position; `None` for the list as a whole.
    #[serde(alias = "segment")]
    pub user_type: Option<usize>,
    /// The condition's position inside the user type.
    pub condition: Option<usize>,
    /// `name`, `field` or `value`.
    pub field: String,
    pub message: String,
}

enum Compiled {
    Group(String),
    Role(String),
    Domain(String),
    Status(UserStatus),
    LoginBefore(DateTime<Utc>),
    LoginAfter(DateTime<Utc>),
    NeverLoggedIn,
    Equals(SourceField, String),
    Contains(SourceField, String),
    Matches(SourceField, regex::Regex),
    Empty(SourceField),
}

struct CompiledCondition {
    test: Compiled,
    negate: bool,
}

struct CompiledUserType {
    combine: Combine,
    conditions: Vec<CompiledCondition>,
}

/// User types ready to place users.
pub struct CompiledUserTypes {
    user_types: Vec<CompiledUserType>,
    included: Vec<bool>,
}

/// A date, a date and time, or an age counted back from `now`.
fn moment(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let age = text
        .strip_suffix("days")
        .or_else(|| text.strip_suffix("day"))
        .or_else(|| text.strip_suffix('d'))
        .map(str::trim);
    if let Some(days) = age
        && let Ok(days) = days.parse::<i64>()
        && (0..=36_500).contains(&days)
    {
        return Ok(now - Duration::days(days));
    }
    crate::import::record::parse_time(text).ok_or_else(|| {
        format!("{text:?} is not a date (2025-01-31), a date and time, or an age (365 days)")
    })
}

fn status(text: &str) -> Option<UserStatus> {
    match text.trim().to_ascii_lowercase().as_str() {
        "active" => Some(UserStatus::Active),
        "disabled" => Some(UserStatus::Disabled),
        "pending" => Some(UserStatus::Pending),
        "unknown" => Some(UserStatus::Unknown),
        _ => None,
    }
}

impl Condition {
    fn compile(&self, now: DateTime<Utc>) -> Result<Compiled, (&'static str, String)> {
        let value = self.value.trim();
        if self.test.takes_value() && value.is_empty() {
            return Err(("value", format!("{} needs a value", self.test.label())));
        }
        let field = || {
            SourceField::parse(&self.field).map_err(|e| {
                if self.field.trim().is_empty() {
                    ("field", "choose the field to test".to_string())
                } else {
                    ("field", e)
                }
            })
        };
        let lower = value.to_lowercase();
        Ok(match self.test {
            Test::InGroup => Compiled::Group(lower),
            Test::HasRole => Compiled::Role(lower),
            Test::EmailDomain => Compiled::Domain(lower.trim_start_matches('@').to_string()),
            Test::Status => Compiled::Status(status(value).ok_or((
                "value",
                format!("{value:?} is not a status: use active, disabled, pending or unknown"),
            ))?),
            Test::LastLoginBefore => {
                Compiled::LoginBefore(moment(value, now).map_err(|e| ("value", e))?)
            }
            Test::LastLoginAfter => {
                Compiled::LoginAfter(moment(value, now).map_err(|e| ("value", e))?)
            }
            Test::NeverLoggedIn => Compiled::NeverLoggedIn,
            Test::Equals => Compiled::Equals(field()?, lower),
            Test::Contains => Compiled::Contains(field()?, lower),
            Test::Matches => {
                let field = field()?;
                let re = regex::RegexBuilder::new(value)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| ("value", format!("not a regular expression: {e}")))?;
                Compiled::Matches(field, re)
            }
            Test::Empty => Compiled::Empty(field()?),
        })
    }
}

impl UserTypes {
    /// Checks every user type and condition (all problems at once) and prepares them;
    /// ages (`365 days`) are counted back from `now`.
    pub fn compile(&self, now: DateTime<Utc>) -> Result<CompiledUserTypes, Vec<UserTypeProblem>> {
        let mut problems = Vec::new();
        if self.user_types.is_empty() {
            problems.push(UserTypeProblem {
                user_type: None,
                condition: None,
                field: "user_types".into(),
                message: "define at least one user type".into(),
            });
        }
        if self.user_types.len() > MAX_SEGMENTS {
            problems.push(UserTypeProblem {
                user_type: None,
                condition: None,
                field: "user_types".into(),
                message: format!("at most {MAX_SEGMENTS} user types"),
            });
        }
        let mut names: Vec<String> = Vec::new();
        let mut user_types = Vec::with_capacity(self.user_types.len());
        for (i, user_type) in self.user_types.iter().enumerate() {
            let problem = |condition, field: &str, message: String| UserTypeProblem {
                user_type: Some(i),
                condition,
                field: field.into(),
                message,
            };
            let name = user_type.name.trim();
            if name.is_empty() {
                problems.push(problem(None, "name", "give the user type a name".into()));
            } else if name.chars().count() > 80 {
                problems.push(problem(
                    None,
                    "name",
                    "a name has at most 80 characters".into(),
                ));
            } else if names.contains(&name.to_lowercase()) {
                problems.push(problem(None, "name", format!("{name:?} is used twice")));
            }
            names.push(name.to_lowercase());
            if user_type.conditions.len() > MAX_CONDITIONS {
                problems.push(problem(
                    None,
                    "conditions",
                    format!("at most {MAX_CONDITIONS} conditions"),
                ));
            }
            let mut conditions = Vec::with_capacity(user_type.conditions.len());
            for (n, condition) in user_type.conditions.iter().enumerate() {
                match condition.compile(now) {
                    Ok(test) => conditions.push(CompiledCondition {
                        test,
                        negate: condition.negate,
                    }),
                    Err((field, message)) => problems.push(problem(Some(n), field, message)),
                }
            }
            user_types.push(CompiledUserType {
                combine: user_type.combine,
                conditions,
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(CompiledUserTypes {
            user_types,
            included: self.user_types.iter().map(|s| s.include).collect(),
        })
    }
}

fn texts(value: Value) -> Vec<String> {
    match value {
        Value::Missing => Vec::new(),
        Value::Text(t) => vec![t],
        Value::List(items) => items,
        Value::Bool(b) => vec![b.to_string()],
    }
}

impl Compiled {
    fn holds(&self, user: &NormalizedUser) -> bool {
        let any_named = |names: &[String], wanted: &str| {
            names.iter().any(|n| n.trim().to_lowercase() == wanted)
        };
        match self {
            Compiled::Group(name) => any_named(&user.groups, name),
            Compiled::Role(name) => any_named(&user.roles, name),
            Compiled::Domain(domain) => user.primary_email().is_some_and(|e| {
                e.rsplit_once('@')
                    .is_some_and(|(_, d)| d.trim().eq_ignore_ascii_case(domain))
            }),
            Compiled::Status(status) => user.status == *status,
            Compiled::LoginBefore(at) => user.last_login_at.is_some_and(|l| l < *at),
            Compiled::LoginAfter(at) => user.last_login_at.is_some_and(|l| l >= *at),
            Compiled::NeverLoggedIn => user.last_login_at.is_none(),
            Compiled::Equals(field, wanted) => texts(field.read(user))
                .iter()
                .any(|t| t.trim().to_lowercase() == *wanted),
            Compiled::Contains(field, wanted) => texts(field.read(user))
                .iter()
                .any(|t| t.to_lowercase().contains(wanted.as_str())),
            Compiled::Matches(field, re) => texts(field.read(user)).iter().any(|t| re.is_match(t)),
            Compiled::Empty(field) => field.read(user).is_missing(),
        }
    }
}

impl CompiledUserTypes {
    /// The first user type the user belongs to; `None` when the user is in none.
    pub fn place(&self, user: &NormalizedUser) -> Option<usize> {
        self.user_types.iter().position(|user_type| {
            let holds = |c: &CompiledCondition| c.test.holds(user) != c.negate;
            match user_type.combine {
                Combine::All => user_type.conditions.iter().all(holds),
                Combine::Any => {
                    user_type.conditions.is_empty() || user_type.conditions.iter().any(holds)
                }
            }
        })
    }

    /// Whether the users of user type `index` move.
    pub fn included(&self, index: usize) -> bool {
        self.included.get(index).copied().unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.user_types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user_types.is_empty()
    }
}

/// How many users each user type holds, and how many are in none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserTypeCounts {
    /// Per user type, in their order.
    #[serde(alias = "segments")]
    pub user_types: Vec<u64>,
    /// Users in no user type: they do not move, and are reported.
    pub unmatched: u64,
    /// Users that move: the sum over included user types.
    pub moving: u64,
    /// Users counted.
    pub counted: u64,
}

impl UserTypeCounts {
    pub fn new(user_types: usize) -> Self {
        Self {
            user_types: vec![0; user_types],
            ..Self::default()
        }
    }

    pub fn add(&mut self, placed: Option<usize>, compiled: &CompiledUserTypes) {
        self.counted += 1;
        match placed {
            Some(i) => {
                if let Some(n) = self.user_types.get_mut(i) {
                    *n += 1;
                }
                if compiled.included(i) {
                    self.moving += 1;
                }
            }
            None => self.unmatched += 1,
        }
    }
}
