//! Every credential form Ferry reads, checked against hashes made by independent
//! implementations (see fixtures/passwords/make_vectors.py for how they were made).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use base64::{Engine, engine::general_purpose::STANDARD};
use domain::passwords::{
    Credential, Encoding, FirebaseParams, SaltPosition, firebase, keycloak, parse, salted_digest,
};
use serde_json::Value;

fn credential(v: &Value) -> Credential {
    let stored = v["stored"].as_str().unwrap();
    match v["kind"].as_str().unwrap() {
        "bcrypt" | "argon2" | "modular" => parse(stored).unwrap(),
        "keycloak" => keycloak(stored, v["credential_data"].as_str().unwrap()).unwrap(),
        "firebase" => {
            let p = &v["firebase"];
            let bytes = |k: &str| STANDARD.decode(p[k].as_str().unwrap()).unwrap();
            let params = FirebaseParams {
                signer_key: bytes("signer_key"),
                salt_separator: bytes("salt_separator"),
                rounds: p["rounds"].as_u64().unwrap() as u32,
                mem_cost: p["mem_cost"].as_u64().unwrap() as u32,
            };
            firebase(stored, v["salt"].as_str().unwrap(), params).unwrap()
        }
        "salted" => {
            let position = match v["position"].as_str().unwrap() {
                "prefix" => SaltPosition::Prefix,
                _ => SaltPosition::Suffix,
            };
            salted_digest(
                v["digest"].as_str().unwrap(),
                Encoding::Hex.decode("hash", stored).unwrap(),
                Encoding::Hex
                    .decode("salt", v["salt"].as_str().unwrap())
                    .unwrap(),
                position,
            )
            .unwrap()
        }
        other => panic!("unknown vector kind {other}"),
    }
}

#[test]
fn every_external_vector_verifies_and_rejects_wrong_passwords() {
    let file: Value =
        serde_json::from_str(include_str!("fixtures/passwords/vectors.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 37);
    for v in vectors {
        let stored = v["stored"].as_str().unwrap();
        let password = v["password"].as_str().unwrap();
        let credential = credential(v);
        assert_eq!(
            credential.algorithm(),
            v["algorithm"].as_str().unwrap(),
            "{stored}"
        );
        assert!(
            credential.verify(password),
            "{} rejects its password",
            credential.algorithm()
        );
        assert!(
            !credential.verify(&format!("{password}x")),
            "{} accepts a wrong password",
            credential.algorithm()
        );
        assert!(
            !credential.verify(""),
            "{} accepts an empty password",
            credential.algorithm()
        );
        let shown = format!("{credential:?}");
        assert!(
            !shown.contains(stored) && shown.ends_with("***)"),
            "Debug leaks: {shown}"
        );
        assert!(!credential.parameters().is_empty());
    }
}

#[test]
fn credentials_survive_serialization() {
    let credential = parse("{SSHA}eavpX10gMiVDJ9BRPp9lhOjPSUSD0Lq3").unwrap();
    let json = serde_json::to_string(&credential).unwrap();
    assert_eq!(
        serde_json::from_str::<Credential>(&json).unwrap(),
        credential
    );
}
