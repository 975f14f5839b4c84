//! The use-cases of uploads: the checks before a file is stored, recording it, the
//! project's kept secrets (Firebase parameters), listing, reading again and errors.

use super::*;

impl Ferry {
    /// Checks, before any byte is stored, that the actor may upload to the project.
    pub async fn may_upload(&self, actor: &Actor, project: ProjectId) -> Result<Project> {
        actor.require(Permission::ManageProjects)?;
        let project = self.project(actor, project).await?;
        Self::refuse_if_closed(&project)?;
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

    /// Removes an upload (a file that could not be read, or the wrong export) with the
    /// users only it delivered, audited. Not while it is being read, nor while a run of
    /// the project is active when it takes users with it. The caller deletes the file.
    pub async fn remove_upload(&self, actor: &Actor, id: UploadId) -> Result<Upload> {
        let upload = self.may_read_again(actor, id).await?;
        self.writable_project(actor, upload.project_id).await?;
        if upload.rows_ok > 0 {
            self.no_active_run(upload.project_id).await?;
        }
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::UploadRemoved,
            ObjectKind::Upload,
            upload.id,
        )
        .in_project(upload.project_id)
        .detail(format!("{} ({})", upload.file_name, upload.status.as_str()));
        self.store.delete_upload(id, &audit).await?;
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
}
