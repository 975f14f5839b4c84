//! The mapping engine: rules that turn a normalized record into the SCIM User the
//! target receives. Each rule reads a source expression, runs a chain of transforms,
//! checks the result (required, maximum length, the target attribute's type) and
//! writes it at a SCIM attribute path. A mapping is checked once against the target's
//! own schemas (`compile`); mapping a record (`CompiledMapping::map`) is pure and never
//! panics: whatever a rule cannot do for a record is that record's failure, with the
//! rule and the reason.

pub mod impact;
pub mod source;
pub mod suggest;
pub mod target;
pub mod transform;
pub mod versions;

#[cfg(test)]
mod tests;

use crate::{import::record::NormalizedUser, scim::discovery::Discovery, scim::urn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use source::{Expression, SourceField, Value};
use target::{Selector, TargetFacts, TargetPath};

/// One rule as the user writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rule {
    /// A SCIM attribute path: `userName`, `name.givenName`, `emails[type eq "work"].value`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
    pub target: String,
    /// A field (`email`, `attributes.department`) or a template (`{given_name}.{family_name}`).
    pub source: String,
    #[serde(default)]
    pub transforms: Vec<transform::Transform>,
    /// Records without a value fail (the target's own required attributes always do).
    #[serde(default)]
    pub required: bool,
    /// No two records may end with the same value (checked over the whole data set).
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub max_length: Option<usize>,
}

impl Rule {
    /// A rule without checks of its own (the target's still apply).
    pub fn new(target: &str, source: &str, transforms: Vec<transform::Transform>) -> Self {
        Self {
            target: target.into(),
            source: source.into(),
            transforms,
            required: false,
            unique: false,
            max_length: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mapping {
    pub rules: Vec<Rule>,
}

/// Something wrong with a rule itself (not with a record).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleProblem {
    /// The rule's position; `None` for the mapping as a whole.
    pub rule: Option<usize>,
    /// `target`, `source`, `transforms[N]` or `checks`.
    pub field: String,
    pub message: String,
}

/// Why one record fails one rule. The message never quotes the value (it is counted
/// over whole data sets and may reach logs); the preview shows the value beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleFailure {
    pub rule: usize,
    pub message: String,
}

/// A record mapped: the SCIM resource (as far as the rules got) and every failure.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    pub resource: Json,
    pub failures: Vec<RuleFailure>,
}

struct CompiledRule {
    path: TargetPath,
    facts: Option<TargetFacts>,
    source: Expression,
    transforms: Vec<transform::Compiled>,
    required: bool,
    max_length: Option<usize>,
}

/// A checked mapping, ready to map records.
pub struct CompiledMapping {
    /// Each with its position among the rules as written.
    rules: Vec<(usize, CompiledRule)>,
    schemas: Vec<String>,
    /// Positions of the rules whose values must be unique over the data set.
    pub unique: Vec<usize>,
    sets_external_id: bool,
}

/// Transforms whose output is a truth value or a date, for the type checks.
fn ends_as(transforms: &[transform::Transform], source: &Expression, kind: &str) -> bool {
    use transform::Transform as T;
    let last = transforms
        .iter()
        .rev()
        .find(|t| !matches!(t, T::Default { .. } | T::Trim | T::Truncate { .. }));
    match (kind, last) {
        ("boolean", Some(T::Bool)) => true,
        ("dateTime", Some(T::Date { .. })) => true,
        (_, Some(_)) => false,
        ("boolean", None) => matches!(
            source,
            Expression::Field(SourceField::Active | SourceField::EmailVerified)
        ),
        ("dateTime", None) => matches!(
            source,
            Expression::Field(SourceField::CreatedAt | SourceField::LastLoginAt)
        ),
        _ => false,
    }
}

impl Mapping {
    /// Checks every rule (against the target's schemas when discovery found them) and
    /// prepares the mapping; all problems at once, each naming its rule and field.
    pub fn compile(
        &self,
        discovery: Option<&Discovery>,
    ) -> Result<CompiledMapping, Vec<RuleProblem>> {
        let (compiled, problems) = self.compile_lenient(discovery);
        if problems.is_empty() {
            Ok(compiled)
        } else {
            Err(problems)
        }
    }

    /// Like `compile`, but keeps the rules without problems usable, so a preview can
    /// show what the sound rules make of a record while others are being fixed.
    pub fn compile_lenient(
        &self,
        discovery: Option<&Discovery>,
    ) -> (CompiledMapping, Vec<RuleProblem>) {
        let mut problems = Vec::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut schemas = vec![urn::USER.to_string()];
        let mut seen: Vec<String> = Vec::new();
        let problem = |rule: usize, field: &str, message: String| RuleProblem {
            rule: Some(rule),
            field: field.into(),
            message,
        };
        for (i, rule) in self.rules.iter().enumerate() {
            let path = match TargetPath::parse(&rule.target) {
                Ok(path) => path,
                Err(e) => {
                    problems.push(problem(i, "target", e));
                    continue;
                }
            };
            let key = rule.target.trim().to_ascii_lowercase();
            if seen.contains(&key) {
                problems.push(problem(
                    i,
                    "target",
                    format!("{} is mapped twice", rule.target.trim()),
                ));
            }
            seen.push(key);
            let facts = match discovery {
                Some(d) => match target::check(&path, d, urn::USER) {
                    Ok(facts) => Some(facts),
                    Err(e) => {
                        problems.push(problem(i, "target", e));
                        None
                    }
                },
                None => None,
            };
            let source = match Expression::parse(&rule.source) {
                Ok(source) => Some(source),
                Err(e) => {
                    if !rule
                        .transforms
                        .iter()
                        .any(|t| matches!(t, transform::Transform::Constant { .. }))
                    {
                        problems.push(problem(i, "source", e));
                    }
                    None
                }
            };
            let mut transforms = Vec::with_capacity(rule.transforms.len());
            for (n, t) in rule.transforms.iter().enumerate() {
                match t.compile() {
                    Ok(c) => transforms.push(c),
                    Err(e) => problems.push(problem(i, &format!("transforms[{n}]"), e)),
                }
            }
            if rule.max_length == Some(0) {
                problems.push(problem(
                    i,
                    "checks",
                    "a maximum length must be above 0".into(),
                ));
            }
            let source = source.unwrap_or(Expression::Template(Vec::new()));
            if let Some(facts) = &facts {
                for kind in ["boolean", "dateTime"] {
                    if facts.kind == kind && !ends_as(&rule.transforms, &source, kind) {
                        let fix = if kind == "boolean" {
                            "true/false"
                        } else {
                            "date"
                        };
                        problems.push(problem(
                            i,
                            "transforms",
                            format!(
                                "{} takes a {kind}: end the chain with the {fix} transform",
                                rule.target.trim()
                            ),
                        ));
                    }
                }
            }
            if let Some(urn) = &path.schema
                && !schemas.iter().any(|s| s.eq_ignore_ascii_case(urn))
            {
                schemas.push(urn.clone());
            }
            let required = rule.required || facts.as_ref().is_some_and(|f| f.required);
            if problems.iter().any(|p| p.rule == Some(i)) {
                continue;
            }
            rules.push((
                i,
                CompiledRule {
                    required,
                    max_length: rule.max_length,
                    path,
                    facts,
                    source,
                    transforms,
                },
            ));
        }
        if !self.rules.iter().any(|r| r.target.trim() == "userName") {
            problems.push(RuleProblem {
                rule: None,
                field: "rules".into(),
                message: "userName must be mapped: it is how the target knows the user".into(),
            });
        }
        let unique = rules
            .iter()
            .filter(|(i, compiled)| {
                let rule = &self.rules[*i];
                rule.unique
                    || compiled.facts.as_ref().is_some_and(|f| f.unique)
                    || rule.target.trim() == "userName"
            })
            .map(|(i, _)| *i)
            .collect();
        let sets_external_id = self.rules.iter().any(|r| r.target.trim() == "externalId");
        let compiled = CompiledMapping {
            rules,
            schemas,
            unique,
            sets_external_id,
        };
        (compiled, problems)
    }
}

impl CompiledMapping {
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Maps one record. `externalId` is the record's source id unless a rule sets it.
    pub fn map(&self, user: &NormalizedUser) -> Mapped {
        self.map_seeing(user, |_, _| {})
    }

    /// Maps one record and shows `seen` each rule's value as it is written.
    pub fn map_seeing(&self, user: &NormalizedUser, mut seen: impl FnMut(usize, &Json)) -> Mapped {
        let mut resource = Map::new();
        resource.insert(
            "schemas".into(),
            Json::Array(self.schemas.iter().cloned().map(Json::String).collect()),
        );
        if !self.sets_external_id {
            resource.insert("externalId".into(), Json::String(user.source_id.clone()));
        }
        let mut failures = Vec::new();
        for (i, rule) in &self.rules {
            match rule.value(user) {
                Ok(Some(value)) => {
                    seen(*i, &value);
                    write(&mut resource, &rule.path, value)
                }
                Ok(None) => {}
                Err(message) => failures.push(RuleFailure { rule: *i, message }),
            }
        }
        Mapped {
            resource: Json::Object(resource),
            failures,
        }
    }

    /// What rule `rule` reads from a record, before its transforms (for previews).
    pub fn source_value(&self, rule: usize, user: &NormalizedUser) -> Option<String> {
        self.rule(rule)?.source.read(user).to_text()
    }

    /// Whether rule `rule` is in use (it had no problems).
    pub fn has_rule(&self, rule: usize) -> bool {
        self.rule(rule).is_some()
    }

    fn rule(&self, rule: usize) -> Option<&CompiledRule> {
        self.rules.iter().find(|(i, _)| *i == rule).map(|(_, r)| r)
    }
}

impl CompiledRule {
    fn value(&self, user: &NormalizedUser) -> Result<Option<Json>, String> {
        let mut value = self.source.read(user);
        for t in &self.transforms {
            value = t.apply(value)?;
        }
        if value.is_missing() {
            return if self.required {
                Err("has no value, and the target requires one".into())
            } else {
                Ok(None)
            };
        }
        if let Some(max) = self.max_length {
            let too_long = |t: &str| t.chars().count() > max;
            let long = match &value {
                Value::Text(t) => too_long(t),
                Value::List(items) => items.iter().any(|t| too_long(t)),
                _ => false,
            };
            if long {
                return Err(format!("is longer than {max} characters"));
            }
        }
        let Some(facts) = &self.facts else {
            return Ok(Some(value.to_json()));
        };
        let many = facts.multi_valued;
        let one = |value: Value| -> Result<Value, String> {
            match value {
                Value::List(items) if items.len() == 1 => {
                    Ok(Value::Text(items.into_iter().next().unwrap_or_default()))
                }
                Value::List(items) => Err(format!(
                    "gives {} values where the target takes one (join or split them)",
                    items.len()
                )),
                other => Ok(other),
            }
        };
        let value = if many { value } else { one(value)? };
        typed(value, &facts.kind).map(Some)
    }
}

/// Converts a value to the JSON type the target attribute declares.
fn typed(value: Value, kind: &str) -> Result<Json, String> {
    let convert = |text: &str| -> Result<Json, String> {
        match kind {
            "boolean" => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                _ => Err("is not true or false".to_string()),
            },
            "integer" => text
                .trim()
                .parse::<i64>()
                .map(Json::from)
                .map_err(|_| "is not a whole number".to_string()),
            "decimal" => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number)
                .ok_or_else(|| "is not a number".to_string()),
            "dateTime" => chrono::DateTime::parse_from_rfc3339(text.trim())
                .map(|_| Json::String(text.trim().to_string()))
                .map_err(|_| "is not an ISO 8601 date and time".to_string()),
            _ => Ok(Json::String(text.to_string())),
        }
    };
    match value {
        Value::Missing => Ok(Json::Null),
        Value::Bool(b) if kind == "boolean" => Ok(Json::Bool(b)),
        Value::Bool(b) => convert(&b.to_string()),
        Value::Text(t) => convert(&t),
        Value::List(items) => items
            .iter()
            .map(|t| convert(t))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
    }
}

fn ensure_object(parent: &mut Map<String, Json>, key: &str) {
    let entry = parent
        .entry(key.to_string())
        .or_insert_with(|| Json::Object(Map::new()));
    if !entry.is_object() {
        *entry = Json::Object(Map::new());
    }
}

/// Writes a value at its path, creating what the path needs on the way.
fn write(resource: &mut Map<String, Json>, path: &TargetPath, value: Json) {
    let container: &mut Map<String, Json> = match &path.schema {
        Some(urn) => {
            ensure_object(resource, urn);
            match resource.get_mut(urn.as_str()) {
                Some(Json::Object(map)) => map,
                _ => return,
            }
        }
        None => resource,
    };
    match (&path.selector, &path.sub) {
        (None, None) => {
            container.insert(path.attribute.clone(), value);
        }
        (None, Some(sub)) => {
            match container.get(&path.attribute) {
                // A multi-valued attribute written without an element chosen: one
                // element per value.
                Some(Json::Array(_)) | None if value.is_array() => {
                    let items = match value {
                        Json::Array(items) => items,
                        other => vec![other],
                    };
                    let entry = container
                        .entry(path.attribute.clone())
                        .or_insert_with(|| Json::Array(Vec::new()));
                    if let Json::Array(elements) = entry {
                        for item in items {
                            let mut element = Map::new();
                            element.insert(sub.clone(), item);
                            elements.push(Json::Object(element));
                        }
                    }
                }
                _ => {
                    ensure_object(container, &path.attribute);
                    if let Some(Json::Object(map)) = container.get_mut(&path.attribute) {
                        map.insert(sub.clone(), value);
                    }
                }
            }
        }
        (Some(selector), sub) => {
            let entry = container
                .entry(path.attribute.clone())
                .or_insert_with(|| Json::Array(Vec::new()));
            if !entry.is_array() {
                *entry = Json::Array(Vec::new());
            }
            let Json::Array(elements) = entry else { return };
            let matches = |e: &Json| match selector {
                Selector::Type(kind) => e.get("type").and_then(Json::as_str) == Some(kind.as_str()),
                Selector::Primary => e.get("primary") == Some(&Json::Bool(true)),
            };
            let at = match elements.iter().position(matches) {
                Some(at) => at,
                None => {
                    let mut element = Map::new();
                    match selector {
                        Selector::Type(kind) => {
                            element.insert("type".into(), Json::String(kind.clone()))
                        }
                        Selector::Primary => element.insert("primary".into(), Json::Bool(true)),
                    };
                    elements.push(Json::Object(element));
                    elements.len() - 1
                }
            };
            if let Some(Json::Object(element)) = elements.get_mut(at) {
                element.insert(sub.clone().unwrap_or_else(|| "value".into()), value);
            }
        }
    }
}
