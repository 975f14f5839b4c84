//! The use-cases of API tokens: listing, creating (the secret shown once) and revoking
//! them.

use super::*;

impl Ferry {
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
}
