//! The CSV flavours read into whole expected records, and every kind of bad row.

use super::*;
use crate::import::record::{Email, Phone, UserStatus};
use crate::passwords::parse;
use chrono::{TimeZone, Utc};
use serde_json::json;

fn read(text: &str) -> Vec<Result<NormalizedUser, RecordError>> {
    let delimiter = sniff_delimiter(text.as_bytes());
    CsvUsers::new(text.as_bytes(), delimiter).unwrap().collect()
}

fn users(text: &str) -> Vec<NormalizedUser> {
    read(text).into_iter().map(Result::unwrap).collect()
}

fn attrs(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<chrono::DateTime<Utc>> {
    Some(Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap())
}

fn email(value: &str, primary: bool, verified: Option<bool>) -> Email {
    Email {
        value: value.into(),
        primary,
        verified,
    }
}

#[test]
fn generic_csv_with_quotes_multiline_values_and_a_hash() {
    let read = users(include_str!("../../../tests/fixtures/import/generic.csv"));
    let ada = NormalizedUser {
        source_id: "1001".into(),
        emails: vec![email("ada@example.com", true, Some(true))],
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        status: UserStatus::Active,
        created_at: at(2021, 3, 4, 5, 6, 7),
        last_login_at: at(2024, 5, 6, 7, 8, 9),
        groups: vec!["engineering".into(), "admins".into()],
        attributes: attrs(&[
            ("id", "1001"),
            ("email", "ada@example.com"),
            ("email_verified", "true"),
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
            ("groups", "engineering;admins"),
            ("created_at", "2021-03-04T05:06:07Z"),
            ("last_login", "2024-05-06 07:08:09"),
            ("status", "active"),
            ("department", "R&D"),
        ]),
        credential: Some(
            parse("$2b$05$ZQhSU5AM.Xe6VtnE/.vYK.44jpSEGJGr8LigQwcVZRM9tHg.LrD6y").unwrap(),
        ),
        ..Default::default()
    };
    let grace = NormalizedUser {
        source_id: "1002".into(),
        emails: vec![email("grace@example.com", true, Some(false))],
        given_name: Some("Grace".into()),
        family_name: Some("Hopper, Jr.".into()),
        created_at: at(2021, 3, 4, 0, 0, 0),
        attributes: attrs(&[
            ("id", "1002"),
            ("email", "grace@example.com"),
            ("email_verified", "false"),
            ("first_name", "Grace"),
            ("last_name", "Hopper, Jr."),
            ("created_at", "2021-03-04"),
            ("department", "Navy\nReserve"),
        ]),
        ..Default::default()
    };
    assert_eq!(read, vec![ada, grace]);
}

#[test]
fn okta_csv_with_bom_semicolons_and_crlf() {
    let text =
        String::from_utf8(include_bytes!("../../../tests/fixtures/import/okta.csv").to_vec())
            .unwrap();
    assert_eq!(sniff_delimiter(text.as_bytes()), b';');
    let read = users(&text);
    assert_eq!(read.len(), 2);
    let ada = &read[0];
    assert_eq!(ada.source_id, "00u1abcd");
    assert_eq!(ada.username.as_deref(), Some("ada@example.com"));
    assert_eq!(
        ada.emails,
        vec![
            email("ada@example.com", true, None),
            email("ada.l@example.org", false, None)
        ]
    );
    assert_eq!(
        ada.phones,
        vec![Phone {
            value: "+44 20 7946 0000".into(),
            kind: Some("mobile".into()),
            primary: true
        }]
    );
    assert_eq!(ada.status, UserStatus::Active);
    assert_eq!(ada.last_login_at, at(2024, 1, 2, 3, 4, 5));
    assert!(
        ada.attributes.contains_key("Id"),
        "the BOM is not part of the first header"
    );
    assert_eq!(read[1].status, UserStatus::Pending);
    assert_eq!(read[1].last_login_at, None);
}

#[test]
fn cognito_csv() {
    let read = users(include_str!("../../../tests/fixtures/import/cognito.csv"));
    let ada = &read[0];
    assert_eq!(ada.source_id, "7d6f2c1e-0b1a-4c59-9a43-6f7e1d2c3b4a");
    assert_eq!(ada.username.as_deref(), Some("ada"));
    assert_eq!(ada.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.emails, vec![email("ada@example.com", true, Some(true))]);
    assert_eq!(ada.phones[0].value, "+14155550100");
    assert_eq!(ada.status, UserStatus::Active);
    assert_eq!(ada.created_at, at(2022, 6, 1, 10, 0, 0));
    assert_eq!(
        read[1].status,
        UserStatus::Disabled,
        "Enabled=false wins over the status"
    );
}

#[test]
fn entra_id_csv() {
    let read = users(include_str!("../../../tests/fixtures/import/entra.csv"));
    let ada = &read[0];
    assert_eq!(ada.source_id, "8c1b1b7e-2f6a-4d3e-9b1a-5c4d3e2f1a0b");
    assert_eq!(ada.username.as_deref(), Some("ada@contoso.onmicrosoft.com"));
    assert_eq!(ada.emails, vec![email("ada@contoso.com", true, None)]);
    assert_eq!(
        (ada.given_name.as_deref(), ada.family_name.as_deref()),
        (Some("Ada"), Some("Lovelace"))
    );
    assert_eq!(ada.status, UserStatus::Active);
    assert_eq!(
        ada.attributes["state"],
        json!("London"),
        "an address state is not a status"
    );
    assert_eq!(ada.attributes["jobTitle"], json!("Engineer"));
}

#[test]
fn bad_rows_are_reported_with_line_and_field_and_good_rows_kept() {
    let read = read(include_str!("../../../tests/fixtures/import/bad.csv"));
    let good: Vec<String> = read
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|u| u.source_id.clone())
        .collect();
    // A bad date or hash is no reason to lose a user: both are kept, the fields
    // recorded as unreadable (the hash as an unusable credential).
    assert_eq!(good, ["a1", "a3", "a5", "a6"]);
    let kept = |id: &str| {
        read.iter()
            .filter_map(|r| r.as_ref().ok())
            .find(|u| u.source_id == id)
            .unwrap()
            .clone()
    };
    let a3 = kept("a3");
    assert_eq!(a3.created_at, None);
    assert_eq!(
        (
            a3.unreadable[0].field.as_str(),
            a3.unreadable[0].reason.as_str()
        ),
        ("created_at", "is not a date and time Ferry can read")
    );
    assert_eq!(
        a3.attributes["created_at"],
        json!("not a date"),
        "the raw value stays"
    );
    let a5 = kept("a5");
    assert_eq!(a5.credential.as_ref().unwrap().algorithm(), "unusable");
    assert_eq!(a5.unreadable[0].field, "password_hash");
    assert!(
        !a5.attributes.contains_key("password_hash"),
        "a secret is no attribute"
    );
    assert!(!format!("{:?}", a5.unreadable).contains("plaintext-secret"));
    let errors: Vec<String> = read
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "line 3: 2 fields where the header has 4",
            "line 5: no id, username or e-mail address",
        ]
    );
    assert!(
        !errors.concat().contains("plaintext-secret"),
        "a bad hash never reaches the error list"
    );
}

#[test]
fn files_without_a_usable_header_are_refused_in_one_sentence() {
    let err = CsvUsers::new("colour,size\nred,9\n".as_bytes(), b',')
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "line 1: no column of the header row identifies a user: name one column id, \
         username or email; the header row has 2 columns"
    );
    // A file without a header row: its first user is not quoted, hash least of all.
    let err = CsvUsers::new(
        "alice,alice@example.com,$2b$10$abcdefghijklmnopqrstuv\n".as_bytes(),
        b',',
    )
    .err()
    .unwrap()
    .to_string();
    assert!(!err.contains("alice") && !err.contains("$2b$"), "{err}");
    assert!(
        err.contains("column 2 holds what looks like an e-mail address"),
        "{err}"
    );
    let err = CsvUsers::new("".as_bytes(), b',').err().unwrap();
    assert!(err.to_string().contains("no header row"), "{err}");
    let err = CsvUsers::new(&b"id,\xff\xfe\n1,2\n"[..], b',')
        .err()
        .unwrap();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn invalid_utf8_in_a_row_names_the_field() {
    let read: Vec<_> = CsvUsers::new(&b"id,name\n1,caf\xe9\n2,ok\n"[..], b',')
        .unwrap()
        .collect();
    // Kept, with the field recorded; only an identifying column refuses the user.
    let first = read[0].as_ref().unwrap();
    assert_eq!(first.unreadable[0].field, "name");
    assert!(first.unreadable[0].reason.contains("not valid UTF-8"));
    assert!(read[1].is_ok());
    let read: Vec<_> = CsvUsers::new(
        &b"id,name
caf\xe9,x\n"[..],
        b',',
    )
    .unwrap()
    .collect();
    assert_eq!(
        read[0].as_ref().unwrap_err().to_string(),
        "line 2, field \"id\": is not valid UTF-8 (choose the file's encoding)"
    );
}
