//! The use-cases of target connections: read them (secrets only as "set"), save them
//! (secrets sealed, kept when not re-entered), remove them, and test them, keeping the
//! report and what discovery found. Only owners and administrators touch targets.

use super::Ferry;
use crate::{
    DomainError, Result,
    accounts::Actor,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::ProjectId,
    roles::Permission,
    scim::target::{StoredTarget, TargetInput, TargetRole, TargetSecrets, TargetView},
};

impl Ferry {
    async fn may_manage_targets(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        Ok(())
    }

    async fn view(&self, stored: StoredTarget) -> Result<TargetView> {
        let connector = self.workers.targets.as_ref();
        let secrets = connector
            .open_secrets(stored.project_id, stored.role, &stored.sealed_secrets)
            .await?;
        Ok(TargetView::new(stored, &secrets))
    }

    /// The project's targets (production first).
    pub async fn targets(&self, actor: &Actor, project: ProjectId) -> Result<Vec<TargetView>> {
        self.may_manage_targets(actor, project).await?;
        let mut stored = self.store.targets(project).await?;
        stored.sort_by_key(|t| t.role != TargetRole::Production);
        let mut views = Vec::with_capacity(stored.len());
        for target in stored {
            views.push(self.view(target).await?);
        }
        Ok(views)
    }

    pub async fn target(
        &self,
        actor: &Actor,
        project: ProjectId,
        role: TargetRole,
    ) -> Result<TargetView> {
        self.may_manage_targets(actor, project).await?;
        let stored = self.stored_target(project, role).await?;
        self.view(stored).await
    }

    async fn stored_target(&self, project: ProjectId, role: TargetRole) -> Result<StoredTarget> {
        self.store.target(project, role).await?.ok_or_else(|| {
            DomainError::NotFound(format!("{} (none is set up)", role.label().to_lowercase()))
        })
    }

    /// Creates or changes a target. Secrets not given are kept; the audit entry says
    /// which were replaced, never their values.
    pub async fn save_target(
        &self,
        actor: &Actor,
        project: ProjectId,
        role: TargetRole,
        input: TargetInput,
    ) -> Result<TargetView> {
        let connector = self.workers.targets.as_ref();
        self.writable_project(actor, project).await?;
        self.may_manage_targets(actor, project).await?;
        let current = match self.store.target(project, role).await? {
            Some(stored) => {
                let secrets = connector
                    .open_secrets(project, role, &stored.sealed_secrets)
                    .await?;
                Some((stored.settings, secrets))
            }
            None => None,
        };
        let replaced_secret = input.secret.is_some();
        let replaced_headers = input.headers.is_some();
        let (settings, secrets) = input.validate(current.as_ref().map(|(s, x)| (s, x)))?;
        let sealed = connector.seal_secrets(project, role, &secrets).await?;
        let now = self.now();
        let mut detail = format!(
            "{}: {} ({})",
            role.as_str(),
            settings.base_url,
            settings.auth.kind()
        );
        if replaced_secret {
            detail.push_str(&format!(", new {}", settings.auth.secret_label()));
        }
        if replaced_headers {
            detail.push_str(", new extra headers");
        }
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::TargetSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(detail);
        self.store
            .put_target(project, role, &settings, &sealed, now, &audit)
            .await?;
        self.target(actor, project, role).await
    }

    pub async fn delete_target(
        &self,
        actor: &Actor,
        project: ProjectId,
        role: TargetRole,
    ) -> Result<()> {
        self.writable_project(actor, project).await?;
        self.may_manage_targets(actor, project).await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::TargetDeleted,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(role.as_str().to_string());
        if !self.store.delete_target(project, role, &audit).await? {
            return Err(DomainError::NotFound(format!(
                "{} (none is set up)",
                role.label().to_lowercase()
            )));
        }
        Ok(())
    }

    /// Tests the connection step by step and keeps the report with the target.
    pub async fn test_target(
        &self,
        actor: &Actor,
        project: ProjectId,
        role: TargetRole,
    ) -> Result<TargetView> {
        let connector = self.workers.targets.as_ref();
        self.writable_project(actor, project).await?;
        self.may_manage_targets(actor, project).await?;
        let stored = self.stored_target(project, role).await?;
        let secrets: TargetSecrets = connector
            .open_secrets(project, role, &stored.sealed_secrets)
            .await?;
        let report = connector
            .test_connection(&stored.settings, &secrets, self.now())
            .await;
        let summary = if report.passed() {
            match &report.discovery {
                Some(d) => format!(
                    "{}: passed; bulk {} (max {} operations, {} bytes)",
                    role.as_str(),
                    if d.config.bulk_supported {
                        "supported"
                    } else {
                        "not supported"
                    },
                    d.config.max_operations,
                    d.config.max_payload_size
                ),
                None => format!("{}: passed", role.as_str()),
            }
        } else {
            let failed = report
                .steps
                .iter()
                .find(|s| s.status == crate::scim::discovery::StepStatus::Failed)
                .map_or("a step", |s| s.kind.label());
            format!("{}: failed at {}", role.as_str(), failed.to_lowercase())
        };
        let audit = NewAuditEntry::by(
            actor,
            report.tested_at,
            AuditAction::TargetTested,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(summary);
        self.store
            .save_connection_report(project, role, &report, &audit)
            .await?;
        self.target(actor, project, role).await
    }
}
