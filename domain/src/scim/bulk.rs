//! Bulk requests (RFC 7644 §3.7): operations serialized once, packed into requests up
//! to both the target's `maxOperations` and `maxPayloadSize` (bytes of the request as
//! sent), and the answers read back and matched to operations by `bulkId`, never by
//! position.

use super::{
    outcome::{ScimFailure, status_code},
    urn,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

const ENVELOPE_HEAD: &[u8] =
    b"{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:BulkRequest\"],\"Operations\":[";
const ENVELOPE_TAIL: &[u8] = b"]}";

/// One bulk operation, serialized once so its size is known before it is packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub bulk_id: String,
    pub json: Vec<u8>,
}

/// A member of a group: a user created in the same request (by `bulkId`), or one that
/// already has its SCIM id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Member {
    BulkId(String),
    Id(String),
}

#[derive(Serialize)]
struct Op<'a, T: Serialize> {
    method: &'a str,
    path: &'a str,
    #[serde(rename = "bulkId")]
    bulk_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
}

impl Operation {
    fn new<T: Serialize>(method: &str, path: &str, bulk_id: &str, data: Option<&T>) -> Self {
        let op = Op {
            method,
            path,
            bulk_id,
            data,
        };
        Self {
            bulk_id: bulk_id.to_string(),
            // Serializing plain maps and strings cannot fail.
            json: serde_json::to_vec(&op).unwrap_or_default(),
        }
    }

    /// Creates a user; `user` is its SCIM representation.
    pub fn create_user(bulk_id: &str, user: &Value) -> Self {
        Self::new("POST", "/Users", bulk_id, Some(user))
    }

    /// Replaces the user with SCIM id `id`.
    pub fn replace_user(bulk_id: &str, id: &str, user: &Value) -> Self {
        Self::new("PUT", &format!("/Users/{id}"), bulk_id, Some(user))
    }

    pub fn delete(bulk_id: &str, resource_path: &str) -> Self {
        Self::new::<Value>("DELETE", resource_path, bulk_id, None)
    }

    /// Creates a group with its members; `bulkId:` references appear only here, inside
    /// `members`, which is the one place WSO2 resolves them.
    pub fn create_group(bulk_id: &str, display_name: &str, members: &[Member]) -> Self {
        let members: Vec<Value> = members
            .iter()
            .map(|m| match m {
                Member::BulkId(b) => serde_json::json!({ "value": format!("bulkId:{b}") }),
                Member::Id(id) => serde_json::json!({ "value": id }),
            })
            .collect();
        let data = serde_json::json!({
            "schemas": [urn::GROUP],
            "displayName": display_name,
            "members": members,
        });
        Self::new("POST", "/Groups", bulk_id, Some(&data))
    }
}

/// One request ready to send: its body and the operations it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkRequest {
    pub body: Vec<u8>,
    pub bulk_ids: Vec<String>,
}

/// Packs operations into requests within the target's limits, keeping their order.
#[derive(Debug)]
pub struct Packer {
    max_operations: usize,
    max_bytes: usize,
    body: Vec<u8>,
    bulk_ids: Vec<String>,
}

impl Packer {
    pub fn new(max_operations: u32, max_payload_size: u64) -> Self {
        let max_bytes = usize::try_from(max_payload_size).unwrap_or(usize::MAX);
        Self {
            max_operations: (max_operations as usize).max(1),
            max_bytes,
            body: Vec::new(),
            bulk_ids: Vec::new(),
        }
    }

    /// The largest operation that fits a request on its own.
    pub fn max_operation_bytes(&self) -> usize {
        self.max_bytes
            .saturating_sub(ENVELOPE_HEAD.len() + ENVELOPE_TAIL.len())
    }

    /// Whether an operation of `bytes` would join the request being filled (rather
    /// than close it).
    pub fn fits(&self, bytes: usize) -> bool {
        self.bulk_ids.is_empty()
            || (self.bulk_ids.len() < self.max_operations
                && self.body.len() + 1 + bytes + ENVELOPE_TAIL.len() <= self.max_bytes)
    }

    /// The operations in the request being filled.
    pub fn bulk_ids(&self) -> &[String] {
        &self.bulk_ids
    }

    /// Adds an operation. Returns the full request it closed, if it did not fit the
    /// current one; `Err` gives back an operation too large for any request.
    pub fn push(&mut self, op: Operation) -> Result<Option<BulkRequest>, Operation> {
        if op.json.len() > self.max_operation_bytes() {
            return Err(op);
        }
        let closed = if self.fits(op.json.len()) {
            None
        } else {
            self.take()
        };
        if self.bulk_ids.is_empty() {
            self.body.extend_from_slice(ENVELOPE_HEAD);
        } else {
            self.body.push(b',');
        }
        self.body.extend_from_slice(&op.json);
        self.bulk_ids.push(op.bulk_id);
        Ok(closed)
    }

    /// The request being filled, if it holds any operation.
    pub fn take(&mut self) -> Option<BulkRequest> {
        if self.bulk_ids.is_empty() {
            return None;
        }
        let mut body = std::mem::take(&mut self.body);
        body.extend_from_slice(ENVELOPE_TAIL);
        Some(BulkRequest {
            body,
            bulk_ids: std::mem::take(&mut self.bulk_ids),
        })
    }

    pub fn len(&self) -> usize {
        self.bulk_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bulk_ids.is_empty()
    }
}

/// What the target said about one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// 2xx: the resource's SCIM id (from `response.id` or the `location`), when given.
    Done {
        status: u16,
        id: Option<String>,
    },
    Failed(ScimFailure),
}

/// Reads a bulk answer into results by `bulkId`. Operations the answer does not
/// mention are absent (the target may have stopped early under `failOnErrors`).
pub fn parse_response(body: &[u8]) -> Result<HashMap<String, OpResult>, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("the bulk answer is not JSON: {e}"))?;
    let operations = doc
        .get("Operations")
        .and_then(Value::as_array)
        .ok_or("the bulk answer has no \"Operations\" list")?;
    let mut results = HashMap::with_capacity(operations.len());
    for op in operations {
        let Some(bulk_id) = op.get("bulkId").and_then(Value::as_str) else {
            continue;
        };
        let response = op.get("response");
        let status = op
            .get("status")
            .and_then(status_code)
            .or_else(|| response.and_then(|r| r.get("status")).and_then(status_code));
        let Some(status) = status else {
            results.insert(
                bulk_id.to_string(),
                OpResult::Failed(ScimFailure::new(
                    super::outcome::ErrorClass::Protocol,
                    None,
                    "the bulk answer gave this operation no status",
                )),
            );
            continue;
        };
        let result = if (200..300).contains(&status) {
            let id = response
                .and_then(|r| r.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    op.get("location")
                        .and_then(Value::as_str)
                        .and_then(id_from_location)
                });
            OpResult::Done { status, id }
        } else {
            let scim_type = response
                .and_then(|r| r.get("scimType"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let detail = response
                .and_then(|r| r.get("detail"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            OpResult::Failed(ScimFailure::from_parts(status, scim_type, detail))
        };
        results.insert(bulk_id.to_string(), result);
    }
    Ok(results)
}

/// The last path user type of a resource location: its SCIM id.
pub fn id_from_location(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?;
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
