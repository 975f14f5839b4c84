//! The normalized user every reader produces, and the error that says which record
//! could not be read, where, and why.

use crate::passwords::Credential;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub value: String,
    pub primary: bool,
    /// `None` when the export does not say.
    pub verified: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    pub value: String,
    /// `mobile`, `work`, … as the export names it.
    pub kind: Option<String>,
    pub primary: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Disabled,
    /// Created but never activated (Okta `STAGED`/`PROVISIONED`, Cognito
    /// `FORCE_CHANGE_PASSWORD`, …).
    Pending,
    /// The export does not say.
    #[default]
    Unknown,
}

/// One user as every reader delivers it. `attributes` keeps every original field, so
/// nothing the export held is lost even when no normalized field takes it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedUser {
    pub source_id: String,
    pub username: Option<String>,
    pub emails: Vec<Email>,
    pub phones: Vec<Phone>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub status: UserStatus,
    pub created_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub credential: Option<Credential>,
    /// Secondary fields the export held but Ferry could not read (a date in an unknown
    /// form, a flag that is neither true nor false): the user is kept, the raw value
    /// stays among `attributes` (secrets excepted), and the assessment counts these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

/// A field of a record that could not be read, and why. The reason says what kind of
/// value was expected, never the value itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    pub field: String,
    pub reason: String,
}

impl NormalizedUser {
    pub fn primary_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary)
            .or(self.emails.first())
            .map(|e| e.value.as_str())
    }

    /// Records a secondary field as unreadable; the user is kept.
    pub fn unreadable(&mut self, field: &str, reason: impl Into<String>) {
        self.unreadable.push(Unreadable {
            field: field.to_string(),
            reason: reason.into(),
        });
    }
}

/// Records hold personal data: their `Debug` shows the source id and shape only, so
/// a stray `{:?}` in a log line leaks nothing.
impl fmt::Debug for NormalizedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NormalizedUser")
            .field("source_id", &self.source_id)
            .field("emails", &self.emails.len())
            .field("attributes", &self.attributes.len())
            .field("unreadable", &self.unreadable.len())
            .field(
                "credential",
                &self.credential.as_ref().map(Credential::algorithm),
            )
            .finish_non_exhaustive()
    }
}

/// Where in a file a record sits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Location {
    /// A line of a CSV or NDJSON file (1-based; a CSV record spanning lines names its
    /// first line).
    Line { line: u64 },
    /// An element of a JSON document, as a path such as `$.users[41]`, with the line
    /// it starts on.
    JsonPath { path: String, line: u64 },
    /// The n-th entry of an LDIF file (1-based) and the line it starts on.
    LdifEntry { entry: u64, line: u64 },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { line } => write!(f, "line {line}"),
            Location::JsonPath { path, line } => write!(f, "{path} (line {line})"),
            Location::LdifEntry { entry, line } => write!(f, "entry {entry} (line {line})"),
        }
    }
}

/// A record the reader could not use. The good records of the file are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{location}{}: {reason}", field.as_ref().map(|f| format!(", field {f:?}")).unwrap_or_default())]
pub struct RecordError {
    pub location: Location,
    pub field: Option<String>,
    pub reason: String,
}

impl RecordError {
    pub fn new(location: Location, field: Option<&str>, reason: impl Into<String>) -> Self {
        Self {
            location,
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
}

/// Parses the timestamps exports use: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC), or Unix
/// seconds / milliseconds.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    // Numbers first: no date format below reads a plain number, and Keycloak and
    // Firebase give every time as one, which went through five failed parses first.
    if let Ok(number) = text.parse::<i64>() {
        // Past 10^11 a number of seconds would be after year 5000: it is milliseconds.
        return if number.abs() >= 100_000_000_000 {
            DateTime::from_timestamp_millis(number)
        } else {
            DateTime::from_timestamp(number, 0)
        };
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f %Z",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_in_every_common_form() {
        let at = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap();
        for text in [
            "2024-05-06T07:08:09Z",
            "2024-05-06T09:08:09+02:00",
            "2024-05-06 07:08:09",
            "2024-05-06T07:08:09.000",
            "1714979289",
            "1714979289000",
        ] {
            assert_eq!(parse_time(text), Some(at), "{text}");
        }
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time(" "), None);
    }

    #[test]
    fn errors_say_where_and_why() {
        let err = RecordError::new(
            Location::Line { line: 7 },
            Some("email"),
            "not an e-mail address",
        );
        assert_eq!(
            err.to_string(),
            "line 7, field \"email\": not an e-mail address"
        );
        let err = RecordError::new(
            Location::JsonPath {
                path: "$.users[3]".into(),
                line: 40,
            },
            None,
            "user_id is missing",
        );
        assert_eq!(err.to_string(), "$.users[3] (line 40): user_id is missing");
    }

    #[test]
    fn debug_hides_personal_data() {
        let user = NormalizedUser {
            source_id: "u1".into(),
            emails: vec![Email {
                value: "ada@example.com".into(),
                primary: true,
                verified: Some(true),
            }],
            given_name: Some("Ada".into()),
            ..Default::default()
        };
        let shown = format!("{user:?}");
        assert!(
            shown.contains("u1") && !shown.contains("ada@") && !shown.contains("Ada"),
            "{shown}"
        );
        assert_eq!(user.primary_email(), Some("ada@example.com"));
    }
}
