//! The server's password work for the verification service: access tokens signed with
//! a key derived from the server key (so every instance sharing the key accepts them),
//! and password checks on a bounded pool — at most one hash per core at a time and a
//! bounded queue behind them, so a flood of logins costs neither all the memory (an
//! argon2 or scrypt hash can take tens of megabytes) nor the request threads.

use crate::{keyring::Keyring, legacy::LegacyClient};
use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use domain::{
    DomainError, Result,
    ids::ProjectId,
    legacy::{LegacyLogin, LegacyOutcome, LegacySettings},
    password_service::{Secret, TOKEN_PREFIX, TokenClaims},
    passwords::Credential,
    ports::PasswordWork,
};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// How a login's context id begins.
const CONTEXT_PREFIX: &str = "ctx_";

/// Checks waiting for a core beyond which a login is answered "try again" at once.
pub const MAX_WAITING_CHECKS: usize = 512;

#[derive(Clone)]
pub struct PasswordWorker {
    keys: Keyring,
    /// One permit per core: the checks that run.
    running: Arc<Semaphore>,
    /// The checks that run or wait.
    admitted: Arc<Semaphore>,
    legacy: LegacyClient,
}

impl PasswordWorker {
    pub fn new(keys: Keyring) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            keys,
            running: Arc::new(Semaphore::new(cores)),
            admitted: Arc::new(Semaphore::new(cores + MAX_WAITING_CHECKS)),
            legacy: LegacyClient::new(),
        }
    }

    /// What a context id's signature covers: its purpose (so no access token is a
    /// context id, nor the reverse), the project, the nonce and the expiry.
    fn context_payload(project: ProjectId, body: &str) -> Vec<u8> {
        format!("password-context:{}:{body}", project.0).into_bytes()
    }

    fn legacy_context(project: ProjectId) -> Vec<u8> {
        format!("legacy-connection:{}", project.0).into_bytes()
    }
}

#[async_trait]
impl PasswordWork for PasswordWorker {
    fn sign_token(&self, claims: &TokenClaims) -> String {
        // Claims are three numbers and a UUID: serializing them cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(&payload);
        let signature = URL_SAFE_NO_PAD.encode(self.keys.master().sign(body.as_bytes()));
        format!("{TOKEN_PREFIX}{body}.{signature}")
    }

    fn check_token(&self, token: &str) -> Option<TokenClaims> {
        let rest = token.strip_prefix(TOKEN_PREFIX)?;
        let (body, signature) = rest.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !self
            .keys
            .master()
            .verify_signature(body.as_bytes(), &signature)
        {
            return None;
        }
        let payload = URL_SAFE_NO_PAD.decode(body).ok()?;
        serde_json::from_slice(&payload).ok()
    }

    fn context_id(&self, project: ProjectId, nonce: &str, expires_at: i64) -> String {
        let body = format!("{nonce}.{expires_at}");
        let signature = self
            .keys
            .master()
            .sign(&Self::context_payload(project, &body));
        format!(
            "{CONTEXT_PREFIX}{body}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    fn context_expiry(&self, project: ProjectId, context_id: &str) -> Option<i64> {
        let rest = context_id.strip_prefix(CONTEXT_PREFIX)?;
        let (body, signature) = rest.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !self
            .keys
            .master()
            .verify_signature(&Self::context_payload(project, body), &signature)
        {
            return None;
        }
        body.rsplit_once('.')?.1.parse().ok()
    }

    async fn check_credential(
        &self,
        credential: Credential,
        password: Secret,
    ) -> Result<Option<bool>> {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            return Ok(None);
        };
        let _turn = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| DomainError::Internal(format!("the password pool closed: {e}")))?;
        tokio::task::spawn_blocking(move || credential.verify(password.expose()))
            .await
            .map(Some)
            .map_err(|e| DomainError::Internal(format!("a password check stopped: {e}")))
    }

    async fn seal_legacy_secret(&self, project: ProjectId, secret: &str) -> Result<Vec<u8>> {
        Ok(self
            .keys
            .vault(project)
            .await?
            .seal(secret.as_bytes(), &Self::legacy_context(project)))
    }

    async fn open_legacy_secret(&self, project: ProjectId, sealed: &[u8]) -> Result<Secret> {
        let plain = self
            .keys
            .vault(project)
            .await?
            .open(sealed, &Self::legacy_context(project))
            .map_err(|_| {
                DomainError::Internal(
                    "the legacy connection's secret cannot be opened with this server key".into(),
                )
            })?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| {
            DomainError::Internal("the legacy connection's secret is unreadable".into())
        })
    }

    async fn check_legacy(
        &self,
        settings: &LegacySettings,
        secret: Option<Secret>,
        login: &LegacyLogin,
        password: Secret,
    ) -> Option<LegacyOutcome> {
        self.legacy
            .check(settings, secret.as_ref(), login, &password)
            .await
    }

    async fn probe_legacy(
        &self,
        settings: &LegacySettings,
        secret: Option<Secret>,
    ) -> LegacyOutcome {
        self.legacy.probe(settings, secret.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_claims_and_refuse_any_change() {
        let worker =
            PasswordWorker::new(Keyring::server_only(crate::vault::Vault::new(&[7u8; 32])));
        let claims = TokenClaims {
            p: uuid::Uuid::nil(),
            g: 3,
            e: 1_900_000_000,
        };
        let token = worker.sign_token(&claims);
        assert_eq!(worker.check_token(&token), Some(claims.clone()));
        // Another server key, a changed body, a cut signature: refused.
        let other = PasswordWorker::new(Keyring::server_only(crate::vault::Vault::new(&[8u8; 32])));
        assert_eq!(other.check_token(&token), None);
        let forged = TokenClaims { g: 4, ..claims };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let signature = token.rsplit_once('.').unwrap().1;
        assert_eq!(
            worker.check_token(&format!("{TOKEN_PREFIX}{body}.{signature}")),
            None
        );
        assert_eq!(worker.check_token(&token[..token.len() - 2]), None);
        assert_eq!(worker.check_token("fat.x"), None);
    }
}
