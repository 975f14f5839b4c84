//! Where a mapping rule reads from: a normalized field of the record, or a path into
//! the original attributes the export held; and the values that flow through a rule's
//! transforms (nothing, a text, a list of texts, or a truth value).

use crate::import::record::{NormalizedUser, UserStatus};
use serde_json::Value as Json;

/// A value inside a rule, between its source and its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Missing,
    Text(String),
    List(Vec<String>),
    Bool(bool),
}

impl Value {
    pub fn is_missing(&self) -> bool {
        match self {
            Value::Missing => true,
            Value::Text(t) => t.is_empty(),
            Value::List(items) => items.is_empty(),
            Value::Bool(_) => false,
        }
    }

    /// The value as text: a list joined by commas, a truth value as `true`/`false`.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Missing => None,
            Value::Text(t) => Some(t.clone()),
            Value::List(items) => Some(items.join(",")),
            Value::Bool(b) => Some(b.to_string()),
        }
    }

    /// How it is written into the SCIM resource.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Missing => Json::Null,
            Value::Text(t) => Json::String(t.clone()),
            Value::List(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
            Value::Bool(b) => Json::Bool(*b),
        }
    }
}

/// A field of the normalized record, or a path into its original attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceField {
    SourceId,
    Username,
    /// The primary e-mail address (or the first).
    Email,
    EmailVerified,
    /// Every e-mail address.
    Emails,
    /// The primary phone number (or the first).
    Phone,
    Phones,
    GivenName,
    FamilyName,
    DisplayName,
    /// `active`, `disabled`, `pending` or `unknown`.
    Status,
    /// True when the status is active.
    Active,
    CreatedAt,
    LastLoginAt,
    Groups,
    Roles,
    /// `attributes.a.b`: a key of the export's own fields, then keys inside objects.
    Attribute(Vec<String>),
}

/// The normalized fields by the names rules use, in the order pickers show them.
pub const FIELDS: [(&str, SourceField); 16] = [
    ("source_id", SourceField::SourceId),
    ("username", SourceField::Username),
    ("email", SourceField::Email),
    ("email_verified", SourceField::EmailVerified),
    ("emails", SourceField::Emails),
    ("phone", SourceField::Phone),
    ("phones", SourceField::Phones),
    ("given_name", SourceField::GivenName),
    ("family_name", SourceField::FamilyName),
    ("display_name", SourceField::DisplayName),
    ("status", SourceField::Status),
    ("active", SourceField::Active),
    ("created_at", SourceField::CreatedAt),
    ("last_login_at", SourceField::LastLoginAt),
    ("groups", SourceField::Groups),
    ("roles", SourceField::Roles),
];

impl SourceField {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some((_, field)) = FIELDS.iter().find(|(name, _)| *name == text) {
            return Ok(field.clone());
        }
        if let Some(path) = text.strip_prefix("attributes.") {
            let segments: Vec<String> = path.split('.').map(str::to_string).collect();
            if segments.iter().any(String::is_empty) {
                return Err(format!("{text:?} has an empty part"));
            }
            return Ok(SourceField::Attribute(segments));
        }
        Err(format!(
            "{text:?} is not a field; use one of {} or attributes.NAME",
            FIELDS.map(|(n, _)| n).join(", ")
        ))
    }

    /// Reads the field from a record.
    pub fn read(&self, user: &NormalizedUser) -> Value {
        let text = |v: &Option<String>| v.clone().map_or(Value::Missing, Value::Text);
        let time = |t: &Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or(Value::Missing, |t| {
                Value::Text(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            })
        };
        match self {
            SourceField::SourceId => Value::Text(user.source_id.clone()),
            SourceField::Username => text(&user.username),
            SourceField::Email => user
                .primary_email()
                .map_or(Value::Missing, |e| Value::Text(e.to_string())),
            SourceField::EmailVerified => user
                .emails
                .iter()
                .find(|e| e.primary)
                .or(user.emails.first())
                .and_then(|e| e.verified)
                .map_or(Value::Missing, Value::Bool),
            SourceField::Emails => {
                Value::List(user.emails.iter().map(|e| e.value.clone()).collect())
            }
            SourceField::Phone => user
                .phones
                .iter()
                .find(|p| p.primary)
                .or(user.phones.first())
                .map_or(Value::Missing, |p| Value::Text(p.value.clone())),
            SourceField::Phones => {
                Value::List(user.phones.iter().map(|p| p.value.clone()).collect())
            }
            SourceField::GivenName => text(&user.given_name),
            SourceField::FamilyName => text(&user.family_name),
            SourceField::DisplayName => text(&user.display_name),
            SourceField::Status => Value::Text(
                match user.status {
                    UserStatus::Active => "active",
                    UserStatus::Disabled => "disabled",
                    UserStatus::Pending => "pending",
                    UserStatus::Unknown => "unknown",
                }
                .into(),
            ),
            SourceField::Active => match user.status {
                UserStatus::Active => Value::Bool(true),
                UserStatus::Disabled | UserStatus::Pending => Value::Bool(false),
                UserStatus::Unknown => Value::Missing,
            },
            SourceField::CreatedAt => time(&user.created_at),
            SourceField::LastLoginAt => time(&user.last_login_at),
            SourceField::Groups => Value::List(user.groups.clone()),
            SourceField::Roles => Value::List(user.roles.clone()),
            SourceField::Attribute(path) => {
                let Some((first, rest)) = path.split_first() else {
                    return Value::Missing;
                };
                let mut node = match user.attributes.get(first) {
                    Some(node) => node,
                    None => return Value::Missing,
                };
                for key in rest {
                    match node.get(key) {
                        Some(next) => node = next,
                        None => return Value::Missing,
                    }
                }
                from_json(node)
            }
        }
    }
}

/// An attribute's JSON as a rule value: scalars as text, arrays of scalars as lists
/// (a single-element list, as Keycloak writes every attribute, as its one text).
fn from_json(node: &Json) -> Value {
    let scalar = |v: &Json| match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match node {
        Json::Null => Value::Missing,
        Json::Bool(b) => Value::Bool(*b),
        Json::Array(items) => {
            let texts: Vec<String> = items.iter().filter_map(scalar).collect();
            match texts.len() {
                0 => Value::Missing,
                1 => Value::Text(texts.into_iter().next().unwrap_or_default()),
                _ => Value::List(texts),
            }
        }
        Json::Object(_) => Value::Text(without_secrets(node).to_string()),
        other => scalar(other).map_or(Value::Missing, Value::Text),
    }
}

/// An object as a rule may pass it on: every key whose name says it holds a secret (a
/// password hash, an MFA seed, a token) is left out, at any depth, whatever the
/// assessment knew of it.
fn without_secrets(node: &Json) -> Json {
    use crate::assess::classify::{DataClass, ValueFacts, classify};
    match node {
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(key, _)| {
                    classify(key, &ValueFacts::default()).0 != DataClass::Confidential
                })
                .map(|(key, value)| (key.clone(), without_secrets(value)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(without_secrets).collect()),
        other => other.clone(),
    }
}

/// What a rule reads: one field, or a template joining fields and text
/// (`{given_name}.{family_name}`; `{{` and `}}` write braces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expression {
    Field(SourceField),
    Template(Vec<Piece>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Field(SourceField),
}

impl Expression {
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.contains(['{', '}']) {
            return SourceField::parse(text).map(Expression::Field);
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("{text:?}: a {{ is not closed")),
                        }
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Field(SourceField::parse(&name)?));
                }
                '}' => return Err(format!("{text:?}: a }} has no {{")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Expression::Template(pieces))
    }

    /// The fields it reads.
    pub fn fields(&self) -> Vec<&SourceField> {
        match self {
            Expression::Field(field) => vec![field],
            Expression::Template(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Field(field) => Some(field),
                    Piece::Text(_) => None,
                })
                .collect(),
        }
    }

    /// Evaluates against a record. A template with a missing field is missing as a
    /// whole: `{given_name}.{family_name}` without a family name is no user name.
    pub fn read(&self, user: &NormalizedUser) -> Value {
        match self {
            Expression::Field(field) => field.read(user),
            Expression::Template(pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Field(field) => match field.read(user).to_text() {
                            Some(t) if !t.is_empty() => out.push_str(&t),
                            _ => return Value::Missing,
                        },
                    }
                }
                Value::Text(out)
            }
        }
    }
}

/// The export's own attributes as rules name them: for each attribute path the
/// assessment lists, the normalized field Ferry reads it into (a `first_name` column is
/// read as `given_name`), so that Assessment and Mapping speak of one field by one name,
/// and which attributes a rule's source names that no record has.
#[derive(Clone, Debug, Default)]
pub struct SourceVocabulary {
    /// Attribute paths as the assessment lists them (`department`, `address.city`,
    /// `identities[].provider`).
    paths: Vec<String>,
    /// Top-level attribute → the normalized field it feeds.
    read_as: std::collections::HashMap<String, &'static str>,
}

impl SourceVocabulary {
    pub fn new(paths: Vec<String>) -> Self {
        let columns: Vec<String> = paths.iter().filter(|p| is_column(p)).cloned().collect();
        let read_as = crate::import::fields::assign(&columns)
            .into_iter()
            .zip(&columns)
            .filter_map(|(field, column)| Some((column.clone(), field?.source_name()?)))
            .collect();
        Self { paths, read_as }
    }

    /// The normalized field the attribute `path` is read into, if any.
    pub fn read_as(&self, path: &str) -> Option<&'static str> {
        self.read_as.get(path).copied()
    }

    /// What a rule reads to get the attribute `path`: its normalized field, or
    /// `attributes.path`.
    pub fn source_for(&self, path: &str) -> String {
        self.read_as(path)
            .map_or_else(|| format!("attributes.{path}"), str::to_string)
    }

    /// Whether a rule reading `source` reads the attribute `path` (by its normalized
    /// field, by its own name, or through the object holding it).
    pub fn reads(&self, source: &str, path: &str) -> bool {
        let Ok(expression) = Expression::parse(source) else {
            return false;
        };
        let plain = path.replace("[]", "");
        expression.fields().into_iter().any(|field| match field {
            SourceField::Attribute(segments) => {
                let named = segments.join(".");
                plain == named || plain.starts_with(&format!("{named}."))
            }
            field => self
                .read_as(path)
                .is_some_and(|name| FIELDS.iter().any(|(n, f)| *n == name && f == field)),
        })
    }

    /// The attributes `source` names that no record holds (`attributes.nope`), as
    /// written in the rule. Empty when the vocabulary knows no attributes (no
    /// assessment yet).
    pub fn unknown(&self, source: &str) -> Vec<String> {
        if self.paths.is_empty() {
            return Vec::new();
        }
        let Ok(expression) = Expression::parse(source) else {
            return Vec::new();
        };
        expression
            .fields()
            .into_iter()
            .filter_map(|field| match field {
                SourceField::Attribute(segments) => Some(segments.join(".")),
                _ => None,
            })
            .filter(|named| {
                !self.paths.iter().any(|path| {
                    let plain = path.replace("[]", "");
                    plain == *named || plain.starts_with(&format!("{named}."))
                })
            })
            .map(|named| format!("attributes.{named}"))
            .collect()
    }
}

/// A top-level attribute holding plain values: a column of a CSV file, a key of a flat
/// JSON record.
fn is_column(path: &str) -> bool {
    !path.contains('.') && !path.contains("[]")
}
