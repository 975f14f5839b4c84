//! A starting mapping per source format, fitted to the records the project holds: the
//! user's sign-in name from the field that every record has and that maps cleanly, and
//! a rule for each normalized field the export fills. The user edits it; nothing here
//! is final.

use super::{Mapping, Rule, source::SourceField, transform::Transform};
use crate::{import::record::NormalizedUser, projects::SourceKind, scim::discovery::Discovery};

/// A suggested mapping and, in words, where it departs from the format's usual fields
/// and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggested {
    pub mapping: Mapping,
    pub notes: Vec<String>,
}

/// The suggested mapping for exports of `source`, tried on `sample` (some of the
/// project's records; empty before any upload was read). With discovery, rules whose
/// target the target does not have are left out. On the sample it was made for, the
/// suggestion rejects no record where any choice of field could avoid it.
pub fn suggested(
    source: SourceKind,
    discovery: Option<&Discovery>,
    sample: &[NormalizedUser],
) -> Suggested {
    let mut notes = Vec::new();
    // E-mail-first identity providers sign users in by address; the others by a name.
    let email_first = matches!(
        source,
        SourceKind::Auth0 | SourceKind::Firebase | SourceKind::Cognito
    );
    let by_email = Rule::new("userName", "email", vec![Transform::Email]);
    let by_name = Rule::new("userName", "username", vec![Transform::Trim]);
    let by_id = Rule::new("userName", "source_id", vec![Transform::Trim]);
    let candidates = if email_first {
        vec![by_email, by_name, by_id]
    } else {
        vec![by_name, by_email, by_id]
    };
    let user_name = pick(&candidates, discovery, sample, &mut notes);
    let mut rules = vec![Rule {
        required: true,
        ..user_name
    }];
    let display_name = if sample.is_empty() || filled(sample, "display_name") > 0 {
        Rule::new("displayName", "display_name", vec![Transform::Trim])
    } else {
        notes.push(
            "displayName is made of the given and family names: the export has no display name."
                .into(),
        );
        Rule::new("displayName", "{given_name} {family_name}", vec![])
    };
    let others = [
        Rule::new("name.givenName", "given_name", vec![Transform::Trim]),
        Rule::new("name.familyName", "family_name", vec![Transform::Trim]),
        display_name,
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
    for rule in others {
        // Fields the export never fills would only be noise to read past.
        if !sample.is_empty() && !fills(sample, &rule.source) {
            continue;
        }
        if let Some(discovery) = discovery {
            let probe = Mapping {
                rules: vec![Rule::new("userName", "username", vec![]), rule.clone()],
            };
            if probe.compile(Some(discovery)).is_err() {
                continue;
            }
        }
        rules.push(clean_on(rule, discovery, sample, &mut notes));
    }
    Suggested {
        mapping: Mapping { rules },
        notes,
    }
}

/// The first candidate that gives every sampled record a value of its own (mapped, and
/// no two alike); else the one that does so for most.
fn pick(
    candidates: &[Rule],
    discovery: Option<&Discovery>,
    sample: &[NormalizedUser],
    notes: &mut Vec<String>,
) -> Rule {
    // Each candidate tried once; the counts serve the choice and the note.
    let mapped: Vec<usize> = candidates
        .iter()
        .map(|rule| mapped_by(rule, discovery, sample))
        .collect();
    let whole = mapped.iter().position(|&n| n == sample.len());
    let chosen = whole.unwrap_or_else(|| {
        // The first of those that map most.
        let most = mapped.iter().copied().max().unwrap_or(0);
        mapped.iter().position(|&n| n == most).unwrap_or(0)
    });
    if chosen > 0 {
        let passed_over: Vec<String> = candidates[..chosen]
            .iter()
            .zip(&mapped)
            .map(|(c, n)| format!("{} in {} of {}", c.source, sample.len() - n, sample.len()))
            .collect();
        let why = if whole.is_some() {
            "the first field that gives every sampled record a value of its own"
        } else {
            "the field that gives most sampled records a value of their own"
        };
        notes.push(format!(
            "userName comes from {}, {why}: {} sampled records it is missing, unusable or \
             shared with another record.",
            candidates[chosen].source,
            passed_over.join(", "),
        ));
    }
    candidates[chosen].clone()
}

/// `rule` as it is when it maps every sampled record; else with only its whitespace
/// trimmed when that does (an address Ferry's check refuses still reaches the target,
/// which says for itself what it takes); else as it is.
fn clean_on(
    rule: Rule,
    discovery: Option<&Discovery>,
    sample: &[NormalizedUser],
    notes: &mut Vec<String>,
) -> Rule {
    let mapped = mapped_by(&rule, discovery, sample);
    if mapped == sample.len() {
        return rule;
    }
    let trimmed = Rule {
        transforms: vec![Transform::Trim],
        ..rule.clone()
    };
    if mapped_by(&trimmed, discovery, sample) == sample.len() {
        notes.push(format!(
            "{} is only trimmed, not checked: {} of {} sampled values would fail the check \
             and reject their records.",
            rule.target,
            sample.len() - mapped,
            sample.len()
        ));
        trimmed
    } else {
        rule
    }
}

/// How many sampled records `rule` maps without a failure; for `userName` (required)
/// only those whose value no earlier record has, as the target compares them (letter
/// case aside).
fn mapped_by(rule: &Rule, discovery: Option<&Discovery>, sample: &[NormalizedUser]) -> usize {
    let user_name = rule.target == "userName";
    let mut rules = vec![Rule {
        required: user_name,
        ..rule.clone()
    }];
    if !user_name {
        rules.insert(0, Rule::new("userName", "source_id", vec![]));
    }
    let Ok(compiled) = (Mapping { rules }).compile(discovery) else {
        return 0;
    };
    let mut seen = std::collections::HashSet::new();
    sample
        .iter()
        .filter(|user| {
            let mapped = compiled.map(user);
            if !mapped.failures.is_empty() {
                return false;
            }
            !user_name
                || mapped.resource["userName"]
                    .as_str()
                    .is_some_and(|name| seen.insert(name.to_lowercase()))
        })
        .count()
}

/// Whether any sampled record has a value for `source` (a field or a template).
fn fills(sample: &[NormalizedUser], source: &str) -> bool {
    if source.contains('{') {
        return ["given_name", "family_name"]
            .iter()
            .any(|field| source.contains(field) && filled(sample, field) > 0);
    }
    filled(sample, source) > 0
}

/// Sampled records with a value for the field named `source`.
fn filled(sample: &[NormalizedUser], source: &str) -> usize {
    let Ok(field) = SourceField::parse(source) else {
        return 0;
    };
    sample
        .iter()
        .filter(|user| !field.read(user).is_missing())
        .count()
}
