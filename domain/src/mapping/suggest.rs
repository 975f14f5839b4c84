//! A starting mapping per source format: where each kind of export keeps the user's
//! sign-in name, and the normalized fields every target has a place for. The user edits
//! it; nothing here is final.

use super::{Mapping, Rule, transform::Transform};
use crate::{projects::SourceKind, scim::discovery::Discovery};

fn rule(target: &str, source: &str, transforms: Vec<Transform>) -> Rule {
    Rule {
        target: target.into(),
        source: source.into(),
        transforms,
        required: false,
        unique: false,
        max_length: None,
    }
}

/// The suggested mapping for exports of `source`. With discovery, rules whose target
/// the target does not have are left out.
pub fn suggested(source: SourceKind, discovery: Option<&Discovery>) -> Mapping {
    // E-mail-first identity providers sign users in by address; the others by a name.
    let user_name = match source {
        SourceKind::Auth0 | SourceKind::Firebase | SourceKind::Cognito => {
            rule("userName", "email", vec![Transform::Email])
        }
        _ => rule("userName", "username", vec![Transform::Trim]),
    };
    let mut rules = vec![
        Rule {
            required: true,
            ..user_name
        },
        rule("name.givenName", "given_name", vec![Transform::Trim]),
        rule("name.familyName", "family_name", vec![Transform::Trim]),
        rule("displayName", "display_name", vec![Transform::Trim]),
        rule(
            "emails[primary eq true].value",
            "email",
            vec![Transform::Email],
        ),
        rule(
            "phoneNumbers[type eq \"mobile\"].value",
            "phone",
            vec![Transform::Trim],
        ),
        rule("active", "active", vec![]),
    ];
    if let Some(discovery) = discovery {
        let probe = |r: &Rule| {
            Mapping {
                rules: vec![rule("userName", "username", vec![]), r.clone()],
            }
            .compile(Some(discovery))
            .is_ok()
                || r.target == "userName"
        };
        rules.retain(probe);
    }
    Mapping { rules }
}
