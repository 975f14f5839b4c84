//! The columns (CSV) and keys (flat JSON) exports name their fields with, and how each
//! feeds the normalized record. Names are matched normalized (lower case, letters and
//! digits only), so `First name`, `first_name` and `firstName` are the same field.

use super::record::{Email, NormalizedUser, Phone, UserStatus, parse_time};
use crate::passwords;

/// Which normalized field a column feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
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

impl Field {
    /// The name mapping rules read this field by (`first_name` feeds `given_name`);
    /// `None` for a password hash, which no rule may read.
    pub fn source_name(self) -> Option<&'static str> {
        Some(match self {
            Field::Id => "source_id",
            Field::Username => "username",
            Field::Email => "email",
            Field::SecondaryEmail => "emails",
            Field::EmailVerified => "email_verified",
            Field::Phone | Field::Mobile => "phone",
            Field::GivenName => "given_name",
            Field::FamilyName => "family_name",
            Field::DisplayName => "display_name",
            Field::Status => "status",
            Field::Enabled => "active",
            Field::Created => "created_at",
            Field::LastLogin => "last_login_at",
            Field::Groups => "groups",
            Field::Roles => "roles",
            Field::PasswordHash => return None,
        })
    }
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

pub fn normalize_header(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field each header feeds; the first alias present wins, the rest stay attributes.
pub fn assign(headers: &[String]) -> Vec<Option<Field>> {
    let normalized: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
    let mut columns = vec![None; headers.len()];
    for (field, aliases) in ALIASES {
        let found = aliases.iter().find_map(|alias| {
            (0..normalized.len()).find(|&i| normalized[i] == *alias && columns[i].is_none())
        });
        if let Some(index) = found {
            columns[index] = Some(*field);
        }
    }
    columns
}

/// Puts one non-empty value into the record. A value a secondary field cannot hold
/// (a flag that is neither true nor false, a date in no known form, a password hash of
/// an unknown kind) is recorded as unreadable, naming the field and never the value:
/// the user is kept.
pub fn apply(user: &mut NormalizedUser, field: Field, name: &str, value: &str) {
    let text = Some(value.to_string());
    match field {
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
        Field::EmailVerified => match parse_bool(value) {
            Some(verified) => {
                user.attributes
                    .insert(VERIFIED.into(), serde_json::Value::Bool(verified));
            }
            None => user.unreadable(name, NOT_A_FLAG),
        },
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
        Field::Enabled => match parse_bool(value) {
            Some(enabled) => {
                user.attributes
                    .insert(ENABLED.into(), serde_json::Value::Bool(enabled));
            }
            None => user.unreadable(name, NOT_A_FLAG),
        },
        Field::Created => match parse_time(value) {
            Some(at) => user.created_at = Some(at),
            None => user.unreadable(name, NOT_A_TIME),
        },
        Field::LastLogin => match parse_time(value) {
            Some(at) => user.last_login_at = Some(at),
            None => user.unreadable(name, NOT_A_TIME),
        },
        Field::Groups => user.groups = split_list(value),
        Field::Roles => user.roles = split_list(value),
        Field::PasswordHash => {
            // The value is a secret whether it reads or not: never kept as an attribute.
            user.attributes.remove(name);
            let credential = passwords::Credential::or_unusable(passwords::parse(value));
            if let passwords::Credential::Unusable { reason } = &credential {
                user.unreadable(name, reason.clone());
            }
            user.credential = Some(credential);
        }
    }
}

/// What an unreadable flag or time was expected to be.
pub const NOT_A_FLAG: &str = "is not true or false";
pub const NOT_A_TIME: &str = "is not a date and time Ferry can read";

// Flags that may arrive before the field they qualify; `finish` applies them.
const VERIFIED: &str = "\u{1}email_verified";
const ENABLED: &str = "\u{1}enabled";

/// Settles what depends on several fields, once all are read: e-mail verification,
/// the enabled flag against the status, and the source id's fallbacks.
pub fn finish(user: &mut NormalizedUser) -> Result<(), String> {
    if let Some(serde_json::Value::Bool(verified)) = user.attributes.remove(VERIFIED) {
        for email in user.emails.iter_mut().filter(|e| e.primary) {
            email.verified = Some(verified);
        }
    }
    match (user.attributes.remove(ENABLED), user.status) {
        (Some(serde_json::Value::Bool(false)), _) => user.status = UserStatus::Disabled,
        (Some(serde_json::Value::Bool(true)), UserStatus::Unknown) => {
            user.status = UserStatus::Active
        }
        _ => {}
    }
    if user.source_id.is_empty() {
        user.source_id = match (&user.username, user.primary_email()) {
            (Some(username), _) => username.clone(),
            (None, Some(email)) => email.to_string(),
            (None, None) => return Err("no id, username or e-mail address".into()),
        };
    }
    Ok(())
}

pub fn split_list(value: &str) -> Vec<String> {
    value
        .split([';', '|', ','])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

pub fn parse_status(value: &str) -> UserStatus {
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
