//! What Ferry learns from a target about itself (RFC 7643 §5–7): its limits and
//! features from `/ServiceProviderConfig`, its resource types and schemas (with their
//! extensions and attributes), and the step-by-step report of a connection test.
//! Parsing is lenient where real servers differ (numbers as strings, a bare array
//! instead of a list response) and precise in its errors where they break the protocol.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// RFC 7644 §3.7: the defaults WSO2 advertises, used when a target names no limits.
pub const DEFAULT_MAX_OPERATIONS: u32 = 1000;
pub const DEFAULT_MAX_PAYLOAD_SIZE: u64 = 1_048_576;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceProviderConfig {
    pub bulk_supported: bool,
    pub max_operations: u32,
    pub max_payload_size: u64,
    pub filter_supported: bool,
    pub filter_max_results: Option<u32>,
    pub patch_supported: bool,
    pub etag_supported: bool,
    pub sort_supported: bool,
    pub change_password_supported: bool,
    /// `type` of each advertised scheme (`oauthbearertoken`, `httpbasic`, …).
    pub authentication_schemes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceType {
    pub name: String,
    pub endpoint: String,
    pub schema: String,
    pub extensions: Vec<SchemaExtension>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaExtension {
    pub schema: String,
    pub required: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schema {
    pub id: String,
    pub name: String,
    pub attributes: Vec<Attribute>,
}

/// One attribute of a schema, with what the mapping editor checks rules against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attribute {
    pub name: String,
    /// `string`, `boolean`, `decimal`, `integer`, `dateTime`, `binary`, `reference`
    /// or `complex`.
    #[serde(rename = "type")]
    pub kind: String,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    /// `readOnly`, `readWrite`, `immutable` or `writeOnly`.
    pub mutability: String,
    /// `none`, `server` or `global`.
    pub uniqueness: String,
    pub canonical_values: Vec<String>,
    pub description: String,
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub sub_attributes: Vec<Attribute>,
}

/// Everything discovery found, stored with the target and shown on its page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discovery {
    pub config: ServiceProviderConfig,
    pub resource_types: Vec<ResourceType>,
    pub schemas: Vec<Schema>,
}

impl Discovery {
    pub fn schema(&self, id: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    /// The schema URNs a User may carry: its core schema and every extension.
    pub fn user_schemas(&self) -> Vec<&str> {
        self.resource_types
            .iter()
            .filter(|r| r.name.eq_ignore_ascii_case("User"))
            .flat_map(|r| {
                std::iter::once(r.schema.as_str())
                    .chain(r.extensions.iter().map(|e| e.schema.as_str()))
            })
            .collect()
    }

    /// The first attribute of a User's schemas that `wanted` picks, with its path: the
    /// bare name in the core schema, `urn:…:name` in an extension (as a PATCH names it).
    pub fn user_attribute(
        &self,
        wanted: impl Fn(&Attribute) -> bool,
    ) -> Option<(String, &Attribute)> {
        const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
        self.user_schemas().into_iter().find_map(|id| {
            let schema = self.schema(id)?;
            schema.attributes.iter().find(|a| wanted(a)).map(|a| {
                let path = if schema.id.eq_ignore_ascii_case(CORE) {
                    a.name.clone()
                } else {
                    format!("{}:{}", schema.id, a.name)
                };
                (path, a)
            })
        })
    }
}

/// Why a discovery document could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{document}: {reason}")]
pub struct DiscoveryError {
    pub document: &'static str,
    pub reason: String,
}

fn error(document: &'static str, reason: impl Into<String>) -> DiscoveryError {
    DiscoveryError {
        document,
        reason: reason.into(),
    }
}

fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or("").to_string()
}

/// Reads `/ServiceProviderConfig`. A bulk section without limits gets the defaults.
pub fn parse_service_provider_config(doc: &Value) -> Result<ServiceProviderConfig, DiscoveryError> {
    const DOC: &str = "ServiceProviderConfig";
    let object = doc
        .as_object()
        .ok_or_else(|| error(DOC, "the answer is not a JSON object"))?;
    let section = |name: &str| object.get(name).and_then(Value::as_object);
    let bulk = section("bulk");
    let filter = section("filter");
    let supported =
        |s: Option<&serde_json::Map<String, Value>>| flag(s.and_then(|s| s.get("supported")));
    if bulk.is_none() && filter.is_none() && section("patch").is_none() {
        return Err(error(
            DOC,
            "has none of bulk, filter or patch; is the base URL the SCIM root?",
        ));
    }
    let max_operations = number(bulk.and_then(|b| b.get("maxOperations")))
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_OPERATIONS);
    let max_payload_size = number(bulk.and_then(|b| b.get("maxPayloadSize")))
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_PAYLOAD_SIZE);
    let schemes = object
        .get("authenticationSchemes")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.get("type").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(ServiceProviderConfig {
        bulk_supported: supported(bulk),
        max_operations,
        max_payload_size,
        filter_supported: supported(filter),
        filter_max_results: number(filter.and_then(|f| f.get("maxResults")))
            .map(|n| n.min(u64::from(u32::MAX)) as u32),
        patch_supported: supported(section("patch")),
        etag_supported: supported(section("etag")),
        sort_supported: supported(section("sort")),
        change_password_supported: supported(section("changePassword")),
        authentication_schemes: schemes,
    })
}

/// The resources of a list response, or of a bare array (some servers answer so).
fn resources<'a>(doc: &'a Value, document: &'static str) -> Result<&'a [Value], DiscoveryError> {
    match doc {
        Value::Array(items) => Ok(items),
        Value::Object(object) => match object.get("Resources") {
            Some(Value::Array(items)) => Ok(items),
            None if object.get("totalResults").and_then(Value::as_u64) == Some(0) => Ok(&[]),
            _ => Err(error(document, "is not a list response (no \"Resources\")")),
        },
        _ => Err(error(document, "the answer is not JSON list or object")),
    }
}

pub fn parse_resource_types(doc: &Value) -> Result<Vec<ResourceType>, DiscoveryError> {
    const DOC: &str = "ResourceTypes";
    resources(doc, DOC)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = text(item.get("name"));
            let schema = text(item.get("schema"));
            if name.is_empty() || schema.is_empty() {
                return Err(error(
                    DOC,
                    format!("resource type {} has no name or schema", i + 1),
                ));
            }
            let extensions = item
                .get("schemaExtensions")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|e| SchemaExtension {
                            schema: text(e.get("schema")),
                            required: flag(e.get("required")),
                        })
                        .filter(|e| !e.schema.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            Ok(ResourceType {
                name,
                endpoint: text(item.get("endpoint")),
                schema,
                extensions,
            })
        })
        .collect()
}

pub fn parse_schemas(doc: &Value) -> Result<Vec<Schema>, DiscoveryError> {
    const DOC: &str = "Schemas";
    resources(doc, DOC)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let id = text(item.get("id"));
            if id.is_empty() {
                return Err(error(DOC, format!("schema {} has no id", i + 1)));
            }
            Ok(Schema {
                name: text(item.get("name")),
                attributes: attributes(item.get("attributes"), 0),
                id,
            })
        })
        .collect()
}

fn attributes(value: Option<&Value>, depth: usize) -> Vec<Attribute> {
    // RFC 7643 allows one level of sub-attributes; a deeper tree is cut, not followed.
    if depth > 2 {
        return Vec::new();
    }
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|a| {
                    let name = text(a.get("name"));
                    (!name.is_empty()).then(|| Attribute {
                        name,
                        kind: Some(text(a.get("type")))
                            .filter(|t| !t.is_empty())
                            .unwrap_or_else(|| "string".into()),
                        multi_valued: flag(a.get("multiValued")),
                        required: flag(a.get("required")),
                        case_exact: flag(a.get("caseExact")),
                        mutability: Some(text(a.get("mutability")))
                            .filter(|t| !t.is_empty())
                            .unwrap_or_else(|| "readWrite".into()),
                        uniqueness: Some(text(a.get("uniqueness")))
                            .filter(|t| !t.is_empty())
                            .unwrap_or_else(|| "none".into()),
                        canonical_values: a
                            .get("canonicalValues")
                            .and_then(Value::as_array)
                            .map(|v| {
                                v.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        description: text(a.get("description")),
                        sub_attributes: attributes(a.get("subAttributes"), depth + 1),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The steps of a connection test, in order; a failed step skips the ones after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TestStepKind {
    /// DNS, TCP and TLS: the target answers at all.
    Reach,
    /// The credentials are accepted (a token is issued for OAuth2).
    Authenticate,
    ServiceProviderConfig,
    ResourceTypes,
    Schemas,
}

impl TestStepKind {
    pub const ALL: [TestStepKind; 5] = [
        Self::Reach,
        Self::Authenticate,
        Self::ServiceProviderConfig,
        Self::ResourceTypes,
        Self::Schemas,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Reach => "Reachability and TLS",
            Self::Authenticate => "Authentication",
            Self::ServiceProviderConfig => "Service provider configuration",
            Self::ResourceTypes => "Resource types",
            Self::Schemas => "Schemas",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Failed,
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestStep {
    pub kind: TestStepKind,
    pub status: StepStatus,
    /// What was found, or what went wrong and what to check.
    pub detail: String,
    pub millis: u64,
}

/// The result of a connection test, kept with the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectionReport {
    pub tested_at: DateTime<Utc>,
    pub steps: Vec<TestStep>,
    pub discovery: Option<Discovery>,
}

impl ConnectionReport {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.status == StepStatus::Passed)
    }

    /// Builds a report from the steps run so far: the ones not reached are skipped.
    pub fn new(
        tested_at: DateTime<Utc>,
        mut steps: Vec<TestStep>,
        discovery: Option<Discovery>,
    ) -> Self {
        for kind in TestStepKind::ALL {
            if !steps.iter().any(|s| s.kind == kind) {
                steps.push(TestStep {
                    kind,
                    status: StepStatus::Skipped,
                    detail: "not run: an earlier step failed".into(),
                    millis: 0,
                });
            }
        }
        Self {
            tested_at,
            steps,
            discovery,
        }
    }
}
