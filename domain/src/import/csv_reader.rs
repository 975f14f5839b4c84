//! CSV exports: generic CSV with a header row, and the user CSVs of Okta, AWS Cognito
//! and Microsoft Entra ID, which differ only in their column names. Columns are matched
//! by their normalized header (lower case, letters and digits only), so `First name`,
//! `first_name` and `firstName` are the same column.

use super::record::{Email, Location, NormalizedUser, Phone, RecordError, UserStatus, parse_time};
use crate::passwords;
use std::io::Read;

/// Which normalized field a column feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Id,
    Username,
    Email,
    SecondaryEmail,
    EmailVerified,
    Phone,
    Mobile,
    GivenName,
    FamilyName,
    DisplayName,
    Status,
    Enabled,
    Created,
    LastLogin,
    Groups,
    Roles,
    PasswordHash,
}

/// Header aliases, most specific first. Earlier entries win when a file has several.
const ALIASES: &[(Field, &[&str])] = &[
    (
        Field::Id,
        &[
            "id",
            "userid",
            "objectid",
            "sub",
            "uid",
            "externalid",
            "sourceid",
        ],
    ),
    (
        Field::Username,
        &[
            "username",
            "cognitousername",
            "userprincipalname",
            "login",
            "preferredusername",
            "upn",
        ],
    ),
    (
        Field::Email,
        &["email", "primaryemail", "mail", "emailaddress"],
    ),
    (
        Field::SecondaryEmail,
        &["secondaryemail", "alternateemailaddress", "othermails"],
    ),
    (Field::EmailVerified, &["emailverified", "isemailverified"]),
    (
        Field::Phone,
        &[
            "phonenumber",
            "phone",
            "primaryphone",
            "telephonenumber",
            "telephone",
        ],
    ),
    (Field::Mobile, &["mobilephone", "mobile"]),
    (Field::GivenName, &["givenname", "firstname"]),
    (
        Field::FamilyName,
        &["familyname", "lastname", "surname", "sn"],
    ),
    (Field::DisplayName, &["displayname", "name", "fullname"]),
    (Field::Status, &["status", "userstatus", "accountstatus"]),
    (Field::Enabled, &["enabled", "accountenabled", "active"]),
    (
        Field::Created,
        &[
            "created",
            "createdat",
            "createddate",
            "createddatetime",
            "usercreatedate",
            "creationdate",
        ],
    ),
    (
        Field::LastLogin,
        &[
            "lastlogin",
            "lastloginat",
            "lastsignin",
            "lastsignindatetime",
            "lastlogindate",
        ],
    ),
    (Field::Groups, &["groups", "group", "memberof"]),
    (Field::Roles, &["roles", "role"]),
    (
        Field::PasswordHash,
        &["passwordhash", "userpassword", "hash"],
    ),
];

fn normalize_header(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Guesses the delimiter from the first lines: the candidate that splits them into the
/// same, largest number of fields.
pub fn sniff_delimiter(sample: &[u8]) -> u8 {
    let text = String::from_utf8_lossy(sample);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    let mut best = (b',', 0usize);
    for candidate in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = lines
            .iter()
            .map(|l| l.bytes().filter(|b| *b == candidate).count())
            .collect();
        let consistent = counts
            .first()
            .is_some_and(|first| *first > 0 && counts.iter().all(|c| c == first));
        let score = if consistent {
            counts[0] * 2
        } else {
            counts.first().copied().unwrap_or(0)
        };
        if score > best.1 {
            best = (candidate, score);
        }
    }
    best.0
}

/// Streams users out of a CSV file with a header row.
pub struct CsvUsers<R: Read> {
    reader: csv::Reader<R>,
    headers: Vec<String>,
    columns: Vec<Option<Field>>,
    record: csv::ByteRecord,
}

impl<R: Read> CsvUsers<R> {
    /// Reads the header row. Fails when there is none or it names no identifying column.
    pub fn new(input: R, delimiter: u8) -> Result<Self, RecordError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(input);
        let header_error =
            |reason: String| RecordError::new(Location::Line { line: 1 }, None, reason);
        let raw = reader
            .byte_headers()
            .map_err(|e| header_error(format!("cannot read the header row: {e}")))?
            .clone();
        let headers: Vec<String> = raw
            .iter()
            .map(|h| {
                String::from_utf8(h.to_vec())
                    .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            })
            .collect::<Result<_, _>>()
            .map_err(|_| header_error("the header row is not valid UTF-8".into()))?;
        if headers.iter().all(|h| h.is_empty()) {
            return Err(header_error("the file has no header row".into()));
        }
        let normalized: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
        let mut columns = vec![None; headers.len()];
        for (field, aliases) in ALIASES {
            // The first alias present in the file wins; other columns stay attributes.
            let found = aliases.iter().find_map(|alias| {
                (0..normalized.len()).find(|&i| normalized[i] == *alias && columns[i].is_none())
            });
            if let Some(index) = found {
                columns[index] = Some(*field);
            }
        }
        let identifies = columns
            .iter()
            .any(|c| matches!(c, Some(Field::Id | Field::Username | Field::Email)));
        if !identifies {
            return Err(header_error(format!(
                "no column identifies a user: expected one of id, username or email among {}",
                headers.join(", ")
            )));
        }
        Ok(Self {
            reader,
            headers,
            columns,
            record: csv::ByteRecord::new(),
        })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    fn user(&self, line: u64) -> Result<NormalizedUser, RecordError> {
        let at = Location::Line { line };
        let error = |field: &str, reason: String| RecordError::new(at.clone(), Some(field), reason);
        if self.record.len() != self.headers.len() {
            return Err(RecordError::new(
                at.clone(),
                None,
                format!(
                    "{} fields where the header has {}",
                    self.record.len(),
                    self.headers.len()
                ),
            ));
        }
        let mut user = NormalizedUser::default();
        let mut enabled = None;
        for ((raw, header), column) in self.record.iter().zip(&self.headers).zip(&self.columns) {
            let value = std::str::from_utf8(raw)
                .map_err(|_| {
                    error(
                        header,
                        "not valid UTF-8 (choose the file's encoding)".into(),
                    )
                })?
                .trim();
            if value.is_empty() {
                continue;
            }
            user.attributes
                .insert(header.clone(), serde_json::Value::String(value.to_string()));
            let Some(column) = column else { continue };
            let text = Some(value.to_string());
            match column {
                Field::Id => user.source_id = value.to_string(),
                Field::Username => user.username = text,
                Field::Email => user.emails.insert(
                    0,
                    Email {
                        value: value.to_string(),
                        primary: true,
                        verified: None,
                    },
                ),
                Field::SecondaryEmail => {
                    for extra in split_list(value) {
                        user.emails.push(Email {
                            value: extra,
                            primary: false,
                            verified: None,
                        });
                    }
                }
                Field::EmailVerified => {
                    let verified = parse_bool(value)
                        .ok_or_else(|| error(header, format!("{value:?} is not true or false")))?;
                    for email in user.emails.iter_mut().filter(|e| e.primary) {
                        email.verified = Some(verified);
                    }
                    user.attributes
                        .insert("__email_verified".into(), serde_json::Value::Bool(verified));
                }
                Field::Phone => user.phones.push(Phone {
                    value: value.to_string(),
                    kind: None,
                    primary: user.phones.is_empty(),
                }),
                Field::Mobile => user.phones.push(Phone {
                    value: value.to_string(),
                    kind: Some("mobile".into()),
                    primary: user.phones.is_empty(),
                }),
                Field::GivenName => user.given_name = text,
                Field::FamilyName => user.family_name = text,
                Field::DisplayName => user.display_name = text,
                Field::Status => user.status = parse_status(value),
                Field::Enabled => {
                    enabled =
                        Some(parse_bool(value).ok_or_else(|| {
                            error(header, format!("{value:?} is not true or false"))
                        })?);
                }
                Field::Created => {
                    user.created_at = Some(parse_time(value).ok_or_else(|| {
                        error(header, format!("{value:?} is not a date and time"))
                    })?);
                }
                Field::LastLogin => {
                    user.last_login_at = Some(parse_time(value).ok_or_else(|| {
                        error(header, format!("{value:?} is not a date and time"))
                    })?);
                }
                Field::Groups => user.groups = split_list(value),
                Field::Roles => user.roles = split_list(value),
                Field::PasswordHash => {
                    user.attributes.remove(header);
                    user.credential =
                        Some(passwords::parse(value).map_err(|e| error(header, e.to_string()))?);
                }
            }
        }
        // The verified flag may come before the e-mail column; apply it now.
        if let Some(serde_json::Value::Bool(verified)) = user.attributes.remove("__email_verified")
        {
            for email in user.emails.iter_mut().filter(|e| e.primary) {
                email.verified = Some(verified);
            }
        }
        match (enabled, user.status) {
            (Some(false), _) => user.status = UserStatus::Disabled,
            (Some(true), UserStatus::Unknown) => user.status = UserStatus::Active,
            _ => {}
        }
        if user.source_id.is_empty() {
            user.source_id = match (&user.username, user.primary_email()) {
                (Some(username), _) => username.clone(),
                (None, Some(email)) => email.to_string(),
                (None, None) => {
                    return Err(RecordError::new(
                        at,
                        None,
                        "no id, username or e-mail address",
                    ));
                }
            };
        }
        Ok(user)
    }
}

impl<R: Read> Iterator for CsvUsers<R> {
    type Item = Result<NormalizedUser, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut record = std::mem::take(&mut self.record);
        let read = self.reader.read_byte_record(&mut record);
        self.record = record;
        match read {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(self.user(line))
            }
            Err(err) => {
                let line = err.position().map_or(0, csv::Position::line);
                Some(Err(RecordError::new(
                    Location::Line { line },
                    None,
                    format!("unreadable CSV: {err}"),
                )))
            }
        }
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split([';', '|', ','])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

fn parse_status(value: &str) -> UserStatus {
    match value.to_ascii_uppercase().replace([' ', '-'], "_").as_str() {
        "ACTIVE" | "ENABLED" | "CONFIRMED" | "TRUE" => UserStatus::Active,
        "DEPROVISIONED" | "SUSPENDED" | "DISABLED" | "LOCKED_OUT" | "LOCKED" | "FALSE"
        | "INACTIVE" => UserStatus::Disabled,
        "STAGED"
        | "PROVISIONED"
        | "RECOVERY"
        | "PASSWORD_EXPIRED"
        | "FORCE_CHANGE_PASSWORD"
        | "RESET_REQUIRED"
        | "UNCONFIRMED"
        | "PENDING_ACCEPTANCE" => UserStatus::Pending,
        _ => UserStatus::Unknown,
    }
}

#[cfg(test)]
mod tests;
