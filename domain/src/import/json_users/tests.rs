//! Each JSON format read into whole expected records; truncated, non-JSON and partly
//! bad files reported with their locations.

use super::*;
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{TimeZone, Utc};
use serde_json::json;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}{name}")).unwrap()
}

fn read_all(
    name: &str,
    layout: JsonLayout,
    profile: &JsonProfile,
) -> (Vec<NormalizedUser>, Vec<String>) {
    let (mut users, mut errors) = (Vec::new(), Vec::new());
    read(
        &fixture(name)[..],
        layout,
        profile,
        &mut |item| match item {
            Ok(user) => users.push(user),
            Err(err) => errors.push(err.to_string()),
        },
    )
    .unwrap();
    (users, errors)
}

fn firebase_params() -> FirebaseParams {
    let p: Value = serde_json::from_slice(&fixture("passwords.json")).unwrap();
    let bytes = |k: &str| STANDARD.decode(p["firebase"][k].as_str().unwrap()).unwrap();
    FirebaseParams {
        signer_key: bytes("signer_key"),
        salt_separator: bytes("salt_separator"),
        rounds: 8,
        mem_cost: 12,
    }
}

#[test]
fn auth0_user_export_ndjson() {
    let (users, errors) = read_all(
        "auth0_export.ndjson",
        JsonLayout::Ndjson,
        &JsonProfile::Auth0,
    );
    let source: Value = serde_json::from_str(
        std::str::from_utf8(&fixture("auth0_export.ndjson"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let ada = NormalizedUser {
        source_id: "auth0|5f7c8ec7c33c6c004bbafe82".into(),
        username: Some("ada".into()),
        emails: vec![Email {
            value: "ada@example.com".into(),
            primary: true,
            verified: Some(true),
        }],
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        display_name: Some("Ada Lovelace".into()),
        status: UserStatus::Active,
        created_at: Some(
            Utc.with_ymd_and_hms(2020, 10, 6, 15, 45, 43).unwrap()
                + chrono::Duration::milliseconds(613),
        ),
        last_login_at: Some(Utc.with_ymd_and_hms(2024, 2, 1, 9, 0, 0).unwrap()),
        roles: vec!["admin".into(), "billing".into()],
        attributes: source
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..Default::default()
    };
    assert_eq!(users[0], ada);
    assert_eq!(users[1].source_id, "google-oauth2|1122334455");
    assert_eq!(users[1].status, UserStatus::Disabled);
    assert_eq!(users[1].phones[0].value, "+15551234567");
    assert_eq!(users.len(), 2);
    assert_eq!(
        errors,
        [
            "line 3: invalid JSON: EOF while parsing a value",
            "line 5, field \"user_id\": is missing",
            "line 6: not a JSON object",
        ]
    );
}

#[test]
fn auth0_bulk_import_with_bcrypt_and_custom_hashes() {
    let (users, errors) = read_all("auth0_import.json", JsonLayout::Array, &JsonProfile::Auth0);
    // The user whose hash cannot be read is imported all the same.
    assert_eq!(users.len(), 3);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(users[0].credential.as_ref().unwrap().algorithm(), "bcrypt");
    assert_eq!(users[0].roles, ["admin"]);
    assert!(
        !users[0].attributes.contains_key("password_hash"),
        "hashes are not attributes"
    );
    // Auth0's schema puts the salt object beside `hash`.
    let custom = users[1].credential.as_ref().unwrap();
    assert_eq!(custom.algorithm(), "salted-sha256");
    assert_eq!(custom.parameters(), "8 byte salt, prefix");
    assert!(!users[1].attributes.contains_key("custom_password_hash"));
    let unusable = users[2].credential.as_ref().unwrap();
    assert_eq!(unusable.algorithm(), "unusable");
    assert!(!unusable.is_usable());
    assert_eq!(users[2].unreadable.len(), 1);
    assert_eq!(users[2].unreadable[0].field, "custom_password_hash");
    assert!(
        users[2].unreadable[0].reason.contains("not valid hex"),
        "{:?}",
        users[2].unreadable
    );
    assert!(!users[2].attributes.contains_key("custom_password_hash"));
    #[cfg(feature = "verify")]
    {
        let p: Value = serde_json::from_slice(&fixture("passwords.json")).unwrap();
        assert!(
            users[0]
                .credential
                .as_ref()
                .unwrap()
                .verify(p["bcrypt_password"].as_str().unwrap())
        );
        assert!(custom.verify(p["salted_password"].as_str().unwrap()));
    }
}

#[test]
fn keycloak_realm_export() {
    let (users, errors) = read_all(
        "keycloak_realm.json",
        JsonLayout::Nested("users"),
        &JsonProfile::Keycloak,
    );
    let ada = &users[0];
    assert_eq!(ada.source_id, "4b3f1d2e-0000-4000-8000-000000000001");
    assert_eq!(ada.username.as_deref(), Some("ada"));
    assert_eq!(
        ada.emails,
        vec![Email {
            value: "ada@example.com".into(),
            primary: true,
            verified: Some(true)
        }]
    );
    assert_eq!(ada.status, UserStatus::Active);
    assert_eq!(
        ada.created_at,
        Some(Utc.timestamp_millis_opt(1_700_000_000_000).unwrap())
    );
    assert_eq!(ada.phones[0].value, "+441234567890");
    assert_eq!(ada.groups, ["/engineering"]);
    assert_eq!(
        ada.roles,
        ["default-roles-acme", "staff", "account:manage-account"]
    );
    assert_eq!(ada.attributes["attributes"]["department"], json!(["R&D"]));
    assert!(!ada.attributes.contains_key("credentials"));
    assert_eq!(
        ada.credential.as_ref().unwrap().algorithm(),
        "pbkdf2-sha256"
    );
    assert_eq!(users[1].status, UserStatus::Disabled);
    assert!(users[1].credential.is_none());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("$.users[2] (line ")
            && errors[0].ends_with("field \"id\": is missing"),
        "{}",
        errors[0]
    );
    #[cfg(feature = "verify")]
    {
        let p: Value = serde_json::from_slice(&fixture("passwords.json")).unwrap();
        assert!(
            ada.credential
                .as_ref()
                .unwrap()
                .verify(p["keycloak_password"].as_str().unwrap())
        );
    }
}

#[test]
fn firebase_auth_export() {
    let (users, errors) = read_all(
        "firebase.json",
        JsonLayout::Nested("users"),
        &JsonProfile::Firebase(firebase_params()),
    );
    assert!(errors.is_empty(), "{errors:?}");
    let ada = &users[0];
    assert_eq!(ada.source_id, "Hy4PkI8wcgZ4kzcLmgMWyg7iC4W2");
    assert_eq!(ada.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        ada.created_at,
        Some(Utc.timestamp_millis_opt(1_486_324_985_000).unwrap())
    );
    assert_eq!(
        ada.last_login_at,
        Some(Utc.timestamp_millis_opt(1_700_000_000_000).unwrap())
    );
    assert_eq!(
        ada.credential.as_ref().unwrap().algorithm(),
        "firebase-scrypt"
    );
    assert!(!ada.attributes.contains_key("passwordHash") && !ada.attributes.contains_key("salt"));
    assert_eq!(users[1].status, UserStatus::Disabled);
    #[cfg(feature = "verify")]
    {
        let p: Value = serde_json::from_slice(&fixture("passwords.json")).unwrap();
        assert!(
            ada.credential
                .as_ref()
                .unwrap()
                .verify(p["firebase_password"].as_str().unwrap())
        );
    }
}

#[test]
fn generic_json_array() {
    let (users, errors) = read_all("generic.json", JsonLayout::Array, &JsonProfile::Generic);
    let ada = &users[0];
    assert_eq!(ada.source_id, "7");
    assert_eq!(ada.username.as_deref(), Some("ada"));
    assert_eq!(ada.groups, ["eng", "ops"]);
    assert_eq!(ada.status, UserStatus::Active);
    assert_eq!(ada.attributes["meta"], json!({"team": "core"}));
    assert_eq!(
        users[1].source_id, "grace",
        "the username stands in for a missing id"
    );
    assert_eq!(users[1].status, UserStatus::Disabled);
    // An unreadable date keeps the user; the field is recorded, the value not quoted.
    assert!(errors.is_empty(), "{errors:?}");
    let late = users
        .iter()
        .find(|u| u.unreadable.iter().any(|f| f.field == "created"))
        .expect("the user with an unreadable date is kept");
    assert_eq!(late.created_at, None);
    assert_eq!(late.attributes["created"], json!("soon"));
}

#[test]
fn unreadable_documents_are_refused_in_one_sentence_after_keeping_what_came_before() {
    let mut kept = 0;
    let err = read(
        &fixture("truncated.json")[..],
        JsonLayout::Array,
        &JsonProfile::Generic,
        &mut |item| {
            kept += usize::from(item.is_ok());
        },
    )
    .unwrap_err();
    assert_eq!(kept, 1);
    assert_eq!(
        err.to_string(),
        "line 1: the JSON ends early: the file is truncated"
    );
    let err = read(
        &fixture("not_json.json")[..],
        JsonLayout::Array,
        &JsonProfile::Generic,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line 1: invalid JSON at column"),
        "{err}"
    );
    let err = read(
        &b"{\"realm\": \"x\"}"[..],
        JsonLayout::Nested("users"),
        &JsonProfile::Keycloak,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("expected a \"users\" array"),
        "{err}"
    );
    let err = read(
        &b"{\"a\": 1}"[..],
        JsonLayout::Array,
        &JsonProfile::Generic,
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("expected an array of user objects"),
        "{err}"
    );
}

#[test]
fn a_key_given_twice_keeps_its_last_value_and_nulls_are_not_kept() {
    let text = br#"[{"user_id": "first", "email": null, "user_id": "auth0|2", "nested": {"a": [1, {"b": null}]}}, [1, 2], "text", 3, null]"#;
    let (mut users, mut errors) = (Vec::new(), Vec::new());
    read(
        &text[..],
        JsonLayout::Array,
        &JsonProfile::Auth0,
        &mut |item| match item {
            Ok(user) => users.push(user),
            Err(err) => errors.push(err.to_string()),
        },
    )
    .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].source_id, "auth0|2");
    assert_eq!(users[0].attributes["user_id"], "auth0|2");
    assert!(!users[0].attributes.contains_key("email"));
    assert_eq!(
        users[0].attributes["nested"],
        json!({"a": [1, {"b": null}]}),
        "only top-level nulls are dropped"
    );
    assert_eq!(errors.len(), 4);
    assert!(
        errors.iter().all(|e| e.ends_with("not a JSON object")),
        "{errors:?}"
    );
}

/// Keycloak 24 and later hash with argon2 by default: raw hash and salt in
/// `secretData`, the cost in `credentialData.additionalParameters`. The vectors were
/// made by argon2-cffi (see fixtures/passwords/make_vectors.py).
#[test]
fn keycloak_argon2_users_are_read_and_verify() {
    let vectors: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/passwords/vectors.json"
    ))
    .unwrap();
    let argon2: Vec<&Value> = vectors["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v["kind"] == "keycloak" && v["algorithm"].as_str().unwrap().starts_with("argon2")
        })
        .collect();
    assert_eq!(argon2.len(), 3);
    let users: Vec<Value> = argon2
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "id": format!("k{i}"),
                "username": format!("user{i}"),
                "enabled": true,
                "credentials": [{
                    "type": "password",
                    "secretData": v["stored"],
                    "credentialData": v["credential_data"],
                }],
            })
        })
        .collect();
    let realm = serde_json::to_vec(&json!({ "realm": "r", "users": users })).unwrap();
    let mut read = Vec::new();
    super::read(
        &realm[..],
        JsonLayout::Nested("users"),
        &JsonProfile::Keycloak,
        &mut |item| read.push(item.unwrap()),
    )
    .unwrap();
    assert_eq!(read.len(), 3, "no Keycloak user is lost");
    for (user, v) in read.iter().zip(&argon2) {
        let credential = user.credential.as_ref().unwrap();
        assert_eq!(credential.algorithm(), v["algorithm"].as_str().unwrap());
        assert!(user.unreadable.is_empty());
        #[cfg(feature = "verify")]
        {
            assert!(credential.verify(v["password"].as_str().unwrap()));
            assert!(!credential.verify("wrong"));
        }
    }
}
