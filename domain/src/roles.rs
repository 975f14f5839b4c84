//! Roles and the permission matrix: the single answer to "may this role do that?".

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a member of the organization may do (DESIGN §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Support staff: reviews the projects it is assigned to.
    Support,
    /// Administrator: projects, runs, API tokens, the audit log.
    Admin,
    /// Owner: everything, including managing members.
    Owner,
}

/// An action guarded by role. Every use-case names the permission it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// See projects (support staff: only those assigned to them).
    ViewProjects,
    /// Create, rename, archive projects and assign support staff.
    ManageProjects,
    /// Read the audit log.
    ViewAudit,
    /// Add members, change roles, disable accounts.
    ManageMembers,
    /// Create and revoke API tokens.
    ManageApiTokens,
    /// Approve a version of a project's migration plan.
    ApprovePlans,
    /// Set how long imported data is kept, and purge it.
    PurgeData,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::ViewProjects,
        Permission::ManageProjects,
        Permission::ViewAudit,
        Permission::ManageMembers,
        Permission::ManageApiTokens,
        Permission::ApprovePlans,
        Permission::PurgeData,
    ];

    /// Phrase completing "your role may not …".
    pub fn describe(self) -> &'static str {
        match self {
            Permission::ViewProjects => "view projects",
            Permission::ManageProjects => "manage projects",
            Permission::ViewAudit => "read the audit log",
            Permission::ManageMembers => "manage members",
            Permission::ManageApiTokens => "manage API tokens",
            Permission::ApprovePlans => "approve a migration plan",
            Permission::PurgeData => "purge a project's imported data",
        }
    }
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Support];

    /// The permission matrix.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => !matches!(permission, ManageMembers | ApprovePlans | PurgeData),
            Role::Support => matches!(permission, ViewProjects),
        }
    }

    /// True when this role sees every project; support staff see only their assignments.
    pub fn sees_all_projects(self) -> bool {
        !matches!(self, Role::Support)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Support => "support",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Administrator",
            Role::Support => "Support",
        }
    }

    pub fn parse(s: &str) -> crate::Result<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "support" => Ok(Role::Support),
            other => Err(crate::DomainError::invalid(
                "role",
                format!("unknown role {other:?}; expected owner, admin or support"),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_security_model() {
        use Permission::*;
        let expected = [
            (Role::Owner, [true, true, true, true, true, true]),
            (Role::Admin, [true, true, true, false, true, false]),
            (Role::Support, [true, false, false, false, false, false]),
        ];
        for (role, row) in expected {
            for (permission, allowed) in Permission::ALL.into_iter().zip(row) {
                assert_eq!(role.allows(permission), allowed, "{role} × {permission:?}");
            }
        }
        assert!(!Role::Support.sees_all_projects());
        assert!(Role::Admin.allows(ViewAudit));
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Support);
    }

    #[test]
    fn parse_reports_the_field() {
        assert_eq!(Role::parse(" Admin ").unwrap(), Role::Admin);
        assert_eq!(Role::parse("root").unwrap_err().field(), Some("role"));
    }
}
