//! Walks every page, every server function and every API route as each role (and as
//! nobody) against the real router, and checks who is let in. A server function that
//! is registered but missing from the matrix fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use domain::roles::Role;
use reqwest::{Client, Method, StatusCode};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Nobody,
    Support,
    Admin,
    Owner,
}

/// A run server function: its endpoint, who may call it, and its fields.
type RunFn = (&'static str, Rule, Vec<(&'static str, &'static str)>);

/// A run id no run has.
const NO_JOB: &str = "0190a4f4-0000-7000-8000-000000000000";

const EVERYONE: [Who; 4] = [Who::Nobody, Who::Support, Who::Admin, Who::Owner];

impl Who {
    fn role(self) -> Option<Role> {
        match self {
            Who::Nobody => None,
            Who::Support => Some(Role::Support),
            Who::Admin => Some(Role::Admin),
            Who::Owner => Some(Role::Owner),
        }
    }
}

/// The least role that may use a route; `None` means anyone signed in... or public.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Public,
    AtLeast(Role),
}

impl Rule {
    fn admits(self, who: Who) -> bool {
        match self {
            Rule::Public => true,
            Rule::AtLeast(min) => who.role().is_some_and(|r| r >= min),
        }
    }
}

struct Fixture {
    server: TestServer,
    browsers: Vec<(Who, Client)>,
    tokens: Vec<(Who, Option<String>)>,
    project: String,
    spare_support: String,
}

async fn fixture() -> Fixture {
    let server = TestServer::start(common::sqlite_db()).await;
    let owner = server
        .setup_owner("olive@example.com", "owner passphrase one")
        .await;
    let admin = server
        .member(&owner, "ada@example.com", "admin", "admin passphrase")
        .await;
    let support = server
        .member(&owner, "sam@example.com", "support", "support passphrase")
        .await;
    let spare = server
        .member(&owner, "sue@example.com", "support", "spare passphrase")
        .await;
    let project: serde_json::Value = server
        .call(
            &owner,
            "projects/create",
            &[
                ("name", "Alpha"),
                ("source_kind", "okta"),
                ("description", ""),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let project = project["id"].as_str().unwrap().to_string();
    let sam_id = member_id(&server, &owner, "sam@example.com").await;
    let spare_support = member_id(&server, &owner, "sue@example.com").await;
    let response = server
        .call(
            &owner,
            "projects/assign_support",
            &[("id", &project), ("account", &sam_id)],
        )
        .await;
    assert_eq!(response.status(), 200);
    drop(spare);
    let mut tokens = vec![(Who::Nobody, None)];
    for (who, role) in [
        (Who::Support, "support"),
        (Who::Admin, "admin"),
        (Who::Owner, "owner"),
    ] {
        let issued: serde_json::Value = server
            .call(&owner, "tokens/create", &[("name", role), ("role", role)])
            .await
            .json()
            .await
            .unwrap();
        tokens.push((who, Some(issued["secret"].as_str().unwrap().to_string())));
    }
    // Support staff cannot create tokens, so the support token is the owner's, limited
    // to the support role: it sees only projects assigned to the owner, which is none.
    Fixture {
        browsers: vec![
            (Who::Nobody, server.browser()),
            (Who::Support, support),
            (Who::Admin, admin),
            (Who::Owner, owner),
        ],
        tokens,
        project,
        spare_support,
        server,
    }
}

async fn member_id(server: &TestServer, owner: &Client, email: &str) -> String {
    let members: serde_json::Value = server
        .call(owner, "members/list", &[])
        .await
        .json()
        .await
        .unwrap();
    members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .map(|m| m["id"].as_str().unwrap().to_string())
        .unwrap()
}

#[tokio::test]
async fn every_route_admits_exactly_the_roles_it_should() {
    let f = fixture().await;
    let p = f.project.clone();
    let mut failures = Vec::new();

    // Pages: allowed → 200; signed out → redirect to sign-in; wrong role → 403.
    let pages: Vec<(String, Rule)> = vec![
        ("/".into(), Rule::AtLeast(Role::Support)),
        ("/account".into(), Rule::AtLeast(Role::Support)),
        (format!("/projects/{p}"), Rule::AtLeast(Role::Support)),
        (
            format!("/projects/{p}/uploads"),
            Rule::AtLeast(Role::Support),
        ),
        (
            format!("/projects/{p}/assessment"),
            Rule::AtLeast(Role::Support),
        ),
        (
            format!("/projects/{p}/assessment/findings?check=missing_email"),
            Rule::AtLeast(Role::Support),
        ),
        ("/projects/new".into(), Rule::AtLeast(Role::Admin)),
        (format!("/projects/{p}/target"), Rule::AtLeast(Role::Admin)),
        (format!("/projects/{p}/goals"), Rule::AtLeast(Role::Admin)),
        (format!("/projects/{p}/mapping"), Rule::AtLeast(Role::Admin)),
        (format!("/projects/{p}/runs"), Rule::AtLeast(Role::Support)),
        (
            format!("/projects/{p}/runs/{NO_JOB}"),
            Rule::AtLeast(Role::Support),
        ),
        (
            format!("/projects/{p}/review"),
            Rule::AtLeast(Role::Support),
        ),
        (
            format!("/projects/{p}/passwords"),
            Rule::AtLeast(Role::Admin),
        ),
        (format!("/projects/{p}/plan"), Rule::AtLeast(Role::Admin)),
        (format!("/projects/{p}/report"), Rule::AtLeast(Role::Admin)),
        (
            format!("/projects/{p}/plan/print?version=1"),
            Rule::AtLeast(Role::Admin),
        ),
        (
            format!("/projects/{p}/review?state=all&by=state"),
            Rule::AtLeast(Role::Support),
        ),
        (
            format!("/projects/{p}/review/record?id=nobody"),
            Rule::AtLeast(Role::Support),
        ),
        (
            format!("/projects/{p}/activity"),
            Rule::AtLeast(Role::Admin),
        ),
        ("/audit".into(), Rule::AtLeast(Role::Admin)),
        ("/settings/tokens".into(), Rule::AtLeast(Role::Admin)),
        ("/members".into(), Rule::AtLeast(Role::Owner)),
        ("/login".into(), Rule::Public),
    ];
    for (path, rule) in &pages {
        for (who, client) in &f.browsers {
            let answer = client.get(f.server.url(path)).send().await.unwrap();
            let status = answer.status();
            let expected = match (rule, who) {
                (Rule::Public, Who::Nobody) => StatusCode::OK,
                (Rule::Public, _) => StatusCode::SEE_OTHER,
                (_, Who::Nobody) => StatusCode::SEE_OTHER,
                (rule, who) if rule.admits(*who) => StatusCode::OK,
                _ => StatusCode::FORBIDDEN,
            };
            // The "Not allowed" page is a page: its policy lets its stylesheet load.
            if status == StatusCode::FORBIDDEN {
                let policy = answer
                    .headers()
                    .get("content-security-policy")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !policy.contains("style-src 'self'") {
                    failures.push(format!(
                        "GET {path} as {who:?}: 403 page refuses its stylesheet ({policy})"
                    ));
                }
            }
            if status != expected {
                failures.push(format!(
                    "GET {path} as {who:?}: {status}, expected {expected}"
                ));
            }
        }
    }

    // Server functions: allowed → not 401/403; signed out → 401; wrong role → 403.
    let spare = f.spare_support.clone();
    let mut server_fns: Vec<(&str, Rule, FormFor)> = vec![
        (
            "auth/whoami",
            Rule::AtLeast(Role::Support),
            Box::new(|_| vec![]),
        ),
        (
            "auth/change_password",
            Rule::AtLeast(Role::Support),
            Box::new(|_| {
                // A wrong current password: allowed callers get 422, and nobody's password changes.
                vec![
                    kv("current_password", "not it"),
                    kv("password", "whatever passphrase"),
                    kv("confirm_password", "whatever passphrase"),
                ]
            }),
        ),
        (
            "projects/list",
            Rule::AtLeast(Role::Support),
            Box::new(|_| vec![kv("include_archived", "false")]),
        ),
        (
            "projects/get",
            Rule::AtLeast(Role::Support),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("id", &p)]
            }),
        ),
        (
            "projects/journey",
            Rule::AtLeast(Role::Support),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("id", &p)]
            }),
        ),
        (
            "projects/journeys",
            Rule::AtLeast(Role::Support),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("ids", &p)]
            }),
        ),
        (
            "projects/support",
            Rule::AtLeast(Role::Support),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("id", &p)]
            }),
        ),
        (
            "projects/create",
            Rule::AtLeast(Role::Admin),
            Box::new(|who| {
                vec![
                    kv("name", &format!("made by {who:?}")),
                    kv("source_kind", "csv"),
                    kv("description", ""),
                ]
            }),
        ),
        (
            "projects/update",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| {
                    vec![
                        kv("id", &p),
                        kv("name", "Alpha"),
                        kv("source_kind", "okta"),
                        kv("description", "edited"),
                    ]
                }
            }),
        ),
        (
            "projects/archive",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("id", &p), kv("archived", "false")]
            }),
        ),
        (
            "projects/assign_support",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                let s = spare.clone();
                move |_| vec![kv("id", &p), kv("account", &s)]
            }),
        ),
        (
            "projects/unassign_support",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                let s = spare.clone();
                move |_| vec![kv("id", &p), kv("account", &s)]
            }),
        ),
        (
            "uploads/list",
            Rule::AtLeast(Role::Support),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p)]
            }),
        ),
        (
            // An unknown upload: allowed callers get 404, neither 401 nor 403.
            "uploads/errors",
            Rule::AtLeast(Role::Support),
            Box::new(|_| vec![kv("upload", "00000000-0000-0000-0000-000000000000")]),
        ),
        (
            "assessment/get",
            Rule::AtLeast(Role::Support),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p)]
            }),
        ),
        (
            "assessment/findings",
            Rule::AtLeast(Role::Support),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p), kv("check", "missing_email")]
            }),
        ),
        (
            // No records yet: allowed callers get 409, neither 401 nor 403.
            "assessment/start",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p)]
            }),
        ),
        (
            "assessment/set_class",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p), kv("path", "department"), kv("class", "")]
            }),
        ),
        (
            // No report yet: allowed callers get 404.
            "assessment/reveal",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p), kv("path", "email"), kv("index", "0")]
            }),
        ),
        (
            "targets/list",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p)]
            }),
        ),
        (
            // Nothing listens there: the test reports the failed step, with 200.
            "targets/save",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| {
                    vec![
                        kv("project", &p),
                        kv("role", "test"),
                        kv("preset", "generic"),
                        kv("base_url", "http://127.0.0.1:9/v2"),
                        kv("auth_type", "bearer"),
                        kv("secret", "t"),
                    ]
                }
            }),
        ),
        (
            "targets/test",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p), kv("role", "test")]
            }),
        ),
        (
            // Allowed callers get 404 once the first of them removed it.
            "targets/delete",
            Rule::AtLeast(Role::Admin),
            Box::new({
                let p = p.clone();
                move |_| vec![kv("project", &p), kv("role", "test")]
            }),
        ),
        (
            "audit/page",
            Rule::AtLeast(Role::Admin),
            Box::new(|_| vec![]),
        ),
        (
            "tokens/list",
            Rule::AtLeast(Role::Admin),
            Box::new(|_| vec![]),
        ),
        (
            "tokens/create",
            Rule::AtLeast(Role::Admin),
            Box::new(|who| vec![kv("name", &format!("{who:?}")), kv("role", "support")]),
        ),
        (
            "tokens/revoke",
            Rule::AtLeast(Role::Admin),
            Box::new(|_| vec![kv("id", "00000000-0000-0000-0000-000000000000")]),
        ),
        (
            "members/list",
            Rule::AtLeast(Role::Owner),
            Box::new(|_| vec![]),
        ),
        (
            "members/invite",
            Rule::AtLeast(Role::Owner),
            Box::new(|who| {
                vec![
                    kv("email", &format!("new-{who:?}@example.com")),
                    kv("display_name", "New"),
                    kv("role", "support"),
                ]
            }),
        ),
        (
            "members/reissue_invite",
            Rule::AtLeast(Role::Owner),
            Box::new({
                let s = spare.clone();
                move |_| vec![kv("id", &s)]
            }),
        ),
        (
            "members/change_role",
            Rule::AtLeast(Role::Owner),
            Box::new({
                let s = spare.clone();
                move |_| vec![kv("id", &s), kv("role", "support")]
            }),
        ),
        (
            "members/set_enabled",
            Rule::AtLeast(Role::Owner),
            Box::new({
                let s = spare.clone();
                move |_| vec![kv("id", &s), kv("enabled", "true")]
            }),
        ),
    ];
    // Goals and mapping: admins only, each call naming the project and its own fields.
    let everyone = r#"{"user_types": [{"name": "Everyone", "include": true}]}"#;
    let user_name = r#"[{"target": "userName", "source": "username"}]"#;
    let goals_fns: [(&str, Vec<(&str, &str)>); 13] = [
        ("goals/get", vec![]),
        ("goals/user-types/save", vec![("user_types", everyone)]),
        ("goals/user-types/count", vec![("user_types", everyone)]),
        ("mapping/get", vec![]),
        ("mapping/targets", vec![]),
        (
            "mapping/save",
            vec![("rules", user_name), ("note", "matrix")],
        ),
        ("mapping/versions", vec![]),
        // No such versions: allowed callers get 404.
        ("mapping/diff", vec![("from", "1"), ("to", "2")]),
        ("mapping/export", vec![]),
        ("mapping/import", vec![("document", "{}")]),
        (
            "mapping/preview",
            vec![
                ("rules", "[]"),
                ("sample", r#"{"kind": "random", "seed": 1}"#),
            ],
        ),
        // No records: allowed callers get 422.
        ("mapping/impact/start", vec![("rules", "[]")]),
        ("mapping/impact", vec![]),
    ];
    for (name, fields) in goals_fns {
        let mut form = vec![kv("project", &p)];
        form.extend(fields.into_iter().map(|(k, v)| kv(k, v)));
        server_fns.push((
            name,
            Rule::AtLeast(Role::Admin),
            Box::new(move |_| form.clone()),
        ));
    }
    // Runs: support staff see them; admins start and control them. No such run:
    // allowed callers get 404 (or 422 for a request that cannot be met).
    let run_fns: [RunFn; 13] = [
        ("runs/list", Rule::AtLeast(Role::Support), vec![]),
        (
            "runs/get",
            Rule::AtLeast(Role::Support),
            vec![("run", NO_JOB)],
        ),
        (
            "runs/records",
            Rule::AtLeast(Role::Support),
            vec![("run", NO_JOB)],
        ),
        (
            "runs/test",
            Rule::AtLeast(Role::Admin),
            vec![("request", r#"{"size": 5}"#)],
        ),
        // No mapping and no target: allowed callers get 422.
        (
            "runs/reconcile",
            Rule::AtLeast(Role::Admin),
            vec![("request", r#"{"sample": 5}"#)],
        ),
        // An upload no project has: allowed callers get 404.
        (
            "runs/delta",
            Rule::AtLeast(Role::Admin),
            vec![(
                "request",
                r#"{"upload": "0190a4f4-0000-7000-8000-000000000000", "missing": "leave"}"#,
            )],
        ),
        ("runs/preflight", Rule::AtLeast(Role::Admin), vec![]),
        (
            "runs/real",
            Rule::AtLeast(Role::Admin),
            vec![("request", "{}")],
        ),
        (
            "runs/window",
            Rule::AtLeast(Role::Admin),
            vec![
                ("run", NO_JOB),
                (
                    "window",
                    r#"{"start": "2030-01-01T22:00", "end": "2030-01-02T02:00", "zone": "UTC"}"#,
                ),
            ],
        ),
        (
            "runs/control",
            Rule::AtLeast(Role::Admin),
            vec![("run", NO_JOB), ("action", "pause")],
        ),
        (
            "runs/retry-plan",
            Rule::AtLeast(Role::Admin),
            vec![("run", NO_JOB)],
        ),
        (
            "runs/retry",
            Rule::AtLeast(Role::Admin),
            vec![("run", NO_JOB), ("confirm", "1")],
        ),
        (
            "runs/rollback",
            Rule::AtLeast(Role::Admin),
            vec![("run", NO_JOB), ("confirm", "1")],
        ),
    ];
    for (name, rule, fields) in run_fns {
        let mut form = vec![kv("project", &p)];
        form.extend(fields.into_iter().map(|(k, v)| kv(k, v)));
        server_fns.push((name, rule, Box::new(move |_| form.clone())));
    }
    // Review: support staff of the project act on the queue; owners grant the view of
    // personal data. Nobody by that id: allowed callers get 404 or 422, or act on none.
    let review_fns: [RunFn; 13] = [
        ("review/tasks", Rule::AtLeast(Role::Support), vec![]),
        (
            "review/cancel_task",
            Rule::AtLeast(Role::Support),
            vec![("task", NO_JOB)],
        ),
        (
            "review/queue",
            Rule::AtLeast(Role::Support),
            vec![("filter", "")],
        ),
        ("review/summary", Rule::AtLeast(Role::Support), vec![]),
        (
            "review/groups",
            Rule::AtLeast(Role::Support),
            vec![("filter", ""), ("by", "class")],
        ),
        (
            "review/record",
            Rule::AtLeast(Role::Support),
            vec![("source_id", "nobody")],
        ),
        (
            "review/preview_correction",
            Rule::AtLeast(Role::Support),
            vec![
                ("source_id", "nobody"),
                ("correction", r#"{"email": "a@b.co"}"#),
            ],
        ),
        (
            "review/correct",
            Rule::AtLeast(Role::Support),
            vec![
                ("source_id", "nobody"),
                ("correction", r#"{"email": "a@b.co"}"#),
            ],
        ),
        (
            "review/act",
            Rule::AtLeast(Role::Support),
            vec![
                ("selection", r#"{"kind": "ids", "ids": ["nobody"]}"#),
                ("action", r#"{"action": "comment", "text": "matrix"}"#),
            ],
        ),
        (
            "review/retry",
            Rule::AtLeast(Role::Support),
            vec![("selection", r#"{"kind": "ids", "ids": ["nobody"]}"#)],
        ),
        (
            "review/import_corrections",
            Rule::AtLeast(Role::Support),
            vec![("csv", "source_id,email\n")],
        ),
        ("review/grants", Rule::AtLeast(Role::Owner), vec![]),
        (
            "review/grant",
            Rule::AtLeast(Role::Owner),
            vec![
                ("member", "00000000-0000-0000-0000-000000000000"),
                ("granted", "false"),
            ],
        ),
    ];
    for (name, rule, fields) in review_fns {
        let mut form = vec![kv("project", &p)];
        form.extend(fields.into_iter().map(|(k, v)| kv(k, v)));
        server_fns.push((name, rule, Box::new(move |_| form.clone())));
    }
    // Passwords: owners and administrators configure the verification service and
    // rehearse; support staff of the project read the coverage.
    let password_fns: [RunFn; 16] = [
        ("passwords/waves", Rule::AtLeast(Role::Admin), vec![]),
        (
            "passwords/save_plan",
            Rule::AtLeast(Role::Admin),
            vec![
                ("wave_size", "100"),
                ("per_minute", "60"),
                ("daily_cap", "1000"),
                ("from", "09:00"),
                ("until", "17:00"),
                ("zone", "UTC"),
            ],
        ),
        (
            "passwords/start_wave",
            Rule::AtLeast(Role::Admin),
            vec![("size", "5")],
        ),
        ("passwords/service", Rule::AtLeast(Role::Admin), vec![]),
        (
            "passwords/save",
            Rule::AtLeast(Role::Admin),
            vec![
                ("login_origin", ""),
                ("context_ttl_secs", "60"),
                ("token_ttl_secs", "3600"),
                ("max_user_failures", "5"),
                ("max_caller_failures", "1000"),
                ("failure_window_secs", "900"),
            ],
        ),
        (
            "passwords/issue",
            Rule::AtLeast(Role::Admin),
            vec![("kind", "static_key")],
        ),
        ("passwords/revoke_key", Rule::AtLeast(Role::Admin), vec![]),
        (
            "passwords/script",
            Rule::AtLeast(Role::Admin),
            vec![("variant", "asgardeo")],
        ),
        (
            "passwords/verifications",
            Rule::AtLeast(Role::Admin),
            vec![("offset", "0")],
        ),
        ("passwords/coverage", Rule::AtLeast(Role::Support), vec![]),
        ("passwords/candidates", Rule::AtLeast(Role::Admin), vec![]),
        (
            "passwords/rehearse",
            Rule::AtLeast(Role::Admin),
            vec![("scim_id", "nobody"), ("username", "u"), ("password", "p")],
        ),
        (
            "passwords/save_legacy",
            Rule::AtLeast(Role::Admin),
            vec![("kind", "okta"), ("org_url", "http://127.0.0.1:9")],
        ),
        ("passwords/legacy", Rule::AtLeast(Role::Admin), vec![]),
        ("passwords/test_legacy", Rule::AtLeast(Role::Admin), vec![]),
        (
            "passwords/delete_legacy",
            Rule::AtLeast(Role::Admin),
            vec![],
        ),
    ];
    // The plan: administrators read and save it, owners approve. The document is the
    // guide's default; approving version 1 before anyone saved one is a 404.
    let document = serde_json::to_string(&domain::plan::PlanDocument::default()).unwrap();
    let plan_fns: Vec<RunFn> = vec![
        ("plan/get", Rule::AtLeast(Role::Admin), vec![]),
        (
            "plan/save",
            Rule::AtLeast(Role::Admin),
            vec![
                ("document", Box::leak(document.into_boxed_str())),
                ("note", "matrix"),
            ],
        ),
        ("plan/versions", Rule::AtLeast(Role::Admin), vec![]),
        (
            "plan/version",
            Rule::AtLeast(Role::Admin),
            vec![("version", "1")],
        ),
        (
            "plan/compare",
            Rule::AtLeast(Role::Admin),
            vec![("from", "1"), ("to", "2")],
        ),
        (
            "plan/approve",
            Rule::AtLeast(Role::Owner),
            vec![("version", "99")],
        ),
        ("plan/report", Rule::AtLeast(Role::Admin), vec![]),
        ("retention/get", Rule::AtLeast(Role::Admin), vec![]),
        (
            "retention/save",
            Rule::AtLeast(Role::Owner),
            vec![("days", "400"), ("keep_report", "on")],
        ),
        // A confirmation that is not the project's name: refused (422) for owners
        // without purging anything.
        (
            "retention/purge",
            Rule::AtLeast(Role::Owner),
            vec![("confirm", "not the name")],
        ),
        // An upload no project has: owners hear 404.
        (
            "retention/purge_upload",
            Rule::AtLeast(Role::Owner),
            vec![("upload", NO_JOB)],
        ),
    ];
    for (name, rule, fields) in password_fns.into_iter().chain(plan_fns) {
        let mut form = vec![kv("project", &p)];
        form.extend(fields.into_iter().map(|(k, v)| kv(k, v)));
        server_fns.push((name, rule, Box::new(move |_| form.clone())));
    }
    let public_fns = [
        "auth/setup",
        "auth/sign_in",
        "auth/sign_out",
        "auth/invite_info",
        "auth/accept_invite",
    ];
    let registered: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/sfn/").to_string())
        .collect();
    let covered: BTreeSet<String> = server_fns
        .iter()
        .map(|(e, ..)| e.to_string())
        .chain(public_fns.iter().map(|e| e.to_string()))
        .collect();
    let unlisted: Vec<_> = registered.difference(&covered).collect();
    assert!(
        unlisted.is_empty(),
        "server functions missing from the role matrix: {unlisted:?}"
    );

    for (endpoint, rule, form) in &server_fns {
        for (who, client) in &f.browsers {
            let body = form(*who);
            let pairs: Vec<(&str, &str)> =
                body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let status = f.server.call(client, endpoint, &pairs).await.status();
            let ok = match (rule.admits(*who), who) {
                (true, _) => {
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && status.as_u16() < 500
                }
                (false, Who::Nobody) => status == StatusCode::UNAUTHORIZED,
                (false, _) => status == StatusCode::FORBIDDEN,
            };
            if !ok {
                failures.push(format!("POST /sfn/{endpoint} as {who:?}: {status}"));
            }
        }
    }

    // REST API with bearer tokens of each role.
    let api: Vec<(Method, String, Option<serde_json::Value>, Rule)> = vec![
        (
            Method::GET,
            "/api/v1/openapi.json".into(),
            None,
            Rule::Public,
        ),
        (
            Method::GET,
            "/api/v1/me".into(),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            "/api/v1/projects".into(),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::POST,
            "/api/v1/projects".into(),
            Some(serde_json::json!({"name": "API", "source_kind": "ldap"})),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::PATCH,
            format!("/api/v1/projects/{p}"),
            Some(serde_json::json!({"description": "via API"})),
            Rule::AtLeast(Role::Admin),
        ),
        // Archived, then restored: an archived project is read only, and the calls
        // after these need it writable.
        (
            Method::POST,
            format!("/api/v1/projects/{p}/archive"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/restore"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            "/api/v1/audit".into(),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/uploads/events"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/assessment/events"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/assessment/findings?check=missing_email"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/targets"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/mapping"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/mapping"),
            Some(serde_json::json!({"rules": [{"target": "userName", "source": "username"}]})),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/mapping/versions"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/user-types"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/user-types"),
            Some(serde_json::json!({"user_types": [{"name": "Everyone", "include": true}]})),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/user-types/count"),
            Some(serde_json::json!({"user_types": [{"name": "Everyone", "include": true}]})),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/goals"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/mapping/preview"),
            Some(serde_json::json!({"sample": {"kind": "random", "seed": 1}})),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/targets/production"),
            Some(
                serde_json::json!({"base_url": "http://127.0.0.1:9/v2", "auth": {"type": "bearer"}, "secret": "t"}),
            ),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/targets/production/test"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/targets/production"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/runs"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/runs/preflight"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/journey"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/review?state=all"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/review/summary"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/review/groups?by=state"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/review/export.csv"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/review/actions"),
            Some(
                serde_json::json!({"selection": {"kind": "ids", "ids": ["nobody"]}, "action": "comment", "text": "matrix"}),
            ),
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::PUT,
            format!("/api/v1/members/{spare}/personal-data"),
            Some(serde_json::json!({"granted": false})),
            Rule::AtLeast(Role::Owner),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/passwords/service"),
            Some(
                serde_json::json!({"enabled": false, "context_ttl_secs": 60, "token_ttl_secs": 3600,
                "login_origin": null, "max_user_failures": 5, "max_caller_failures": 1000,
                "failure_window_secs": 900}),
            ),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/passwords/service"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/passwords/service/secret"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/passwords/service/key"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{p}/passwords/service/key"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/passwords/script?variant=asgardeo"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/passwords/verifications"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/passwords/rehearsal/candidates"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/passwords/waves"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/passwords/waves/plan"),
            Some(
                serde_json::json!({"enabled": false, "wave_size": 100, "per_minute": 60,
                "daily_cap": 1000, "from": "09:00", "until": "17:00", "zone": "UTC",
                "long_tail_days": 30}),
            ),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/passwords/coverage"),
            None,
            Rule::AtLeast(Role::Support),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/passwords/legacy"),
            // A closed port: the connection test below fails at once.
            Some(serde_json::json!({"settings": {"kind": "ldap", "url": "ldap://127.0.0.1:9"}})),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/passwords/legacy"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{p}/passwords/legacy/test"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{p}/passwords/legacy"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/plan"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/plan"),
            Some(serde_json::json!({"document": domain::plan::PlanDocument::default()})),
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/plan/versions"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/plan/versions/1"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/plan/compare?from=1&to=1"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/report"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::POST,
            // The latest version: the plan was saved twice by the server functions
            // above and twice by the PUT above (an administrator's, then an owner's).
            format!("/api/v1/projects/{p}/plan/versions/4/approve"),
            None,
            Rule::AtLeast(Role::Owner),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{p}/retention"),
            None,
            Rule::AtLeast(Role::Admin),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/retention"),
            Some(serde_json::json!({"days": 400, "keep_crosswalk": true, "keep_report": true})),
            Rule::AtLeast(Role::Owner),
        ),
        (
            Method::PUT,
            format!("/api/v1/projects/{p}/assessment/classes"),
            Some(serde_json::json!({"path": "department", "class": null})),
            Rule::AtLeast(Role::Admin),
        ),
    ];
    let client = Client::new();
    for (method, path, body, rule) in &api {
        for (who, token) in &f.tokens {
            let mut request = client.request(method.clone(), f.server.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let status = request.send().await.unwrap().status();
            let hidden_from_support = *who == Who::Support
                && (*method == Method::GET || path.contains("/review/"))
                && path.starts_with("/api/v1/projects/");
            let ok = match (rule.admits(*who), who) {
                // Not assigned to the token's account: the project does not exist for it.
                (true, _) if hidden_from_support => status == StatusCode::NOT_FOUND,
                (true, _) => status.is_success(),
                (false, Who::Nobody) => status == StatusCode::UNAUTHORIZED,
                (false, _) => status == StatusCode::FORBIDDEN,
            };
            if !ok {
                failures.push(format!("{method} {path} as {who:?} token: {status}"));
            }
        }
    }

    assert!(
        failures.is_empty(),
        "role matrix violations:\n{}",
        failures.join("\n")
    );
}

/// The form a caller sends to a server function.
type FormFor = Box<dyn Fn(Who) -> Vec<(String, String)>>;

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn every_role_is_in_the_matrix() {
    let roles: BTreeSet<_> = EVERYONE.iter().filter_map(|w| w.role()).collect();
    assert_eq!(roles.len(), Role::ALL.len());
}
