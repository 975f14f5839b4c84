//! What a single attribute value looks like: its inferred type, and the checks the
//! assessment runs on e-mail addresses and phone numbers.

use crate::import::record::parse_time;
use serde::{Deserialize, Serialize};

/// The type an attribute's values have, as far as their text tells.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Boolean,
    Integer,
    Uuid,
    Email,
    Url,
    DateTime,
    Phone,
    #[default]
    Text,
}

impl ValueType {
    pub const ALL: [ValueType; 8] = [
        ValueType::Boolean,
        ValueType::Integer,
        ValueType::Uuid,
        ValueType::Email,
        ValueType::Url,
        ValueType::DateTime,
        ValueType::Phone,
        ValueType::Text,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ValueType::Boolean => "true/false",
            ValueType::Integer => "integer",
            ValueType::Uuid => "UUID",
            ValueType::Email => "e-mail address",
            ValueType::Url => "URL",
            ValueType::DateTime => "date/time",
            ValueType::Phone => "phone number",
            ValueType::Text => "free text",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The most specific type `value` reads as. Numbers that are also dates (Unix times)
/// stay integers: only the attribute's name can tell them apart.
pub fn infer(value: &str) -> ValueType {
    let value = value.trim();
    if matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no"
    ) {
        return ValueType::Boolean;
    }
    if is_integer(value) {
        return ValueType::Integer;
    }
    if uuid::Uuid::try_parse(value).is_ok() {
        return ValueType::Uuid;
    }
    if is_email(value) {
        return ValueType::Email;
    }
    let lower = value.to_ascii_lowercase();
    if (lower.starts_with("https://") || lower.starts_with("http://")) && !value.contains(' ') {
        return ValueType::Url;
    }
    if looks_like_date(value) && parse_time(value).is_some() {
        return ValueType::DateTime;
    }
    if looks_like_phone(value) {
        return ValueType::Phone;
    }
    ValueType::Text
}

fn is_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A date needs its separators; bare numbers are integers.
fn looks_like_date(value: &str) -> bool {
    value.len() >= 8 && value.as_bytes().get(4) == Some(&b'-')
}

/// Digits with the punctuation people write phone numbers with, 7 to 15 digits.
pub fn looks_like_phone(value: &str) -> bool {
    let b = value.as_bytes();
    // `2024-13-45` is a broken date, not a phone number.
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        return false;
    }
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-().".contains(&b))
        && value
            .trim_start()
            .starts_with(|c: char| c == '+' || c == '(' || c.is_ascii_digit())
}

/// An address a SCIM target accepts: one `@`, a local part, and a domain with a dot,
/// no spaces, within the lengths of RFC 5321.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && value.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// The number in E.164 form, if it is a valid number: numbers without a country code
/// need the project's default region (`US`, `DE`, …).
pub fn to_e164(value: &str, region: Option<&str>) -> Option<String> {
    use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat, enums::Region};
    let region = region.and_then(|r| Region::from_code(&r.to_ascii_uppercase()).ok());
    let number = PHONE_NUMBER_UTIL.parse(value, region).ok()?;
    number
        .is_valid()
        .then(|| number.format_as(PhoneNumberFormat::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_by_their_text() {
        let table = [
            ("true", ValueType::Boolean),
            ("No", ValueType::Boolean),
            ("42", ValueType::Integer),
            ("-7", ValueType::Integer),
            ("1772286608000", ValueType::Integer),
            ("b6f96307-d557-4002-aef2-de5914538a70", ValueType::Uuid),
            ("ada@example.com", ValueType::Email),
            ("https://example.com/a", ValueType::Url),
            ("2024-03-01T10:00:00Z", ValueType::DateTime),
            ("2024-03-01", ValueType::DateTime),
            ("+44 20 7946 0439", ValueType::Phone),
            ("(555) 010-2030", ValueType::Phone),
            ("Marketing", ValueType::Text),
            ("2024-13-45", ValueType::Text),
            ("ada@", ValueType::Text),
        ];
        for (value, expected) in table {
            assert_eq!(infer(value), expected, "{value}");
        }
    }

    #[test]
    fn emails_are_checked_as_targets_accept_them() {
        for good in [
            "a@b.co",
            "ada.lovelace+x@mail.example.org",
            "zoë@exämple.de",
        ] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "ada @example.com",
            "ada@example..com",
            "ada@.example.com",
            "ada@example.com.",
            "ada@exa_mple.com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn phones_convert_to_e164_with_a_region_when_they_lack_a_country_code() {
        assert_eq!(
            to_e164("+44 20 7946 0958", None).as_deref(),
            Some("+442079460958")
        );
        assert_eq!(to_e164("(201) 555-0123", None), None);
        assert_eq!(
            to_e164("(201) 555-0123", Some("us")).as_deref(),
            Some("+12015550123")
        );
        assert_eq!(to_e164("12345", Some("US")), None);
        assert_eq!(to_e164("call me", Some("US")), None);
    }
}
