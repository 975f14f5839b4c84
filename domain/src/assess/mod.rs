//! The assessment report: what the uploaded users look like before anything moves.
//! [`Assessor`] takes the project's records one at a time in fixed memory (exact
//! counts up to a bound, a HyperLogLog sketch past it) and reports findings to drill
//! into as it goes; [`Report`] is the result, and [`Report::view`] what a viewer sees
//! of it (examples masked, confidential values never present).

pub mod classify;
pub mod values;

#[cfg(test)]
mod tests;

use crate::{
    ids::UploadId,
    import::{NormalizedUser, record::UserStatus},
};
use chrono::{DateTime, Datelike, Timelike, Utc};
use classify::{DataClass, ValueFacts, classify, ip_like, secret_like};
use foldhash::quality::FixedState;
use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, HashMap},
    hash::BuildHasher,
};
use values::{ValueType, infer, is_email, to_e164};

/// Distinct values counted exactly, with how often each occurs (for the top values),
/// per attribute.
const EXACT_DISTINCT: usize = 1_000;
/// Past that, distinct values still counted exactly by a 64-bit digest of each, per
/// attribute: a column of up to this many values is known unique or not, not guessed.
const EXACT_DIGESTS: usize = 250_000;
/// Digests held across all attributes (about 16 bytes each): past this, sketches only.
const DIGEST_BUDGET: usize = 4_000_000;
/// An attribute with at most this many distinct values lists them as its top values.
const LOW_CARDINALITY: u64 = 20;
/// Attribute paths followed; an export with more (keys made of ids, say) reports the
/// rest as one count rather than growing without bound.
const MAX_PATHS: usize = 400;
const EXAMPLES: usize = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssessOptions {
    /// Numbers without a country code are read as numbers of this region (`US`, …).
    pub phone_region: Option<String>,
}

/// Counts of users, for the project or one upload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    pub users: u64,
    pub active: u64,
    pub disabled: u64,
    pub pending: u64,
    pub status_unknown: u64,
    pub with_password: u64,
    pub without_password: u64,
    /// By the primary address.
    pub email_verified: u64,
    pub email_unverified: u64,
    pub email_verification_unknown: u64,
    pub without_email: u64,
}

impl Totals {
    fn add(&mut self, user: &NormalizedUser) {
        self.users += 1;
        match user.status {
            UserStatus::Active => self.active += 1,
            UserStatus::Disabled => self.disabled += 1,
            UserStatus::Pending => self.pending += 1,
            UserStatus::Unknown => self.status_unknown += 1,
        }
        if user.credential.is_some() {
            self.with_password += 1;
        } else {
            self.without_password += 1;
        }
        let primary = user
            .emails
            .iter()
            .find(|e| e.primary)
            .or(user.emails.first());
        match primary.map(|e| e.verified) {
            None => self.without_email += 1,
            Some(Some(true)) => self.email_verified += 1,
            Some(Some(false)) => self.email_unverified += 1,
            Some(None) => self.email_verification_unknown += 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadTotals {
    /// The upload that last delivered these users.
    pub upload_id: UploadId,
    pub totals: Totals,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialCount {
    pub algorithm: String,
    /// Cost parameters (never salt or hash).
    pub parameters: String,
    pub users: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamedCount {
    pub name: String,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Uniqueness {
    /// Every value appears once (counted exactly).
    Unique,
    /// Too many values to count exactly; the estimate is within 2% of one per value.
    LikelyUnique,
    NotUnique,
}

/// One source attribute, nested ones flattened to a path (`attributes.department`,
/// `identities[].provider`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributeReport {
    pub path: String,
    /// Users with at least one non-empty value.
    pub filled: u64,
    /// Non-empty values (a multi-valued attribute has several per user).
    pub values: u64,
    pub distinct: u64,
    /// False when `distinct` is an estimate (HyperLogLog, about 1% off).
    pub distinct_exact: bool,
    pub uniqueness: Uniqueness,
    pub min_length: u64,
    pub max_length: u64,
    pub average_length: f64,
    pub value_type: ValueType,
    /// The values of a low-cardinality attribute with their counts, most common first.
    pub top: Vec<NamedCount>,
    /// A few values, kept sealed with the report; viewers see them masked.
    pub examples: Vec<String>,
    pub class: DataClass,
    pub class_reason: String,
    /// The class was set by an administrator, not inferred.
    #[serde(default)]
    pub overridden: bool,
}

/// The checks of data quality; each finding names one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Check {
    InvalidEmail,
    DuplicateEmail,
    UsernameCollision,
    PhoneNotE164,
    FutureDate,
    UnparseableDate,
    MissingUserName,
    MissingEmail,
    MissingName,
    /// A field the reader could not read (a flag, a password hash of an unknown kind,
    /// text not in the file's encoding); the user was imported without it.
    UnreadableField,
}

impl Check {
    pub const ALL: [Check; 10] = [
        Check::InvalidEmail,
        Check::DuplicateEmail,
        Check::UsernameCollision,
        Check::PhoneNotE164,
        Check::FutureDate,
        Check::UnparseableDate,
        Check::MissingUserName,
        Check::MissingEmail,
        Check::MissingName,
        Check::UnreadableField,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::InvalidEmail => "invalid_email",
            Check::DuplicateEmail => "duplicate_email",
            Check::UsernameCollision => "username_collision",
            Check::PhoneNotE164 => "phone_not_e164",
            Check::FutureDate => "future_date",
            Check::UnparseableDate => "unparseable_date",
            Check::MissingUserName => "missing_user_name",
            Check::MissingEmail => "missing_email",
            Check::MissingName => "missing_name",
            Check::UnreadableField => "unreadable_field",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Check::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// What the check finds, as the report lists it.
    pub fn label(self) -> &'static str {
        match self {
            Check::InvalidEmail => "Invalid e-mail addresses",
            Check::DuplicateEmail => "E-mail addresses shared by several users",
            Check::UsernameCollision => {
                "User names equal but for case (SCIM userName is case-insensitive)"
            }
            Check::PhoneNotE164 => "Phone numbers not convertible to E.164",
            Check::FutureDate => "Dates in the future",
            Check::UnparseableDate => "Dates that cannot be read",
            Check::MissingUserName => "No user name and no e-mail for the SCIM userName",
            Check::MissingEmail => "No e-mail address (targets need one for invites)",
            Check::MissingName => "No given, family or display name",
            Check::UnreadableField => "Fields that could not be read (the users were kept)",
        }
    }
}

/// One record a check found, for the drill-down. Holds ids and field names, never
/// the offending value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    pub check: Check,
    pub source_id: String,
    pub field: Option<String>,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckCount {
    pub check: Check,
    pub label: String,
    pub count: u64,
}

/// Where a project's assessment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AssessmentStatus {
    Running,
    Ready,
    Failed,
}

impl AssessmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AssessmentStatus::Running => "running",
            AssessmentStatus::Ready => "ready",
            AssessmentStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(AssessmentStatus::Running),
            "ready" => Some(AssessmentStatus::Ready),
            "failed" => Some(AssessmentStatus::Failed),
            _ => None,
        }
    }
}

/// Last-login recency, as of when the report was computed.
pub const RECENCY: [&str; 5] = [
    "within 30 days",
    "31–90 days",
    "91–365 days",
    "over a year",
    "never",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub computed_at: DateTime<Utc>,
    pub options: AssessOptions,
    pub totals: Totals,
    pub uploads: Vec<UploadTotals>,
    pub credentials: Vec<CredentialCount>,
    pub attributes: Vec<AttributeReport>,
    /// Paths beyond the ones followed.
    pub more_attributes: u64,
    pub groups: Vec<NamedCount>,
    pub roles: Vec<NamedCount>,
    /// Permissions, scopes or entitlements, where the format carries them.
    pub permissions: Vec<NamedCount>,
    /// Users by how many groups they belong to: `0`, `1`, … `5+`.
    pub users_by_group_count: Vec<NamedCount>,
    pub quality: Vec<CheckCount>,
    pub recency: Vec<NamedCount>,
    /// Last logins per UTC quarter hour (seconds since the epoch / 900), so the heatmap
    /// can be drawn in any time zone, half- and quarter-hour offsets included.
    pub logins: Vec<(i64, u64)>,
}

/// Everything the assessor tracks of one attribute path.
struct AttributeStats {
    filled: u64,
    last_record: u64,
    values: u64,
    total_length: u64,
    min_length: u64,
    max_length: u64,
    types: [u64; 8],
    secret_like: u64,
    ip_like: u64,
    exact: Option<HashMap<String, u64, foldhash::fast::RandomState>>,
    /// Digests of the distinct values, once there are too many to keep the values.
    digests: Option<std::collections::HashSet<u64, foldhash::fast::RandomState>>,
    sketch: Option<HyperLogLogPlus<str, FixedState>>,
    examples: Vec<String>,
    dates_by_name: bool,
    /// The path names permissions, scopes or entitlements.
    grants: bool,
}

impl AttributeStats {
    fn new(path: &str) -> Self {
        Self {
            filled: 0,
            last_record: u64::MAX,
            values: 0,
            total_length: 0,
            min_length: u64::MAX,
            max_length: 0,
            types: [0; 8],
            secret_like: 0,
            ip_like: 0,
            exact: Some(HashMap::default()),
            digests: None,
            sketch: None,
            examples: Vec::new(),
            dates_by_name: dated(path),
            grants: {
                let last = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
                ["permissions", "permissions[]", "scopes[]", "entitlements[]"]
                    .contains(&last.as_str())
            },
        }
    }

    /// Adds one value; `budget` is what is left of [`DIGEST_BUDGET`].
    fn add(&mut self, record: u64, value: &str, budget: &mut usize) {
        if self.last_record != record {
            self.last_record = record;
            self.filled += 1;
        }
        self.values += 1;
        let length = value.chars().count() as u64;
        self.total_length += length;
        self.min_length = self.min_length.min(length);
        self.max_length = self.max_length.max(length);
        self.types[infer(value).index()] += 1;
        self.secret_like += u64::from(secret_like(value));
        self.ip_like += u64::from(ip_like(value));
        if self.examples.len() < EXAMPLES && !self.examples.iter().any(|e| e == value) {
            self.examples.push(value.to_string());
        }
        if let Some(exact) = &mut self.exact {
            *exact.entry(value.to_string()).or_default() += 1;
            if exact.len() > EXACT_DISTINCT {
                // The sketch runs from here on beside the digests, so that it can take
                // over when they grow too many.
                let mut sketch = new_sketch();
                let mut digests = std::collections::HashSet::default();
                for key in exact.keys() {
                    sketch.insert(key.as_str());
                    digests.insert(digest(key));
                }
                if *budget >= digests.len() {
                    *budget -= digests.len();
                    self.digests = Some(digests);
                }
                self.sketch = Some(sketch);
                self.exact = None;
            }
            return;
        }
        if let Some(sketch) = &mut self.sketch {
            sketch.insert(value);
        }
        if let Some(digests) = &mut self.digests
            && digests.insert(digest(value))
        {
            if digests.len() > EXACT_DIGESTS || *budget == 0 {
                *budget += digests.len() - 1;
                self.digests = None;
            } else {
                *budget -= 1;
            }
        }
    }

    fn report(mut self, path: String) -> AttributeReport {
        let (distinct, exact) = match (&self.exact, &self.digests, &mut self.sketch) {
            (Some(exact), _, _) => (exact.len() as u64, true),
            (None, Some(digests), _) => (digests.len() as u64, true),
            // An estimate is never above the number of values it estimates.
            (None, None, Some(sketch)) => ((sketch.count().round() as u64).min(self.values), false),
            (None, None, None) => (0, true),
        };
        let uniqueness = if exact && distinct == self.values {
            Uniqueness::Unique
        } else if !exact && distinct as f64 >= self.values as f64 * 0.98 {
            Uniqueness::LikelyUnique
        } else {
            Uniqueness::NotUnique
        };
        let (main, of_main) = ValueType::ALL
            .iter()
            .map(|t| (*t, self.types[t.index()]))
            .max_by_key(|(t, n)| (*n, std::cmp::Reverse(*t)))
            .unwrap_or((ValueType::Text, 0));
        // Mixed values are free text unless nine in ten share a type.
        let value_type = if of_main * 10 >= self.values * 9 {
            main
        } else {
            ValueType::Text
        };
        let facts = ValueFacts {
            values: self.values,
            main_type: main,
            of_main_type: of_main,
            secret_like: self.secret_like,
            ip_like: self.ip_like,
        };
        let (class, class_reason) = classify(&path, &facts);
        let mut top: Vec<NamedCount> = match &self.exact {
            Some(exact) if distinct <= LOW_CARDINALITY => exact
                .iter()
                .map(|(name, count)| NamedCount {
                    name: name.clone(),
                    count: *count,
                })
                .collect(),
            _ => Vec::new(),
        };
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        let mut examples = self.examples;
        if class == DataClass::Confidential {
            // Secrets are never kept, not even sealed.
            top.clear();
            examples.clear();
        }
        AttributeReport {
            path,
            filled: self.filled,
            values: self.values,
            distinct,
            distinct_exact: exact,
            uniqueness,
            min_length: if self.values == 0 { 0 } else { self.min_length },
            max_length: self.max_length,
            average_length: if self.values == 0 {
                0.0
            } else {
                (self.total_length as f64 / self.values as f64 * 10.0).round() / 10.0
            },
            value_type,
            top,
            examples,
            class,
            class_reason,
            overridden: false,
        }
    }
}

/// Whether an attribute's name says it holds dates (`created_at`, `createdTimestamp`,
/// `lastLoginTime`, `birthdate`, `pwdChangedTime`), so values that do not read as one
/// are reported.
fn dated(path: &str) -> bool {
    let last = path
        .rsplit('.')
        .next()
        .unwrap_or(path)
        .trim_end_matches("[]");
    let lower = last.to_ascii_lowercase();
    (lower.contains("date") || lower.contains("time") || lower.contains("birth"))
        && !lower.contains("zone")
        || lower.ends_with("_at")
        || last.ends_with("At")
}

/// A value's 64-bit digest, the same in every run (distinct counts must not vary).
fn digest(value: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x5eed).hash_one(value)
}

fn new_sketch() -> HyperLogLogPlus<str, FixedState> {
    // Precision 14: 16 KiB a sketch, about 0.8% error. 14 is within the crate's range.
    #[allow(clippy::expect_used)]
    HyperLogLogPlus::new(14, FixedState::default()).expect("precision 14 is valid")
}

fn hash_of(text: &str) -> u64 {
    FixedState::default().hash_one(text)
}

/// Source ids by the order records were read, packed in one string: the duplicate
/// checks name the first record of a pair only once a second one turns up.
#[derive(Default)]
struct Ids {
    text: String,
    ends: Vec<u32>,
}

impl Ids {
    fn push(&mut self, id: &str) -> u32 {
        self.text.push_str(id);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    fn get(&self, ordinal: u32) -> &str {
        let i = ordinal as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize).unwrap_or("")
    }
}

/// Values seen once so far, by hash, with the ordinal of the first record holding it.
#[derive(Default)]
struct Repeats {
    seen: HashMap<u64, (u32, u32)>,
}

impl Repeats {
    /// Returns the first holder's ordinal when `ordinal` repeats a value, and whether
    /// this is the first repeat (so the first holder is reported once).
    fn see(&mut self, key: &str, ordinal: u32) -> Option<(u32, bool)> {
        let entry = self.seen.entry(hash_of(key)).or_insert((0, ordinal));
        entry.0 += 1;
        (entry.0 > 1).then_some((entry.1, entry.0 == 2))
    }
}

/// Takes records one at a time and builds the report.
pub struct Assessor {
    options: AssessOptions,
    now: DateTime<Utc>,
    records: u64,
    totals: Totals,
    uploads: HashMap<UploadId, Totals>,
    credentials: HashMap<(String, String), u64>,
    attributes: HashMap<String, AttributeStats>,
    /// Digests the attributes may still hold ([`DIGEST_BUDGET`] in all).
    digest_budget: usize,
    more_paths: std::collections::HashSet<u64>,
    groups: HashMap<String, u64>,
    roles: HashMap<String, u64>,
    permissions: HashMap<String, u64>,
    group_counts: [u64; 6],
    quality: HashMap<Check, u64>,
    recency: [u64; 5],
    logins: BTreeMap<i64, u64>,
    ids: Ids,
    emails: Repeats,
    usernames: Repeats,
}

impl Assessor {
    pub fn new(options: AssessOptions, now: DateTime<Utc>) -> Self {
        Self {
            options,
            now,
            records: 0,
            totals: Totals::default(),
            uploads: HashMap::new(),
            credentials: HashMap::new(),
            attributes: HashMap::new(),
            digest_budget: DIGEST_BUDGET,
            more_paths: Default::default(),
            groups: HashMap::new(),
            roles: HashMap::new(),
            permissions: HashMap::new(),
            group_counts: [0; 6],
            quality: HashMap::new(),
            recency: [0; 5],
            logins: BTreeMap::new(),
            ids: Ids::default(),
            emails: Repeats::default(),
            usernames: Repeats::default(),
        }
    }

    /// Sizes the id list and the duplicate checks for `records` up front: growing
    /// them by doubling would hold the old and the new copy at once.
    pub fn expect(&mut self, records: u64) {
        let records = usize::try_from(records)
            .unwrap_or(usize::MAX)
            .min(50_000_000);
        self.ids.ends.reserve(records);
        self.ids.text.reserve(records.saturating_mul(16));
        self.emails.seen.reserve(records);
        self.usernames.seen.reserve(records);
    }

    /// Adds one record, last delivered by `upload`; `found` receives what the checks
    /// find in it (and, for a duplicate, in the record it duplicates).
    pub fn add(&mut self, upload: UploadId, user: &NormalizedUser, found: &mut dyn FnMut(Finding)) {
        let record = self.records;
        self.records += 1;
        let ordinal = self.ids.push(&user.source_id);
        self.totals.add(user);
        self.uploads.entry(upload).or_default().add(user);
        if let Some(credential) = &user.credential {
            *self
                .credentials
                .entry((credential.algorithm(), credential.parameters()))
                .or_default() += 1;
        }
        for (key, value) in &user.attributes {
            self.flatten(record, key.clone(), value, user, found);
        }
        for group in &user.groups {
            *self.groups.entry(group.clone()).or_default() += 1;
        }
        for role in &user.roles {
            *self.roles.entry(role.clone()).or_default() += 1;
        }
        self.group_counts[user.groups.len().min(5)] += 1;
        self.check(ordinal, user, found);
        self.activity(user);
    }

    fn flatten(
        &mut self,
        record: u64,
        path: String,
        value: &serde_json::Value,
        user: &NormalizedUser,
        found: &mut dyn FnMut(Finding),
    ) {
        use serde_json::Value;
        match value {
            Value::Null => {}
            Value::Object(map) => {
                for (key, inner) in map {
                    self.flatten(record, format!("{path}.{key}"), inner, user, found);
                }
            }
            Value::Array(items) => {
                let path = format!("{path}[]");
                for item in items {
                    self.flatten(record, path.clone(), item, user, found);
                }
            }
            Value::String(text) if text.trim().is_empty() => {}
            scalar => {
                let text = match scalar {
                    Value::String(text) => text.trim().to_string(),
                    other => other.to_string(),
                };
                if !self.attributes.contains_key(&path) {
                    if self.attributes.len() >= MAX_PATHS {
                        self.more_paths.insert(hash_of(&path));
                        return;
                    }
                    self.attributes
                        .insert(path.clone(), AttributeStats::new(&path));
                }
                let Some(stats) = self.attributes.get_mut(&path) else {
                    return;
                };
                if stats.grants {
                    *self.permissions.entry(text.clone()).or_default() += 1;
                }
                stats.add(record, &text, &mut self.digest_budget);
                if stats.dates_by_name && !matches!(scalar, Value::Bool(_)) {
                    match crate::import::record::parse_time(&text) {
                        None => self.find(
                            found,
                            Check::UnparseableDate,
                            &user.source_id,
                            Some(&path),
                            "is not a date and time Ferry can read".into(),
                        ),
                        Some(at) if at > self.now && !path.contains("xpir") => self.find(
                            found,
                            Check::FutureDate,
                            &user.source_id,
                            Some(&path),
                            "is in the future".into(),
                        ),
                        Some(_) => {}
                    }
                }
            }
        }
    }

    /// Counts a finding of `check` in the record `source_id` and hands it on.
    fn find(
        &mut self,
        found: &mut dyn FnMut(Finding),
        check: Check,
        source_id: &str,
        field: Option<&str>,
        note: String,
    ) {
        *self.quality.entry(check).or_default() += 1;
        found(Finding {
            check,
            source_id: source_id.to_string(),
            field: field.map(str::to_string),
            note,
        });
    }

    fn check(&mut self, ordinal: u32, user: &NormalizedUser, found: &mut dyn FnMut(Finding)) {
        let mut seen_here = Vec::new();
        for email in &user.emails {
            if !is_email(email.value.trim()) {
                self.find(
                    found,
                    Check::InvalidEmail,
                    &user.source_id,
                    Some("emails"),
                    "is not a valid e-mail address".into(),
                );
                continue;
            }
            let key = email.value.trim().to_lowercase();
            if seen_here.contains(&key) {
                continue;
            }
            if let Some((first, first_repeat)) = self.emails.see(&key, ordinal) {
                let first_id = self.ids.get(first).to_string();
                if first_repeat {
                    self.find(
                        found,
                        Check::DuplicateEmail,
                        &first_id,
                        Some("emails"),
                        format!("shares its e-mail address with {}", user.source_id),
                    );
                }
                self.find(
                    found,
                    Check::DuplicateEmail,
                    &user.source_id,
                    Some("emails"),
                    format!("shares its e-mail address with {first_id}"),
                );
            }
            seen_here.push(key);
        }
        if let Some(username) = user
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            && let Some((first, first_repeat)) =
                self.usernames.see(&username.to_lowercase(), ordinal)
        {
            let first_id = self.ids.get(first).to_string();
            if first_repeat {
                self.find(
                    found,
                    Check::UsernameCollision,
                    &first_id,
                    Some("username"),
                    format!("its user name collides with that of {}", user.source_id),
                );
            }
            self.find(
                found,
                Check::UsernameCollision,
                &user.source_id,
                Some("username"),
                format!("its user name collides with that of {first_id}"),
            );
        }
        let region = self.options.phone_region.clone();
        for phone in &user.phones {
            if to_e164(&phone.value, region.as_deref()).is_none() {
                let note = if region.is_none() && !phone.value.trim_start().starts_with('+') {
                    "has no country code (set the project's phone region)"
                } else {
                    "is not a valid phone number"
                };
                self.find(
                    found,
                    Check::PhoneNotE164,
                    &user.source_id,
                    Some("phones"),
                    note.into(),
                );
            }
        }
        for (field, at) in [
            ("created_at", user.created_at),
            ("last_login_at", user.last_login_at),
        ] {
            if at.is_some_and(|at| at > self.now) {
                self.find(
                    found,
                    Check::FutureDate,
                    &user.source_id,
                    Some(field),
                    "is in the future".into(),
                );
            }
        }
        let has_username = user
            .username
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty());
        if !has_username && user.emails.is_empty() {
            self.find(
                found,
                Check::MissingUserName,
                &user.source_id,
                Some("username"),
                "has neither a user name nor an e-mail address".into(),
            );
        }
        if user.emails.is_empty() {
            self.find(
                found,
                Check::MissingEmail,
                &user.source_id,
                Some("emails"),
                "has no e-mail address".into(),
            );
        }
        let named = [&user.given_name, &user.family_name, &user.display_name]
            .iter()
            .any(|n| n.as_deref().is_some_and(|n| !n.trim().is_empty()));
        if !named {
            self.find(
                found,
                Check::MissingName,
                &user.source_id,
                Some("name"),
                "has no given, family or display name".into(),
            );
        }
        // Unreadable times are counted as dates that cannot be read, from the raw
        // value kept among the attributes; the rest here.
        for field in &user.unreadable {
            if field.reason != crate::import::fields::NOT_A_TIME {
                self.find(
                    found,
                    Check::UnreadableField,
                    &user.source_id,
                    Some(&field.field),
                    field.reason.clone(),
                );
            }
        }
    }

    fn activity(&mut self, user: &NormalizedUser) {
        let bucket = match user.last_login_at {
            None => 4,
            Some(at) => match (self.now - at).num_days() {
                ..=30 => 0,
                31..=90 => 1,
                91..=365 => 2,
                _ => 3,
            },
        };
        self.recency[bucket] += 1;
        if let Some(at) = user.last_login_at {
            *self
                .logins
                .entry(at.timestamp().div_euclid(900))
                .or_default() += 1;
        }
    }

    pub fn finish(self) -> Report {
        let named = |map: HashMap<String, u64>| {
            let mut list: Vec<NamedCount> = map
                .into_iter()
                .map(|(name, count)| NamedCount { name, count })
                .collect();
            list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
            list
        };
        let mut credentials: Vec<CredentialCount> = self
            .credentials
            .into_iter()
            .map(|((algorithm, parameters), users)| CredentialCount {
                algorithm,
                parameters,
                users,
            })
            .collect();
        credentials.sort_by(|a, b| {
            b.users
                .cmp(&a.users)
                .then_with(|| (&a.algorithm, &a.parameters).cmp(&(&b.algorithm, &b.parameters)))
        });
        let mut attributes: Vec<AttributeReport> = self
            .attributes
            .into_iter()
            .map(|(path, stats)| stats.report(path))
            .collect();
        attributes.sort_by(|a, b| b.filled.cmp(&a.filled).then_with(|| a.path.cmp(&b.path)));
        let mut uploads: Vec<UploadTotals> = self
            .uploads
            .into_iter()
            .map(|(upload_id, totals)| UploadTotals { upload_id, totals })
            .collect();
        uploads.sort_by_key(|u| u.upload_id.0);
        let labels = ["0", "1", "2", "3", "4", "5+"];
        Report {
            computed_at: self.now,
            options: self.options,
            totals: self.totals,
            uploads,
            credentials,
            attributes,
            more_attributes: self.more_paths.len() as u64,
            groups: named(self.groups),
            roles: named(self.roles),
            permissions: named(self.permissions),
            users_by_group_count: labels
                .iter()
                .zip(self.group_counts)
                .map(|(name, count)| NamedCount {
                    name: (*name).into(),
                    count,
                })
                .collect(),
            quality: Check::ALL
                .iter()
                .map(|check| CheckCount {
                    check: *check,
                    label: check.label().into(),
                    count: self.quality.get(check).copied().unwrap_or(0),
                })
                .collect(),
            recency: RECENCY
                .iter()
                .zip(self.recency)
                .map(|(name, count)| NamedCount {
                    name: (*name).into(),
                    count,
                })
                .collect(),
            logins: self.logins.into_iter().collect(),
        }
    }
}

/// What a viewer is sent of an assessment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssessmentView {
    pub status: AssessmentStatus,
    pub records_total: u64,
    pub records_done: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// The last report, examples masked (it stays while a new one is computed).
    pub report: Option<Report>,
    /// The time zone of the heatmap.
    pub zone: String,
    /// Last logins by weekday (Monday first) and hour in `zone`.
    pub heatmap: Vec<Vec<u64>>,
    /// Whether the viewer may reveal an example, one at a time.
    pub can_reveal: bool,
}

impl Report {
    /// Applies administrators' classes: the class wins, and a confidential attribute
    /// loses its values.
    pub fn with_classes(mut self, classes: &[(String, DataClass)]) -> Report {
        for attribute in &mut self.attributes {
            if let Some((_, class)) = classes.iter().find(|(path, _)| *path == attribute.path) {
                attribute.class = *class;
                attribute.class_reason = "set by an administrator".into();
                attribute.overridden = true;
            }
            if attribute.class == DataClass::Confidential {
                attribute.examples.clear();
                attribute.top.clear();
            }
        }
        self
    }

    /// The report as a viewer sees it: every example masked, the top values of personal
    /// attributes masked too, and the login histogram folded into the heatmap.
    pub fn masked(mut self) -> Report {
        for attribute in &mut self.attributes {
            let pii = attribute.class == DataClass::Pii;
            for example in &mut attribute.examples {
                // A flag or a time of an attribute not classed personal says nothing
                // of a person (`true` is not masked to `t•••`).
                let plain =
                    !pii && matches!(infer(example), ValueType::Boolean | ValueType::DateTime);
                if !plain {
                    *example = mask(example);
                }
            }
            // An attribute of mixed values may be classed "other" and still hold an
            // address or a number among its top values: those are masked too.
            for top in &mut attribute.top {
                if pii || matches!(infer(&top.name), ValueType::Email | ValueType::Phone) {
                    top.name = mask(&top.name);
                }
            }
        }
        self.logins.clear();
        self
    }

    /// One example value, unmasked, unless the attribute is confidential.
    pub fn example(&self, path: &str, index: usize) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.path == path && a.class != DataClass::Confidential)
            .and_then(|a| a.examples.get(index))
            .map(String::as_str)
    }
}

/// Last logins by weekday (Monday first) and hour in `zone`.
pub fn heatmap(logins: &[(i64, u64)], zone: chrono_tz::Tz) -> [[u64; 24]; 7] {
    let mut grid = [[0u64; 24]; 7];
    for (quarter, count) in logins {
        if let Some(at) = DateTime::from_timestamp(quarter * 900, 0) {
            let local = at.with_timezone(&zone);
            grid[local.weekday().num_days_from_monday() as usize][local.hour() as usize] += count;
        }
    }
    grid
}

/// How a value is shown until someone allowed to reveals it: the first character (and
/// for an e-mail address the first of the domain and the top-level domain) and dots.
pub fn mask(value: &str) -> String {
    fn part(text: &str) -> String {
        let mut chars = text.chars();
        match chars.next() {
            None => String::new(),
            Some(first) => {
                let rest = chars.count().min(6);
                format!("{first}{}", "•".repeat(rest.max(1)))
            }
        }
    }
    if let Some((local, domain)) = value.split_once('@') {
        let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
        let tld = if tld.is_empty() {
            String::new()
        } else {
            format!(".{tld}")
        };
        return format!("{}@{}{tld}", part(local), part(host));
    }
    part(value)
}
