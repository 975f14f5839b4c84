//! The use-cases of Ferry's foundation: setup, sign-in, sessions, members, projects,
//! API tokens and the audit log. Server functions and REST handlers call exactly one
//! of these methods each; the permission check happens here, once, for both.

use crate::{
    DomainError, Result,
    accounts::{
        Account, AccountStatus, Actor, Channel, NewAccount, RequestOrigin, check_new_password,
        normalize_display_name, normalize_email,
    },
    api_tokens::{
        ApiToken, IssuedApiToken, NewApiToken, TOKEN_PREFIX, effective_role, normalize_token_name,
    },
    assess::{
        AssessOptions, AssessmentStatus, AssessmentView, Check, Finding, Report,
        classify::DataClass, heatmap,
    },
    audit::{AuditAction, AuditPage, AuditQuery, NewAuditEntry, ObjectKind},
    ids::{AccountId, ApiTokenId, ProjectId, UploadId},
    pagination::{Page, PageRequest},
    ports::{AssessmentRunner, Clock, PasswordHasher, Secrets, Store},
    projects::{Project, ProjectChanges, ProjectDraft, ProjectFilter},
    roles::{Permission, Role},
    throttle::{ThrottlePolicy, ThrottleScope},
    uploads::{NewUpload, StoredError, Upload},
};
mod mappings;
mod plan;
mod runs;
mod targets;

pub use mappings::{MAX_RULES, MappingView};
pub use plan::{
    COUNT_SAMPLE, Estimate, ImpactView, PREVIEW_RECORDS, PlanView, Preview, PreviewRecord,
    RulePreview, SegmentEstimate, SegmentsView,
};
pub use runs::{Control, MAX_RECORDS_PAGE, RecordsPage, RunView, WindowView, advance};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Lifetimes and limits of the sign-in machinery.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub session_ttl: Duration,
    pub invite_ttl: Duration,
    pub throttle: ThrottlePolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            session_ttl: Duration::hours(12),
            invite_ttl: Duration::days(7),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// A new session: the token goes into an HTTP-only cookie and nowhere else.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub account: Account,
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A one-time link for a member to set their password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub account: Account,
    /// Goes into the link `/invite/{token}`; shown once to the owner.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

const WRONG_CREDENTIALS: &str = "e-mail address or password is wrong";

/// The application service. Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct Ferry {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn Secrets>,
    hasher: Arc<dyn PasswordHasher>,
    policy: Policy,
}

/// How long a setup token printed at start stays valid.
const SETUP_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

impl Ferry {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn Secrets>,
        hasher: Arc<dyn PasswordHasher>,
        policy: Policy,
    ) -> Self {
        Self {
            store,
            clock,
            secrets,
            hasher,
            policy,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    // ---- setup -------------------------------------------------------------------

    /// True until the first owner exists; until then every page leads to setup.
    pub async fn needs_setup(&self) -> Result<bool> {
        Ok(self.store.count_accounts().await? == 0)
    }

    /// On a fresh database, makes a one-time setup token for the operator to read from
    /// the server log. Returns `None` once an owner exists.
    pub async fn issue_setup_token(&self) -> Result<Option<String>> {
        if !self.needs_setup().await? {
            self.store.clear_setup_tokens().await?;
            return Ok(None);
        }
        // Only the token printed last is valid: each start prints a new one, and the
        // ones before it, perhaps in an old log file, no longer open the instance.
        self.store.clear_setup_tokens().await?;
        let token = self.secrets.new_token();
        self.store
            .add_setup_token(&self.secrets.hash_token(&token), self.now())
            .await?;
        Ok(Some(token))
    }

    /// Creates the owner account with the setup token (the one printed last, within a
    /// day of its printing), and signs the owner in.
    pub async fn complete_setup(
        &self,
        origin: &RequestOrigin,
        setup_token: &str,
        email: &str,
        display_name: &str,
        password: &str,
    ) -> Result<SignedIn> {
        let throttle_key = origin.address.clone().unwrap_or_default();
        self.check_throttle(ThrottleScope::Address, &throttle_key)
            .await?;
        if !self.needs_setup().await? {
            return Err(DomainError::Conflict(
                "Ferry is already set up; sign in instead".into(),
            ));
        }
        let token_ok = self
            .store
            .setup_token_exists(
                &self.secrets.hash_token(setup_token.trim()),
                self.now() - SETUP_TOKEN_LIFETIME,
            )
            .await?;
        if !token_ok {
            self.store
                .record_failure(ThrottleScope::Address, &throttle_key, self.now())
                .await?;
            return Err(DomainError::invalid(
                "setup_token",
                "this is not the setup token printed last in the server log (a token is valid for a day; restart Ferry for a new one)",
            ));
        }
        let email = normalize_email(email)?;
        let display_name = normalize_display_name(display_name)?;
        check_new_password(password, &email)?;
        let now = self.now();
        let account = NewAccount {
            id: AccountId(self.secrets.new_uuid()),
            email,
            display_name,
            role: Role::Owner,
            status: AccountStatus::Active,
            password_hash: Some(self.hasher.hash(password).await?),
            created_at: now,
        };
        let audit = NewAuditEntry::anonymous(
            origin.address.clone(),
            now,
            AuditAction::SetupCompleted,
            ObjectKind::Account,
            account.id,
        )
        .with_actor(account.id);
        let account = self.store.create_first_owner(&account, &audit).await?;
        self.store.clear_setup_tokens().await?;
        self.start_session(account, origin).await
    }

    // ---- sessions ----------------------------------------------------------------

    /// Signs in with e-mail and password, throttled per account and per address.
    pub async fn sign_in(
        &self,
        origin: &RequestOrigin,
        email: &str,
        password: &str,
    ) -> Result<SignedIn> {
        let account_key = email.trim().to_lowercase();
        let address_key = origin.address.clone().unwrap_or_default();
        self.check_throttle(ThrottleScope::Account, &account_key)
            .await?;
        self.check_throttle(ThrottleScope::Address, &address_key)
            .await?;
        if password.len() > crate::accounts::MAX_PASSWORD_BYTES {
            return Err(DomainError::Unauthenticated(WRONG_CREDENTIALS.into()));
        }
        // The attempt is charged before the password is checked, then the limits are
        // checked again with it counted: guesses sent in parallel all pass a check made
        // before any of them was counted. A success takes its charge back.
        let now = self.now();
        for (scope, key) in [
            (ThrottleScope::Account, &account_key),
            (ThrottleScope::Address, &address_key),
        ] {
            self.store.record_failure(scope, key, now).await?;
        }
        for (scope, key) in [
            (ThrottleScope::Account, &account_key),
            (ThrottleScope::Address, &address_key),
        ] {
            let stats = self
                .store
                .failures_since(scope, key, self.policy.throttle.window_start(now))
                .await?;
            // Counted with this attempt: over the limit, not at it, is refused.
            let before = crate::throttle::FailureStats {
                count: stats.count.saturating_sub(1),
                ..stats
            };
            if let Some(retry_after_secs) = self.policy.throttle.retry_after(scope, before, now) {
                return Err(DomainError::Throttled { retry_after_secs });
            }
        }
        let found = self.store.account_with_hash(&account_key).await?;
        let verified = match &found {
            Some((_, Some(hash))) => self.hasher.verify(password, hash).await?,
            _ => {
                self.hasher.verify_dummy(password).await;
                false
            }
        };
        if !verified {
            if let Some((account, _)) = &found {
                let audit = NewAuditEntry::anonymous(
                    origin.address.clone(),
                    now,
                    AuditAction::SignInFailed,
                    ObjectKind::Account,
                    account.id,
                );
                self.store.append_audit(&audit).await?;
            }
            return Err(DomainError::Unauthenticated(WRONG_CREDENTIALS.into()));
        }
        self.store
            .withdraw_failure(ThrottleScope::Address, &address_key, now)
            .await?;
        let Some((account, _)) = found else {
            return Err(DomainError::Unauthenticated(WRONG_CREDENTIALS.into()));
        };
        if account.status != AccountStatus::Active {
            return Err(DomainError::Unauthenticated(
                "this account is disabled; ask an owner to re-enable it".into(),
            ));
        }
        self.store
            .clear_failures(ThrottleScope::Account, &account_key)
            .await?;
        self.start_session(account, origin).await
    }

    async fn check_throttle(&self, scope: ThrottleScope, key: &str) -> Result<()> {
        let now = self.now();
        let stats = self
            .store
            .failures_since(scope, key, self.policy.throttle.window_start(now))
            .await?;
        match self.policy.throttle.retry_after(scope, stats, now) {
            Some(retry_after_secs) => Err(DomainError::Throttled { retry_after_secs }),
            None => Ok(()),
        }
    }

    async fn start_session(&self, account: Account, origin: &RequestOrigin) -> Result<SignedIn> {
        let token = self.secrets.new_token();
        let now = self.now();
        let expires_at = now + self.policy.session_ttl;
        let audit = NewAuditEntry::anonymous(
            origin.address.clone(),
            now,
            AuditAction::SignedIn,
            ObjectKind::Account,
            account.id,
        )
        .with_actor(account.id);
        self.store
            .create_session(
                &self.secrets.hash_token(&token),
                account.id,
                now,
                expires_at,
                &audit,
            )
            .await?;
        Ok(SignedIn {
            account,
            session_token: token,
            expires_at,
        })
    }

    /// The actor behind a session cookie, or `None` when the session is unknown, expired
    /// or its account is no longer active.
    pub async fn session_actor(
        &self,
        session_token: &str,
        address: Option<String>,
    ) -> Result<Option<Actor>> {
        let Some(session) = self
            .store
            .session(&self.secrets.hash_token(session_token))
            .await?
        else {
            return Ok(None);
        };
        if session.expires_at <= self.now() {
            return Ok(None);
        }
        let Some(account) = self.store.account(session.account_id).await? else {
            return Ok(None);
        };
        if account.status != AccountStatus::Active {
            return Ok(None);
        }
        Ok(Some(Actor {
            account_id: account.id,
            role: account.role,
            channel: Channel::Web,
            address,
        }))
    }

    pub async fn sign_out(&self, actor: &Actor, session_token: &str) -> Result<()> {
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::SignedOut,
            ObjectKind::Account,
            actor.account_id,
        );
        self.store
            .delete_session(&self.secrets.hash_token(session_token), Some(&audit))
            .await
    }

    /// The actor behind an API token (`Authorization: Bearer ferry_…`), or `None` when
    /// the token is unknown, revoked, or its creator is no longer active.
    pub async fn api_actor(&self, secret: &str, address: Option<String>) -> Result<Option<Actor>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let Some(grant) = self
            .store
            .api_token_grant(&self.secrets.hash_token(secret))
            .await?
        else {
            return Ok(None);
        };
        if grant.token.revoked_at.is_some() || grant.creator_status != AccountStatus::Active {
            return Ok(None);
        }
        let now = self.now();
        // One write a minute at most: usage is informative, not an access log.
        let stale = grant
            .token
            .last_used_at
            .is_none_or(|at| now - at > Duration::minutes(1));
        if stale {
            self.store.touch_api_token(grant.token.id, now).await?;
        }
        Ok(Some(Actor {
            account_id: grant.token.created_by,
            role: effective_role(grant.token.role, grant.creator_role),
            channel: Channel::Api(grant.token.id),
            address,
        }))
    }

    pub async fn whoami(&self, actor: &Actor) -> Result<Account> {
        self.store
            .account(actor.account_id)
            .await?
            .ok_or_else(|| DomainError::Unauthenticated("the account no longer exists".into()))
    }

    /// Changes the actor's own password and ends their other sessions.
    pub async fn change_password(
        &self,
        actor: &Actor,
        session_token: &str,
        current: &str,
        new: &str,
    ) -> Result<()> {
        let account = self.whoami(actor).await?;
        let hash = self
            .store
            .password_hash(account.id)
            .await?
            .unwrap_or_default();
        if !self.hasher.verify(current, &hash).await? {
            return Err(DomainError::invalid(
                "current_password",
                "this is not your current password",
            ));
        }
        check_new_password(new, &account.email)?;
        let new_hash = self.hasher.hash(new).await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::PasswordChanged,
            ObjectKind::Account,
            account.id,
        );
        self.store
            .set_password(account.id, &new_hash, &audit)
            .await?;
        self.store
            .delete_other_sessions(account.id, &self.secrets.hash_token(session_token))
            .await
    }

    // ---- members -----------------------------------------------------------------

    pub async fn list_members(&self, actor: &Actor, page: PageRequest) -> Result<Page<Account>> {
        actor.require(Permission::ManageMembers)?;
        self.store.list_accounts(page).await
    }

    /// Support members, for assigning them to projects.
    pub async fn support_members(&self, actor: &Actor) -> Result<Vec<Account>> {
        actor.require(Permission::ManageProjects)?;
        let page = self
            .store
            .list_accounts(PageRequest::new(None, Some(200)))
            .await?;
        Ok(page
            .items
            .into_iter()
            .filter(|a| a.role == Role::Support && a.status != AccountStatus::Disabled)
            .collect())
    }

    /// Adds a member who sets their own password through a one-time link.
    pub async fn invite_member(
        &self,
        actor: &Actor,
        email: &str,
        display_name: &str,
        role: &str,
    ) -> Result<Invitation> {
        actor.require(Permission::ManageMembers)?;
        let account = NewAccount {
            id: AccountId(self.secrets.new_uuid()),
            email: normalize_email(email)?,
            display_name: normalize_display_name(display_name)?,
            role: Role::parse(role)?,
            status: AccountStatus::Invited,
            password_hash: None,
            created_at: self.now(),
        };
        let audit = NewAuditEntry::by(
            actor,
            account.created_at,
            AuditAction::MemberInvited,
            ObjectKind::Account,
            account.id,
        )
        .detail(format!("{} as {}", account.email, account.role));
        let account = self.store.insert_account(&account, &audit).await?;
        self.new_invite(account).await
    }

    /// A fresh link for an invited member, or a password-reset link for an active one.
    pub async fn reissue_invite(&self, actor: &Actor, id: AccountId) -> Result<Invitation> {
        actor.require(Permission::ManageMembers)?;
        let account = self.member(id).await?;
        if account.status == AccountStatus::Disabled {
            return Err(DomainError::Conflict(
                "re-enable the member before sending a new link".into(),
            ));
        }
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::InviteReissued,
            ObjectKind::Account,
            account.id,
        )
        .detail(account.email.clone());
        self.store.append_audit(&audit).await?;
        self.new_invite(account).await
    }

    async fn new_invite(&self, account: Account) -> Result<Invitation> {
        let token = self.secrets.new_token();
        let expires_at = self.now() + self.policy.invite_ttl;
        self.store
            .put_invite(&self.secrets.hash_token(&token), account.id, expires_at)
            .await?;
        Ok(Invitation {
            account,
            token,
            expires_at,
        })
    }

    /// The account an invite link is for, so the page can greet the person.
    pub async fn invite_account(&self, token: &str) -> Result<Account> {
        let id = self
            .store
            .invite(&self.secrets.hash_token(token), self.now())
            .await?
            .ok_or_else(|| {
                DomainError::NotFound("invite link (it may have expired or been replaced)".into())
            })?;
        let account = self.member(id).await?;
        if account.status == AccountStatus::Disabled {
            return Err(DomainError::NotFound("invite link".into()));
        }
        Ok(account)
    }

    /// Sets the password through an invite link and signs the member in.
    pub async fn accept_invite(
        &self,
        origin: &RequestOrigin,
        token: &str,
        password: &str,
    ) -> Result<SignedIn> {
        let account = self.invite_account(token).await?;
        check_new_password(password, &account.email)?;
        let hash = self.hasher.hash(password).await?;
        let audit = NewAuditEntry::anonymous(
            origin.address.clone(),
            self.now(),
            AuditAction::InviteAccepted,
            ObjectKind::Account,
            account.id,
        )
        .with_actor(account.id);
        self.store.set_password(account.id, &hash, &audit).await?;
        self.store.delete_invites(account.id).await?;
        // A reset link ends the sessions opened with the old password.
        self.store.delete_other_sessions(account.id, "").await?;
        let account = self.member(account.id).await?;
        self.start_session(account, origin).await
    }

    pub async fn change_role(&self, actor: &Actor, id: AccountId, role: &str) -> Result<Account> {
        actor.require(Permission::ManageMembers)?;
        let role = Role::parse(role)?;
        let account = self.member(id).await?;
        if account.role == role {
            return Ok(account);
        }
        if account.role == Role::Owner {
            self.keep_an_owner(&account).await?;
        }
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::MemberRoleChanged,
            ObjectKind::Account,
            id,
        )
        .detail(format!("{}: {} → {role}", account.email, account.role));
        self.store.set_role(id, role, &audit).await?;
        self.member(id).await
    }

    pub async fn set_member_enabled(
        &self,
        actor: &Actor,
        id: AccountId,
        enabled: bool,
    ) -> Result<Account> {
        actor.require(Permission::ManageMembers)?;
        let account = self.member(id).await?;
        if !enabled && id == actor.account_id {
            return Err(DomainError::Conflict(
                "you cannot disable your own account".into(),
            ));
        }
        let (status, action) = match (enabled, &account) {
            (false, _) => (AccountStatus::Disabled, AuditAction::MemberDisabled),
            (true, a) if a.status != AccountStatus::Disabled => return Ok(account),
            (true, _) => {
                let has_password = self.store.password_hash(id).await?.is_some();
                let status = if has_password {
                    AccountStatus::Active
                } else {
                    AccountStatus::Invited
                };
                (status, AuditAction::MemberEnabled)
            }
        };
        if status == account.status {
            return Ok(account);
        }
        if !enabled && account.role == Role::Owner {
            self.keep_an_owner(&account).await?;
        }
        let audit = NewAuditEntry::by(actor, self.now(), action, ObjectKind::Account, id)
            .detail(account.email.clone());
        self.store.set_status(id, status, &audit).await?;
        self.member(id).await
    }

    /// Refuses a change that would leave Ferry without an active owner.
    async fn keep_an_owner(&self, owner: &Account) -> Result<()> {
        if owner.status == AccountStatus::Active && self.store.count_active_owners().await? <= 1 {
            return Err(DomainError::Conflict(
                "Ferry needs at least one active owner; make someone else owner first".into(),
            ));
        }
        Ok(())
    }

    async fn member(&self, id: AccountId) -> Result<Account> {
        self.store
            .account(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("member".into()))
    }

    // ---- projects ----------------------------------------------------------------

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
        let project = self.project(actor, id).await?;
        if project.archived {
            return Err(DomainError::Conflict(
                "the project is archived and read only; restore it first".into(),
            ));
        }
        Ok(())
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

    // ---- API tokens --------------------------------------------------------------

    pub async fn list_api_tokens(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<Page<ApiToken>> {
        actor.require(Permission::ManageApiTokens)?;
        self.store.list_api_tokens(page).await
    }

    /// Creates a token no stronger than its creator; the secret is returned only here.
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        role: &str,
    ) -> Result<IssuedApiToken> {
        actor.require(Permission::ManageApiTokens)?;
        let name = normalize_token_name(name)?;
        let role = Role::parse(role)?;
        if role > actor.role {
            return Err(DomainError::invalid(
                "role",
                format!("a token cannot have more power than you ({})", actor.role),
            ));
        }
        let secret = format!("{TOKEN_PREFIX}{}", self.secrets.new_token());
        let now = self.now();
        let token = NewApiToken {
            id: ApiTokenId(self.secrets.new_uuid()),
            name,
            hint: secret.chars().take(TOKEN_PREFIX.len() + 4).collect(),
            secret_hash: self.secrets.hash_token(&secret),
            role,
            created_by: actor.account_id,
            created_at: now,
        };
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::ApiTokenCreated,
            ObjectKind::ApiToken,
            token.id,
        )
        .detail(format!("{} ({role})", token.name));
        self.store.insert_api_token(&token, &audit).await?;
        let token = self
            .store
            .api_token(token.id)
            .await?
            .ok_or_else(|| DomainError::Internal("token vanished after insert".into()))?;
        Ok(IssuedApiToken { token, secret })
    }

    pub async fn revoke_api_token(&self, actor: &Actor, id: ApiTokenId) -> Result<ApiToken> {
        actor.require(Permission::ManageApiTokens)?;
        let token = self
            .store
            .api_token(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("API token".into()))?;
        if token.revoked_at.is_some() {
            return Ok(token);
        }
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::ApiTokenRevoked,
            ObjectKind::ApiToken,
            id,
        )
        .detail(token.name.clone());
        self.store.revoke_api_token(id, self.now(), &audit).await?;
        self.store
            .api_token(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("API token".into()))
    }

    // ---- uploads -----------------------------------------------------------------

    /// Checks, before any byte is stored, that the actor may upload to the project.
    pub async fn may_upload(&self, actor: &Actor, project: ProjectId) -> Result<Project> {
        actor.require(Permission::ManageProjects)?;
        let project = self.project(actor, project).await?;
        if project.archived {
            return Err(DomainError::Conflict(
                "the project is archived; restore it before uploading".into(),
            ));
        }
        Ok(project)
    }

    /// Records a stored upload, refusing a file the project already has.
    pub async fn record_upload(&self, actor: &Actor, upload: NewUpload) -> Result<Upload> {
        self.may_upload(actor, upload.project_id).await?;
        if let Some(earlier) = self
            .store
            .upload_by_sha(upload.project_id, &upload.sha256)
            .await?
        {
            return Err(DomainError::Conflict(format!(
                "this file was already uploaded as {:?} on {}",
                earlier.file_name,
                earlier.created_at.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        let audit = NewAuditEntry::by(
            actor,
            upload.created_at,
            AuditAction::UploadStored,
            ObjectKind::Upload,
            upload.id,
        )
        .in_project(upload.project_id)
        .detail(format!(
            "{} ({} bytes)",
            upload.file_name, upload.size_bytes
        ));
        self.store.insert_upload(&upload, &audit).await
    }

    /// Keeps a secret the project needs (sealed by the caller), for whoever may
    /// upload to it; the audit entry names its kind, never its value.
    pub async fn save_project_secret(
        &self,
        actor: &Actor,
        project: ProjectId,
        kind: &str,
        sealed: &[u8],
    ) -> Result<()> {
        self.writable_project(actor, project).await?;
        self.may_upload(actor, project).await?;
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::ProjectSecretSet,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(kind.to_string());
        self.store
            .put_project_secret(project, kind, sealed, now, &audit)
            .await
    }

    pub async fn list_uploads(
        &self,
        actor: &Actor,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<Upload>> {
        self.project(actor, project).await?;
        self.store.list_uploads(project, page).await
    }

    pub async fn upload(&self, actor: &Actor, id: UploadId) -> Result<Upload> {
        let upload = self
            .store
            .upload(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("upload".into()))?;
        self.project(actor, upload.project_id).await?;
        Ok(upload)
    }

    /// Checks that an upload may be read again (with another format chosen, or the
    /// parameters a format needs): not while it is being read.
    pub async fn may_read_again(&self, actor: &Actor, id: UploadId) -> Result<Upload> {
        let upload = self.upload(actor, id).await?;
        self.may_upload(actor, upload.project_id).await?;
        if upload.status == crate::uploads::UploadStatus::Parsing {
            return Err(DomainError::Conflict(
                "the upload is being read; wait until it finishes".into(),
            ));
        }
        Ok(upload)
    }

    pub async fn upload_errors(
        &self,
        actor: &Actor,
        id: UploadId,
        page: PageRequest,
    ) -> Result<Page<StoredError>> {
        self.upload(actor, id).await?;
        self.store.record_errors(id, page).await
    }

    // ---- assessment --------------------------------------------------------------

    /// Starts computing the project's assessment report in the background.
    pub async fn start_assessment(
        &self,
        actor: &Actor,
        project: ProjectId,
        options: AssessOptions,
        runner: &dyn AssessmentRunner,
    ) -> Result<()> {
        self.writable_project(actor, project).await?;
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let region = options.phone_region.as_deref().map(str::trim).unwrap_or("");
        if !region.is_empty()
            && (region.len() != 2 || !region.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(DomainError::invalid(
                "phone_region",
                "give a two-letter country code such as US or DE",
            ));
        }
        let options = AssessOptions {
            phone_region: (!region.is_empty()).then(|| region.to_ascii_uppercase()),
        };
        let total = self.store.count_records(project).await?;
        if total == 0 {
            return Err(DomainError::Conflict(
                "the project has no records yet; upload an export first".into(),
            ));
        }
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::AssessmentStarted,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("{total} records"));
        self.store
            .start_assessment(project, total, now, &audit)
            .await?;
        runner.spawn(project, options);
        Ok(())
    }

    /// The project's assessment as the actor may see it: examples masked, classes as
    /// set by administrators, the heatmap in `zone` (an IANA name; UTC by default).
    pub async fn assessment(
        &self,
        actor: &Actor,
        project: ProjectId,
        zone: Option<&str>,
        runner: &dyn AssessmentRunner,
    ) -> Result<Option<AssessmentView>> {
        self.project(actor, project).await?;
        let zone_name = zone
            .map(str::trim)
            .filter(|z| !z.is_empty())
            .unwrap_or("UTC");
        let tz: chrono_tz::Tz = zone_name.parse().map_err(|_| {
            DomainError::invalid("zone", format!("{zone_name:?} is not a time zone"))
        })?;
        let Some(row) = self.store.assessment(project).await? else {
            return Ok(None);
        };
        let classes = self.store.attribute_classes(project).await?;
        let report = match &row.sealed_report {
            Some(sealed) => Some(runner.open_report(project, sealed)?.with_classes(&classes)),
            None => None,
        };
        let heatmap = report
            .as_ref()
            .map(|r| {
                heatmap(&r.logins, tz)
                    .iter()
                    .map(|day| day.to_vec())
                    .collect()
            })
            .unwrap_or_default();
        let records_done = match row.status {
            AssessmentStatus::Running => runner.progress(project).unwrap_or(row.records_done),
            _ => row.records_done,
        };
        Ok(Some(AssessmentView {
            status: row.status,
            records_total: row.records_total,
            records_done,
            started_at: row.started_at,
            finished_at: row.finished_at,
            error: row.error,
            report: report.map(Report::masked),
            zone: tz.name().to_string(),
            heatmap,
            can_reveal: actor.role.allows(Permission::ManageProjects),
        }))
    }

    pub async fn assessment_findings(
        &self,
        actor: &Actor,
        project: ProjectId,
        check: Check,
        page: PageRequest,
    ) -> Result<Page<Finding>> {
        self.project(actor, project).await?;
        self.store.findings(project, check, page).await
    }

    /// Sets an attribute's class (or with `None` returns it to the automatic one).
    pub async fn set_attribute_class(
        &self,
        actor: &Actor,
        project: ProjectId,
        path: &str,
        class: Option<DataClass>,
    ) -> Result<()> {
        self.writable_project(actor, project).await?;
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let path = path.trim();
        if path.is_empty() || path.len() > 500 {
            return Err(DomainError::invalid("path", "name an attribute path"));
        }
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::AttributeClassSet,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{path}: {}",
            class.map_or("automatic", DataClass::as_str)
        ));
        self.store
            .set_attribute_class(project, path, class, now, &audit)
            .await
    }

    /// One example value, unmasked, for owners and administrators; the audit entry
    /// (naming the attribute, never the value) is written before it is returned.
    pub async fn reveal_example(
        &self,
        actor: &Actor,
        project: ProjectId,
        path: &str,
        index: usize,
        runner: &dyn AssessmentRunner,
    ) -> Result<String> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        let not_found = || DomainError::NotFound("example value".into());
        let sealed = self
            .store
            .assessment(project)
            .await?
            .and_then(|row| row.sealed_report)
            .ok_or_else(not_found)?;
        let classes = self.store.attribute_classes(project).await?;
        let report = runner.open_report(project, &sealed)?.with_classes(&classes);
        let value = report
            .example(path, index)
            .ok_or_else(not_found)?
            .to_string();
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::AssessmentValueRevealed,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("{path} example {}", index + 1));
        self.store.append_audit(&audit).await?;
        Ok(value)
    }

    // ---- housekeeping ------------------------------------------------------------

    /// Drops expired sessions and old failure counters; run periodically by the server.
    pub async fn housekeeping(&self) -> Result<u64> {
        let now = self.now();
        let sessions = self.store.purge_expired_sessions(now).await?;
        let failures = self
            .store
            .purge_failures_before(self.policy.throttle.window_start(now))
            .await?;
        Ok(sessions + failures)
    }
}
