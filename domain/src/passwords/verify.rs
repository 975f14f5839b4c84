//! Checking a password against a credential, with the RustCrypto implementations.
//! Comparisons are constant-time; a malformed credential verifies nothing.

use super::{Credential, CryptVariant, Digest, FirebaseParams, SaltPosition};
use aes::cipher::{KeyIvInit, StreamCipher};
use argon2::{PasswordHash, PasswordVerifier};
use sha2::Digest as _;
use subtle::ConstantTimeEq;

impl Credential {
    /// True when `password` is the one this credential was made from.
    pub fn verify(&self, password: &str) -> bool {
        let pw = password.as_bytes();
        match self {
            Credential::Bcrypt { hash } => bcrypt::verify(password, hash).unwrap_or(false),
            Credential::Argon2 { phc, .. } => PasswordHash::new(phc)
                .map(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(pw, &parsed)
                        .is_ok()
                })
                .unwrap_or(false),
            Credential::Pbkdf2 {
                digest,
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                match digest {
                    Digest::Sha1 => {
                        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt, *iterations, &mut out)
                    }
                    Digest::Sha256 => {
                        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, salt, *iterations, &mut out)
                    }
                    Digest::Sha512 => {
                        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, salt, *iterations, &mut out)
                    }
                    Digest::Md5 => return false,
                }
                equal(&out, hash)
            }
            Credential::Scrypt {
                log_n,
                r,
                p,
                salt,
                hash,
            } => scrypt_key(pw, salt, *log_n, *r, *p, hash.len()).is_some_and(|k| equal(&k, hash)),
            Credential::FirebaseScrypt { salt, hash, params } => {
                firebase_hash(pw, salt, params).is_some_and(|h| equal(&h, hash))
            }
            Credential::Digest {
                digest,
                salt,
                position,
                hash,
            } => {
                let mut input = Vec::with_capacity(pw.len() + salt.len());
                match position {
                    SaltPosition::Prefix => {
                        input.extend_from_slice(salt);
                        input.extend_from_slice(pw);
                    }
                    SaltPosition::Suffix => {
                        input.extend_from_slice(pw);
                        input.extend_from_slice(salt);
                    }
                }
                equal(&digest_of(*digest, &input), hash)
            }
            Credential::Crypt { variant, hash } => match variant {
                CryptVariant::Sha256 => sha_crypt::sha256_check(password, hash).is_ok(),
                CryptVariant::Sha512 => sha_crypt::sha512_check(password, hash).is_ok(),
                CryptVariant::Md5 => md5_crypt_check(pw, hash),
            },
            Credential::Unusable { .. } => false,
        }
    }
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn digest_of(digest: Digest, input: &[u8]) -> Vec<u8> {
    match digest {
        Digest::Md5 => md5::Md5::digest(input).to_vec(),
        Digest::Sha1 => sha1::Sha1::digest(input).to_vec(),
        Digest::Sha256 => sha2::Sha256::digest(input).to_vec(),
        Digest::Sha512 => sha2::Sha512::digest(input).to_vec(),
    }
}

fn scrypt_key(pw: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32, len: usize) -> Option<Vec<u8>> {
    let params = scrypt::Params::new(log_n, r, p, len).ok()?;
    let mut out = vec![0u8; len];
    scrypt::scrypt(pw, salt, &params, &mut out).ok()?;
    Some(out)
}

/// Firebase's modified scrypt: derive a key from the password and `salt || separator`,
/// then encrypt the project's signer key with AES-256-CTR under it, IV zero.
fn firebase_hash(pw: &[u8], salt: &[u8], params: &FirebaseParams) -> Option<Vec<u8>> {
    let mut salted = salt.to_vec();
    salted.extend_from_slice(&params.salt_separator);
    let log_n = u8::try_from(params.mem_cost).ok()?;
    let key = scrypt_key(pw, &salted, log_n, params.rounds, 1, 32)?;
    let mut block = params.signer_key.clone();
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(&key, &[0u8; 16]).ok()?;
    cipher.apply_keystream(&mut block);
    Some(block)
}

const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn push_b64(out: &mut String, mut value: u32, chars: usize) {
    for _ in 0..chars {
        out.push(char::from(CRYPT_ALPHABET[(value & 0x3f) as usize]));
        value >>= 6;
    }
}

/// MD5-crypt (`$1$`), Poul-Henning Kamp's algorithm from FreeBSD, which no maintained
/// RustCrypto crate implements; checked against passlib's output in the tests.
fn md5_crypt(pw: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$1$";
    let salt = &salt[..salt.len().min(8)];
    let mut alternate = md5::Md5::new();
    alternate.update(pw);
    alternate.update(salt);
    alternate.update(pw);
    let alternate = alternate.finalize();

    let mut ctx = md5::Md5::new();
    ctx.update(pw);
    ctx.update(MAGIC);
    ctx.update(salt);
    let mut remaining = pw.len();
    while remaining > 0 {
        let take = remaining.min(16);
        ctx.update(&alternate[..take]);
        remaining -= take;
    }
    let mut bits = pw.len();
    while bits != 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        bits >>= 1;
    }
    let mut result = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = md5::Md5::new();
        if round & 1 == 1 {
            ctx.update(pw);
        } else {
            ctx.update(result);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(pw);
        }
        if round & 1 == 1 {
            ctx.update(result);
        } else {
            ctx.update(pw);
        }
        result = ctx.finalize();
    }

    let f = |i: usize| u32::from(result[i]);
    let mut out = String::from("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push_b64(&mut out, (f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    push_b64(&mut out, f(11), 2);
    out
}

fn md5_crypt_check(pw: &[u8], stored: &str) -> bool {
    let Some(salt) = stored
        .strip_prefix("$1$")
        .and_then(|rest| rest.split('$').next())
    else {
        return false;
    };
    equal(md5_crypt(pw, salt.as_bytes()).as_bytes(), stored.as_bytes())
}
