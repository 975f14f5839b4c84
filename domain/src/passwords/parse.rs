//! Reading credentials from the text forms exports carry them in.

use super::{Argon2Variant, Credential, CryptVariant, Digest, FirebaseParams, SaltPosition};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD},
};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// Bounds on cost parameters: a hostile export must not turn first sign-in into a
/// denial of service.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_SCRYPT_LOG_N: u8 = 20;
const MAX_SCRYPT_R: u32 = 32;
const MAX_SCRYPT_P: u32 = 16;
const MAX_ARGON2_MEMORY_KIB: u32 = 1 << 20;
const MAX_ARGON2_ITERATIONS: u32 = 64;

/// Why a stored credential could not be read. The messages name the algorithm and the
/// part that is wrong, never the stored value itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// `scheme` is set only for a scheme Ferry knows by name but does not read (an
    /// LDAP `{CLEARTEXT}`, say); a value without a known scheme may be a plain-text
    /// password, so nothing of it is named.
    #[error("unrecognized password hash format{}", scheme.map(|s| format!(" ({s} is not a scheme Ferry reads)")).unwrap_or_default())]
    Unrecognized { scheme: Option<&'static str> },
    #[error("{algorithm} hash: {reason}")]
    Malformed {
        algorithm: &'static str,
        reason: String,
    },
}

fn malformed(algorithm: &'static str, reason: impl Into<String>) -> CredentialError {
    CredentialError::Malformed {
        algorithm,
        reason: reason.into(),
    }
}

/// Decodes base64 in any of the alphabets hashes use: standard, without padding, and
/// passlib's "adapted" one (`.` for `+`).
fn b64(algorithm: &'static str, what: &str, text: &str) -> Result<Vec<u8>, CredentialError> {
    let text = text.trim();
    // Copied only in the rare alphabet that needs a character changed.
    let cleaned = if text.contains('.') {
        Cow::Owned(text.replace('.', "+"))
    } else {
        Cow::Borrowed(text)
    };
    STANDARD_NO_PAD
        .decode(cleaned.trim_end_matches('=').as_bytes())
        .map_err(|_| malformed(algorithm, format!("the {what} is not valid base64")))
}

/// Reads a modular-crypt, PHC or LDAP `{SCHEME}` string.
pub fn parse(stored: &str) -> Result<Credential, CredentialError> {
    let stored = stored.trim();
    if let Some(rest) = stored.strip_prefix('{') {
        return ldap(rest);
    }
    let mut fields = stored.split('$');
    let (Some(""), Some(id)) = (fields.next(), fields.next()) else {
        return Err(unrecognized(stored));
    };
    match id {
        "2a" | "2b" | "2y" | "2x" => bcrypt(stored),
        "argon2id" | "argon2i" | "argon2d" => argon2(id, stored),
        "pbkdf2" | "pbkdf2-sha1" | "pbkdf2-sha256" | "pbkdf2-sha512" => pbkdf2(id, stored),
        "scrypt" => scrypt(stored),
        "1" => crypt(CryptVariant::Md5, stored),
        "5" => crypt(CryptVariant::Sha256, stored),
        "6" => crypt(CryptVariant::Sha512, stored),
        _ => Err(unrecognized(stored)),
    }
}

fn unrecognized(_stored: &str) -> CredentialError {
    // Nothing of the value is named: a value without a known scheme identifier may be
    // a plain-text password, and none of it may reach an error list.
    CredentialError::Unrecognized { scheme: None }
}

/// LDAP schemes that exist but hold nothing Ferry can verify against.
const LDAP_UNREAD: &[&str] = &[
    "CLEARTEXT",
    "PLAIN",
    "SASL",
    "KERBEROS",
    "K5KEY",
    "NS-MTA-MD5",
];

/// Algorithms exports name that Ferry knows by name but does not read. Only these
/// are named in an error: any other text in an algorithm field is an export's value,
/// and none is ever quoted.
const KNOWN_UNREAD: &[&str] = &[
    "md4",
    "sha224",
    "sha384",
    "sha3-256",
    "sha3-512",
    "ripemd160",
    "whirlpool",
    "hmac",
    "phpass",
    "crypt",
    "des",
    "bcrypt-sha256",
    "pbkdf2-md5",
    "ntlm",
    "nthash",
    "lm",
    "mssql",
    "mysql",
    "postgres-md5",
    "oracle",
    "django",
    "drupal",
    "wordpress",
    "joomla",
    "sha1-crypt",
    "sun-md5",
    "bsdi-crypt",
    "scrypt",
    "argon2",
    "pbkdf2",
    "bcrypt",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "ldap",
    "plain",
    "cleartext",
    "none",
];

/// A name an export gives (of an algorithm, an encoding), fit to appear in an error:
/// `algorithm "md4"` for a name Ferry knows, else `an algorithm Ferry does not know`.
pub fn named(what: &str, name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match KNOWN_UNREAD.iter().find(|known| **known == lower) {
        Some(known) => format!("{what} {known:?}"),
        None => format!("an {what} Ferry does not know"),
    }
}

fn bcrypt(stored: &str) -> Result<Credential, CredentialError> {
    let valid = stored.len() == 60
        && stored
            .get(4..6)
            .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
        && stored.as_bytes().get(6) == Some(&b'$');
    if !valid {
        return Err(malformed(
            "bcrypt",
            "expected $2b$NN$ and 53 characters of salt and hash",
        ));
    }
    Ok(Credential::Bcrypt {
        hash: stored.to_string(),
    })
}

fn argon2(id: &str, stored: &str) -> Result<Credential, CredentialError> {
    let variant = match id {
        "argon2id" => Argon2Variant::Argon2id,
        "argon2i" => Argon2Variant::Argon2i,
        _ => Argon2Variant::Argon2d,
    };
    let parts: Vec<&str> = stored.split('$').collect();
    let has_params = parts.iter().any(|p| p.starts_with("m="));
    if parts.len() < 5 || !has_params {
        return Err(malformed(
            "argon2",
            "expected $argon2id$v=19$m=…,t=…,p=…$salt$hash",
        ));
    }
    // The cost is bounded as Keycloak's is: an export must not make verifying costly.
    let params = parts
        .iter()
        .find(|p| p.starts_with("m="))
        .copied()
        .unwrap_or("");
    for param in params.split(',') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let max = match key {
            "m" => MAX_ARGON2_MEMORY_KIB,
            "t" => MAX_ARGON2_ITERATIONS,
            "p" => 16,
            _ => continue,
        };
        if !value.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n)) {
            return Err(malformed(
                "argon2",
                format!("the parameter {key} is not a number in 1..={max}"),
            ));
        }
    }
    Ok(Credential::Argon2 {
        variant,
        phc: stored.to_string(),
    })
}

fn pbkdf2(id: &str, stored: &str) -> Result<Credential, CredentialError> {
    const NAME: &str = "pbkdf2";
    let digest = match id {
        "pbkdf2" | "pbkdf2-sha1" => Digest::Sha1,
        "pbkdf2-sha256" => Digest::Sha256,
        _ => Digest::Sha512,
    };
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, _, params, salt, hash] = parts.as_slice() else {
        return Err(malformed(
            NAME,
            "expected $pbkdf2-sha256$ITERATIONS$salt$hash",
        ));
    };
    // PHC writes `i=27500,l=32`; passlib writes the bare iteration count.
    let iterations = params
        .split(',')
        .find_map(|p| p.strip_prefix("i="))
        .unwrap_or(params)
        .parse::<u32>()
        .map_err(|_| malformed(NAME, "the iteration count is not a number"))?;
    pbkdf2_credential(
        digest,
        iterations,
        b64(NAME, "salt", salt)?,
        b64(NAME, "hash", hash)?,
    )
}

fn pbkdf2_credential(
    digest: Digest,
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
) -> Result<Credential, CredentialError> {
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Err(malformed(
            "pbkdf2",
            format!("{iterations} iterations is outside 1..={MAX_PBKDF2_ITERATIONS}"),
        ));
    }
    if hash.is_empty() || hash.len() > 256 {
        return Err(malformed("pbkdf2", "the derived key length is implausible"));
    }
    Ok(Credential::Pbkdf2 {
        digest,
        iterations,
        salt,
        hash,
    })
}

fn scrypt(stored: &str) -> Result<Credential, CredentialError> {
    const NAME: &str = "scrypt";
    let parts: Vec<&str> = stored.split('$').collect();
    let [_, _, params, salt, hash] = parts.as_slice() else {
        return Err(malformed(NAME, "expected $scrypt$ln=…,r=…,p=…$salt$hash"));
    };
    let mut log_n = None;
    let (mut r, mut p) = (8u32, 1u32);
    for param in params.split(',') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let number = value
            .parse::<u32>()
            .map_err(|_| malformed(NAME, format!("parameter {key} is not a number")))?;
        match key {
            "ln" => log_n = u8::try_from(number).ok(),
            "r" => r = number,
            "p" => p = number,
            _ => {}
        }
    }
    let log_n = log_n.ok_or_else(|| malformed(NAME, "the ln parameter is missing"))?;
    if log_n == 0
        || log_n > MAX_SCRYPT_LOG_N
        || r == 0
        || r > MAX_SCRYPT_R
        || p == 0
        || p > MAX_SCRYPT_P
    {
        return Err(malformed(
            NAME,
            format!("cost ln={log_n}, r={r}, p={p} is out of bounds"),
        ));
    }
    Ok(Credential::Scrypt {
        log_n,
        r,
        p,
        salt: b64(NAME, "salt", salt)?,
        hash: b64(NAME, "hash", hash)?,
    })
}

fn crypt(variant: CryptVariant, stored: &str) -> Result<Credential, CredentialError> {
    let name = match variant {
        CryptVariant::Md5 => "md5-crypt",
        CryptVariant::Sha256 => "sha256-crypt",
        CryptVariant::Sha512 => "sha512-crypt",
    };
    let fields = stored.split('$').count();
    if !(4..=5).contains(&fields) || stored.ends_with('$') {
        return Err(malformed(name, "expected $N$salt$hash"));
    }
    Ok(Credential::Crypt {
        variant,
        hash: stored.to_string(),
    })
}

fn ldap(rest: &str) -> Result<Credential, CredentialError> {
    let Some((scheme, payload)) = rest.split_once('}') else {
        return Err(unrecognized(rest));
    };
    let scheme = scheme.to_ascii_uppercase();
    if scheme == "CRYPT" {
        return parse(payload);
    }
    let (digest, salted) = match scheme.as_str() {
        "SHA" => (Digest::Sha1, false),
        "SSHA" => (Digest::Sha1, true),
        "SHA256" => (Digest::Sha256, false),
        "SSHA256" => (Digest::Sha256, true),
        "SHA512" => (Digest::Sha512, false),
        "SSHA512" => (Digest::Sha512, true),
        "MD5" => (Digest::Md5, false),
        "SMD5" => (Digest::Md5, true),
        _ => {
            let scheme = LDAP_UNREAD
                .iter()
                .find(|known| **known == scheme.as_str())
                .copied();
            return Err(CredentialError::Unrecognized { scheme });
        }
    };
    const NAME: &str = "LDAP userPassword";
    let bytes = STANDARD
        .decode(payload.trim())
        .or_else(|_| STANDARD_NO_PAD.decode(payload.trim()))
        .map_err(|_| malformed(NAME, format!("the {{{scheme}}} value is not valid base64")))?;
    let size = digest.output_len();
    let fits = if salted {
        bytes.len() > size
    } else {
        bytes.len() == size
    };
    if !fits {
        return Err(malformed(
            NAME,
            format!(
                "a {{{scheme}}} value must hold a {size}-byte digest{}",
                if salted { " and a salt" } else { "" }
            ),
        ));
    }
    let (hash, salt) = bytes.split_at(size);
    Ok(Credential::Digest {
        digest,
        salt: salt.to_vec(),
        position: SaltPosition::Suffix,
        hash: hash.to_vec(),
    })
}

/// A Keycloak credential (`credentials[].secretData` and `.credentialData` of a realm
/// export, each a JSON document in a string).
pub fn keycloak(secret_data: &str, credential_data: &str) -> Result<Credential, CredentialError> {
    const NAME: &str = "Keycloak";
    // Read into the few fields used: a million users' credentials made into whole
    // `Value` trees cost the reading a noticeable share of its time.
    let secret: SecretData =
        object(secret_data).ok_or_else(|| malformed(NAME, "secretData is not a JSON object"))?;
    let data: CredentialData = object(credential_data)
        .ok_or_else(|| malformed(NAME, "credentialData is not a JSON object"))?;
    let algorithm = data.algorithm.as_str().unwrap_or("pbkdf2-sha256");
    let value = secret
        .value
        .as_str()
        .ok_or_else(|| malformed(NAME, "secretData.value is missing"))?;
    if algorithm == "argon2" {
        // Keycloak 24 and later: raw hash and salt in base64, the cost in
        // `additionalParameters` (a PHC string only where another tool wrote one).
        if value.starts_with("$argon2") {
            return parse(value);
        }
        let salt = secret
            .salt
            .as_str()
            .ok_or_else(|| malformed(NAME, "secretData.salt is missing"))?;
        return keycloak_argon2(&data, b64(NAME, "salt", salt)?, b64(NAME, "hash", value)?);
    }
    let digest = match algorithm {
        "pbkdf2" => Digest::Sha1,
        "pbkdf2-sha256" => Digest::Sha256,
        "pbkdf2-sha512" => Digest::Sha512,
        other => {
            return Err(malformed(
                NAME,
                format!("{} is not supported", named("algorithm", other)),
            ));
        }
    };
    let iterations = data
        .hash_iterations
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| malformed(NAME, "credentialData.hashIterations is missing"))?;
    let salt = secret
        .salt
        .as_str()
        .ok_or_else(|| malformed(NAME, "secretData.salt is missing"))?;
    pbkdf2_credential(
        digest,
        iterations,
        b64(NAME, "salt", salt)?,
        b64(NAME, "hash", value)?,
    )
}

/// Keycloak's argon2 credential as a PHC string: `type` (`id`, `i`, `d`), `version`
/// (`1.3` or `1.0`), `memory` (KiB), `parallelism` and `hashLength` in
/// `additionalParameters` (each a list of one string, as Keycloak writes them), the
/// iterations in `hashIterations`. Missing ones take Keycloak's defaults.
fn keycloak_argon2(
    data: &CredentialData,
    salt: Vec<u8>,
    hash: Vec<u8>,
) -> Result<Credential, CredentialError> {
    const NAME: &str = "Keycloak argon2";
    let parameter = |key: &str| -> Option<String> {
        let value = data.additional_parameters.get(key)?;
        let value = match value {
            Value::Array(items) => items.first()?,
            other => other,
        };
        match value {
            Value::String(text) => Some(text.trim().to_string()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    };
    let number = |key: &str, default: u32, max: u32| -> Result<u32, CredentialError> {
        match parameter(key) {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| malformed(NAME, format!("{key} is not a number in 1..={max}"))),
        }
    };
    let variant = match parameter("type")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("id") | Some("argon2id") => Argon2Variant::Argon2id,
        Some("i") | Some("argon2i") => Argon2Variant::Argon2i,
        Some("d") | Some("argon2d") => Argon2Variant::Argon2d,
        Some(_) => return Err(malformed(NAME, "type is not id, i or d")),
    };
    let version = match parameter("version").as_deref() {
        None | Some("1.3") | Some("19") => 19,
        Some("1.0") | Some("16") => 16,
        Some(_) => return Err(malformed(NAME, "version is not 1.3 or 1.0")),
    };
    // Bounds as for the other schemes: an export must not make first sign-in costly.
    let memory = number("memory", 7168, MAX_ARGON2_MEMORY_KIB)?;
    let parallelism = number("parallelism", 1, 16)?;
    let iterations = match data.hash_iterations.as_u64() {
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_ARGON2_ITERATIONS).contains(n))
            .ok_or_else(|| malformed(NAME, "hashIterations is out of bounds"))?,
        None => 5,
    };
    let length = number("hashLength", 32, 1024)?;
    if hash.len() != length as usize || salt.len() < 8 {
        return Err(malformed(
            NAME,
            "the hash or salt does not have the length credentialData gives",
        ));
    }
    let name = match variant {
        Argon2Variant::Argon2id => "argon2id",
        Argon2Variant::Argon2i => "argon2i",
        Argon2Variant::Argon2d => "argon2d",
    };
    let phc = format!(
        "${name}$v={version}$m={memory},t={iterations},p={parallelism}${}${}",
        STANDARD_NO_PAD.encode(&salt),
        STANDARD_NO_PAD.encode(&hash)
    );
    Ok(Credential::Argon2 { variant, phc })
}

/// A JSON object read into `T`; `None` for anything else (serde would also read a
/// list into a struct, field by field in order).
fn object<'a, T: Deserialize<'a>>(json: &'a str) -> Option<T> {
    if !json.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Keycloak's `secretData`: what is secret about a credential. Only the fields used
/// are read (the rest are skipped, not built), each as a `Value` so that one of the
/// wrong kind reads as missing, as it always has.
#[derive(Deserialize)]
struct SecretData {
    #[serde(default)]
    value: Value,
    #[serde(default)]
    salt: Value,
}

/// Keycloak's `credentialData`: how the secret was made.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialData {
    #[serde(default)]
    algorithm: Value,
    #[serde(default)]
    hash_iterations: Value,
    #[serde(default)]
    additional_parameters: Value,
}

/// How an export encodes the bytes of a hash or salt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
    /// The text's own UTF-8 bytes (salts given as plain strings).
    Utf8,
}

impl Encoding {
    pub fn parse(name: &str) -> Option<Encoding> {
        match name.to_ascii_lowercase().as_str() {
            "hex" => Some(Encoding::Hex),
            "base64" => Some(Encoding::Base64),
            "utf8" | "utf-8" => Some(Encoding::Utf8),
            _ => None,
        }
    }

    pub fn decode(self, what: &str, text: &str) -> Result<Vec<u8>, CredentialError> {
        const NAME: &str = "salted digest";
        match self {
            Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
            Encoding::Base64 => b64(NAME, what, text),
            Encoding::Hex => {
                let text = text.trim();
                if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(malformed(NAME, format!("the {what} is not valid hex")));
                }
                (0..text.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| malformed(NAME, format!("the {what} is not valid hex")))
            }
        }
    }
}

/// A digest with an optional salt, as custom user databases store them (Auth0's
/// `custom_password_hash` with `md5`, `sha1`, `sha256`, `sha512`).
pub fn salted_digest(
    digest: &str,
    hash: Vec<u8>,
    salt: Vec<u8>,
    position: SaltPosition,
) -> Result<Credential, CredentialError> {
    const NAME: &str = "salted digest";
    let digest = Digest::parse(digest).ok_or_else(|| {
        malformed(
            NAME,
            format!("{} is not a digest Ferry reads", named("algorithm", digest)),
        )
    })?;
    if hash.len() != digest.output_len() {
        return Err(malformed(
            NAME,
            format!(
                "a {} hash has {} bytes, not {}",
                digest.name(),
                digest.output_len(),
                hash.len()
            ),
        ));
    }
    Ok(Credential::Digest {
        digest,
        salt,
        position,
        hash,
    })
}

/// A Firebase user's `passwordHash` and `salt` (base64) with the project's parameters.
pub fn firebase(
    hash: &str,
    salt: &str,
    params: FirebaseParams,
) -> Result<Credential, CredentialError> {
    const NAME: &str = "Firebase scrypt";
    if params.mem_cost == 0
        || params.mem_cost > u32::from(MAX_SCRYPT_LOG_N)
        || params.rounds == 0
        || params.rounds > MAX_SCRYPT_R
    {
        return Err(malformed(
            NAME,
            "the project's rounds or mem_cost are out of bounds",
        ));
    }
    Ok(Credential::FirebaseScrypt {
        salt: b64(NAME, "salt", salt)?,
        hash: b64(NAME, "hash", hash)?,
        params,
    })
}
