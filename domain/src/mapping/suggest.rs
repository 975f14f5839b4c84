//! A starting mapping per source format: where each kind of export keeps the user's
//! sign-in name, and the normalized fields every target has a place for. The user edits
//! it; nothing here is final.

use super::{Mapping, Rule, transform::Transform};
use crate::{projects::SourceKind, scim::discovery::Discovery};

/// The suggested mapping for exports of `source`. With discovery, rules whose target
/// the target does not have are left out.
pub fn suggested(source: SourceKind, discovery: Option<&Discovery>) -> Mapping {
    // E-mail-first identity providers sign users in by address; the others by a name.
    let user_name = match source {
        SourceKind::Auth0 | SourceKind::Firebase | SourceKind::Cognito => {
            Rule::new("userName", "email", vec![Transform::Email])
        }
        _ => Rule::new("userName", "username", vec![Transform::Trim]),
    };
    let mut rules = vec![
        Rule {
            required: true,
            ..user_name
        },
        Rule::new("name.givenName", "given_name", vec![Transform::Trim]),
        Rule::new("name.familyName", "family_name", vec![Transform::Trim]),
        Rule::new("displayName", "display_name", vec![Transform::Trim]),
        Rule::new(
            "emails[primary eq true].value",
            "email",
            vec![Transform::Email],
        ),
        Rule::new(
            "phoneNumbers[type eq \"mobile\"].value",
            "phone",
            vec![Transform::Trim],
        ),
        Rule::new("active", "active", vec![]),
    ];
    if let Some(discovery) = discovery {
        let probe = |r: &Rule| {
            Mapping {
                rules: vec![Rule::new("userName", "username", vec![]), r.clone()],
            }
            .compile(Some(discovery))
            .is_ok()
                || r.target == "userName"
        };
        rules.retain(probe);
    }
    Mapping { rules }
}
