//! The transforms a rule chains between its source and its target. Text transforms
//! apply to each item of a list. A transform that cannot do its work on a value (a
//! date it cannot read, a phone number it cannot place) fails the rule for that record
//! with a reason; a transform that cannot exist at all (a bad regular expression) is
//! refused when the mapping is checked, never at run time.

use super::source::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Transform {
    Trim,
    Lower,
    Upper,
    /// Splits text at `separator`; with `index`, keeps that part (0-based), else all.
    Split {
        separator: String,
        #[serde(default)]
        index: Option<usize>,
    },
    /// Joins a list into one text.
    Join {
        separator: String,
    },
    /// Regular-expression replacement (`$1` names a group).
    Replace {
        pattern: String,
        replacement: String,
    },
    /// Keeps the first `max` characters.
    Truncate {
        max: usize,
    },
    /// Reads a date and time — ISO 8601, epoch seconds or milliseconds, or `format`
    /// (chrono's `%Y-%m-%d` notation) — and writes ISO 8601 in UTC.
    Date {
        #[serde(default)]
        format: Option<String>,
    },
    /// A phone number in E.164, numbers without a country code read in `region`.
    Phone {
        #[serde(default)]
        region: Option<String>,
    },
    /// Trims an e-mail address and lower-cases it; refuses what is not one.
    Email,
    /// Replaces a value by its entry in `table`; without an entry, `default` or a
    /// failure.
    Lookup {
        table: BTreeMap<String, String>,
        #[serde(default)]
        default: Option<String>,
    },
    /// The value when there is none.
    Default {
        value: String,
    },
    /// `true/yes/y/1/on` and `false/no/n/0/off` (any case) as a truth value.
    Bool,
    /// This text, whatever the source.
    Constant {
        value: String,
    },
}

/// A transform ready to run (its regular expression compiled).
#[derive(Clone, Debug)]
pub enum Compiled {
    Plain(Transform),
    Replace(regex::Regex, String),
}

impl Transform {
    pub fn label(&self) -> &'static str {
        match self {
            Transform::Trim => "trim",
            Transform::Lower => "lower case",
            Transform::Upper => "upper case",
            Transform::Split { .. } => "split",
            Transform::Join { .. } => "join",
            Transform::Replace { .. } => "replace",
            Transform::Truncate { .. } => "truncate",
            Transform::Date { .. } => "date",
            Transform::Phone { .. } => "phone",
            Transform::Email => "e-mail",
            Transform::Lookup { .. } => "lookup",
            Transform::Default { .. } => "default",
            Transform::Bool => "true/false",
            Transform::Constant { .. } => "constant",
        }
    }

    /// Checks the transform's own settings and prepares it.
    pub fn compile(&self) -> Result<Compiled, String> {
        match self {
            Transform::Replace {
                pattern,
                replacement,
            } => regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map(|re| Compiled::Replace(re, replacement.clone()))
                .map_err(|e| format!("the pattern {pattern:?} is not a regular expression: {e}")),
            Transform::Split { separator, .. } if separator.is_empty() => {
                Err("split needs a separator".into())
            }
            Transform::Truncate { max: 0 } => Err("truncate needs a length above 0".into()),
            Transform::Phone {
                region: Some(region),
            } if region.len() != 2 || !region.chars().all(|c| c.is_ascii_alphabetic()) => {
                Err(format!("{region:?} is not a two-letter country code"))
            }
            Transform::Date {
                format: Some(format),
            } if format.trim().is_empty() => Err("the date format is empty".into()),
            other => Ok(Compiled::Plain(other.clone())),
        }
    }
}

fn each(value: Value, f: impl Fn(String) -> Result<String, String>) -> Result<Value, String> {
    match value {
        Value::Text(t) => f(t).map(Value::Text),
        Value::List(items) => items
            .into_iter()
            .map(f)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        other => Ok(other),
    }
}

const TRUE: [&str; 5] = ["true", "yes", "y", "1", "on"];
const FALSE: [&str; 5] = ["false", "no", "n", "0", "off"];

impl Compiled {
    /// Runs the transform; `Err` is the reason the record fails the rule.
    pub fn apply(&self, value: Value) -> Result<Value, String> {
        let transform = match self {
            Compiled::Replace(re, replacement) => {
                return each(value, |t| {
                    Ok(re.replace_all(&t, replacement.as_str()).into_owned())
                });
            }
            Compiled::Plain(t) => t,
        };
        match transform {
            Transform::Trim => each(value, |t| Ok(t.trim().to_string())),
            Transform::Lower => each(value, |t| Ok(t.to_lowercase())),
            Transform::Upper => each(value, |t| Ok(t.to_uppercase())),
            Transform::Split { separator, index } => match value {
                Value::Text(t) => {
                    let parts: Vec<String> = t
                        .split(separator.as_str())
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect();
                    Ok(match index {
                        Some(i) => parts
                            .into_iter()
                            .nth(*i)
                            .map_or(Value::Missing, Value::Text),
                        None => Value::List(parts),
                    })
                }
                other => Ok(other),
            },
            Transform::Join { separator } => match value {
                Value::List(items) => Ok(Value::Text(items.join(separator))),
                other => Ok(other),
            },
            Transform::Truncate { max } => each(value, |t| Ok(t.chars().take(*max).collect())),
            Transform::Date { format } => each(value, |t| {
                let parsed = match format {
                    Some(f) => chrono::NaiveDateTime::parse_from_str(t.trim(), f)
                        .map(|n| n.and_utc())
                        .or_else(|_| {
                            chrono::NaiveDate::parse_from_str(t.trim(), f)
                                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                        })
                        .ok(),
                    None => crate::import::record::parse_time(&t),
                };
                parsed
                    .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .ok_or_else(|| "is not a date and time".to_string())
            }),
            Transform::Phone { region } => each(value, |t| {
                crate::assess::values::to_e164(&t, region.as_deref())
                    .ok_or_else(|| "cannot be written as an international (E.164) number".into())
            }),
            Transform::Email => each(value, |t| {
                let address = t.trim().to_lowercase();
                if crate::assess::values::is_email(&address) {
                    Ok(address)
                } else {
                    Err("is not an e-mail address".into())
                }
            }),
            Transform::Lookup { table, default } => each(value, |t| {
                table
                    .get(&t)
                    .or(default.as_ref())
                    .cloned()
                    .ok_or_else(|| "has no entry in the lookup table".to_string())
            }),
            Transform::Default { value: fallback } => Ok(if value.is_missing() {
                Value::Text(fallback.clone())
            } else {
                value
            }),
            Transform::Bool => match value {
                Value::Text(t) => {
                    let lower = t.trim().to_ascii_lowercase();
                    if TRUE.contains(&lower.as_str()) {
                        Ok(Value::Bool(true))
                    } else if FALSE.contains(&lower.as_str()) {
                        Ok(Value::Bool(false))
                    } else {
                        Err("is not true or false".into())
                    }
                }
                Value::List(_) => Err("a list is not true or false".into()),
                other => Ok(other),
            },
            Transform::Constant { value } => Ok(Value::Text(value.clone())),
            Transform::Replace { .. } => Ok(value),
        }
    }
}
