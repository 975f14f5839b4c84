//! SCIM 2.0 targets (RFC 7643, RFC 7644): a project's connection settings, what
//! discovery learns from the target, how bulk requests are packed and their answers
//! matched, and how every answer is classified into an outcome.

pub mod bulk;
pub mod discovery;
pub mod outcome;
pub mod target;

#[cfg(test)]
mod tests;

/// The schema URNs Ferry writes or reads by name.
pub mod urn {
    pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
    pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    pub const WSO2_USER: &str = "urn:scim:wso2:schema";
    pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
}
