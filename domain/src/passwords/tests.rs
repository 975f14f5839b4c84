//! Bad stored values: each is refused with a reason that never quotes the hash.

use super::*;

fn refused(stored: &str) -> String {
    let err = parse(stored).expect_err(stored).to_string();
    let secret_part = stored.rsplit('$').next().unwrap_or_default();
    if secret_part.len() > 8 {
        assert!(!err.contains(secret_part), "{err} quotes the hash");
    }
    err
}

#[test]
fn unknown_schemes_quote_nothing_of_the_value() {
    // A plain-text password may look like a scheme: `$money$` is no identifier to
    // repeat in an error list.
    for stored in [
        "$99$abc$defghijklmnop",
        "$money$123",
        "plaintext-password",
        "{s3cret}x",
        "",
    ] {
        assert_eq!(
            refused(stored),
            "unrecognized password hash format",
            "{stored}"
        );
    }
    assert_eq!(
        refused("{CLEARTEXT}secret"),
        "unrecognized password hash format (CLEARTEXT is not a scheme Ferry reads)"
    );
}

#[test]
fn truncated_and_out_of_bounds_values_are_refused() {
    assert!(refused("$2b$10$tooshort").starts_with("bcrypt hash"));
    assert!(refused("$argon2id$v=19$abc").starts_with("argon2 hash"));
    assert!(refused("$pbkdf2-sha256$lots$c2FsdA$aGFzaA").contains("not a number"));
    assert!(refused("$pbkdf2-sha256$0$c2FsdA$aGFzaA").contains("iterations"));
    assert!(refused("$pbkdf2-sha256$99999999999$c2FsdA$aGFzaA").contains("not a number"));
    assert!(refused("$pbkdf2-sha256$1000$c2FsdA$!!!").contains("base64"));
    assert!(refused("$scrypt$ln=40,r=8,p=1$c2FsdA$aGFzaA").contains("out of bounds"));
    assert!(refused("$scrypt$r=8,p=1$c2FsdA$aGFzaA").contains("ln"));
    assert!(refused("{SSHA}AAAA").contains("20-byte digest"));
    assert!(refused("{SHA}not base64!").contains("base64"));
    assert!(refused("$6$salt$").starts_with("sha512-crypt"));
}

#[test]
fn keycloak_and_digest_inputs_are_checked() {
    let secret = r#"{"value":"aGFzaA==","salt":"c2FsdA=="}"#;
    assert!(
        keycloak("not json", "{}")
            .unwrap_err()
            .to_string()
            .contains("secretData")
    );
    assert!(
        keycloak(secret, r#"{"algorithm":"md4","hashIterations":1}"#)
            .unwrap_err()
            .to_string()
            .contains("md4")
    );
    assert!(
        keycloak(secret, r#"{"algorithm":"pbkdf2-sha256"}"#)
            .unwrap_err()
            .to_string()
            .contains("hashIterations")
    );
    // A field of the wrong kind is as good as missing, and says which it is.
    let refused = |secret: &str, data: &str| keycloak(secret, data).unwrap_err().to_string();
    let data = r#"{"algorithm":"pbkdf2-sha256","hashIterations":27500}"#;
    assert!(refused(secret, r#"{"hashIterations":"27500"}"#).contains("hashIterations"));
    assert!(refused(secret, r#"{"hashIterations":-1}"#).contains("hashIterations"));
    assert!(refused(secret, r#"{"hashIterations":2.5}"#).contains("hashIterations"));
    assert!(refused(r#"{"value":7,"salt":"c2FsdA=="}"#, data).contains("secretData.value"));
    assert!(refused(r#"{"value":"aGFzaA==","salt":[1]}"#, data).contains("secretData.salt"));
    assert!(refused(secret, "[1, 2]").contains("credentialData"));
    // Unknown fields and escaped text are read as Keycloak writes them.
    let escaped = r#"{"value":"aGFz\u0061A==","salt":"c2FsdA==","additionalParameters":{}}"#;
    let extra =
        r#"{"algorithm":"pbkdf2-sha256","hashIterations":1000,"additionalParameters":{"a":[1]}}"#;
    assert!(keycloak(escaped, extra).is_ok());
    let err = salted_digest("sha256", vec![0; 20], vec![], SaltPosition::Prefix).unwrap_err();
    assert!(err.to_string().contains("32 bytes"), "{err}");
    assert!(salted_digest("whirlpool", vec![0; 64], vec![], SaltPosition::Prefix).is_err());
    assert!(Encoding::Hex.decode("salt", "abc").is_err());
    assert_eq!(Encoding::Utf8.decode("salt", "pepper").unwrap(), b"pepper");
}

#[test]
fn parameters_describe_cost_without_secrets() {
    let bcrypt = parse("$2b$12$ZQhSU5AM.Xe6VtnE/.vYK.44jpSEGJGr8LigQwcVZRM9tHg.LrD6y").unwrap();
    assert_eq!(
        (bcrypt.algorithm().as_str(), bcrypt.parameters().as_str()),
        ("bcrypt", "cost 12")
    );
    let sha = parse("$6$rounds=6000$MLRetztF20AK7FrR$x5PidI").unwrap();
    assert_eq!(sha.parameters(), "6000 rounds");
}
