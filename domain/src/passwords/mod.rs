//! Password credentials carried over from a legacy identity provider: typed values with
//! their parameters, read from the forms exports use (modular crypt and PHC strings,
//! LDAP `{SCHEME}` values, Keycloak's JSON, Firebase's scrypt, salted digests), and,
//! with the `verify` feature, checked against a password at first sign-in.
//!
//! A credential is a secret: its `Debug` shows the algorithm only, and errors never
//! quote the stored value.

mod bytes;
mod parse;
#[cfg(feature = "verify")]
mod verify;

pub use parse::{CredentialError, Encoding, firebase, keycloak, named, parse, salted_digest};

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Digest {
    pub fn name(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha1 => "sha1",
            Digest::Sha256 => "sha256",
            Digest::Sha512 => "sha512",
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Digest::Md5 => 16,
            Digest::Sha1 => 20,
            Digest::Sha256 => 32,
            Digest::Sha512 => 64,
        }
    }

    pub fn parse(name: &str) -> Option<Digest> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "md5" => Some(Digest::Md5),
            "sha1" => Some(Digest::Sha1),
            "sha256" => Some(Digest::Sha256),
            "sha512" => Some(Digest::Sha512),
            _ => None,
        }
    }
}

/// Where a salted digest puts the salt relative to the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaltPosition {
    Prefix,
    Suffix,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Argon2Variant {
    Argon2id,
    Argon2i,
    Argon2d,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CryptVariant {
    /// `$1$`, FreeBSD's MD5-crypt.
    Md5,
    /// `$5$`, SHA-256-crypt.
    Sha256,
    /// `$6$`, SHA-512-crypt.
    Sha512,
}

/// A Firebase project's scrypt parameters, as `firebase auth:export` users need them
/// (entered once per project; Firebase shows them under Authentication → Users).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirebaseParams {
    #[serde(with = "bytes")]
    pub signer_key: Vec<u8>,
    #[serde(with = "bytes")]
    pub salt_separator: Vec<u8>,
    pub rounds: u32,
    pub mem_cost: u32,
}

impl fmt::Debug for FirebaseParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FirebaseParams(rounds {}, mem_cost {})",
            self.rounds, self.mem_cost
        )
    }
}

/// A password credential from an export.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// `$2a$`, `$2b$`, `$2y$` (the whole modular string).
    Bcrypt { hash: String },
    /// A PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
    Argon2 { variant: Argon2Variant, phc: String },
    Pbkdf2 {
        digest: Digest,
        iterations: u32,
        #[serde(with = "bytes")]
        salt: Vec<u8>,
        #[serde(with = "bytes")]
        hash: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        #[serde(with = "bytes")]
        salt: Vec<u8>,
        #[serde(with = "bytes")]
        hash: Vec<u8>,
    },
    /// Firebase's modified scrypt: the hash is the project's signer key encrypted with
    /// AES-256-CTR under a key derived by scrypt from the password and salt.
    FirebaseScrypt {
        #[serde(with = "bytes")]
        salt: Vec<u8>,
        #[serde(with = "bytes")]
        hash: Vec<u8>,
        params: FirebaseParams,
    },
    /// A plain or salted digest (LDAP `{SHA}`, `{SSHA}`, `{MD5}`, `{SMD5}`, … and the
    /// salted SHA/MD5 hashes of custom databases). An empty salt means unsalted.
    Digest {
        digest: Digest,
        #[serde(with = "bytes")]
        salt: Vec<u8>,
        position: SaltPosition,
        #[serde(with = "bytes")]
        hash: Vec<u8>,
    },
    /// crypt(3): `$1$`, `$5$`, `$6$` (the whole modular string).
    Crypt { variant: CryptVariant, hash: String },
    /// A credential the export held in a form Ferry cannot use (an unknown scheme, a
    /// malformed value). The user is imported all the same; this verifies nothing and
    /// says why, so the assessment can count such users and a forced reset can reach
    /// them. The reason never quotes the stored value.
    Unusable { reason: String },
}

impl Credential {
    /// The algorithm's name, as the assessment report counts it.
    pub fn algorithm(&self) -> String {
        match self {
            Credential::Bcrypt { .. } => "bcrypt".into(),
            Credential::Argon2 { variant, .. } => match variant {
                Argon2Variant::Argon2id => "argon2id".into(),
                Argon2Variant::Argon2i => "argon2i".into(),
                Argon2Variant::Argon2d => "argon2d".into(),
            },
            Credential::Pbkdf2 { digest, .. } => format!("pbkdf2-{}", digest.name()),
            Credential::Scrypt { .. } => "scrypt".into(),
            Credential::FirebaseScrypt { .. } => "firebase-scrypt".into(),
            Credential::Digest { digest, salt, .. } if salt.is_empty() => digest.name().into(),
            Credential::Digest { digest, .. } => format!("salted-{}", digest.name()),
            Credential::Crypt { variant, .. } => match variant {
                CryptVariant::Md5 => "md5-crypt".into(),
                CryptVariant::Sha256 => "sha256-crypt".into(),
                CryptVariant::Sha512 => "sha512-crypt".into(),
            },
            Credential::Unusable { .. } => "unusable".into(),
        }
    }

    /// A credential from an export's text, or an unusable one saying why: a user is
    /// never refused for the form of its password hash.
    pub fn or_unusable(read: Result<Credential, CredentialError>) -> Credential {
        read.unwrap_or_else(|e| Credential::Unusable {
            reason: e.to_string(),
        })
    }

    pub fn is_usable(&self) -> bool {
        !matches!(self, Credential::Unusable { .. })
    }

    /// The cost parameters, for the assessment report (never salt or hash).
    pub fn parameters(&self) -> String {
        match self {
            Credential::Bcrypt { hash } => format!("cost {}", hash.get(4..6).unwrap_or("?")),
            Credential::Argon2 { phc, .. } => phc
                .split('$')
                .find(|part| part.starts_with("m="))
                .unwrap_or("")
                .to_string(),
            Credential::Pbkdf2 {
                iterations, hash, ..
            } => {
                format!("{iterations} iterations, {} bytes", hash.len())
            }
            Credential::Scrypt { log_n, r, p, .. } => format!("N=2^{log_n}, r={r}, p={p}"),
            Credential::FirebaseScrypt { params, .. } => {
                format!("rounds {}, mem_cost {}", params.rounds, params.mem_cost)
            }
            Credential::Digest { salt, position, .. } if !salt.is_empty() => {
                format!("{} byte salt, {position:?}", salt.len()).to_lowercase()
            }
            Credential::Digest { .. } => "unsalted".into(),
            Credential::Crypt { hash, .. } => hash
                .split('$')
                .find_map(|p| p.strip_prefix("rounds="))
                .map(|r| format!("{r} rounds"))
                .unwrap_or_else(|| "default rounds".into()),
            Credential::Unusable { reason } => reason.clone(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({}, ***)", self.algorithm())
    }
}

#[cfg(test)]
mod tests;
