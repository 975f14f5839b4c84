//! The use-cases of an organization's members: listing them, invitations and their
//! acceptance, roles, and disabling or enabling an account.

use super::*;

impl Ferry {
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

    pub(super) async fn member(&self, id: AccountId) -> Result<Account> {
        self.store
            .account(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("member".into()))
    }
}
