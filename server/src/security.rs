//! The server's implementations of the domain's security ports: the OS random source,
//! SHA-256 for high-entropy tokens, argon2id for passwords, the system clock, and the
//! secret key file.

use argon2::{
    Argon2, PasswordHash, PasswordVerifier,
    password_hash::{PasswordHasher as _, SaltString},
};
use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    ports::{Clock, PasswordHasher, Secrets},
};
use sha2::{Digest, Sha256};
use std::{fmt, io::Write, path::Path, sync::Arc};

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing means the machine cannot run anything safely.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

pub struct OsSecrets;

impl Secrets for OsSecrets {
    fn new_token(&self) -> String {
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    }

    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }

    fn hash_token(&self, token: &str) -> String {
        let digest = Sha256::digest(token.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// argon2id with the crate's defaults (19 MiB, 2 passes), run on the blocking pool so
/// a burst of sign-ins cannot stall request handling, and at most one per core at a
/// time: the blocking pool grows to hundreds of threads, and as many anonymous
/// sign-in attempts at 19 MiB each would exhaust memory. The rest wait their turn.
pub struct Argon2Hasher {
    dummy_hash: String,
    turns: Arc<tokio::sync::Semaphore>,
}

impl Argon2Hasher {
    pub fn new() -> anyhow::Result<Self> {
        let dummy_hash = hash_now("ferry-timing-equalizer")?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            dummy_hash,
            turns: Arc::new(tokio::sync::Semaphore::new(cores)),
        })
    }

    /// Runs one hashing run on the blocking pool once a turn is free.
    async fn in_turn<T: Send + 'static>(
        &self,
        run: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| DomainError::Internal(format!("hashing turns: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let out = run();
            drop(turn);
            out
        })
        .await
        .map_err(|e| DomainError::Internal(format!("hash task: {e}")))
    }
}

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| DomainError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DomainError::Internal(format!("argon2: {e}")))
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_string();
        self.in_turn(move || hash_now(&password)).await?
    }

    async fn verify(&self, password: &str, hash: &str) -> Result<bool> {
        let (password, hash) = (password.to_string(), hash.to_string());
        self.in_turn(move || verify_now(&password, &hash)).await
    }

    async fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy_hash).await;
    }
}

/// The server's 32-byte secret key. Later stages encrypt target credentials and uploaded
/// exports under it (AES-256-GCM). Its `Debug` never shows the bytes.
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Reads the key file, or creates it with mode 0600 when it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if path.exists() {
            let text = std::fs::read_to_string(path)?;
            let bytes = URL_SAFE_NO_PAD
                .decode(text.trim())
                .map_err(|e| anyhow::anyhow!("{}: not a base64 key: {e}", path.display()))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{}: the key must be 32 bytes", path.display()))?;
            check_permissions(path)?;
            return Ok(Self(key));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let key = random_bytes::<32>();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        writeln!(file, "{}", URL_SAFE_NO_PAD.encode(key))?;
        tracing::info!(path = %path.display(), "created a new secret key file");
        Ok(Self(key))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the secret key file is readable by others; run chmod 600 on it");
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secret.key");
        let created = SecretKey::load_or_create(&path).unwrap();
        let loaded = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(created.bytes(), loaded.bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{created:?}"), "SecretKey(***)");
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, "too-short").unwrap();
        assert!(SecretKey::load_or_create(&path).is_err());
    }

    #[tokio::test]
    async fn argon2id_hashes_verify() {
        let hasher = Argon2Hasher::new().unwrap();
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse battery", &hash).await.unwrap());
        assert!(!hasher.verify("wrong", &hash).await.unwrap());
        assert!(!hasher.verify("x", "not a hash").await.unwrap());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = OsSecrets.new_token();
        assert_ne!(a, OsSecrets.new_token());
        assert_eq!(a.len(), 43);
        assert_eq!(OsSecrets.hash_token(&a).len(), 64);
        assert_eq!(OsSecrets.hash_token(&a), OsSecrets.hash_token(&a));
    }
}
