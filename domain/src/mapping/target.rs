//! Where a rule writes: a SCIM attribute path (RFC 7644 §3.10) as mappings name it —
//! `userName`, `name.givenName`, `emails[type eq "work"].value`,
//! `emails[primary eq true].value`, or an extension's attribute by its schema URN,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department` — and its
//! check against the attributes the target itself declared.

use crate::scim::discovery::{Attribute, Discovery};
use serde::{Deserialize, Serialize};

/// A value-path filter on a multi-valued attribute: which element the rule writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `[type eq "work"]`
    Type(String),
    /// `[primary eq true]`
    Primary,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPath {
    /// The extension's URN; `None` for the core User schema.
    pub schema: Option<String>,
    pub attribute: String,
    pub selector: Option<Selector>,
    pub sub: Option<String>,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl TargetPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (schema, rest) = if text.to_ascii_lowercase().starts_with("urn:") {
            // The attribute follows the URN's last colon (RFC 7644 §3.10).
            let split = text
                .rfind(':')
                .ok_or_else(|| format!("{text:?} names no attribute after its schema"))?;
            let (urn, attr) = text.split_at(split);
            (Some(urn.to_string()), &attr[1..])
        } else {
            (None, text)
        };
        let (head, selector, sub) = match rest.find('[') {
            Some(open) => {
                let close = rest[open..]
                    .find(']')
                    .map(|c| open + c)
                    .ok_or_else(|| format!("{text:?}: a [ is not closed"))?;
                let filter = rest[open + 1..close].trim();
                let after = &rest[close + 1..];
                let sub = match after.strip_prefix('.') {
                    Some(sub) => Some(sub.to_string()),
                    None if after.is_empty() => None,
                    None => return Err(format!("{text:?}: unexpected {after:?} after ]")),
                };
                (&rest[..open], Some(parse_selector(filter, text)?), sub)
            }
            None => match rest.split_once('.') {
                Some((head, sub)) => (head, None, Some(sub.to_string())),
                None => (rest, None, None),
            },
        };
        if !is_name(head) {
            return Err(format!("{text:?}: {head:?} is not an attribute name"));
        }
        if let Some(sub) = &sub
            && !is_name(sub)
        {
            return Err(format!("{text:?}: {sub:?} is not a sub-attribute name"));
        }
        Ok(Self {
            schema,
            attribute: head.to_string(),
            selector,
            sub,
        })
    }
}

fn parse_selector(filter: &str, text: &str) -> Result<Selector, String> {
    let parts: Vec<&str> = filter.splitn(3, ' ').map(str::trim).collect();
    match parts.as_slice() {
        [attr, op, value] if attr.eq_ignore_ascii_case("type") && op.eq_ignore_ascii_case("eq") => {
            let value = value.trim_matches('"');
            if value.is_empty() {
                return Err(format!("{text:?}: the type is empty"));
            }
            Ok(Selector::Type(value.to_string()))
        }
        [attr, op, value]
            if attr.eq_ignore_ascii_case("primary")
                && op.eq_ignore_ascii_case("eq")
                && value.eq_ignore_ascii_case("true") =>
        {
            Ok(Selector::Primary)
        }
        _ => Err(format!(
            "{text:?}: only [type eq \"…\"] and [primary eq true] choose an element"
        )),
    }
}

/// What the target says about the attribute a path writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFacts {
    /// The type of the value written (the sub-attribute's, if any).
    pub kind: String,
    /// Whether the rule may write several values: a multi-valued attribute written
    /// without choosing an element (`emails.value`: one element per value).
    pub multi_valued: bool,
    pub required: bool,
    pub unique: bool,
    pub case_exact: bool,
}

/// Checks a path against the target's schemas; the facts of what it writes.
pub fn check(path: &TargetPath, discovery: &Discovery, core: &str) -> Result<TargetFacts, String> {
    // SCIM's common attributes (RFC 7643 §3.1) belong to every resource, not to the
    // User schema a target describes: they are not in its attribute list.
    if path.schema.is_none() {
        match path.attribute.to_ascii_lowercase().as_str() {
            "id" | "meta" => {
                return Err(format!(
                    "{} is set by the target itself (read-only); the legacy id goes to \
                     externalId, which Ferry fills from source_id unless a rule sets it",
                    path.attribute
                ));
            }
            "externalid" if path.sub.is_none() && path.selector.is_none() => {
                return Ok(TargetFacts {
                    kind: "string".into(),
                    multi_valued: false,
                    required: false,
                    unique: false,
                    case_exact: true,
                });
            }
            _ => {}
        }
    }
    let schema_id = path.schema.as_deref().unwrap_or(core);
    if path.schema.is_some()
        && !discovery
            .user_schemas()
            .iter()
            .any(|s| s.eq_ignore_ascii_case(schema_id))
    {
        return Err(format!("the target's User has no extension {schema_id}"));
    }
    let schema = discovery
        .schema(schema_id)
        .ok_or_else(|| format!("the target did not describe the schema {schema_id}"))?;
    let attribute = find(&schema.attributes, &path.attribute).ok_or_else(|| {
        format!(
            "{} has no attribute {:?}",
            schema.name_or_id(),
            path.attribute
        )
    })?;
    writable(attribute, &path.attribute)?;
    if path.selector.is_some() && !attribute.multi_valued {
        return Err(format!(
            "{} is not multi-valued: it has no elements to choose",
            attribute.name
        ));
    }
    let leaf = match &path.sub {
        Some(sub) => {
            let leaf = find(&attribute.sub_attributes, sub)
                .ok_or_else(|| format!("{} has no sub-attribute {sub:?}", attribute.name))?;
            writable(leaf, &format!("{}.{sub}", attribute.name))?;
            leaf
        }
        None => {
            if attribute.kind == "complex" {
                return Err(format!(
                    "{} is complex: name one of its sub-attributes ({})",
                    attribute.name,
                    attribute
                        .sub_attributes
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            attribute
        }
    };
    if let Some(Selector::Type(kind)) = &path.selector {
        let canonical = attribute
            .sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case("type"))
            .map(|a| &a.canonical_values);
        if let Some(values) = canonical
            && !values.is_empty()
            && !values.iter().any(|v| v.eq_ignore_ascii_case(kind))
        {
            return Err(format!(
                "{} types are {}; {kind:?} is not one of them",
                attribute.name,
                values.join(", ")
            ));
        }
    }
    Ok(TargetFacts {
        kind: leaf.kind.clone(),
        multi_valued: (attribute.multi_valued && path.selector.is_none()) || leaf.multi_valued,
        required: attribute.required,
        unique: leaf.uniqueness != "none" || attribute.uniqueness != "none" && path.sub.is_none(),
        case_exact: leaf.case_exact,
    })
}

fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

fn writable(attribute: &Attribute, shown: &str) -> Result<(), String> {
    if attribute.mutability.eq_ignore_ascii_case("readOnly") {
        Err(format!("{shown} is read-only: the target sets it itself"))
    } else {
        Ok(())
    }
}

trait Named {
    fn name_or_id(&self) -> &str;
}

impl Named for crate::scim::discovery::Schema {
    fn name_or_id(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// A target attribute the editor offers, with what it takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Offered {
    pub path: String,
    /// `string`, `boolean`, `dateTime`, … of the value written.
    pub kind: String,
    pub required: bool,
    pub multi_valued: bool,
}

/// Core User attributes offered before the target's schemas are known.
const CORE: [(&str, &str, bool); 18] = [
    ("userName", "string", true),
    ("externalId", "string", false),
    ("name.givenName", "string", false),
    ("name.familyName", "string", false),
    ("name.middleName", "string", false),
    ("name.formatted", "string", false),
    ("displayName", "string", false),
    ("nickName", "string", false),
    ("title", "string", false),
    ("preferredLanguage", "string", false),
    ("locale", "string", false),
    ("timezone", "string", false),
    ("active", "boolean", false),
    ("emails[primary eq true].value", "string", false),
    ("emails[type eq \"work\"].value", "string", false),
    ("emails[type eq \"home\"].value", "string", false),
    ("phoneNumbers[type eq \"mobile\"].value", "string", false),
    ("phoneNumbers[type eq \"work\"].value", "string", false),
];

/// The attribute paths a rule may write: every writable attribute of the target's
/// User schema and extensions (sub-attributes as `name.givenName`, multi-valued ones by
/// their canonical types and `primary`), or the core ones without discovery.
pub fn offered(discovery: Option<&Discovery>, core: &str) -> Vec<Offered> {
    let Some(discovery) = discovery else {
        return CORE
            .iter()
            .map(|(path, kind, required)| Offered {
                path: (*path).into(),
                kind: (*kind).into(),
                required: *required,
                multi_valued: path.contains('['),
            })
            .collect();
    };
    let mut out = Vec::new();
    let mut schemas = vec![core.to_string()];
    schemas.extend(
        discovery
            .user_schemas()
            .into_iter()
            .filter(|s| !s.eq_ignore_ascii_case(core))
            .map(str::to_string),
    );
    for id in schemas {
        let Some(schema) = discovery.schema(&id) else {
            continue;
        };
        let prefix = if id.eq_ignore_ascii_case(core) {
            String::new()
        } else {
            format!("{id}:")
        };
        for a in &schema.attributes {
            if a.mutability == "readOnly" || a.name == "id" || a.name == "schemas" {
                continue;
            }
            let offer = |path: String, leaf: &Attribute| Offered {
                path,
                kind: leaf.kind.clone(),
                required: a.required || leaf.required,
                multi_valued: a.multi_valued,
            };
            if a.sub_attributes.is_empty() {
                out.push(offer(format!("{prefix}{}", a.name), a));
                continue;
            }
            let writable = a
                .sub_attributes
                .iter()
                .filter(|s| s.mutability != "readOnly" && s.name != "type" && s.name != "primary");
            for sub in writable {
                if a.multi_valued {
                    let kinds = a
                        .sub_attributes
                        .iter()
                        .find(|s| s.name == "type")
                        .map(|t| t.canonical_values.clone())
                        .unwrap_or_default();
                    if a.sub_attributes.iter().any(|s| s.name == "primary") {
                        out.push(offer(
                            format!("{prefix}{}[primary eq true].{}", a.name, sub.name),
                            sub,
                        ));
                    }
                    for kind in kinds {
                        out.push(offer(
                            format!("{prefix}{}[type eq \"{kind}\"].{}", a.name, sub.name),
                            sub,
                        ));
                    }
                    out.push(offer(format!("{prefix}{}.{}", a.name, sub.name), sub));
                } else {
                    out.push(offer(format!("{prefix}{}.{}", a.name, sub.name), sub));
                }
            }
        }
    }
    out
}
