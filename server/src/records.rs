//! How a normalized record is kept at rest: its JSON, compressed with LZ4 against a
//! fixed dictionary of the record's own field names, then sealed under the server key
//! with the project and source id as context (so a sealed record moved to another row
//! or project does not open).

use crate::vault::Vault;
use domain::{DomainError, ids::ProjectId, import::NormalizedUser};
use sha2::{Digest, Sha256};

/// The first byte of a compressed record. Plain JSON (as records were first stored)
/// starts with `{`, so both read back.
const LZ4_V1: u8 = 1;

/// Field names and values every record repeats: most of a small record's JSON, which
/// LZ4 alone cannot shrink because it sees each record once. Never change it: records
/// compressed against it are read with it. A new dictionary needs a new format byte.
const DICTIONARY_V1: &[u8] = br#"{"source_id":"","username":null,"emails":[{"value":"@example.com","primary":true,"verified":true},{"value":"","primary":false,"verified":false}],"phones":[{"value":"+","kind":null,"primary":true}],"given_name":"","family_name":"","display_name":null,"status":"active","status":"disabled","created_at":"T00:00:00Z","last_login_at":null,"groups":[],"roles":[],"attributes":{"id":"","email":"","email_verified":"true","first_name":"","last_name":"","groups":"","created_at":"","last_login":"","status":"","phone":"","department":"","username":"","firstName":"","lastName":"","enabled":true,"emailVerified":false,"createdTimestamp":,"dn":"uid=,ou=people,dc=","mail":"","objectClass":""},"credential":{"kind":"bcrypt","hash":"$2b$10$"},"credential":{"kind":"argon2","variant":"argon2id","phc":"$argon2id$v=19$m=19456,t=2,p=1$"},"credential":{"kind":"pbkdf2","digest":"sha256","iterations":27500,"salt":[],"hash":[]},"credential":{"kind":"digest","digest":"sha256","salt":[],"position":"suffix","hash":[]}}"#;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The context a record is sealed under.
pub fn context(project: ProjectId, source_id: &str) -> String {
    format!("record:{project}:{source_id}")
}

/// A record ready to store: sealed bytes and the digest of its content, which tells a
/// changed record from an unchanged one when a newer export is read.
pub struct Sealed {
    pub data: Vec<u8>,
    pub digest: String,
}

pub fn seal(vault: &Vault, project: ProjectId, user: &NormalizedUser) -> domain::Result<Sealed> {
    // Room for a typical record up front: growing the buffer step by step copied it.
    let mut json = Vec::with_capacity(2048);
    serde_json::to_writer(&mut json, user)
        .map_err(|e| DomainError::Internal(format!("record encoding: {e}")))?;
    // Half the SHA-256 is plenty to tell a changed record from an unchanged one.
    let digest =
        Sha256::digest(&json)
            .iter()
            .take(16)
            .fold(String::with_capacity(32), |mut hex, b| {
                hex.push(char::from(HEX[usize::from(b >> 4)]));
                hex.push(char::from(HEX[usize::from(b & 15)]));
                hex
            });
    let mut plain = Vec::with_capacity(json.len() / 2 + 8);
    plain.push(LZ4_V1);
    plain.extend(lz4_flex::block::compress_prepend_size_with_dict(
        &json,
        DICTIONARY_V1,
    ));
    let data = vault.seal(&plain, context(project, &user.source_id).as_bytes());
    Ok(Sealed { data, digest })
}

/// The keyed digest a queued user is found by (see `domain::review::search_keys`).
pub fn search_digest(vault: &Vault, project: ProjectId, key: &str) -> String {
    vault.digest(format!("search:{project}").as_bytes(), key.as_bytes())
}

pub fn open(
    vault: &Vault,
    project: ProjectId,
    source_id: &str,
    sealed: &[u8],
) -> domain::Result<NormalizedUser> {
    let broken = |what: String| DomainError::Internal(format!("record {source_id}: {what}"));
    let plain = vault
        .open(sealed, context(project, source_id).as_bytes())
        .map_err(|e| broken(e.to_string()))?;
    let json = match plain.split_first() {
        Some((&LZ4_V1, packed)) => {
            lz4_flex::block::decompress_size_prepended_with_dict(packed, DICTIONARY_V1)
                .map_err(|e| broken(format!("cannot be unpacked: {e}")))?
        }
        Some((b'{', _)) => plain,
        _ => return Err(broken("has an unknown format".into())),
    };
    serde_json::from_slice(&json).map_err(|e| broken(format!("is not a record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::import::record::Email;

    fn user() -> NormalizedUser {
        NormalizedUser {
            source_id: "u-1".into(),
            username: Some("ada".into()),
            emails: vec![Email {
                value: "ada@example.com".into(),
                primary: true,
                verified: Some(true),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_record_comes_back_as_it_went_in_and_only_in_its_place() {
        let vault = Vault::new(&[3u8; 32]);
        let project = ProjectId(uuid::Uuid::now_v7());
        let sealed = seal(&vault, project, &user()).unwrap();
        assert_eq!(open(&vault, project, "u-1", &sealed.data).unwrap(), user());
        assert!(open(&vault, project, "u-2", &sealed.data).is_err());
        let elsewhere = ProjectId(uuid::Uuid::now_v7());
        assert!(open(&vault, elsewhere, "u-1", &sealed.data).is_err());
        // Records stored as plain JSON still open.
        let json = serde_json::to_vec(&user()).unwrap();
        let old = vault.seal(&json, context(project, "u-1").as_bytes());
        assert_eq!(open(&vault, project, "u-1", &old).unwrap(), user());
    }

    #[test]
    fn the_dictionary_makes_small_records_smaller() {
        let json = serde_json::to_vec(&user()).unwrap();
        let plain = lz4_flex::block::compress_prepend_size(&json);
        let with = lz4_flex::block::compress_prepend_size_with_dict(&json, DICTIONARY_V1);
        assert!(
            with.len() * 2 < plain.len(),
            "{} vs {}",
            with.len(),
            plain.len()
        );
    }
}
