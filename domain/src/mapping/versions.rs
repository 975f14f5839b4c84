//! Mappings kept as numbered versions — who saved each and when, with a note — the
//! difference between two versions rule by rule (rules are known by their target),
//! and the JSON document a mapping is exported as and imported from, for review in
//! version control.

use super::{Mapping, Rule};
use crate::{
    DomainError, Result,
    ids::{AccountId, ProjectId},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One saved version of a project's mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MappingVersion {
    pub project_id: ProjectId,
    /// 1, 2, 3, … per project.
    pub version: u32,
    pub mapping: Mapping,
    pub note: String,
    pub created_by: Option<AccountId>,
    /// The saver's e-mail address, when the account still exists.
    pub created_by_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A version in a list: without its rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MappingVersionSummary {
    pub version: u32,
    pub rules: usize,
    pub note: String,
    pub created_by_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&MappingVersion> for MappingVersionSummary {
    fn from(v: &MappingVersion) -> Self {
        Self {
            version: v.version,
            rules: v.mapping.rules.len(),
            note: v.note.clone(),
            created_by_email: v.created_by_email.clone(),
            created_at: v.created_at,
        }
    }
}

pub const MAX_NOTE_CHARS: usize = 500;

/// A note as saved: trimmed, single-line, bounded.
pub fn normalize_note(note: &str) -> Result<String> {
    let note = note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(DomainError::invalid(
            "note",
            format!("must be at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    if note.chars().any(char::is_control) {
        return Err(DomainError::invalid("note", "must be one line of text"));
    }
    Ok(note.to_string())
}

/// How a rule changed between two versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RuleChange {
    Added { rule: Rule },
    Removed { rule: Rule },
    Changed { before: Rule, after: Rule },
}

impl RuleChange {
    pub fn target(&self) -> &str {
        match self {
            RuleChange::Added { rule } | RuleChange::Removed { rule } => &rule.target,
            RuleChange::Changed { after, .. } => &after.target,
        }
    }
}

fn key(rule: &Rule) -> String {
    rule.target.trim().to_ascii_lowercase()
}

/// What changed from `before` to `after`, rule by rule, in `after`'s order with the
/// removed rules last.
pub fn diff(before: &Mapping, after: &Mapping) -> Vec<RuleChange> {
    let mut changes = Vec::new();
    for rule in &after.rules {
        match before.rules.iter().find(|r| key(r) == key(rule)) {
            None => changes.push(RuleChange::Added { rule: rule.clone() }),
            Some(old) if old != rule => changes.push(RuleChange::Changed {
                before: old.clone(),
                after: rule.clone(),
            }),
            Some(_) => {}
        }
    }
    for rule in &before.rules {
        if !after.rules.iter().any(|r| key(r) == key(rule)) {
            changes.push(RuleChange::Removed { rule: rule.clone() });
        }
    }
    changes
}

/// The exported document: a marker and format version, then the rules.
#[derive(Serialize, Deserialize)]
struct Document {
    ferry_mapping: u32,
    #[serde(default)]
    note: String,
    rules: Vec<Rule>,
}

const FORMAT: u32 = 1;

/// The mapping as pretty JSON, one rule per block, stable for diffs in review.
pub fn export(mapping: &Mapping, note: &str) -> String {
    let document = Document {
        ferry_mapping: FORMAT,
        note: note.to_string(),
        rules: mapping.rules.clone(),
    };
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

/// Reads an exported document back; errors name where the JSON is wrong.
pub fn import(text: &str) -> Result<(Mapping, String)> {
    let document: Document = serde_json::from_str(text).map_err(|e| {
        DomainError::invalid(
            "file",
            format!(
                "not a Ferry mapping export (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    if document.ferry_mapping != FORMAT {
        return Err(DomainError::invalid(
            "file",
            format!(
                "mapping format {} is not one this Ferry reads (it reads {FORMAT})",
                document.ferry_mapping
            ),
        ));
    }
    Ok((
        Mapping {
            rules: document.rules,
        },
        normalize_note(&document.note)?,
    ))
}
