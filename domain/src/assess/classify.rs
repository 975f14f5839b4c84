//! Which attributes hold personal data (PII) and which must stay confidential, told
//! from the attribute's name first and its values second, always with the reason.

use super::values::ValueType;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// Identifies or describes a person: shown masked, revealed one value at a time.
    Pii,
    /// Secrets (password hashes, MFA seeds, tokens): never shown, not even masked.
    Confidential,
    /// Neither.
    Other,
}

impl DataClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Pii => "pii",
            DataClass::Confidential => "confidential",
            DataClass::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pii" => Some(DataClass::Pii),
            "confidential" => Some(DataClass::Confidential),
            "other" => Some(DataClass::Other),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DataClass::Pii => "PII",
            DataClass::Confidential => "Confidential",
            DataClass::Other => "Not personal",
        }
    }
}

/// Name fragments (lower case, letters and digits only) and what they mean. The first
/// list that matches wins, so secrets are recognised before the rest.
const CONFIDENTIAL: &[(&str, &str)] = &[
    ("password", "a password or password hash"),
    ("passwd", "a password or password hash"),
    ("pwd", "a password or password hash"),
    ("passhash", "a password hash"),
    ("hash", "a hash of a secret"),
    ("salt", "a password salt"),
    ("secret", "a secret"),
    ("totp", "an MFA seed"),
    ("otp", "a one-time password seed"),
    ("mfa", "an MFA factor"),
    ("2fa", "an MFA factor"),
    ("recoverycode", "recovery codes"),
    ("backupcode", "recovery codes"),
    ("token", "a token"),
    ("apikey", "an API key"),
    ("privatekey", "a private key"),
    ("credential", "credentials"),
];

const PII: &[(&str, &str)] = &[
    ("email", "an e-mail address"),
    ("mail", "an e-mail address"),
    ("phone", "a phone number"),
    ("mobile", "a phone number"),
    ("fax", "a phone number"),
    ("birth", "a birth date"),
    ("dob", "a birth date"),
    ("ssn", "a national identifier"),
    ("socialsecurity", "a national identifier"),
    ("nationalid", "a national identifier"),
    ("passport", "a national identifier"),
    ("taxid", "a national identifier"),
    ("driverslicense", "a national identifier"),
    ("personnummer", "a national identifier"),
    ("address", "a postal address"),
    ("street", "a postal address"),
    ("postal", "a postal address"),
    ("postcode", "a postal address"),
    ("zip", "a postal address"),
    ("city", "a postal address"),
    ("locality", "a postal address"),
    ("ipaddress", "an IP address"),
    ("lastip", "an IP address"),
    ("firstname", "a person's name"),
    ("lastname", "a person's name"),
    ("givenname", "a person's name"),
    ("familyname", "a person's name"),
    ("middlename", "a person's name"),
    ("surname", "a person's name"),
    ("fullname", "a person's name"),
    ("displayname", "a person's name"),
    ("nickname", "a person's name"),
    ("username", "a user name that identifies a person"),
    ("userprincipalname", "a user name that identifies a person"),
    ("samaccountname", "a user name that identifies a person"),
    ("login", "a user name that identifies a person"),
    ("picture", "a photo of a person"),
    ("photo", "a photo of a person"),
];

/// Whole names (after the last `.` of the path) too short to match as fragments.
const PII_EXACT: &[(&str, &str)] = &[
    ("name", "a person's name"),
    ("cn", "a person's name"),
    ("sn", "a person's name"),
    ("ip", "an IP address"),
    ("uid", "a user name that identifies a person"),
    ("upn", "a user name that identifies a person"),
    ("tel", "a phone number"),
    ("telephonenumber", "a phone number"),
];

const CONFIDENTIAL_EXACT: &[(&str, &str)] = &[("pin", "a PIN")];

const GENERIC: &[&str] = &["value", "values", "type", "primary", "display", "0"];

fn letters(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Classifies the attribute at `path` (for example `attributes.phoneNumber`), given the
/// type most of its values have and how many of them look like a secret or an IP.
pub fn classify(path: &str, facts: &ValueFacts) -> (DataClass, String) {
    // `emails[].value` is about e-mails: generic leaf names defer to their parent.
    let last = path
        .rsplit('.')
        .map(|user_type| letters(user_type.trim_end_matches("[]")))
        .find(|user_type| !GENERIC.contains(&user_type.as_str()))
        .unwrap_or_default();
    let whole = letters(path);
    for (exact, reason) in CONFIDENTIAL_EXACT {
        if last == *exact {
            return (DataClass::Confidential, format!("the name says {reason}"));
        }
    }
    for (fragment, reason) in CONFIDENTIAL {
        if whole.contains(fragment) {
            return (DataClass::Confidential, format!("the name says {reason}"));
        }
    }
    if facts.secret_like * 2 > facts.values && facts.values > 0 {
        return (
            DataClass::Confidential,
            "most values look like password hashes".into(),
        );
    }
    let most = |count: u64| facts.values > 0 && count * 2 > facts.values;
    let named = PII_EXACT
        .iter()
        .find(|(exact, _)| last == *exact)
        .or_else(|| PII.iter().find(|(fragment, _)| last.contains(fragment)));
    if let Some((_, reason)) = named {
        // `email_verified` is about an address but holds flags; `last_login` is about
        // a sign-in but holds times: the values say what the name only mentions. A
        // birth date is a date and personal all the same.
        let flags = facts.main_type == ValueType::Boolean && most(facts.of_main_type);
        let times = facts.main_type == ValueType::DateTime
            && most(facts.of_main_type)
            && !reason.contains("birth");
        if flags {
            return (
                DataClass::Other,
                format!("its values are true or false, not {reason}"),
            );
        }
        if times {
            return (
                DataClass::Other,
                format!("its values are dates and times, not {reason}"),
            );
        }
        return (DataClass::Pii, format!("the name says {reason}"));
    }
    match facts.main_type {
        ValueType::Email if most(facts.of_main_type) => {
            return (DataClass::Pii, "most values are e-mail addresses".into());
        }
        ValueType::Phone if most(facts.of_main_type) => {
            return (DataClass::Pii, "most values are phone numbers".into());
        }
        _ => {}
    }
    if most(facts.ip_like) {
        return (DataClass::Pii, "most values are IP addresses".into());
    }
    (
        DataClass::Other,
        "neither the name nor the values suggest personal data".into(),
    )
}

/// What the classifier needs to know of an attribute's values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValueFacts {
    pub values: u64,
    pub main_type: ValueType,
    pub of_main_type: u64,
    pub secret_like: u64,
    pub ip_like: u64,
}

/// Password hashes and encoded keys: modular crypt (`$2b$…`), LDAP schemes
/// (`{SSHA}…`), or long base64/hex strings without spaces.
pub fn secret_like(value: &str) -> bool {
    let v = value.trim();
    if v.starts_with("$2") || v.starts_with("$argon2") || v.starts_with("$pbkdf2") {
        return true;
    }
    if v.starts_with('{') && v.find('}').is_some_and(|end| end > 1 && end < 12) {
        let scheme = &v[1..v.find('}').unwrap_or(1)];
        return scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && scheme.chars().any(|c| c.is_ascii_uppercase());
    }
    false
}

pub fn ip_like(value: &str) -> bool {
    value.trim().parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(path: &str) -> DataClass {
        classify(path, &ValueFacts::default()).0
    }

    #[test]
    fn attribute_names_tell_the_class() {
        let table = [
            ("email", DataClass::Pii),
            ("emails[].value", DataClass::Pii),
            ("mail", DataClass::Pii),
            ("attributes.phoneNumber", DataClass::Pii),
            ("mobilePhone", DataClass::Pii),
            ("given_name", DataClass::Pii),
            ("firstName", DataClass::Pii),
            ("sn", DataClass::Pii),
            ("cn", DataClass::Pii),
            ("name", DataClass::Pii),
            ("streetAddress", DataClass::Pii),
            ("postalCode", DataClass::Pii),
            ("birthdate", DataClass::Pii),
            ("date_of_birth", DataClass::Pii),
            ("dob", DataClass::Pii),
            ("ssn", DataClass::Pii),
            ("national_id", DataClass::Pii),
            ("passportNumber", DataClass::Pii),
            ("last_ip", DataClass::Pii),
            ("ip", DataClass::Pii),
            ("userPrincipalName", DataClass::Pii),
            ("username", DataClass::Pii),
            ("password_hash", DataClass::Confidential),
            ("userPassword", DataClass::Confidential),
            ("custom_password_hash.hash.value", DataClass::Confidential),
            ("totp_secret", DataClass::Confidential),
            ("mfa_factors[].type", DataClass::Confidential),
            ("recovery_codes[]", DataClass::Confidential),
            ("refresh_token", DataClass::Confidential),
            ("api_key", DataClass::Confidential),
            ("pin", DataClass::Confidential),
            ("department", DataClass::Other),
            ("created_at", DataClass::Other),
            ("groups[]", DataClass::Other),
            ("enabled", DataClass::Other),
        ];
        for (path, class) in table {
            assert_eq!(named(path), class, "{path}");
        }
    }

    #[test]
    fn values_tell_the_class_when_the_name_does_not() {
        let facts = |main_type, of_main_type, secret_like, ip_like| ValueFacts {
            values: 10,
            main_type,
            of_main_type,
            secret_like,
            ip_like,
        };
        let (class, reason) = classify("contact", &facts(ValueType::Email, 9, 0, 0));
        assert_eq!(class, DataClass::Pii);
        assert_eq!(reason, "most values are e-mail addresses");
        assert_eq!(
            classify("c2", &facts(ValueType::Phone, 8, 0, 0)).0,
            DataClass::Pii
        );
        assert_eq!(
            classify("seen_from", &facts(ValueType::Text, 10, 0, 10)).0,
            DataClass::Pii
        );
        let (class, reason) = classify("legacy", &facts(ValueType::Text, 10, 10, 0));
        assert_eq!(class, DataClass::Confidential);
        assert_eq!(reason, "most values look like password hashes");
        assert_eq!(
            classify("contact", &facts(ValueType::Email, 3, 0, 0)).0,
            DataClass::Other
        );
        let (_, reason) = classify("birthdate", &ValueFacts::default());
        assert_eq!(reason, "the name says a birth date");
        // Names that mention personal data over values that are not.
        let (class, reason) = classify("email_verified", &facts(ValueType::Boolean, 10, 0, 0));
        assert_eq!(class, DataClass::Other);
        assert_eq!(
            reason,
            "its values are true or false, not an e-mail address"
        );
        let (class, reason) = classify("last_login", &facts(ValueType::DateTime, 10, 0, 0));
        assert_eq!(class, DataClass::Other);
        assert!(
            reason.starts_with("its values are dates and times"),
            "{reason}"
        );
        assert_eq!(
            classify("birthdate", &facts(ValueType::DateTime, 10, 0, 0)).0,
            DataClass::Pii
        );
    }

    #[test]
    fn secrets_and_addresses_are_recognised_by_their_values() {
        assert!(secret_like("$2b$10$abcdefghijklmnopqrstuv"));
        assert!(secret_like("{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="));
        assert!(secret_like("$argon2id$v=19$m=65536"));
        assert!(!secret_like("{not a scheme}"));
        assert!(!secret_like("Marketing"));
        assert!(ip_like("203.0.113.7"));
        assert!(ip_like("2001:db8::1"));
        assert!(!ip_like("203.0.113"));
    }
}
