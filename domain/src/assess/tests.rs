//! The report of five crafted users, every number checked against counts made by hand.

use super::*;
use crate::{
    import::record::{Email, Phone, Unreadable},
    passwords::{Credential, Digest},
};
use chrono::TimeZone;
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

fn days_ago(days: i64) -> Option<DateTime<Utc>> {
    Some(now() - chrono::Duration::days(days))
}

fn email(value: &str, verified: Option<bool>) -> Email {
    Email {
        value: value.into(),
        primary: true,
        verified,
    }
}

fn attributes(value: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    serde_json::from_value(value).unwrap()
}

fn users() -> Vec<(UploadId, NormalizedUser)> {
    let a = UploadId(uuid::Uuid::from_u128(1));
    let b = UploadId(uuid::Uuid::from_u128(2));
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (
            a,
            NormalizedUser {
                source_id: "u1".into(),
                username: Some("ada".into()),
                emails: vec![email("ada@example.com", Some(true))],
                phones: vec![Phone {
                    value: "+44 20 7946 0958".into(),
                    kind: None,
                    primary: true,
                }],
                given_name: Some("Ada".into()),
                family_name: Some("Lovelace".into()),
                status: UserStatus::Active,
                created_at: Some(Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap()),
                last_login_at: days_ago(10),
                groups: strings(&["admins", "eng"]),
                roles: strings(&["admin"]),
                attributes: attributes(json!({
                    "department": "Eng",
                    "email": "ada@example.com",
                    "mfa_secret": "JBSWY3DPEHPK3PXP",
                    "birthdate": "1815-12-10",
                    "address": {"city": "London"},
                })),
                credential: Some(Credential::Bcrypt {
                    hash: "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy".into(),
                }),
                ..Default::default()
            },
        ),
        (
            a,
            NormalizedUser {
                source_id: "u2".into(),
                username: Some("ADA".into()),
                emails: vec![email("Ada@Example.com", Some(false))],
                phones: vec![Phone {
                    value: "555-0100".into(),
                    kind: None,
                    primary: true,
                }],
                given_name: Some("Ada".into()),
                status: UserStatus::Disabled,
                last_login_at: days_ago(60),
                groups: strings(&["eng"]),
                attributes: attributes(json!({"department": "Eng", "birthdate": "not a date"})),
                ..Default::default()
            },
        ),
        (
            a,
            NormalizedUser {
                source_id: "u3".into(),
                status: UserStatus::Unknown,
                attributes: attributes(json!({"department": "Sales", "birthdate": "2999-01-01"})),
                credential: Some(Credential::Pbkdf2 {
                    digest: Digest::Sha256,
                    iterations: 27500,
                    salt: vec![1; 16],
                    hash: vec![2; 32],
                }),
                unreadable: vec![
                    Unreadable {
                        field: "email_verified".into(),
                        reason: "is not true or false".into(),
                    },
                    // Counted as a date that cannot be read, from the raw attribute.
                    Unreadable {
                        field: "last_login".into(),
                        reason: crate::import::fields::NOT_A_TIME.into(),
                    },
                ],
                ..Default::default()
            },
        ),
        (
            a,
            NormalizedUser {
                source_id: "u4".into(),
                username: Some("grace".into()),
                emails: vec![email("grace@@example", None)],
                status: UserStatus::Pending,
                created_at: Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()),
                last_login_at: days_ago(200),
                groups: strings(&["eng", "ops", "sales", "x", "y", "z"]),
                attributes: attributes(json!({"department": "Eng", "tags": ["a", "b"]})),
                ..Default::default()
            },
        ),
        (
            b,
            NormalizedUser {
                source_id: "u5".into(),
                username: Some("linus".into()),
                emails: vec![email("linus@example.org", None)],
                status: UserStatus::Unknown,
                last_login_at: days_ago(400),
                groups: strings(&["ops"]),
                attributes: attributes(json!({"department": "Ops"})),
                ..Default::default()
            },
        ),
    ]
}

fn assess() -> (Report, Vec<Finding>) {
    let mut assessor = Assessor::new(AssessOptions { phone_region: None }, now());
    let mut findings = Vec::new();
    for (upload, user) in users() {
        assessor.add(upload, &user, &mut |f| findings.push(f));
    }
    (assessor.finish(), findings)
}

fn named(list: &[NamedCount]) -> Vec<(&str, u64)> {
    list.iter().map(|n| (n.name.as_str(), n.count)).collect()
}

fn attribute<'a>(report: &'a Report, path: &str) -> &'a AttributeReport {
    report
        .attributes
        .iter()
        .find(|a| a.path == path)
        .unwrap_or_else(|| panic!("no attribute {path}"))
}

#[test]
fn totals_count_users_by_status_password_and_email() {
    let (report, _) = assess();
    let expected = Totals {
        users: 5,
        active: 1,
        disabled: 1,
        pending: 1,
        status_unknown: 2,
        with_password: 2,
        without_password: 3,
        email_verified: 1,
        email_unverified: 1,
        email_verification_unknown: 2,
        without_email: 1,
    };
    assert_eq!(report.totals, expected);
    assert_eq!(report.uploads.len(), 2);
    assert_eq!(report.uploads[0].totals.users, 4);
    assert_eq!(report.uploads[0].totals.with_password, 2);
    assert_eq!(report.uploads[1].totals.users, 1);
    assert_eq!(report.uploads[1].totals.email_verification_unknown, 1);
    let credentials: Vec<(&str, &str, u64)> = report
        .credentials
        .iter()
        .map(|c| (c.algorithm.as_str(), c.parameters.as_str(), c.users))
        .collect();
    assert_eq!(
        credentials,
        [
            ("bcrypt", "cost 10", 1),
            ("pbkdf2-sha256", "27500 iterations, 32 bytes", 1)
        ]
    );
}

#[test]
fn attributes_have_fill_distinct_length_type_and_top_values() {
    let (report, _) = assess();
    let department = attribute(&report, "department");
    assert_eq!(
        (department.filled, department.values, department.distinct),
        (5, 5, 3)
    );
    assert!(department.distinct_exact);
    assert_eq!(department.uniqueness, Uniqueness::NotUnique);
    assert_eq!((department.min_length, department.max_length), (3, 5));
    assert_eq!(department.average_length, 3.4);
    assert_eq!(department.value_type, ValueType::Text);
    assert_eq!(
        named(&department.top),
        [("Eng", 3), ("Ops", 1), ("Sales", 1)]
    );
    assert_eq!(department.class, DataClass::Other);

    let birthdate = attribute(&report, "birthdate");
    assert_eq!((birthdate.filled, birthdate.distinct), (3, 3));
    assert_eq!(birthdate.uniqueness, Uniqueness::Unique);
    // Two dates and one text of three: not nine in ten, so free text.
    assert_eq!(birthdate.value_type, ValueType::Text);
    assert_eq!(birthdate.class, DataClass::Pii);
    assert_eq!(birthdate.class_reason, "the name says a birth date");

    let email = attribute(&report, "email");
    assert_eq!(email.value_type, ValueType::Email);
    assert_eq!(email.class, DataClass::Pii);
    assert_eq!(attribute(&report, "address.city").class, DataClass::Pii);

    let tags = attribute(&report, "tags[]");
    assert_eq!((tags.filled, tags.values, tags.distinct), (1, 2, 2));
    assert_eq!(tags.uniqueness, Uniqueness::Unique);

    let secret = attribute(&report, "mfa_secret");
    assert_eq!(secret.class, DataClass::Confidential);
    assert!(secret.examples.is_empty() && secret.top.is_empty());
    assert_eq!(report.attributes.len(), 6);
    // Most filled first.
    assert_eq!(report.attributes[0].path, "department");
}

#[test]
fn groups_roles_and_users_per_group() {
    let (report, _) = assess();
    assert_eq!(
        named(&report.groups),
        [
            ("eng", 3),
            ("ops", 2),
            ("admins", 1),
            ("sales", 1),
            ("x", 1),
            ("y", 1),
            ("z", 1)
        ]
    );
    assert_eq!(named(&report.roles), [("admin", 1)]);
    assert_eq!(
        named(&report.users_by_group_count),
        [("0", 1), ("1", 2), ("2", 1), ("3", 0), ("4", 0), ("5+", 1)]
    );
}

#[test]
fn quality_checks_find_each_crafted_flaw() {
    let (report, findings) = assess();
    let counts: Vec<(Check, u64)> = report.quality.iter().map(|q| (q.check, q.count)).collect();
    assert_eq!(
        counts,
        [
            (Check::InvalidEmail, 1),
            (Check::DuplicateEmail, 2),
            (Check::UsernameCollision, 2),
            (Check::PhoneNotE164, 1),
            (Check::FutureDate, 2),
            (Check::UnparseableDate, 1),
            (Check::MissingUserName, 1),
            (Check::MissingEmail, 1),
            (Check::MissingName, 3),
            (Check::UnreadableField, 1),
        ]
    );
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.check == Check::UnreadableField)
            .map(|f| (f.source_id.as_str(), f.field.as_deref()))
            .collect::<Vec<_>>(),
        [("u3", Some("email_verified"))]
    );
    let of = |check: Check| -> Vec<(&str, Option<&str>)> {
        findings
            .iter()
            .filter(|f| f.check == check)
            .map(|f| (f.source_id.as_str(), f.field.as_deref()))
            .collect()
    };
    assert_eq!(of(Check::InvalidEmail), [("u4", Some("emails"))]);
    assert_eq!(
        of(Check::DuplicateEmail),
        [("u1", Some("emails")), ("u2", Some("emails"))]
    );
    assert_eq!(
        of(Check::UsernameCollision),
        [("u1", Some("username")), ("u2", Some("username"))]
    );
    assert_eq!(of(Check::PhoneNotE164), [("u2", Some("phones"))]);
    assert_eq!(
        of(Check::FutureDate),
        [("u3", Some("birthdate")), ("u4", Some("created_at"))]
    );
    assert_eq!(of(Check::UnparseableDate), [("u2", Some("birthdate"))]);
    assert_eq!(
        of(Check::MissingName),
        [
            ("u3", Some("name")),
            ("u4", Some("name")),
            ("u5", Some("name"))
        ]
    );
    let duplicate = findings
        .iter()
        .find(|f| f.check == Check::DuplicateEmail && f.source_id == "u1")
        .unwrap();
    assert_eq!(duplicate.note, "shares its e-mail address with u2");
    // Findings name records and fields, never the values.
    assert!(findings.iter().all(|f| !f.note.contains("example")));
    assert_eq!(
        findings.len() as u64,
        counts.iter().map(|(_, n)| n).sum::<u64>()
    );
}

#[test]
fn phones_with_a_project_region_convert() {
    let mut assessor = Assessor::new(
        AssessOptions {
            phone_region: Some("US".into()),
        },
        now(),
    );
    let user = NormalizedUser {
        source_id: "p".into(),
        phones: vec![Phone {
            value: "(201) 555-0123".into(),
            kind: None,
            primary: true,
        }],
        ..Default::default()
    };
    let mut findings = Vec::new();
    assessor.add(UploadId(uuid::Uuid::nil()), &user, &mut |f| {
        findings.push(f)
    });
    assert!(!findings.iter().any(|f| f.check == Check::PhoneNotE164));
}

#[test]
fn activity_has_recency_buckets_and_a_heatmap_in_any_zone() {
    let (report, _) = assess();
    assert_eq!(
        named(&report.recency),
        [
            ("within 30 days", 1),
            ("31–90 days", 1),
            ("91–365 days", 1),
            ("over a year", 1),
            ("never", 1)
        ]
    );
    // u1 last signed in on Wednesday 2026-11-11 at 12:00 UTC.
    let utc = heatmap(&report.logins, chrono_tz::UTC);
    assert_eq!(utc[2][12], 1);
    assert_eq!(utc.iter().flatten().sum::<u64>(), 4);
    let kolkata = heatmap(&report.logins, chrono_tz::Asia::Kolkata);
    assert_eq!(kolkata[2][17], 1, "12:00 UTC is 17:30 in Kolkata");
    let auckland = heatmap(&report.logins, chrono_tz::Pacific::Auckland);
    assert_eq!(
        auckland[3][1], 1,
        "and 01:00 on Thursday in Auckland (NZDT)"
    );
}

#[test]
fn distinct_counts_are_exact_far_past_the_top_values_and_estimates_never_exceed_the_total() {
    let mut assessor = Assessor::new(AssessOptions { phone_region: None }, now());
    for i in 0..5_000 {
        let user = NormalizedUser {
            source_id: format!("id-{i}"),
            attributes: attributes(
                json!({"code": format!("c{i}"), "kind": format!("k{}", i % 2),
                "twice": format!("t{}", i / 2)}),
            ),
            ..Default::default()
        };
        assessor.add(UploadId(uuid::Uuid::nil()), &user, &mut |_| {});
    }
    let report = assessor.finish();
    // Five thousand values: counted, not guessed (a legacy id column is unique).
    let code = attribute(&report, "code");
    assert_eq!((code.distinct, code.distinct_exact), (5_000, true));
    assert_eq!(code.uniqueness, Uniqueness::Unique);
    let twice = attribute(&report, "twice");
    assert_eq!((twice.distinct, twice.distinct_exact), (2_500, true));
    assert_eq!(twice.uniqueness, Uniqueness::NotUnique);
    let kind = attribute(&report, "kind");
    assert_eq!((kind.distinct, kind.distinct_exact), (2, true));
    assert_eq!(kind.top.len(), 2);

    // Past the digests' bound the sketch estimates, never above the values counted.
    let mut assessor = Assessor::new(AssessOptions { phone_region: None }, now());
    let many = 260_000;
    for i in 0..many {
        let user = NormalizedUser {
            source_id: format!("id-{i}"),
            attributes: attributes(json!({"code": format!("c{i}")})),
            ..Default::default()
        };
        assessor.add(UploadId(uuid::Uuid::nil()), &user, &mut |_| {});
    }
    let report = assessor.finish();
    let code = attribute(&report, "code");
    assert!(!code.distinct_exact);
    assert!(code.distinct <= many, "{}", code.distinct);
    assert!(code.distinct >= many * 97 / 100, "{}", code.distinct);
    assert_eq!(code.uniqueness, Uniqueness::LikelyUnique);
}

#[test]
fn personal_top_values_are_masked_even_in_an_attribute_of_mixed_values() {
    let mut assessor = Assessor::new(AssessOptions::default(), now());
    for (id, raw) in [("a", "1029384756"), ("b", "ada@example.com")] {
        let user = NormalizedUser {
            source_id: id.into(),
            attributes: attributes(json!({ "rawId": raw, "department": "Eng" })),
            ..Default::default()
        };
        assessor.add(UploadId(uuid::Uuid::nil()), &user, &mut |_| {});
    }
    let report = assessor.finish().masked();
    let raw = attribute(&report, "rawId");
    assert_eq!(raw.class, DataClass::Other);
    let shown: Vec<&str> = raw.top.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(shown, ["1029384756", "a••@e••••••.com"]);
    assert_eq!(attribute(&report, "department").top[0].name, "Eng");
}

#[test]
fn flags_and_times_named_like_personal_data_are_not_personal_nor_masked() {
    let mut assessor = Assessor::new(AssessOptions::default(), now());
    for (id, verified, login) in [
        ("a", "true", "2026-01-02T03:04:05Z"),
        ("b", "false", "2026-02-03T04:05:06Z"),
    ] {
        let user = NormalizedUser {
            source_id: id.into(),
            attributes: attributes(
                json!({ "email_verified": verified, "last_login": login, "email": "ada@example.com" }),
            ),
            ..Default::default()
        };
        assessor.add(UploadId(uuid::Uuid::nil()), &user, &mut |_| {});
    }
    let report = assessor.finish().masked();
    let verified = attribute(&report, "email_verified");
    assert_eq!(
        verified.class,
        DataClass::Other,
        "{}",
        verified.class_reason
    );
    assert!(
        verified.examples.iter().any(|e| e == "true"),
        "{:?}",
        verified.examples
    );
    let login = attribute(&report, "last_login");
    assert_eq!(login.class, DataClass::Other, "{}", login.class_reason);
    assert_eq!(login.examples[0], "2026-01-02T03:04:05Z");
    let email = attribute(&report, "email");
    assert_eq!(email.class, DataClass::Pii);
    assert_eq!(email.examples[0], "a••@e••••••.com");
}

#[test]
fn permissions_are_counted_where_the_export_names_them() {
    let mut assessor = Assessor::new(AssessOptions::default(), now());
    let user = NormalizedUser {
        source_id: "p".into(),
        attributes: attributes(json!({
            "app_metadata": {"permissions": ["read:users", "write:users"]},
            "scopes": ["openid"],
        })),
        ..Default::default()
    };
    assessor.add(UploadId(uuid::Uuid::nil()), &user, &mut |_| {});
    let report = assessor.finish();
    assert_eq!(
        named(&report.permissions),
        [("openid", 1), ("read:users", 1), ("write:users", 1)]
    );
}

#[test]
fn masks_keep_only_first_letters() {
    assert_eq!(mask("ada@example.com"), "a••@e••••••.com");
    assert_eq!(mask("Lovelace"), "L••••••");
    assert_eq!(mask("x"), "x•");
    assert_eq!(mask(""), "");
    assert_eq!(mask("Zoë"), "Z••");
}
