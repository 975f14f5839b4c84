//! Unit tests of the mapping engine: every source field and transform (bad inputs
//! included), target paths, the checks against a target's schemas, and whole records
//! mapped into SCIM resources.

use super::{
    Mapping, Rule,
    source::{Expression, SourceField, Value},
    target::{Selector, TargetPath},
    transform::Transform,
};
use crate::{
    import::record::{Email, NormalizedUser, Phone, UserStatus},
    scim::discovery::{
        Discovery, parse_resource_types, parse_schemas, parse_service_provider_config,
    },
};
use serde_json::json;
use std::collections::BTreeMap;

fn ada() -> NormalizedUser {
    let mut attributes = BTreeMap::new();
    attributes.insert("department".into(), json!(["Engineering"]));
    attributes.insert("aliases".into(), json!(["ada", "countess"]));
    attributes.insert("address".into(), json!({"city": "London", "zip": 12345}));
    attributes.insert("vip".into(), json!("yes"));
    attributes.insert("hired".into(), json!("03/12/1842"));
    attributes.insert(
        "app_metadata".into(),
        json!({"plan": "gold", "mfa_secret": "JBSWY3DPEHPK3PXP",
               "nested": {"password_hash": "$2b$10$abcdefghijklmnopqrstuv", "tier": 2}}),
    );
    NormalizedUser {
        source_id: "u-1".into(),
        username: Some("ada".into()),
        emails: vec![
            Email {
                value: " Ada@Example.COM ".into(),
                primary: true,
                verified: Some(true),
            },
            Email {
                value: "ada@home.example".into(),
                primary: false,
                verified: None,
            },
        ],
        phones: vec![Phone {
            value: "(202) 555-0143".into(),
            kind: Some("mobile".into()),
            primary: true,
        }],
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        display_name: None,
        status: UserStatus::Active,
        created_at: chrono::DateTime::from_timestamp(1_600_000_000, 0),
        last_login_at: None,
        groups: vec!["eng".into(), "admins".into()],
        roles: Vec::new(),
        attributes,
        credential: None,
        unreadable: Vec::new(),
    }
}

fn read(source: &str) -> Value {
    Expression::parse(source).unwrap().read(&ada())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn an_object_read_whole_never_carries_the_secrets_inside_it() {
    let Value::Text(whole) = read("attributes.app_metadata") else {
        panic!("an object reads as its JSON text");
    };
    assert!(whole.contains("gold") && whole.contains("tier"), "{whole}");
    assert!(
        !whole.contains("JBSWY3DPEHPK3PXP") && !whole.contains("$2b$"),
        "{whole}"
    );
}

#[test]
fn every_normalized_field_and_attribute_path_reads() {
    assert_eq!(read("source_id"), text("u-1"));
    assert_eq!(read("username"), text("ada"));
    assert_eq!(read("email"), text(" Ada@Example.COM "));
    assert_eq!(read("email_verified"), Value::Bool(true));
    assert_eq!(
        read("emails"),
        Value::List(vec![" Ada@Example.COM ".into(), "ada@home.example".into()])
    );
    assert_eq!(read("phone"), text("(202) 555-0143"));
    assert_eq!(read("given_name"), text("Ada"));
    assert_eq!(read("display_name"), Value::Missing);
    assert_eq!(read("status"), text("active"));
    assert_eq!(read("active"), Value::Bool(true));
    assert_eq!(read("created_at"), text("2020-09-13T12:26:40Z"));
    assert_eq!(read("last_login_at"), Value::Missing);
    assert_eq!(
        read("groups"),
        Value::List(vec!["eng".into(), "admins".into()])
    );
    // Keycloak writes every attribute as a list: one element reads as its text.
    assert_eq!(read("attributes.department"), text("Engineering"));
    assert_eq!(
        read("attributes.aliases"),
        Value::List(vec!["ada".into(), "countess".into()])
    );
    assert_eq!(read("attributes.address.city"), text("London"));
    assert_eq!(read("attributes.address.zip"), text("12345"));
    assert_eq!(read("attributes.nothing"), Value::Missing);
    assert!(
        SourceField::parse("mail")
            .unwrap_err()
            .contains("attributes.NAME")
    );
    assert!(SourceField::parse("attributes.a..b").is_err());
}

#[test]
fn templates_join_fields_and_fail_as_a_whole() {
    assert_eq!(read("{given_name}.{family_name}"), text("Ada.Lovelace"));
    assert_eq!(read("{{{username}}}"), text("{ada}"));
    assert_eq!(read("{given_name} {display_name}"), Value::Missing);
    assert!(
        Expression::parse("{given_name")
            .unwrap_err()
            .contains("not closed")
    );
    assert!(Expression::parse("given_name}").is_err());
    assert!(Expression::parse("{nope}").is_err());
}

fn apply(transform: Transform, value: Value) -> Result<Value, String> {
    transform.compile().unwrap().apply(value)
}

#[test]
fn every_transform_does_its_work_and_says_why_it_cannot() {
    assert_eq!(apply(Transform::Trim, text("  a ")), Ok(text("a")));
    assert_eq!(apply(Transform::Lower, text("ÄB")), Ok(text("äb")));
    assert_eq!(
        apply(Transform::Upper, Value::List(vec!["a".into()])),
        Ok(Value::List(vec!["A".into()]))
    );
    let split = |index| Transform::Split {
        separator: ";".into(),
        index,
    };
    assert_eq!(
        apply(split(None), text("a; b;;c")),
        Ok(Value::List(vec!["a".into(), "b".into(), "c".into()]))
    );
    assert_eq!(apply(split(Some(1)), text("a;b")), Ok(text("b")));
    assert_eq!(apply(split(Some(5)), text("a;b")), Ok(Value::Missing));
    let join = Transform::Join {
        separator: "|".into(),
    };
    assert_eq!(
        apply(join, Value::List(vec!["a".into(), "b".into()])),
        Ok(text("a|b"))
    );
    let replace = Transform::Replace {
        pattern: r"^(\w+)@.*$".into(),
        replacement: "$1".into(),
    };
    assert_eq!(apply(replace, text("ada@example.com")), Ok(text("ada")));
    assert_eq!(
        apply(Transform::Truncate { max: 3 }, text("Lovelace")),
        Ok(text("Lov"))
    );
    assert_eq!(
        apply(Transform::Date { format: None }, text("1600000000000")),
        Ok(text("2020-09-13T12:26:40Z"))
    );
    assert_eq!(
        apply(
            Transform::Date {
                format: Some("%d/%m/%Y".into())
            },
            text("03/12/1842")
        ),
        Ok(text("1842-12-03T00:00:00Z"))
    );
    assert!(
        apply(Transform::Date { format: None }, text("next tuesday"))
            .unwrap_err()
            .contains("not a date")
    );
    assert_eq!(
        apply(
            Transform::Phone {
                region: Some("US".into())
            },
            text("(202) 555-0143")
        ),
        Ok(text("+12025550143"))
    );
    assert!(
        apply(Transform::Phone { region: None }, text("555"))
            .unwrap_err()
            .contains("E.164")
    );
    assert_eq!(
        apply(Transform::Email, text(" Ada@Example.COM ")),
        Ok(text("ada@example.com"))
    );
    assert!(
        apply(Transform::Email, text("ada@@example"))
            .unwrap_err()
            .contains("not an e-mail")
    );
    let table: BTreeMap<String, String> = [("eng".to_string(), "Engineering".to_string())].into();
    let lookup = |default: Option<&str>| Transform::Lookup {
        table: table.clone(),
        default: default.map(str::to_string),
    };
    assert_eq!(apply(lookup(None), text("eng")), Ok(text("Engineering")));
    assert_eq!(apply(lookup(Some("Other")), text("ops")), Ok(text("Other")));
    assert!(
        apply(lookup(None), text("ops"))
            .unwrap_err()
            .contains("no entry")
    );
    let default = Transform::Default {
        value: "n/a".into(),
    };
    assert_eq!(apply(default.clone(), Value::Missing), Ok(text("n/a")));
    assert_eq!(apply(default, text("x")), Ok(text("x")));
    assert_eq!(apply(Transform::Bool, text("Yes")), Ok(Value::Bool(true)));
    assert_eq!(apply(Transform::Bool, text("off")), Ok(Value::Bool(false)));
    assert!(
        apply(Transform::Bool, text("maybe"))
            .unwrap_err()
            .contains("not true or false")
    );
    assert_eq!(
        apply(Transform::Constant { value: "k".into() }, Value::Missing),
        Ok(text("k"))
    );
    // Missing values pass through text transforms untouched.
    assert_eq!(apply(Transform::Email, Value::Missing), Ok(Value::Missing));
}

#[test]
fn a_transform_that_cannot_exist_is_refused_when_checked() {
    let bad_regex = Transform::Replace {
        pattern: "(unclosed".into(),
        replacement: String::new(),
    };
    assert!(
        bad_regex
            .compile()
            .unwrap_err()
            .contains("not a regular expression")
    );
    assert!(Transform::Truncate { max: 0 }.compile().is_err());
    assert!(
        Transform::Split {
            separator: String::new(),
            index: None
        }
        .compile()
        .is_err()
    );
    assert!(
        Transform::Phone {
            region: Some("USA".into())
        }
        .compile()
        .is_err()
    );
}

#[test]
fn target_paths_read_like_rfc_7644_attribute_paths() {
    let p = TargetPath::parse("userName").unwrap();
    assert_eq!(
        (p.schema, p.attribute.as_str(), p.sub),
        (None, "userName", None)
    );
    let p = TargetPath::parse("name.givenName").unwrap();
    assert_eq!(p.sub.as_deref(), Some("givenName"));
    let p = TargetPath::parse("emails[type eq \"work\"].value").unwrap();
    assert_eq!(p.selector, Some(Selector::Type("work".into())));
    let p = TargetPath::parse("emails[primary eq true].value").unwrap();
    assert_eq!(p.selector, Some(Selector::Primary));
    let p =
        TargetPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
            .unwrap();
    assert_eq!(
        p.schema.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(p.attribute, "department");
    for bad in [
        "",
        "emails[type eq \"work\"",
        "emails[value co \"x\"].value",
        "na me",
        "emails[primary eq true]x",
    ] {
        assert!(TargetPath::parse(bad).is_err(), "{bad}");
    }
}

/// A target like the peer: RFC 7643's User (part of it) and the enterprise extension.
fn discovery() -> Discovery {
    let attr =
        |name: &str, kind: &str| json!({"name": name, "type": kind, "mutability": "readWrite"});
    let schemas = json!([
        {"id": "urn:ietf:params:scim:schemas:core:2.0:User", "name": "User", "attributes": [
            {"name": "id", "type": "string", "mutability": "readOnly", "uniqueness": "server"},
            {"name": "userName", "type": "string", "required": true, "uniqueness": "server", "mutability": "readWrite"},
            attr("externalId", "string"),
            attr("displayName", "string"),
            attr("active", "boolean"),
            {"name": "name", "type": "complex", "subAttributes": [attr("givenName", "string"), attr("familyName", "string")]},
            {"name": "emails", "type": "complex", "multiValued": true, "subAttributes": [
                attr("value", "string"), {"name": "type", "type": "string", "canonicalValues": ["work", "home", "other"]}, attr("primary", "boolean")]},
            {"name": "phoneNumbers", "type": "complex", "multiValued": true, "subAttributes": [attr("value", "string"), attr("type", "string")]},
            {"name": "groups", "type": "complex", "multiValued": true, "mutability": "readOnly", "subAttributes": [attr("value", "string")]},
            attr("x-count", "integer"),
        ]},
        {"id": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "name": "EnterpriseUser", "attributes": [
            attr("department", "string"), attr("employeeNumber", "string")]},
    ]);
    let types = json!([{"name": "User", "endpoint": "/Users", "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
        "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false}]}]);
    Discovery {
        config: parse_service_provider_config(&json!({"bulk": {"supported": true}})).unwrap(),
        resource_types: parse_resource_types(&types).unwrap(),
        schemas: parse_schemas(&schemas).unwrap(),
    }
}

fn problems(rules: Vec<Rule>) -> Vec<(Option<usize>, String, String)> {
    match (Mapping { rules }).compile(Some(&discovery())) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|p| (p.rule, p.field, p.message))
            .collect(),
    }
}

#[test]
fn rules_are_checked_against_the_targets_schemas() {
    let user_name = || Rule::new("userName", "username", vec![]);
    assert!(problems(vec![user_name()]).is_empty());
    let cases = [
        (Rule::new("id", "source_id", vec![]), "target", "read-only"),
        (
            Rule::new("groups.value", "groups", vec![]),
            "target",
            "read-only",
        ),
        (
            Rule::new("nickName", "username", vec![]),
            "target",
            "no attribute",
        ),
        (Rule::new("name", "given_name", vec![]), "target", "complex"),
        (
            Rule::new("name.middle", "given_name", vec![]),
            "target",
            "no sub-attribute",
        ),
        (
            Rule::new("emails[type eq \"pager\"].value", "email", vec![]),
            "target",
            "not one of them",
        ),
        (
            Rule::new("displayName[type eq \"x\"].value", "email", vec![]),
            "target",
            "not multi-valued",
        ),
        (
            Rule::new("urn:example:ext:2.0:User:shoeSize", "email", vec![]),
            "target",
            "no extension",
        ),
        (
            Rule::new("active", "status", vec![]),
            "transforms",
            "true/false",
        ),
        (
            Rule::new("displayName", "nope", vec![]),
            "source",
            "not a field",
        ),
        (
            Rule::new(
                "displayName",
                "display_name",
                vec![Transform::Replace {
                    pattern: "(".into(),
                    replacement: String::new(),
                }],
            ),
            "transforms[0]",
            "regular expression",
        ),
    ];
    for (bad, field, words) in cases {
        let found = problems(vec![user_name(), bad.clone()]);
        assert_eq!(found.len(), 1, "{bad:?}: {found:?}");
        assert_eq!(found[0].0, Some(1));
        assert_eq!(found[0].1, field, "{found:?}");
        assert!(found[0].2.contains(words), "{bad:?}: {}", found[0].2);
    }
    // Without userName, and with a target mapped twice.
    let found = problems(vec![Rule::new("displayName", "display_name", vec![])]);
    assert_eq!(found[0].0, None);
    assert!(found[0].2.contains("userName must be mapped"));
    let found = problems(vec![user_name(), Rule::new("userName", "email", vec![])]);
    assert!(found[0].2.contains("mapped twice"));
    // A boolean source or the true/false transform satisfies a boolean target.
    assert!(problems(vec![user_name(), Rule::new("active", "active", vec![])]).is_empty());
    assert!(
        problems(vec![
            user_name(),
            Rule::new("active", "attributes.vip", vec![Transform::Bool])
        ])
        .is_empty()
    );
}

#[test]
fn a_record_becomes_the_scim_resource_the_rules_describe() {
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mapping = Mapping {
        rules: vec![
            Rule::new("userName", "email", vec![Transform::Email]),
            Rule::new("name.givenName", "given_name", vec![]),
            Rule::new("name.familyName", "family_name", vec![Transform::Upper]),
            Rule::new("displayName", "{given_name} {family_name}", vec![]),
            Rule::new(
                "emails[type eq \"work\"].value",
                "email",
                vec![Transform::Email],
            ),
            Rule::new(
                "emails[primary eq true].value",
                "email",
                vec![Transform::Email],
            ),
            Rule::new(
                "phoneNumbers[type eq \"mobile\"].value",
                "phone",
                vec![Transform::Phone {
                    region: Some("US".into()),
                }],
            ),
            Rule::new("active", "active", vec![]),
            Rule::new(
                &format!("{enterprise}:department"),
                "attributes.department",
                vec![],
            ),
        ],
    };
    let compiled = mapping.compile(Some(&discovery())).unwrap();
    assert_eq!(compiled.unique, vec![0]);
    let mapped = compiled.map(&ada());
    assert!(mapped.failures.is_empty(), "{:?}", mapped.failures);
    assert_eq!(
        mapped.resource,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
            "externalId": "u-1",
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "LOVELACE"},
            "displayName": "Ada Lovelace",
            "emails": [{"type": "work", "value": "ada@example.com"}, {"primary": true, "value": "ada@example.com"}],
            "phoneNumbers": [{"type": "mobile", "value": "+12025550143"}],
            "active": true,
            enterprise: {"department": "Engineering"}
        })
    );

    // Every address as its own element.
    let all = Mapping {
        rules: vec![
            Rule::new("userName", "username", vec![]),
            Rule::new("emails.value", "emails", vec![Transform::Trim]),
        ],
    };
    let mapped = all.compile(Some(&discovery())).unwrap().map(&ada());
    assert_eq!(
        mapped.resource["emails"],
        json!([{"value": "Ada@Example.COM"}, {"value": "ada@home.example"}])
    );
}

#[test]
fn what_a_record_cannot_give_is_its_failure_named_by_rule() {
    let mapping = Mapping {
        rules: vec![
            Rule::new("userName", "display_name", vec![]),
            Rule {
                max_length: Some(2),
                ..Rule::new("displayName", "given_name", vec![])
            },
            Rule::new("name.givenName", "attributes.aliases", vec![]),
            Rule::new("x-count", "attributes.department", vec![]),
            Rule::new(
                "emails[type eq \"work\"].value",
                "email",
                vec![Transform::Email],
            ),
            Rule::new(
                "name.familyName",
                "attributes.hired",
                vec![Transform::Date { format: None }],
            ),
        ],
    };
    let compiled = mapping.compile(Some(&discovery())).unwrap();
    let mapped = compiled.map(&ada());
    let failures: Vec<(usize, &str)> = mapped
        .failures
        .iter()
        .map(|f| (f.rule, f.message.as_str()))
        .collect();
    assert_eq!(failures.len(), 5, "{failures:?}");
    assert!(failures[0].1.contains("requires one"), "{failures:?}");
    assert!(failures[1].1.contains("longer than 2"));
    assert!(failures[2].1.contains("gives 2 values"));
    assert!(failures[3].1.contains("not a whole number"));
    assert!(failures[4].1.contains("not a date"));
    // What did work is still written, for the preview.
    assert_eq!(mapped.resource["emails"][0]["value"], "ada@example.com");
    // Without discovery, rules are checked for themselves only.
    assert!(
        Mapping {
            rules: vec![
                Rule::new("userName", "username", vec![]),
                Rule::new("anything.at", "email", vec![])
            ]
        }
        .compile(None)
        .is_ok()
    );
}

#[test]
fn the_suggested_mapping_of_every_source_compiles_against_the_target() {
    for source in crate::projects::SourceKind::ALL {
        let mapping = super::suggest::suggested(source, Some(&discovery()), &[]).mapping;
        let compiled = mapping.compile(Some(&discovery()));
        assert!(compiled.is_ok(), "{source:?}: {:?}", compiled.err());
        let user_name = &mapping.rules[0];
        assert_eq!(user_name.target, "userName");
        let expected = match source {
            crate::projects::SourceKind::Auth0
            | crate::projects::SourceKind::Firebase
            | crate::projects::SourceKind::Cognito => "email",
            _ => "username",
        };
        assert_eq!(user_name.source, expected, "{source:?}");
    }
    // A target without phone numbers gets no phone rule.
    let mut narrow = discovery();
    narrow.schemas[0]
        .attributes
        .retain(|a| a.name != "phoneNumbers");
    let mapping =
        super::suggest::suggested(crate::projects::SourceKind::Okta, Some(&narrow), &[]).mapping;
    assert!(
        mapping
            .rules
            .iter()
            .all(|r| !r.target.starts_with("phoneNumbers"))
    );
    assert!(mapping.compile(Some(&narrow)).is_ok());
}

#[test]
fn exports_are_read_back_and_bad_ones_refused_with_where() {
    use super::versions::{export, import, normalize_note};
    let mapping = Mapping {
        rules: vec![Rule::new("userName", "email", vec![Transform::Email])],
    };
    let text = export(&mapping, "first cut");
    assert!(text.contains("\"ferry_mapping\": 1"));
    assert_eq!(import(&text).unwrap(), (mapping, "first cut".to_string()));
    let err = import("{\"ferry_mapping\": 1, \"rules\": [{\"target\": 3}]}").unwrap_err();
    assert_eq!(err.field(), Some("file"));
    assert!(err.message().contains("line 1"), "{}", err.message());
    assert!(
        import("{\"ferry_mapping\": 7, \"rules\": []}")
            .unwrap_err()
            .message()
            .contains("format 7")
    );
    assert!(import("<html>").is_err());
    assert!(normalize_note(&"x".repeat(501)).is_err());
    assert!(normalize_note("two\nlines").is_err());
}

#[test]
fn the_editor_offers_the_targets_writable_attributes_and_every_offer_checks() {
    let discovery = discovery();
    let offered = super::target::offered(Some(&discovery), crate::scim::urn::USER);
    let paths: Vec<&str> = offered.iter().map(|o| o.path.as_str()).collect();
    for wanted in [
        "userName",
        "name.givenName",
        "emails[primary eq true].value",
        "emails[type eq \"work\"].value",
        "emails[type eq \"home\"].value",
        "phoneNumbers.value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    ] {
        assert!(paths.contains(&wanted), "{wanted} missing from {paths:?}");
    }
    // Read-only attributes and the element choosers themselves are not offered.
    for unwanted in ["id", "groups.value", "emails.type", "emails.primary"] {
        assert!(!paths.contains(&unwanted), "{unwanted} offered");
    }
    assert!(offered.iter().any(|o| o.path == "userName" && o.required));
    // Whatever is offered passes the check against the same schemas.
    for offer in &offered {
        let path = TargetPath::parse(&offer.path).unwrap();
        assert!(
            super::target::check(&path, &discovery, crate::scim::urn::USER).is_ok(),
            "{} is offered but refused",
            offer.path
        );
    }
    // Before discovery: the core attributes, userName first.
    let core = super::target::offered(None, crate::scim::urn::USER);
    assert_eq!(core[0].path, "userName");
}

#[test]
fn the_suggestion_uses_the_fields_the_export_has_and_maps_every_record() {
    use crate::import::csv_reader::CsvUsers;
    use crate::projects::SourceKind;
    // A plain CSV export: no user name, no display name; one address Ferry's e-mail
    // check refuses.
    let csv = "id,email,first_name,last_name,created_at\n\
               u-1,ada@example.com,Ada,Lovelace,2020-01-01T00:00:00Z\n\
               u-2,grace@example.com,Grace,Hopper,2020-01-02T00:00:00Z\n\
               u-3,alan@example.com,Alan,,2020-01-03T00:00:00Z\n\
               u-4,not an address,Edsger,Dijkstra,2020-01-04T00:00:00Z\n";
    let sample: Vec<NormalizedUser> = CsvUsers::new(csv.as_bytes(), b',')
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let suggestion = super::suggest::suggested(SourceKind::Csv, Some(&discovery()), &sample);
    assert!(
        suggestion
            .notes
            .iter()
            .any(|n| n.contains("userName comes from source_id")
                && n.contains("username in 4 of 4, email in 1 of 4")),
        "{:?}",
        suggestion.notes
    );
    let mapping = suggestion.mapping;
    let rule = |target: &str| mapping.rules.iter().find(|r| r.target == target);
    // No `username` column: the user name comes from what every record has.
    assert_eq!(rule("userName").unwrap().source, "source_id");
    assert_eq!(
        rule("displayName").unwrap().source,
        "{given_name} {family_name}"
    );
    assert!(rule("phoneNumbers[type eq \"mobile\"].value").is_none());
    assert!(rule("active").is_none(), "no status column");
    let compiled = mapping.compile(Some(&discovery())).unwrap();
    for user in &sample {
        let mapped = compiled.map(user);
        assert!(mapped.failures.is_empty(), "{:?}", mapped.failures);
    }
    // Clean addresses: the user name is the address, checked.
    let clean: Vec<NormalizedUser> = sample.iter().take(3).cloned().collect();
    let mapping = super::suggest::suggested(SourceKind::Csv, Some(&discovery()), &clean).mapping;
    assert_eq!(mapping.rules[0].source, "email");
    assert_eq!(mapping.rules[0].transforms, vec![Transform::Email]);
    // Before any record is read, the format's usual fields.
    let mapping = super::suggest::suggested(SourceKind::Csv, Some(&discovery()), &[]).mapping;
    assert_eq!(mapping.rules[0].source, "username");
}

#[test]
fn source_attributes_are_named_as_rules_read_them_and_unknown_ones_found() {
    use super::source::SourceVocabulary;
    let vocabulary = SourceVocabulary::new(
        [
            "first_name",
            "Last Name",
            "department",
            "address.city",
            "identities[].provider",
            "password_hash",
        ]
        .map(str::to_string)
        .to_vec(),
    );
    assert_eq!(vocabulary.read_as("first_name"), Some("given_name"));
    assert_eq!(vocabulary.read_as("Last Name"), Some("family_name"));
    assert_eq!(vocabulary.read_as("department"), None);
    assert_eq!(vocabulary.read_as("password_hash"), None, "never readable");
    assert_eq!(vocabulary.source_for("first_name"), "given_name");
    assert_eq!(vocabulary.source_for("department"), "attributes.department");
    // A rule reading the normalized field reads the column (the "Mapped to" column).
    assert!(vocabulary.reads("given_name", "first_name"));
    assert!(vocabulary.reads("{given_name} {family_name}", "Last Name"));
    assert!(vocabulary.reads("attributes.first_name", "first_name"));
    assert!(vocabulary.reads("attributes.address", "address.city"));
    assert!(!vocabulary.reads("email", "first_name"));
    // Sources naming attributes no record has are found, fields and known ones are not.
    assert_eq!(vocabulary.unknown("attributes.nope"), ["attributes.nope"]);
    assert_eq!(
        vocabulary.unknown("{attributes.department}-{attributes.desk}"),
        ["attributes.desk"]
    );
    assert!(
        vocabulary
            .unknown("attributes.identities.provider")
            .is_empty()
    );
    assert!(vocabulary.unknown("attributes.address").is_empty());
    assert!(vocabulary.unknown("given_name").is_empty());
    assert!(
        SourceVocabulary::default()
            .unknown("attributes.nope")
            .is_empty()
    );
}

#[test]
fn common_attributes_are_known_though_the_user_schema_does_not_list_them() {
    // Targets describe only the User schema's own attributes; `id`, `externalId` and
    // `meta` belong to every resource (RFC 7643 §3.1).
    let mut bare = discovery();
    bare.schemas[0]
        .attributes
        .retain(|a| !matches!(a.name.as_str(), "id" | "externalId" | "meta"));
    let compile = |rules: Vec<Rule>| (Mapping { rules }).compile(Some(&bare));
    let user_name = || Rule::new("userName", "username", vec![]);
    let Err(refused) = compile(vec![user_name(), Rule::new("id", "source_id", vec![])]) else {
        panic!("a rule writing id is refused");
    };
    assert!(refused[0].message.contains("read-only"), "{refused:?}");
    assert!(!refused[0].message.contains("no attribute"), "{refused:?}");
    assert!(
        compile(vec![
            user_name(),
            Rule::new("externalId", "username", vec![])
        ])
        .is_ok()
    );
}
