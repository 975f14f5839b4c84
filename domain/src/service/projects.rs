//! The use-cases of projects: listing, creating, changing and archiving them, the
//! support staff assigned to each, and the audit log.

use super::*;

impl Ferry {
    pub async fn list_projects(
        &self,
        actor: &Actor,
        filter: ProjectFilter,
        page: PageRequest,
    ) -> Result<Page<Project>> {
        actor.require(Permission::ViewProjects)?;
        let visible_to = (!actor.role.sees_all_projects()).then_some(actor.account_id);
        self.store.list_projects(filter, visible_to, page).await
    }

    /// A project the actor may see; support staff get `NotFound` for projects they are
    /// not assigned to, so the list of projects does not leak.
    pub async fn project(&self, actor: &Actor, id: ProjectId) -> Result<Project> {
        actor.require(Permission::ViewProjects)?;
        let not_found = || DomainError::NotFound("project".into());
        let project = self.store.project(id).await?.ok_or_else(not_found)?;
        if !actor.role.sees_all_projects() && !self.store.is_assigned(id, actor.account_id).await? {
            return Err(not_found());
        }
        Ok(project)
    }

    /// The project, refused (409) while it is archived: an archived project is read
    /// only until it is restored. Stopping a run stays possible.
    pub(crate) async fn writable_project(&self, actor: &Actor, id: ProjectId) -> Result<()> {
        // Whoever may not change projects at all hears so from the use-case itself.
        if actor.require(Permission::ManageProjects).is_err() {
            return Ok(());
        }
        Self::refuse_if_closed(&self.project(actor, id).await?)
    }

    pub async fn create_project(&self, actor: &Actor, draft: ProjectDraft) -> Result<Project> {
        actor.require(Permission::ManageProjects)?;
        let now = self.now();
        let project = Project {
            id: ProjectId(self.secrets.new_uuid()),
            name: draft.name,
            source_kind: draft.source_kind,
            description: draft.description,
            archived: false,
            created_at: now,
            updated_at: now,
            purged_at: None,
        };
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::ProjectCreated,
            ObjectKind::Project,
            project.id,
        )
        .in_project(project.id)
        .detail(project.name.clone());
        self.store.insert_project(&project, &audit).await?;
        Ok(project)
    }

    /// Edits a project; fields not given keep their value.
    pub async fn update_project(
        &self,
        actor: &Actor,
        id: ProjectId,
        changes: ProjectChanges,
    ) -> Result<Project> {
        actor.require(Permission::ManageProjects)?;
        let before = self.project(actor, id).await?;
        if before.archived {
            return Err(DomainError::Conflict(
                "the project is archived; restore it before editing".into(),
            ));
        }
        let draft = changes.apply_to(&before)?;
        let now = self.now();
        let detail = if before.name == draft.name {
            draft.name.clone()
        } else {
            format!("{} → {}", before.name, draft.name)
        };
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::ProjectUpdated,
            ObjectKind::Project,
            id,
        )
        .in_project(id)
        .detail(detail);
        self.store.update_project(id, &draft, now, &audit).await?;
        self.project(actor, id).await
    }

    pub async fn set_project_archived(
        &self,
        actor: &Actor,
        id: ProjectId,
        archived: bool,
    ) -> Result<Project> {
        actor.require(Permission::ManageProjects)?;
        let project = self.project(actor, id).await?;
        if project.archived == archived {
            return Ok(project);
        }
        let action = if archived {
            AuditAction::ProjectArchived
        } else {
            AuditAction::ProjectRestored
        };
        let now = self.now();
        let audit = NewAuditEntry::by(actor, now, action, ObjectKind::Project, id)
            .in_project(id)
            .detail(project.name.clone());
        self.store.set_archived(id, archived, now, &audit).await?;
        self.project(actor, id).await
    }

    pub async fn project_support(&self, actor: &Actor, id: ProjectId) -> Result<Vec<Account>> {
        self.project(actor, id).await?;
        self.store.project_support(id).await
    }

    pub async fn assign_support(
        &self,
        actor: &Actor,
        project: ProjectId,
        account: AccountId,
    ) -> Result<()> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let member = self.member(account).await?;
        if member.role != Role::Support {
            return Err(DomainError::invalid(
                "account",
                "only support members are assigned; owners and admins see every project",
            ));
        }
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::SupportAssigned,
            ObjectKind::Account,
            account,
        )
        .in_project(project)
        .detail(member.email);
        self.store.assign_support(project, account, &audit).await
    }

    pub async fn unassign_support(
        &self,
        actor: &Actor,
        project: ProjectId,
        account: AccountId,
    ) -> Result<()> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let member = self.member(account).await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::SupportUnassigned,
            ObjectKind::Account,
            account,
        )
        .in_project(project)
        .detail(member.email);
        self.store.unassign_support(project, account, &audit).await
    }

    // ---- audit -------------------------------------------------------------------

    pub async fn audit_page(&self, actor: &Actor, query: AuditQuery) -> Result<AuditPage> {
        actor.require(Permission::ViewAudit)?;
        self.store.audit_page(query).await
    }
}
