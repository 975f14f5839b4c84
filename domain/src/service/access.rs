//! The use-cases of getting in: the first owner's setup with its one-time token, sign-in
//! (throttled, constant work for unknown accounts), sessions and API tokens as actors,
//! sign-out and password changes.

use super::*;

impl Ferry {
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

    pub(super) async fn start_session(
        &self,
        account: Account,
        origin: &RequestOrigin,
    ) -> Result<SignedIn> {
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
}
