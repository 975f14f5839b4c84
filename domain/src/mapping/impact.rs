//! The effect of a mapping and the user types over a whole data set: how many users
//! each user type holds, how many records each rule would reject and why, and the
//! uniqueness collisions after transformation (two legacy users becoming the same
//! `userName`). `Evaluator::evaluate` is pure and runs on any thread; `ImpactCounter`
//! takes its results in record order and keeps memory to a few bytes per record.

use super::{CompiledMapping, Mapping, RuleFailure};
use crate::{
    import::record::NormalizedUser,
    user_types::{CompiledUserTypes, UserTypeCounts},
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
};

/// Source ids kept per rule as examples, for the preview's "failing" samples.
pub const EXAMPLES_PER_RULE: usize = 20;
/// Collisions kept with their values, over all rules.
pub const COLLISION_EXAMPLES: usize = 100;
/// Users in no user type kept as examples.
pub const UNMATCHED_EXAMPLES: usize = 20;

/// The reason a record fails a unique rule.
pub const DUPLICATE: &str = "has the same value as an earlier record, and the target takes it once";

/// What one record does: its user type, and for a record that moves, its rule
/// failures and the values its unique rules give.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordImpact {
    pub user_type: Option<usize>,
    pub moves: bool,
    pub failures: Vec<RuleFailure>,
    /// Per unique rule, the values it writes (lower-cased: targets compare user names
    /// without case).
    pub unique: Vec<(usize, Vec<String>)>,
}

/// A mapping and the user types, ready to evaluate records. `Sync`: one per run,
/// shared by every thread.
pub struct Evaluator {
    pub mapping: CompiledMapping,
    pub user_types: CompiledUserTypes,
}

impl Evaluator {
    pub fn evaluate(&self, user: &NormalizedUser) -> RecordImpact {
        let user_type = self.user_types.place(user);
        let moves = user_type.is_some_and(|s| self.user_types.included(s));
        if !moves {
            return RecordImpact {
                user_type,
                moves,
                failures: Vec::new(),
                unique: Vec::new(),
            };
        }
        let mut unique: Vec<(usize, Vec<String>)> = Vec::new();
        let wanted = &self.mapping.unique;
        let mapped = self.mapping.map_seeing(user, |rule, value| {
            if wanted.contains(&rule) {
                let texts = match value {
                    Json::Array(items) => items.iter().map(text_of).collect(),
                    other => vec![text_of(other)],
                };
                unique.push((rule, texts));
            }
        });
        RecordImpact {
            user_type,
            moves,
            failures: mapped.failures,
            unique,
        }
    }
}

fn text_of(value: &Json) -> String {
    match value {
        Json::String(s) => s.trim().to_lowercase(),
        other => other.to_string(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReasonCount {
    pub message: String,
    pub count: u64,
}

/// What one rule does over the data set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleImpact {
    pub rule: usize,
    pub target: String,
    /// Records the rule rejects, collisions included.
    pub rejected: u64,
    /// Why, most common first.
    pub reasons: Vec<ReasonCount>,
    /// Records that take a value an earlier record took.
    pub collisions: u64,
    /// Source ids of some rejected records.
    pub examples: Vec<String>,
}

/// Two records that end with the same value of a unique rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Collision {
    pub rule: usize,
    pub value: String,
    /// The record that took the value first, and the one that collides with it.
    pub first: String,
    pub second: String,
}

/// The impact over the whole data set. Every record is counted once:
/// `records = moving + left behind + unmatched`, `moving = accepted + rejected`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImpactReport {
    pub records: u64,
    #[serde(alias = "segments")]
    pub user_types: UserTypeCounts,
    /// Moving records that no rule rejects.
    pub accepted: u64,
    /// Moving records at least one rule rejects.
    pub rejected: u64,
    pub rules: Vec<RuleImpact>,
    pub collisions: Vec<Collision>,
    /// Source ids of some users in no user type.
    pub unmatched_examples: Vec<String>,
}

impl ImpactReport {
    /// Records in excluded user types.
    pub fn left_behind(&self) -> u64 {
        self.user_types.counted - self.user_types.moving - self.user_types.unmatched
    }

    /// Source ids of records rule `rule` rejects (kept examples).
    pub fn failing(&self, rule: usize) -> &[String] {
        self.rules
            .iter()
            .find(|r| r.rule == rule)
            .map_or(&[], |r| r.examples.as_slice())
    }
}

struct RuleTally {
    rejected: u64,
    reasons: HashMap<String, u64>,
    collisions: u64,
    examples: Vec<String>,
}

/// Adds up record impacts in record order.
pub struct ImpactCounter {
    report: ImpactReport,
    tallies: Vec<RuleTally>,
    targets: Vec<String>,
    /// Per unique rule: hash of a value → the record that took it first.
    seen: HashMap<usize, HashMap<u64, u32>>,
    /// Source ids of the records that took a unique value, by ordinal: one buffer and
    /// its ends, far smaller than a string each.
    ids: String,
    ends: Vec<u32>,
    hasher: std::hash::RandomState,
}

impl ImpactCounter {
    pub fn new(mapping: &Mapping, user_types: usize) -> Self {
        Self {
            report: ImpactReport {
                user_types: UserTypeCounts::new(user_types),
                ..ImpactReport::default()
            },
            tallies: mapping
                .rules
                .iter()
                .map(|_| RuleTally {
                    rejected: 0,
                    reasons: HashMap::new(),
                    collisions: 0,
                    examples: Vec::new(),
                })
                .collect(),
            targets: mapping.rules.iter().map(|r| r.target.clone()).collect(),
            seen: HashMap::new(),
            ids: String::new(),
            ends: Vec::new(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn id(&self, ordinal: u32) -> String {
        let ordinal = ordinal as usize;
        let start = if ordinal == 0 {
            0
        } else {
            self.ends[ordinal - 1] as usize
        };
        self.ids
            .get(start..self.ends[ordinal] as usize)
            .unwrap_or_default()
            .to_string()
    }

    fn tally(&mut self, rule: usize, message: &str, source_id: &str) {
        let Some(tally) = self.tallies.get_mut(rule) else {
            return;
        };
        tally.rejected += 1;
        *tally.reasons.entry(message.to_string()).or_default() += 1;
        if tally.examples.len() < EXAMPLES_PER_RULE {
            tally.examples.push(source_id.to_string());
        }
    }

    pub fn add(&mut self, source_id: &str, impact: RecordImpact, user_types: &CompiledUserTypes) {
        self.report.records += 1;
        self.report.user_types.add(impact.user_type, user_types);
        if impact.user_type.is_none() && self.report.unmatched_examples.len() < UNMATCHED_EXAMPLES {
            self.report.unmatched_examples.push(source_id.to_string());
        }
        if !impact.moves {
            return;
        }
        let mut rejected_by: Vec<usize> = Vec::new();
        for failure in &impact.failures {
            // One rule counts a record once, whatever number of its values fail.
            if !rejected_by.contains(&failure.rule) {
                rejected_by.push(failure.rule);
                self.tally(failure.rule, &failure.message, source_id);
            }
        }
        let mut ordinal: Option<u32> = None;
        for (rule, values) in impact.unique {
            for value in values {
                let mut h = self.hasher.build_hasher();
                h.write_usize(rule);
                h.write(value.as_bytes());
                let key = h.finish();
                let mine = *ordinal.get_or_insert_with(|| {
                    self.ids.push_str(source_id);
                    self.ends
                        .push(u32::try_from(self.ids.len()).unwrap_or(u32::MAX));
                    u32::try_from(self.ends.len() - 1).unwrap_or(u32::MAX)
                });
                let first = *self
                    .seen
                    .entry(rule)
                    .or_default()
                    .entry(key)
                    .or_insert(mine);
                if first == mine {
                    continue;
                }
                if let Some(tally) = self.tallies.get_mut(rule) {
                    tally.collisions += 1;
                }
                if !rejected_by.contains(&rule) {
                    rejected_by.push(rule);
                    self.tally(rule, DUPLICATE, source_id);
                }
                if self.report.collisions.len() < COLLISION_EXAMPLES {
                    let first = self.id(first);
                    self.report.collisions.push(Collision {
                        rule,
                        value,
                        first,
                        second: source_id.to_string(),
                    });
                }
            }
        }
        if rejected_by.is_empty() {
            self.report.accepted += 1;
        } else {
            self.report.rejected += 1;
        }
    }

    pub fn records(&self) -> u64 {
        self.report.records
    }

    pub fn finish(mut self) -> ImpactReport {
        self.report.rules = self
            .tallies
            .into_iter()
            .enumerate()
            .map(|(rule, tally)| {
                let mut reasons: Vec<ReasonCount> = tally
                    .reasons
                    .into_iter()
                    .map(|(message, count)| ReasonCount { message, count })
                    .collect();
                reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
                RuleImpact {
                    rule,
                    target: self.targets.get(rule).cloned().unwrap_or_default(),
                    rejected: tally.rejected,
                    reasons,
                    collisions: tally.collisions,
                    examples: tally.examples,
                }
            })
            .collect();
        self.report
    }
}
