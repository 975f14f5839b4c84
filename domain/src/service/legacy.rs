//! The use-cases of the legacy identity provider's connection (owners and
//! administrators): see it, save it (its secret sealed, and kept only for the method
//! and address it was entered for), test it with a made-up user, remove it; and the
//! live check the verification service makes through it for a user without a hash.

use super::{
    Ferry,
    passwords::{SERVICE_FRESH, cached, keep},
};
use crate::{
    DomainError, Result,
    accounts::Actor,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::ProjectId,
    legacy::{
        LegacyInput, LegacyLogin, LegacyOutcome, LegacyTest, LegacyView, SecretChange, StoredLegacy,
    },
    password_service::{Reason, Secret},
};

impl Ferry {
    /// The project's connection, if one is set (never its secret).
    pub async fn legacy_connection(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<Option<LegacyView>> {
        self.may_manage_passwords(actor, project).await?;
        Ok(self
            .store
            .legacy_connection(project)
            .await?
            .as_ref()
            .map(LegacyView::from))
    }

    /// Creates or changes the connection. The audit entry names the method and the
    /// address, and whether the secret was replaced or removed, never the secret.
    pub async fn save_legacy_connection(
        &self,
        actor: &Actor,
        project: ProjectId,
        input: LegacyInput,
    ) -> Result<LegacyView> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let current = self.store.legacy_connection(project).await?;
        let (settings, change) = input.validate(current.as_ref())?;
        let (sealed, said) = match change {
            SecretChange::Keep => (current.and_then(|c| c.sealed_secret), ""),
            SecretChange::Remove => (None, ", secret removed"),
            SecretChange::Set(secret) => (
                Some(
                    self.workers
                        .passwords
                        .seal_legacy_secret(project, &secret)
                        .await?,
                ),
                ", new secret",
            ),
        };
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::LegacyConnectionSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "{} at {}{said}",
            settings.method(),
            settings.destination()
        ));
        self.store
            .put_legacy_connection(project, &settings, sealed.as_deref(), now, &audit)
            .await?;
        self.forget_legacy(project);
        self.legacy_view(project).await
    }

    /// Removes the connection; removing none is no error (and leaves no audit entry).
    pub async fn delete_legacy_connection(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::LegacyConnectionDeleted,
            ObjectKind::Project,
            project,
        )
        .in_project(project);
        self.store.delete_legacy_connection(project, &audit).await?;
        self.forget_legacy(project);
        Ok(())
    }

    /// Asks the provider about a made-up user and password: a working connection
    /// refuses them. One that accepts them would accept any password, and fails.
    pub async fn test_legacy_connection(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<LegacyView> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let stored = self.stored_legacy(project).await?;
        let secret = self.legacy_secret(project, &stored).await?;
        let outcome = self
            .workers
            .passwords
            .probe_legacy(&stored.settings, secret)
            .await;
        let (ok, message) = match outcome {
            LegacyOutcome::Invalid => (
                true,
                format!(
                    "{} answered and refused a made-up user and password, as it should",
                    stored.settings.destination()
                ),
            ),
            LegacyOutcome::Valid => (
                false,
                "the provider accepted a made-up user and password: it would accept any \
                 password, so Ferry will not use it"
                    .to_string(),
            ),
            LegacyOutcome::Unavailable(why) => (false, why),
        };
        let now = self.now();
        let test = LegacyTest {
            at: now,
            ok,
            message: message.clone(),
        };
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::LegacyConnectionTested,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(if ok {
            "passed".into()
        } else {
            format!("failed: {message}")
        });
        self.store.set_legacy_test(project, &test, &audit).await?;
        self.forget_legacy(project);
        self.legacy_view(project).await
    }

    async fn stored_legacy(&self, project: ProjectId) -> Result<StoredLegacy> {
        self.store
            .legacy_connection(project)
            .await?
            .ok_or_else(|| DomainError::NotFound("legacy connection (none is set up)".into()))
    }

    async fn legacy_view(&self, project: ProjectId) -> Result<LegacyView> {
        Ok(LegacyView::from(&self.stored_legacy(project).await?))
    }

    async fn legacy_secret(
        &self,
        project: ProjectId,
        stored: &StoredLegacy,
    ) -> Result<Option<Secret>> {
        match stored.sealed_secret.as_deref() {
            Some(sealed) => Ok(Some(
                self.workers
                    .passwords
                    .open_legacy_secret(project, sealed)
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// The connection the service uses, from this instance's short-lived copy.
    pub(super) async fn legacy_for(&self, project: ProjectId) -> Result<Option<StoredLegacy>> {
        let now = self.now();
        let cache = &self.password_cache.legacy;
        let stored = match cached(cache, &project, now, SERVICE_FRESH) {
            Some(stored) => stored,
            None => {
                let stored = self.store.legacy_connection(project).await?;
                keep(cache, project, now, stored.clone());
                stored
            }
        };
        Ok(stored)
    }

    fn forget_legacy(&self, project: ProjectId) {
        let mut map = self
            .password_cache
            .legacy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&project);
    }

    /// Asks the legacy provider; why it gave no answer goes to `notes`.
    pub(super) async fn check_live(
        &self,
        project: ProjectId,
        legacy: &StoredLegacy,
        login: &LegacyLogin,
        password: Secret,
        notes: &mut Vec<DomainError>,
    ) -> Result<Reason> {
        let secret = self.legacy_secret(project, legacy).await?;
        let outcome = self
            .workers
            .passwords
            .check_legacy(&legacy.settings, secret, login, password)
            .await;
        Ok(match outcome {
            None => Reason::Busy,
            Some(LegacyOutcome::Valid) => Reason::Success,
            Some(LegacyOutcome::Invalid) => Reason::WrongPassword,
            Some(LegacyOutcome::Unavailable(why)) => {
                notes.push(DomainError::Internal(format!(
                    "the legacy identity provider ({}): {why}",
                    legacy.settings.method()
                )));
                Reason::LegacyUnavailable
            }
        })
    }
}
