//! User types placing users (every test, negation, and/or, first match wins, users in
//! none), their problems, and the impact of a mapping over a data set: rejects per
//! rule with their reasons, uniqueness collisions after transformation, and counts
//! that add up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeZone, Utc};
use domain::{
    import::record::{Email, NormalizedUser, UserStatus},
    mapping::{
        Mapping, Rule,
        impact::{DUPLICATE, Evaluator, ImpactCounter},
        transform::Transform,
    },
    user_types::{Combine, Condition, PasswordStrategy, Test, UserType, UserTypeCounts, UserTypes},
};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

fn user(id: &str, email: &str) -> NormalizedUser {
    NormalizedUser {
        source_id: id.into(),
        emails: vec![Email {
            value: email.into(),
            primary: true,
            verified: Some(true),
        }],
        status: UserStatus::Active,
        ..Default::default()
    }
}

fn condition(test: Test, field: &str, value: &str) -> Condition {
    Condition {
        test,
        field: field.into(),
        value: value.into(),
        negate: false,
    }
}

fn user_type(name: &str, combine: Combine, conditions: Vec<Condition>, include: bool) -> UserType {
    UserType {
        name: name.into(),
        combine,
        conditions,
        include,
        password: PasswordStrategy::ForcedReset,
    }
}

fn holds(c: Condition, u: &NormalizedUser) -> bool {
    let user_types = UserTypes {
        user_types: vec![user_type("s", Combine::All, vec![c], true)],
    };
    user_types.compile(now()).unwrap().place(u) == Some(0)
}

#[test]
fn every_test_reads_the_record_it_names() {
    let mut u = user("u-1", "Ada@Example.COM");
    u.groups = vec!["Engineering".into()];
    u.roles = vec!["admin".into()];
    u.last_login_at = Some(Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap());
    u.attributes
        .insert("department".into(), json!(["Research", "Ops"]));
    u.attributes.insert("title".into(), json!("Countess"));

    assert!(holds(condition(Test::InGroup, "", "engineering"), &u));
    assert!(!holds(condition(Test::InGroup, "", "sales"), &u));
    assert!(holds(condition(Test::HasRole, "", "ADMIN"), &u));
    assert!(holds(condition(Test::EmailDomain, "", "@example.com"), &u));
    assert!(!holds(condition(Test::EmailDomain, "", "example.org"), &u));
    assert!(holds(condition(Test::Status, "", "active"), &u));
    assert!(!holds(condition(Test::Status, "", "disabled"), &u));
    assert!(holds(
        condition(Test::LastLoginBefore, "", "2025-02-01"),
        &u
    ));
    assert!(!holds(
        condition(Test::LastLoginAfter, "", "2025-02-01"),
        &u
    ));
    // An age counts back from the evaluation: 2026-06-01 minus 365 days.
    assert!(holds(condition(Test::LastLoginBefore, "", "365 days"), &u));
    assert!(holds(condition(Test::LastLoginAfter, "", "600d"), &u));
    assert!(!holds(condition(Test::NeverLoggedIn, "", ""), &u));
    assert!(holds(
        condition(Test::Equals, "attributes.department", "ops"),
        &u
    ));
    assert!(holds(
        condition(Test::Contains, "attributes.title", "TESS"),
        &u
    ));
    assert!(holds(condition(Test::Matches, "email", r"^[A-Z]\w+@"), &u));
    assert!(holds(condition(Test::Empty, "attributes.missing", ""), &u));
    assert!(!holds(condition(Test::Empty, "given_name", "x"), &{
        let mut named = u.clone();
        named.given_name = Some("Ada".into());
        named
    }));
    let mut negated = condition(Test::InGroup, "", "engineering");
    negated.negate = true;
    assert!(!holds(negated, &u));

    let mut never = user("u-2", "b@example.com");
    never.last_login_at = None;
    assert!(holds(condition(Test::NeverLoggedIn, "", ""), &never));
    // A user who never logged in did not log in before anything.
    assert!(!holds(
        condition(Test::LastLoginBefore, "", "365 days"),
        &never
    ));
}

#[test]
fn the_first_matching_user_type_wins_and_users_in_none_are_counted() {
    let dormant = user_type(
        "Dormant",
        Combine::Any,
        vec![
            condition(Test::LastLoginBefore, "", "2025-01-01"),
            condition(Test::NeverLoggedIn, "", ""),
        ],
        false,
    );
    let staff = user_type(
        "Staff",
        Combine::All,
        vec![
            condition(Test::EmailDomain, "", "corp.example"),
            condition(Test::Status, "", "active"),
        ],
        true,
    );
    let user_types = UserTypes {
        user_types: vec![dormant, staff],
    };
    let compiled = user_types.compile(now()).unwrap();
    let recent = Some(Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap());
    let mut a = user("a", "a@corp.example");
    a.last_login_at = recent;
    let b = user("b", "b@corp.example"); // never logged in: dormant first
    let mut c = user("c", "c@elsewhere.example");
    c.last_login_at = recent;
    let mut d = user("d", "d@corp.example");
    d.last_login_at = recent;
    d.status = UserStatus::Disabled;

    assert_eq!(compiled.place(&a), Some(1));
    assert_eq!(compiled.place(&b), Some(0));
    assert_eq!(compiled.place(&c), None);
    assert_eq!(compiled.place(&d), None);

    let mut counts = UserTypeCounts::new(compiled.len());
    for u in [&a, &b, &c, &d] {
        counts.add(compiled.place(u), &compiled);
    }
    assert_eq!(counts.user_types, vec![1, 1]);
    assert_eq!(counts.unmatched, 2);
    assert_eq!(counts.moving, 1);
    assert_eq!(counts.counted, 4);

    // A user type without conditions takes everyone left.
    let everyone = UserTypes::default().compile(now()).unwrap();
    assert_eq!(everyone.place(&c), Some(0));
}

#[test]
fn bad_user_types_are_reported_all_at_once_with_their_place() {
    let user_types = UserTypes {
        user_types: vec![
            user_type(
                " ",
                Combine::All,
                vec![
                    condition(Test::Matches, "email", "(unclosed"),
                    condition(Test::LastLoginBefore, "", "last tuesday"),
                    condition(Test::Equals, "nowhere", "x"),
                    condition(Test::Status, "", "sleeping"),
                    condition(Test::InGroup, "", ""),
                ],
                true,
            ),
            user_type("Staff", Combine::All, vec![], true),
            user_type("staff", Combine::All, vec![], true),
        ],
    };
    let problems = user_types.compile(now()).err().unwrap();
    let at: Vec<(Option<usize>, Option<usize>, &str)> = problems
        .iter()
        .map(|p| (p.user_type, p.condition, p.field.as_str()))
        .collect();
    assert_eq!(
        at,
        vec![
            (Some(0), None, "name"),
            (Some(0), Some(0), "value"),
            (Some(0), Some(1), "value"),
            (Some(0), Some(2), "field"),
            (Some(0), Some(3), "value"),
            (Some(0), Some(4), "value"),
            (Some(2), None, "name"),
        ]
    );
    assert!(problems[1].message.contains("regular expression"));
    assert!(problems[2].message.contains("365 days"));
    assert!(
        UserTypes { user_types: vec![] }
            .compile(now())
            .err()
            .unwrap()[0]
            .message
            .contains("at least one")
    );
}

#[test]
fn the_impact_counts_rejects_per_rule_and_collisions_after_transformation() {
    let mapping = Mapping {
        rules: vec![
            Rule::new("userName", "email", vec![Transform::Email]),
            Rule::new("name.givenName", "given_name", vec![]),
            {
                let mut r = Rule::new("title", "attributes.title", vec![]);
                r.required = true;
                r
            },
        ],
    };
    let user_types = UserTypes {
        user_types: vec![
            user_type(
                "Leavers",
                Combine::All,
                vec![condition(Test::Status, "", "disabled")],
                false,
            ),
            user_type(
                "Example",
                Combine::All,
                vec![condition(Test::EmailDomain, "", "example.com")],
                true,
            ),
        ],
    };
    let evaluator = Evaluator {
        mapping: mapping.compile(None).unwrap(),
        user_types: user_types.compile(now()).unwrap(),
    };
    let titled = |mut u: NormalizedUser| {
        u.attributes.insert("title".into(), json!("Dr"));
        u
    };
    let users = vec![
        titled(user("1", "ada@example.com")),
        // The same address once trimmed and lower-cased: a collision.
        titled(user("2", "  ADA@Example.com ")),
        // Not an address at all, and no title.
        user("3", "ada lovelace@example.com"),
        // Left behind: disabled.
        {
            let mut u = user("4", "ada@example.com");
            u.status = UserStatus::Disabled;
            u
        },
        // In no user type.
        titled(user("5", "grace@elsewhere.example")),
        titled(user("6", "grace@example.com")),
    ];
    let mut counter = ImpactCounter::new(&mapping, 2);
    for u in &users {
        counter.add(&u.source_id, evaluator.evaluate(u), &evaluator.user_types);
    }
    let report = counter.finish();

    assert_eq!(report.records, 6);
    assert_eq!(report.user_types.user_types, vec![1, 4]);
    assert_eq!(report.user_types.unmatched, 1);
    assert_eq!(report.unmatched_examples, vec!["5"]);
    assert_eq!(report.left_behind(), 1);
    assert_eq!(report.accepted, 2);
    assert_eq!(report.rejected, 2);
    assert_eq!(
        report.accepted + report.rejected + report.left_behind() + report.user_types.unmatched,
        report.records
    );

    let user_name = &report.rules[0];
    assert_eq!(user_name.target, "userName");
    assert_eq!(user_name.rejected, 2);
    assert_eq!(user_name.collisions, 1);
    assert_eq!(user_name.examples, vec!["2", "3"]);
    let reasons: Vec<(&str, u64)> = user_name
        .reasons
        .iter()
        .map(|r| (r.message.as_str(), r.count))
        .collect();
    assert_eq!(
        reasons,
        vec![(DUPLICATE, 1), ("is not an e-mail address", 1)]
    );
    assert_eq!(report.collisions.len(), 1);
    assert_eq!(report.collisions[0].first, "1");
    assert_eq!(report.collisions[0].second, "2");
    assert_eq!(report.collisions[0].value, "ada@example.com");

    assert_eq!(report.rules[1].rejected, 0);
    assert_eq!(report.rules[2].rejected, 1);
    assert_eq!(report.failing(2), ["3".to_string()]);
}

/// User types saved before they had that name in code read as saved: the stored JSON
/// still says `segments` (and a run's settings and an impact's counts with it).
#[test]
fn user_types_stored_under_their_earlier_name_read() {
    let stored = json!({"segments": [{"name": "Everyone", "include": true}]});
    let read: UserTypes = serde_json::from_value(stored).unwrap();
    assert_eq!(read.user_types.len(), 1);
    assert_eq!(read.user_types[0].name, "Everyone");
    let counts: UserTypeCounts = serde_json::from_value(
        json!({"segments": [3, 4], "unmatched": 1, "moving": 7, "counted": 8}),
    )
    .unwrap();
    assert_eq!(counts.user_types, vec![3, 4]);
    // Written again, the current name.
    let written = serde_json::to_value(&read).unwrap();
    assert!(written.get("user_types").is_some(), "{written}");
}
