//! Unit tests of target settings, discovery parsing, bulk packing and error
//! classification.

use super::{
    bulk::{Member, OpResult, Operation, Packer, id_from_location, parse_response},
    discovery::{
        ConnectionReport, StepStatus, parse_resource_types, parse_schemas,
        parse_service_provider_config,
    },
    outcome::{ErrorClass, ScimFailure, backoff, classify, parse_retry_after, status_code},
    target::{
        ExistingPolicy, Header, Preset, TargetAuth, TargetInput, TargetSecrets, TargetSettings,
    },
};
use crate::DomainError;
use serde_json::{Value, json};
use std::time::Duration;

fn input(base_url: &str, auth: TargetAuth, secret: Option<&str>) -> TargetInput {
    TargetInput {
        preset: Preset::Generic,
        base_url: base_url.into(),
        auth,
        secret: secret.map(str::to_string),
        headers: None,
        ca_certificate: None,
        connect_timeout_secs: None,
        request_timeout_secs: None,
        on_existing: ExistingPolicy::Skip,
        max_operations: None,
    }
}

fn field_of(err: DomainError) -> String {
    err.field().unwrap_or_default().to_string()
}

#[test]
fn a_wso2_host_gets_the_scim2_path_and_a_trailing_slash_is_dropped() {
    let mut i = input(
        "https://is.example.com:9443/",
        TargetAuth::Bearer,
        Some("t"),
    );
    i.preset = Preset::Wso2;
    let (settings, _) = i.validate(None).unwrap();
    assert_eq!(settings.base_url, "https://is.example.com:9443/scim2");

    let i = input(
        "https://scim.example.com/v2/",
        TargetAuth::Bearer,
        Some("t"),
    );
    let (settings, _) = i.validate(None).unwrap();
    assert_eq!(settings.base_url, "https://scim.example.com/v2");
    assert_eq!(settings.connect_timeout_secs, 10);
    assert_eq!(settings.request_timeout_secs, 60);
}

#[test]
fn bad_urls_are_refused_with_the_field_named() {
    for (url, field) in [
        ("", "base_url"),
        ("is.example.com/scim2", "base_url"),
        ("ftp://is.example.com/scim2", "base_url"),
        ("https://admin:secret@is.example.com/scim2", "base_url"),
        ("https://is.example.com/scim2?tenant=a", "base_url"),
    ] {
        let err = input(url, TargetAuth::Bearer, Some("t"))
            .validate(None)
            .unwrap_err();
        assert_eq!(field_of(err), field, "{url}");
    }
    let err = input(
        "https://is.example.com/scim2",
        TargetAuth::OAuth2 {
            token_url: "not a url".into(),
            client_id: "c".into(),
            scope: String::new(),
        },
        Some("s"),
    )
    .validate(None)
    .unwrap_err();
    assert_eq!(field_of(err), "auth.token_url");
}

#[test]
fn a_stored_secret_is_kept_only_for_the_same_kind_of_authentication() {
    let basic = TargetAuth::Basic {
        username: "admin".into(),
    };
    let url = "https://is.example.com/scim2";
    // The first save must carry the secret.
    let err = input(url, basic.clone(), None).validate(None).unwrap_err();
    assert_eq!(field_of(err), "secret");
    let (settings, secrets) = input(url, basic.clone(), Some("pw"))
        .validate(None)
        .unwrap();
    // Saving again without it keeps it.
    let (_, kept) = input(url, basic, None)
        .validate(Some((&settings, &secrets)))
        .unwrap();
    assert_eq!(kept.secret.as_deref(), Some("pw"));
    // Switching to a bearer token needs the token: the password is not one.
    let err = input(url, TargetAuth::Bearer, None)
        .validate(Some((&settings, &secrets)))
        .unwrap_err();
    assert_eq!(field_of(err), "secret");
    // A user name with a colon cannot be sent as Basic.
    let err = input(
        url,
        TargetAuth::Basic {
            username: "a:b".into(),
        },
        Some("pw"),
    )
    .validate(None)
    .unwrap_err();
    assert_eq!(field_of(err), "auth.username");
}

#[test]
fn a_stored_secret_never_follows_a_changed_address() {
    let url = "https://is.example.com/scim2";
    let mut first = input(url, TargetAuth::Bearer, Some("token"));
    first.headers = Some(vec![Header {
        name: "X-Api-Key".into(),
        value: "k1".into(),
    }]);
    let (settings, secrets) = first.validate(None).unwrap();
    // A new host (or path) without the secret is refused, saying why.
    for moved in [
        "https://attacker.example/scim2",
        "https://is.example.com/other",
    ] {
        let err = input(moved, TargetAuth::Bearer, None)
            .validate(Some((&settings, &secrets)))
            .unwrap_err();
        assert_eq!(field_of(err.clone()), "secret", "{moved}");
        assert!(err.message().contains("new address"), "{err}");
        // With the secret re-entered, the stored header values do not follow either.
        let err = input(moved, TargetAuth::Bearer, Some("new"))
            .validate(Some((&settings, &secrets)))
            .unwrap_err();
        assert_eq!(field_of(err), "headers");
    }
    // OAuth2: the client secret goes to the token endpoint; a new one needs it again.
    let oauth = |token_url: &str| TargetAuth::OAuth2 {
        token_url: token_url.into(),
        client_id: "c".into(),
        scope: String::new(),
    };
    let (settings, secrets) = input(url, oauth("https://login.example.com/token"), Some("s"))
        .validate(None)
        .unwrap();
    let (_, kept) = input(url, oauth("https://login.example.com/token"), None)
        .validate(Some((&settings, &secrets)))
        .unwrap();
    assert_eq!(kept.secret.as_deref(), Some("s"));
    let err = input(url, oauth("https://evil.example/token"), None)
        .validate(Some((&settings, &secrets)))
        .unwrap_err();
    assert_eq!(field_of(err), "secret");
}

#[test]
fn headers_are_checked_and_kept_when_left_out() {
    let url = "https://is.example.com/scim2";
    let header = |n: &str, v: &str| Header {
        name: n.into(),
        value: v.into(),
    };
    let mut i = input(url, TargetAuth::Bearer, Some("t"));
    i.headers = Some(vec![header("X-Api-Key", "k1"), header("", "")]);
    let (settings, secrets) = i.validate(None).unwrap();
    assert_eq!(secrets.headers, vec![header("X-Api-Key", "k1")]);
    let (_, kept) = input(url, TargetAuth::Bearer, None)
        .validate(Some((&settings, &secrets)))
        .unwrap();
    assert_eq!(kept.headers.len(), 1);

    for bad in [
        vec![header("Authorization", "Bearer x")],
        vec![header("X Bad", "v")],
        vec![header("X-A", "1"), header("x-a", "2")],
        vec![header("X-A", "line\nbreak")],
    ] {
        let mut i = input(url, TargetAuth::Bearer, Some("t"));
        i.headers = Some(bad);
        let err = i.validate(None).unwrap_err();
        assert!(field_of(err).starts_with("headers["));
    }
}

#[test]
fn secrets_never_show_in_debug_output() {
    let secrets = TargetSecrets {
        secret: Some("hunter2".into()),
        headers: vec![Header {
            name: "X-Api-Key".into(),
            value: "k-123".into(),
        }],
    };
    let shown = format!("{secrets:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("k-123"),
        "{shown}"
    );
    assert!(shown.contains("X-Api-Key"));
}

#[test]
fn a_ca_certificate_must_be_pem_and_timeouts_bounded() {
    let url = "https://is.example.com/scim2";
    let mut i = input(url, TargetAuth::Bearer, Some("t"));
    i.ca_certificate = Some("hello".into());
    assert_eq!(field_of(i.validate(None).unwrap_err()), "ca_certificate");
    let mut i = input(url, TargetAuth::Bearer, Some("t"));
    i.request_timeout_secs = Some(0);
    assert_eq!(
        field_of(i.validate(None).unwrap_err()),
        "request_timeout_secs"
    );
}

#[test]
fn plain_http_to_another_host_is_warned_about() {
    let (settings, _) = input("http://is.internal/scim2", TargetAuth::Bearer, Some("t"))
        .validate(None)
        .unwrap();
    assert_eq!(settings.warnings().len(), 1);
    let (settings, _) = input("http://127.0.0.1:9000/v2", TargetAuth::Bearer, Some("t"))
        .validate(None)
        .unwrap();
    assert!(settings.warnings().is_empty());
}

#[test]
fn bulk_operations_take_the_smallest_of_advertised_preset_and_project_bounds() {
    let (mut settings, _): (TargetSettings, _) =
        input("https://a.example/scim2", TargetAuth::Bearer, Some("t"))
            .validate(None)
            .unwrap();
    assert_eq!(settings.bulk_operations(1000), 1000);
    settings.preset = Preset::Asgardeo;
    assert_eq!(settings.bulk_operations(1000), 100);
    settings.max_operations = Some(50);
    assert_eq!(settings.bulk_operations(1000), 50);
    assert_eq!(settings.bulk_operations(10), 10);
}

#[test]
fn service_provider_config_is_read_from_numbers_or_strings() {
    // As scim2-server (and RFC 7643 §8.5) writes it.
    let doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576},
        "filter": {"supported": true, "maxResults": 200},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": false},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer"}]
    });
    let config = parse_service_provider_config(&doc).unwrap();
    assert!(config.bulk_supported && config.patch_supported && config.filter_supported);
    assert_eq!(config.max_operations, 1000);
    assert_eq!(config.max_payload_size, 1_048_576);
    assert_eq!(config.filter_max_results, Some(200));
    assert!(!config.etag_supported);
    assert_eq!(config.authentication_schemes, vec!["oauthbearertoken"]);

    let doc = json!({
        "bulk": {"supported": "true", "maxOperations": "100", "maxPayloadSize": "524288"},
        "filter": {"supported": false}
    });
    let config = parse_service_provider_config(&doc).unwrap();
    assert!(config.bulk_supported);
    assert_eq!(
        (config.max_operations, config.max_payload_size),
        (100, 524_288)
    );

    // A bulk section without limits gets RFC/WSO2 defaults.
    let config = parse_service_provider_config(&json!({"bulk": {"supported": true}})).unwrap();
    assert_eq!(config.max_operations, 1000);

    // Something that is not a service provider config at all.
    let err = parse_service_provider_config(&json!({"html": "login page"})).unwrap_err();
    assert!(err.to_string().contains("SCIM root"), "{err}");
    assert!(parse_service_provider_config(&json!([1, 2])).is_err());
}

#[test]
fn resource_types_and_schemas_with_extensions_and_sub_attributes() {
    let types = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 2,
        "Resources": [
            {"name": "User", "endpoint": "/Users",
             "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
             "schemaExtensions": [
                {"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false},
                {"schema": "urn:scim:wso2:schema", "required": false}]},
            {"name": "Group", "endpoint": "/Groups",
             "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}
        ]
    });
    let types = parse_resource_types(&types).unwrap();
    assert_eq!(types.len(), 2);
    assert_eq!(types[0].extensions.len(), 2);

    // WSO2 answers /Schemas with a bare array.
    let schemas = json!([{
        "id": "urn:ietf:params:scim:schemas:core:2.0:User", "name": "User",
        "attributes": [
            {"name": "userName", "type": "string", "multiValued": false, "required": true,
             "caseExact": false, "mutability": "readWrite", "uniqueness": "server"},
            {"name": "emails", "type": "complex", "multiValued": true,
             "subAttributes": [
                {"name": "value", "type": "string"},
                {"name": "type", "type": "string", "canonicalValues": ["work", "home"]}]}
        ]
    }]);
    let schemas = parse_schemas(&schemas).unwrap();
    let user = &schemas[0];
    assert_eq!(user.attributes[0].uniqueness, "server");
    assert!(user.attributes[0].required);
    assert_eq!(
        user.attributes[1].sub_attributes[1].canonical_values,
        vec!["work", "home"]
    );
    assert_eq!(user.attributes[1].sub_attributes[0].mutability, "readWrite");

    let err = parse_schemas(&json!({"Resources": [{"name": "no id"}]})).unwrap_err();
    assert!(err.to_string().contains("schema 1 has no id"), "{err}");
    assert!(parse_resource_types(&json!({"detail": "nope"})).is_err());
}

#[test]
fn a_report_marks_the_steps_not_reached_as_skipped() {
    let report = ConnectionReport::new(chrono::DateTime::UNIX_EPOCH, Vec::new(), None);
    assert_eq!(report.steps.len(), 5);
    assert!(report.steps.iter().all(|s| s.status == StepStatus::Skipped));
    assert!(!report.passed());
}

#[test]
fn every_status_has_its_class() {
    assert_eq!(classify(409, Some("uniqueness")), ErrorClass::AlreadyExists);
    assert_eq!(classify(409, None), ErrorClass::AlreadyExists);
    assert_eq!(classify(409, Some("mutability")), ErrorClass::InvalidData);
    assert_eq!(classify(400, Some("invalidValue")), ErrorClass::InvalidData);
    assert_eq!(
        classify(400, Some("invalidSyntax")),
        ErrorClass::InvalidData
    );
    assert_eq!(classify(413, None), ErrorClass::PayloadTooLarge);
    assert_eq!(classify(429, None), ErrorClass::Throttled);
    assert_eq!(classify(503, None), ErrorClass::Throttled);
    assert_eq!(classify(401, None), ErrorClass::Unauthorized);
    assert_eq!(classify(403, None), ErrorClass::Unauthorized);
    assert_eq!(classify(404, None), ErrorClass::NotFound);
    assert_eq!(classify(500, None), ErrorClass::ServerError);
    assert_eq!(classify(302, None), ErrorClass::Protocol);
    assert!(ErrorClass::Throttled.retryable() && ErrorClass::Network.retryable());
    assert!(!ErrorClass::InvalidData.retryable());
    assert!(ErrorClass::Unauthorized.stops_run());
}

#[test]
fn an_error_body_keeps_type_and_detail_and_a_non_scim_body_its_text() {
    let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"emails is bad"}"#;
    let failure = ScimFailure::from_response(400, body);
    assert_eq!(failure.class, ErrorClass::InvalidData);
    assert_eq!(failure.scim_type.as_deref(), Some("invalidValue"));
    assert_eq!(failure.detail, "emails is bad");
    let failure = ScimFailure::from_response(502, b"<html>Bad gateway</html>");
    assert_eq!(failure.class, ErrorClass::ServerError);
    assert_eq!(failure.detail, "<html>Bad gateway</html>");
    let failure = ScimFailure::from_response(500, "x".repeat(5000).as_bytes());
    assert!(failure.detail.chars().count() <= 1001);
    assert_eq!(
        ScimFailure::from_response(503, b"").detail,
        "no detail given"
    );
}

#[test]
fn statuses_come_as_strings_numbers_or_wso2_objects() {
    assert_eq!(status_code(&json!("201")), Some(201));
    assert_eq!(status_code(&json!(409)), Some(409));
    assert_eq!(status_code(&json!({"code": 400})), Some(400));
    assert_eq!(status_code(&json!({"code": "201"})), Some(201));
    assert_eq!(status_code(&json!(null)), None);
}

#[test]
fn retry_after_in_seconds_or_as_a_date() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    assert_eq!(
        parse_retry_after("Sat, 21 Nov 2026 10:00:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Sat, 21 Nov 2026 09:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
}

#[test]
fn backoff_grows_is_capped_jittered_and_honours_retry_after() {
    let base = Duration::from_millis(100);
    let cap = Duration::from_secs(10);
    assert_eq!(backoff(1, base, cap, None, 1.0), Duration::from_millis(100));
    assert_eq!(backoff(1, base, cap, None, 0.0), Duration::from_millis(50));
    assert_eq!(backoff(4, base, cap, None, 1.0), Duration::from_millis(800));
    assert_eq!(backoff(30, base, cap, None, 1.0), cap);
    assert_eq!(
        backoff(1, base, cap, Some(Duration::from_secs(3)), 0.5),
        Duration::from_secs(3)
    );
}

fn user(n: usize) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("user{n}")})
}

#[test]
fn packing_respects_both_operation_count_and_payload_bytes() {
    // By count.
    let mut packer = Packer::new(3, 1_048_576);
    let mut requests = Vec::new();
    for n in 0..7 {
        requests.extend(
            packer
                .push(Operation::create_user(&format!("u{n}"), &user(n)))
                .unwrap(),
        );
    }
    requests.extend(packer.take());
    assert_eq!(
        requests
            .iter()
            .map(|r| r.bulk_ids.len())
            .collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    // By bytes: every body within the limit, valid JSON, with the operations in order.
    let one = Operation::create_user("u0", &user(0)).json.len();
    let limit = (one * 5) as u64;
    let mut packer = Packer::new(1000, limit);
    let mut requests = Vec::new();
    for n in 0..40 {
        requests.extend(
            packer
                .push(Operation::create_user(&format!("u{n}"), &user(n)))
                .unwrap(),
        );
    }
    requests.extend(packer.take());
    let mut seen = Vec::new();
    for request in &requests {
        assert!(request.body.len() as u64 <= limit, "{}", request.body.len());
        let doc: Value = serde_json::from_slice(&request.body).unwrap();
        let ops = doc["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), request.bulk_ids.len());
        for op in ops {
            assert_eq!(op["method"], "POST");
            seen.push(op["bulkId"].as_str().unwrap().to_string());
        }
    }
    assert!(requests.len() > 8);
    assert_eq!(seen, (0..40).map(|n| format!("u{n}")).collect::<Vec<_>>());
}

#[test]
fn an_operation_larger_than_any_request_is_given_back() {
    let mut packer = Packer::new(10, 200);
    let big = json!({"userName": "x".repeat(500)});
    let op = Operation::create_user("big", &big);
    assert_eq!(packer.push(op).unwrap_err().bulk_id, "big");
    assert!(packer.is_empty());
}

#[test]
fn group_members_use_bulk_ids_only_inside_members() {
    let op = Operation::create_group(
        "g1",
        "engineering",
        &[Member::BulkId("u1".into()), Member::Id("abc".into())],
    );
    let doc: Value = serde_json::from_slice(&op.json).unwrap();
    assert_eq!(doc["path"], "/Groups");
    assert_eq!(doc["data"]["members"][0]["value"], "bulkId:u1");
    assert_eq!(doc["data"]["members"][1]["value"], "abc");
    let op = Operation::delete("d1", "/Users/abc");
    let doc: Value = serde_json::from_slice(&op.json).unwrap();
    assert_eq!(
        doc,
        json!({"method": "DELETE", "path": "/Users/abc", "bulkId": "d1"})
    );
}

#[test]
fn bulk_answers_are_matched_by_bulk_id_whatever_their_order() {
    // As scim2-server answers, shuffled; plus a WSO2-style status object.
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
        "Operations": [
            {"method": "POST", "bulkId": "c", "status": "400",
             "response": {"status": "400", "scimType": "invalidValue", "detail": "userName missing"}},
            {"method": "POST", "bulkId": "a", "status": "201",
             "location": "http://127.0.0.1/v2/Users/a28c574c"},
            {"method": "POST", "bulkId": "b", "status": {"code": 409},
             "response": {"scimType": "uniqueness", "detail": "taken"}},
            {"method": "POST", "bulkId": "d", "status": 201,
             "response": {"id": "from-body"}, "location": "http://x/Users/from-location"},
        ]
    });
    let results = parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        results["a"],
        OpResult::Done {
            status: 201,
            id: Some("a28c574c".into())
        }
    );
    assert_eq!(
        results["d"],
        OpResult::Done {
            status: 201,
            id: Some("from-body".into())
        }
    );
    match &results["b"] {
        OpResult::Failed(f) => assert_eq!(f.class, ErrorClass::AlreadyExists),
        other => panic!("{other:?}"),
    }
    match &results["c"] {
        OpResult::Failed(f) => {
            assert_eq!(f.class, ErrorClass::InvalidData);
            assert_eq!(f.detail, "userName missing");
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_response(b"<html>").is_err());
    assert!(parse_response(b"{\"detail\":\"x\"}").is_err());
    assert_eq!(
        id_from_location("https://h/scim2/Users/abc/"),
        Some("abc".into())
    );
    assert_eq!(
        id_from_location("https://h/scim2/Users/abc?x=1"),
        Some("abc".into())
    );
}
