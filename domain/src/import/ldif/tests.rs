//! An OpenLDAP and Active Directory export read entry by entry, broken entries
//! reported with their number and line while the rest is read.

use super::*;
use chrono::TimeZone;

const LDIF: &str = include_str!("../../../tests/fixtures/import/directory.ldif");

fn items() -> Vec<Result<LdifItem, RecordError>> {
    LdifReader::new(LDIF.as_bytes()).collect()
}

fn user(item: &Result<LdifItem, RecordError>) -> &NormalizedUser {
    match item {
        Ok(LdifItem::User(user)) => user,
        other => panic!("not a user: {other:?}"),
    }
}

#[test]
fn openldap_person_with_continuation_lines_base64_and_ssha() {
    let items = items();
    assert!(
        matches!(items[0], Ok(LdifItem::Other)),
        "the base entry is not a user"
    );
    let ada = user(&items[1]);
    assert_eq!(ada.source_id, "6d4c1a52-3b7e-4d7f-9b1e-2c3d4e5f6a7b");
    assert_eq!(ada.username.as_deref(), Some("ada"));
    assert_eq!(
        ada.emails,
        vec![
            Email {
                value: "ada@example.org".into(),
                primary: true,
                verified: None
            },
            Email {
                value: "ada.lovelace@example.org".into(),
                primary: false,
                verified: None
            },
        ]
    );
    assert_eq!(ada.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.status, UserStatus::Active);
    assert_eq!(
        ada.created_at,
        Some(Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).unwrap())
    );
    assert_eq!(
        ada.last_login_at,
        Some(Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap())
    );
    assert_eq!(
        ada.attributes["description"],
        Value::String("First programmer; this line is long enough that the export wraps it onto a continuation line.".into())
    );
    assert_eq!(
        ada.attributes["mail"],
        serde_json::json!(["ada@example.org", "ada.lovelace@example.org"])
    );
    assert!(!ada.attributes.contains_key("userPassword"));
    assert_eq!(ada.credential.as_ref().unwrap().algorithm(), "salted-sha1");
    #[cfg(feature = "verify")]
    {
        let p: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/import/passwords.json"
        ))
        .unwrap();
        assert!(
            ada.credential
                .as_ref()
                .unwrap()
                .verify(p["ldap_password"].as_str().unwrap())
        );
    }

    let juergen = user(&items[2]);
    assert_eq!(juergen.display_name.as_deref(), Some("Jürgen Müller"));
    assert_eq!(
        juergen.source_id, "uid=jürgen,ou=people,dc=example,dc=org",
        "the DN stands in for a missing entryUUID"
    );
    assert_eq!(juergen.status, UserStatus::Disabled);
}

#[test]
fn groups_list_their_members() {
    let items = items();
    assert_eq!(
        items[3],
        Ok(LdifItem::Group {
            name: "engineering".into(),
            dn: "cn=engineering,ou=groups,dc=example,dc=org".into(),
            members: vec![
                "uid=ada,ou=people,dc=example,dc=org".into(),
                "uid=jürgen,ou=people,dc=example,dc=org".into(),
            ],
        })
    );
}

#[test]
fn broken_entries_are_reported_and_reading_goes_on() {
    let items = items();
    assert_eq!(
        items[4].as_ref().unwrap_err().to_string(),
        "entry 5 (line 41): expected \"attribute: value\""
    );
    assert_eq!(
        items[5].as_ref().unwrap_err().to_string(),
        "entry 6 (line 45), field \"jpegPhoto\": values by URL (:<) are not read; inline the value"
    );
    assert_eq!(items.len(), 7);
}

#[test]
fn active_directory_user() {
    let items = items();
    let grace = user(&items[6]);
    assert_eq!(grace.source_id, "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    assert_eq!(grace.username.as_deref(), Some("ghopper"));
    assert_eq!(
        grace.status,
        UserStatus::Disabled,
        "userAccountControl 514 has ACCOUNTDISABLE"
    );
    assert_eq!(
        grace.created_at,
        Some(Utc.with_ymd_and_hms(2019, 3, 4, 5, 6, 7).unwrap())
    );
    assert_eq!(
        grace.last_login_at,
        Some(Utc.with_ymd_and_hms(2023, 5, 31, 9, 46, 40).unwrap())
    );
    assert_eq!(grace.groups, ["Navy"]);
    assert_eq!(
        grace.attributes[GROUP_DNS],
        serde_json::json!(["CN=Navy,OU=Groups,DC=corp,DC=example,DC=com"])
    );
    assert!(
        grace.attributes["objectGUID"]
            .as_str()
            .unwrap()
            .starts_with("base64:")
    );
}

#[test]
fn non_utf8_lines_and_entries_without_dn_are_refused() {
    let items: Vec<_> = LdifReader::new(&b"uid: nodn\n"[..]).collect();
    assert!(
        items[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("must start with dn:")
    );
    let items: Vec<_> = LdifReader::new(&b"dn: x\ncn: caf\xe9\n"[..]).collect();
    assert!(
        items[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("not valid UTF-8")
    );
}

#[test]
fn group_entries_give_their_members_groups_in_either_order() {
    let mut memberships = Memberships::default();
    for item in LdifReader::groups_only(LDIF.as_bytes()) {
        if let Ok(LdifItem::Group { dn, name, members }) = item {
            memberships.add_group(&dn, &name, &members);
        }
    }
    memberships.add_group(
        "cn=ops,ou=groups,dc=example,dc=org",
        "ops",
        &[
            "UID=Ada, OU=People,dc=example,dc=org".into(),
            "ghopper".into(),
        ],
    );
    memberships.add_group(
        "CN=Navy,OU=Groups,DC=corp,DC=example,DC=com",
        "Navy",
        &["ghopper".into()],
    );
    memberships.seal();
    assert_eq!(memberships.len(), 5);
    let items = items();
    let mut ada = user(&items[1]).clone();
    memberships.apply(&mut ada);
    // Groups go by their names; their DNs stay for rules.
    assert_eq!(ada.groups, ["engineering", "ops"]);
    assert_eq!(
        ada.attributes[GROUP_DNS],
        serde_json::json!([
            "cn=engineering,ou=groups,dc=example,dc=org",
            "cn=ops,ou=groups,dc=example,dc=org"
        ])
    );
    let mut juergen = user(&items[2]).clone();
    memberships.apply(&mut juergen);
    assert_eq!(juergen.groups, ["engineering"]);
    // Grace names Navy herself (memberOf): it is not listed twice.
    let grace = items
        .iter()
        .find_map(|i| match i {
            Ok(LdifItem::User(u)) if u.username.as_deref() == Some("ghopper") => Some(u),
            _ => None,
        })
        .unwrap();
    let mut grace = (**grace).clone();
    memberships.apply(&mut grace);
    assert_eq!(grace.groups, ["Navy", "ops"]);
    assert_eq!(group_name(r"cn=R\, D,ou=groups,dc=x"), "R, D");
    assert_eq!(group_name("not a dn"), "not a dn");
}

#[test]
fn the_groups_pass_reads_only_groups() {
    let groups: Vec<_> = LdifReader::groups_only(LDIF.as_bytes())
        .filter(|i| !matches!(i, Ok(LdifItem::Other)))
        .collect();
    assert!(
        groups
            .iter()
            .all(|i| matches!(i, Ok(LdifItem::Group { .. }) | Err(_))),
        "{groups:?}"
    );
    assert_eq!(
        groups
            .iter()
            .filter(|i| matches!(i, Ok(LdifItem::Group { .. })))
            .count(),
        1
    );
}
