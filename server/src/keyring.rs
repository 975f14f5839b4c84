//! The project keys: every project's data is sealed under a random key of its own,
//! kept sealed by the server's key, so a purge destroys one key instead of hunting down
//! every copy of every value. Keys are kept in memory for a minute at a time, so a key
//! destroyed by another instance stops working here within that minute.

use crate::vault::Vault;
use chrono::Utc;
use domain::{
    DomainError,
    ids::{ProjectId, UploadId},
    ports::{DataKeys, Store},
    retention::StoredKey,
};
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

/// Each project's vault with when its key was read.
type Cache = HashMap<ProjectId, (Instant, Arc<Vault>)>;

/// How long a key read from the database is used before it is read again.
const KEY_TTL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Keyring {
    master: Vault,
    /// Where project keys are kept; without it every project uses the server's key
    /// (tools and tests that seal nothing of a project's).
    store: Option<Arc<dyn Store>>,
    uploads: PathBuf,
    cache: Arc<RwLock<Cache>>,
}

fn wrap_context(project: ProjectId) -> String {
    format!("project key:{project}")
}

fn report_context(project: ProjectId) -> String {
    format!("kept report:{project}")
}

fn purged() -> DomainError {
    DomainError::Conflict("the project's data was purged; its key no longer exists".into())
}

impl Keyring {
    pub fn new(master: Vault, store: Arc<dyn Store>, uploads: PathBuf) -> Self {
        Self {
            master,
            store: Some(store),
            uploads,
            cache: Arc::default(),
        }
    }

    /// A keyring without a store: every project's data under the server's key.
    pub fn server_only(master: Vault) -> Self {
        Self {
            master,
            store: None,
            uploads: PathBuf::new(),
            cache: Arc::default(),
        }
    }

    /// The server's own vault: access-token signatures and search digests.
    pub fn master(&self) -> &Vault {
        &self.master
    }

    /// The vault of `project`'s data, making its key on first use.
    pub async fn vault(&self, project: ProjectId) -> domain::Result<Arc<Vault>> {
        if let Some((at, vault)) = self.cached(project)
            && at.elapsed() < KEY_TTL
        {
            return Ok(vault);
        }
        let Some(store) = &self.store else {
            return Ok(Arc::new(self.master.clone()));
        };
        let stored = match store.project_key(project).await? {
            StoredKey::None => {
                let key = crate::security::random_bytes::<32>();
                let wrapped = self.master.seal(&key, wrap_context(project).as_bytes());
                store
                    .insert_project_key(project, &wrapped, Utc::now())
                    .await?
            }
            stored => stored,
        };
        let vault = match stored {
            StoredKey::Server => Arc::new(self.master.clone()),
            StoredKey::Own(wrapped) => {
                let key = self
                    .master
                    .open(&wrapped, wrap_context(project).as_bytes())
                    .map_err(|e| {
                        DomainError::Internal(format!("project {project}'s key unreadable: {e}"))
                    })?;
                let key: [u8; 32] = key.as_slice().try_into().map_err(|_| {
                    DomainError::Internal(format!("project {project}'s key has a wrong length"))
                })?;
                Arc::new(Vault::new(&key))
            }
            StoredKey::Destroyed | StoredKey::None => {
                self.forget(project);
                return Err(purged());
            }
        };
        #[allow(clippy::expect_used)]
        self.cache
            .write()
            .expect("key cache lock")
            .insert(project, (Instant::now(), vault.clone()));
        Ok(vault)
    }

    fn cached(&self, project: ProjectId) -> Option<(Instant, Arc<Vault>)> {
        #[allow(clippy::expect_used)]
        self.cache
            .read()
            .expect("key cache lock")
            .get(&project)
            .cloned()
    }

    pub fn forget(&self, project: ProjectId) {
        #[allow(clippy::expect_used)]
        self.cache.write().expect("key cache lock").remove(&project);
    }

    fn remove_file(&self, upload: UploadId) {
        let path = crate::ingest::upload_path(&self.uploads, upload);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // The file is sealed under a key that no longer exists: unreadable even if it
            // stays, but say so.
            Err(e) => tracing::warn!(upload = %upload, "cannot remove a purged upload's file: {e}"),
        }
    }
}

#[async_trait::async_trait]
impl DataKeys for Keyring {
    fn seal_kept_report(&self, project: ProjectId, json: &[u8]) -> Vec<u8> {
        self.master.seal(json, report_context(project).as_bytes())
    }

    fn open_kept_report(&self, project: ProjectId, sealed: &[u8]) -> domain::Result<Vec<u8>> {
        self.master
            .open(sealed, report_context(project).as_bytes())
            .map_err(|e| DomainError::Internal(format!("kept report unreadable: {e}")))
    }

    async fn purged(&self, project: ProjectId, uploads: &[UploadId]) {
        self.forget(project);
        for upload in uploads {
            self.remove_file(*upload);
        }
    }

    async fn upload_purged(&self, upload: UploadId) {
        self.remove_file(upload);
    }
}
