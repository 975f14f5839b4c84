//! The Target stage: the production target and the optional test target of a project —
//! their settings (secrets only ever shown as "set"), the connection test step by step,
//! and what discovery found: the target's limits, resource types and schemas.

use crate::{
    api::targets::{DeleteTarget, SaveTarget, TestTarget, get_targets},
    components::{
        format_time,
        forms::{FieldError, FormError, LoadError, action_error, succeeded},
        grouped,
    },
};
use domain::scim::{
    discovery::{Attribute, ConnectionReport, Discovery, StepStatus},
    target::{ExistingPolicy, Preset, TargetAuth, TargetRole, TargetView},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// The actions of one target's card, kept at page level so their results survive the
/// card being drawn again after a refresh.
#[derive(Clone, Copy)]
struct Actions {
    save: ServerAction<SaveTarget>,
    test: ServerAction<TestTarget>,
    remove: ServerAction<DeleteTarget>,
}

impl Actions {
    fn new() -> Self {
        Self {
            save: ServerAction::new(),
            test: ServerAction::new(),
            remove: ServerAction::new(),
        }
    }
}

#[component]
pub fn TargetPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let production = Actions::new();
    let test = Actions::new();
    // A refused save must not draw the form again from what is stored: that threw
    // away what was being entered (the kind of target went back to its default).
    let (stored_production, stored_test) = (succeeded(production.save), succeeded(test.save));
    let versions = move || {
        stored_production.get()
            + stored_test.get()
            + [production, test]
                .iter()
                .map(|a| a.test.version().get() + a.remove.version().get())
                .sum::<usize>()
    };
    let targets = Resource::new(move || (project.get(), versions()), |(p, _)| get_targets(p));
    view! {
        <Title text="Target" />
        <p class="muted intro">
            "Ferry creates users in a SCIM 2.0 identity provider. Set up the production target, and \
             optionally a separate target for test runs, then test the connection: Ferry learns the \
             target's limits and schema from the target itself."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading targets…"</p> }>
            {move || Suspend::new(async move {
                match targets.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(list) => {
                        let find = |role| list.iter().find(|t| t.role == role).cloned();
                        view! {
                            <TargetCard project=project.get_untracked() role=TargetRole::Production current=find(TargetRole::Production) actions=production />
                            <TargetCard project=project.get_untracked() role=TargetRole::Test current=find(TargetRole::Test) actions=test />
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}

fn test_badge(report: Option<&ConnectionReport>) -> AnyView {
    match report {
        None => view! { <span class="badge muted">"Not tested"</span> }.into_any(),
        Some(r) if r.passed() => {
            view! { <span class="badge ok">"Connection passed"</span> }.into_any()
        }
        Some(_) => view! { <span class="badge error">"Connection failed"</span> }.into_any(),
    }
}

#[component]
fn TargetCard(
    project: String,
    role: TargetRole,
    current: Option<TargetView>,
    actions: Actions,
) -> impl IntoView {
    let id = format!("target-{}", role.as_str());
    let configured = current.is_some();
    let test_error = action_error(actions.test);
    let remove_error = action_error(actions.remove);
    let summary = current.clone().map(|t| {
        let project = project.clone();
        view! {
            <TargetSummary target=t.clone() />
            {t.warnings.iter().map(|w| view! { <div class="alert warn" role="note">{w.clone()}</div> }).collect_view()}
            <ActionForm action=actions.test attr:class="inline-form">
                <input type="hidden" name="project" value=project.clone() />
                <input type="hidden" name="role" value=role.as_str() />
                <button type="submit" class="primary" disabled=move || actions.test.pending().get()>
                    {move || if actions.test.pending().get() { "Testing…" } else { "Test connection" }}
                </button>
            </ActionForm>
            <FormError error=test_error />
            {t.last_test.map(|report| view! { <TestReport report /> })}
        }
        .into_any()
    });
    view! {
        <section class="card target" id=id>
            <div class="card-head">
                <h2>{role.label()}</h2>
                {if configured { test_badge(current.as_ref().and_then(|t| t.last_test.as_ref())) } else { view! { <span class="badge muted">"Not set up"</span> }.into_any() }}
            </div>
            {(!configured && role == TargetRole::Test).then(|| view! {
                <p class="muted">"Without a test target, test runs go to the production target only when an administrator chooses so."</p>
            })}
            {summary}
            <details class="target-form" open=!configured>
                <summary>{if configured { "Edit settings" } else { "Set up" }}</summary>
                <TargetForm project=project.clone() role current=current.clone() save=actions.save />
            </details>
            {configured.then(|| view! {
                <details class="danger-zone">
                    <summary>"Remove…"</summary>
                    <p>"Removes the settings and the stored secrets of this target. Runs already recorded keep their results."</p>
                    <ActionForm action=actions.remove attr:class="inline-form">
                        <input type="hidden" name="project" value=project.clone() />
                        <input type="hidden" name="role" value=role.as_str() />
                        <button type="submit" class="danger">"Remove target"</button>
                    </ActionForm>
                    <FormError error=remove_error />
                </details>
            })}
        </section>
    }
    .into_any()
}

#[component]
fn TargetSummary(target: TargetView) -> impl IntoView {
    let s = &target.settings;
    let auth = match &s.auth {
        TargetAuth::Basic { username } => format!("HTTP Basic as {username}"),
        TargetAuth::Bearer => "Bearer token".to_string(),
        TargetAuth::OAuth2 {
            token_url,
            client_id,
            scope,
        } => {
            let scope = if scope.is_empty() {
                String::new()
            } else {
                format!(", scope {scope}")
            };
            format!("OAuth2 client credentials: client {client_id} at {token_url}{scope}")
        }
    };
    let secret = if target.secret_set {
        format!("{}: set", s.auth.secret_label())
    } else {
        format!("{}: not set", s.auth.secret_label())
    };
    let headers = if target.header_names.is_empty() {
        "none".to_string()
    } else {
        format!("{} (values hidden)", target.header_names.join(", "))
    };
    let bound = s
        .max_operations
        .map_or("as advertised".to_string(), |n| format!("at most {n}"));
    view! {
        <dl class="facts">
            <dt>"Kind"</dt><dd>{s.preset.label()}</dd>
            <dt>"SCIM base URL"</dt><dd><code class="base-url">{s.base_url.clone()}</code></dd>
            <dt>"Authentication"</dt><dd>{auth}<br /><span class="muted secret-state">{secret}</span></dd>
            <dt>"Extra headers"</dt><dd>{headers}</dd>
            <dt>"CA certificate"</dt><dd>{if s.ca_certificate.is_some() { "custom (added to the system's)" } else { "system trust store" }}</dd>
            <dt>"Timeouts"</dt><dd>{format!("connect {} s, request {} s", s.connect_timeout_secs, s.request_timeout_secs)}</dd>
            <dt>"Existing users"</dt><dd>{s.on_existing.label()}</dd>
            <dt>"Operations per bulk request"</dt><dd>{bound}</dd>
            <dt>"Last change"</dt><dd>{format_time(target.updated_at)}</dd>
        </dl>
    }
    .into_any()
}

#[component]
fn TestReport(report: ConnectionReport) -> impl IntoView {
    let discovery = report.discovery.clone();
    view! {
        <h3>"Connection test " <span class="muted small">{format_time(report.tested_at)}</span></h3>
        <table class="data test-steps">
            <thead><tr><th>"Step"</th><th>"Result"</th><th>"Detail"</th><th class="num">"Time"</th></tr></thead>
            <tbody>
                {report.steps.into_iter().map(|step| {
                    let badge = match step.status {
                        StepStatus::Passed => view! { <span class="badge ok">"Passed"</span> }.into_any(),
                        StepStatus::Failed => view! { <span class="badge error">"Failed"</span> }.into_any(),
                        StepStatus::Skipped => view! { <span class="badge muted">"Skipped"</span> }.into_any(),
                    };
                    let time = if step.status == StepStatus::Skipped { "—".to_string() } else { format!("{} ms", grouped(step.millis)) };
                    view! {
                        <tr data-step=format!("{:?}", step.kind)>
                            <td>{step.kind.label()}</td>
                            <td>{badge}</td>
                            <td class="detail">{step.detail}</td>
                            <td class="num">{time}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        {discovery.map(|d| view! { <DiscoveryView discovery=d /> })}
    }
    .into_any()
}

#[component]
fn DiscoveryView(discovery: Discovery) -> impl IntoView {
    let c = &discovery.config;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let filter = match (c.filter_supported, c.filter_max_results) {
        (true, Some(n)) => format!("yes, up to {} results", grouped(u64::from(n))),
        (true, None) => "yes".into(),
        (false, _) => "no: existing users cannot be looked up".into(),
    };
    let schemes = if c.authentication_schemes.is_empty() {
        "none advertised".to_string()
    } else {
        c.authentication_schemes.join(", ")
    };
    view! {
        <h3>"What the target supports"</h3>
        <dl class="facts discovered">
            <dt>"Bulk"</dt>
            <dd>{if c.bulk_supported { "supported".to_string() } else { "not supported: users are created one request at a time".to_string() }}</dd>
            <dt>"Max operations per bulk"</dt><dd id="max-operations">{grouped(u64::from(c.max_operations))}</dd>
            <dt>"Max payload per bulk"</dt><dd id="max-payload">{format!("{} bytes", grouped(c.max_payload_size))}</dd>
            <dt>"Filter"</dt><dd>{filter}</dd>
            <dt>"Patch"</dt><dd>{yes(c.patch_supported)}</dd>
            <dt>"ETag"</dt><dd>{yes(c.etag_supported)}</dd>
            <dt>"Sort"</dt><dd>{yes(c.sort_supported)}</dd>
            <dt>"Change password"</dt><dd>{yes(c.change_password_supported)}</dd>
            <dt>"Authentication schemes"</dt><dd>{schemes}</dd>
        </dl>
        <h3>"Resource types"</h3>
        <table class="data">
            <thead><tr><th>"Name"</th><th>"Endpoint"</th><th>"Schema"</th><th>"Extensions"</th></tr></thead>
            <tbody>
                {discovery.resource_types.iter().map(|t| view! {
                    <tr>
                        <td>{t.name.clone()}</td>
                        <td><code>{t.endpoint.clone()}</code></td>
                        <td><code>{t.schema.clone()}</code></td>
                        <td>{t.extensions.iter().map(|e| view! {
                            <div><code>{e.schema.clone()}</code>{e.required.then_some(" (required)")}</div>
                        }).collect_view()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <h3>"Schemas"</h3>
        {discovery.schemas.iter().map(|schema| {
            let rows = flatten(&schema.attributes, "");
            view! {
                <details class="schema">
                    <summary>
                        <code>{schema.id.clone()}</code>
                        " "<span class="muted">{format!("{} · {} attributes", schema.name, rows.len())}</span>
                    </summary>
                    <table class="data compact">
                        <thead><tr><th>"Attribute"</th><th>"Type"</th><th>"Multi-valued"</th><th>"Required"</th><th>"Mutability"</th><th>"Uniqueness"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|(path, a)| view! {
                                <tr>
                                    <td><code>{path}</code></td>
                                    <td>{a.kind.clone()}</td>
                                    <td>{yes(a.multi_valued)}</td>
                                    <td>{yes(a.required)}</td>
                                    <td>{a.mutability.clone()}</td>
                                    <td>{a.uniqueness.clone()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </details>
            }
        }).collect_view()}
    }
    .into_any()
}

/// Attributes with their sub-attributes as dotted paths (`emails.value`).
fn flatten<'a>(attributes: &'a [Attribute], prefix: &str) -> Vec<(String, &'a Attribute)> {
    let mut rows = Vec::new();
    for a in attributes {
        let path = if prefix.is_empty() {
            a.name.clone()
        } else {
            format!("{prefix}.{}", a.name)
        };
        rows.push((path.clone(), a));
        rows.extend(flatten(&a.sub_attributes, &path));
    }
    rows
}

#[component]
fn TargetForm(
    project: String,
    role: TargetRole,
    current: Option<TargetView>,
    save: ServerAction<SaveTarget>,
) -> impl IntoView {
    let error = action_error(save);
    let saved = move || matches!(save.value().get(), Some(Ok(_)));
    let settings = current.as_ref().map(|t| t.settings.clone());
    let secret_set = current.as_ref().is_some_and(|t| t.secret_set);
    let has_headers = current.as_ref().is_some_and(|t| !t.header_names.is_empty());
    let initial_auth = settings.as_ref().map_or("bearer", |s| s.auth.kind());
    let auth = RwSignal::new(initial_auth.to_string());
    let preset = RwSignal::new(settings.as_ref().map_or(Preset::Wso2, |s| s.preset));
    let field = move |name: &str| format!("{}-{name}", role.as_str());
    let (username, token_url, client_id, scope) = match settings.as_ref().map(|s| &s.auth) {
        Some(TargetAuth::Basic { username }) => (
            username.clone(),
            String::new(),
            String::new(),
            String::new(),
        ),
        Some(TargetAuth::OAuth2 {
            token_url,
            client_id,
            scope,
        }) => (
            String::new(),
            token_url.clone(),
            client_id.clone(),
            scope.clone(),
        ),
        _ => Default::default(),
    };
    let base_url = settings
        .as_ref()
        .map(|s| s.base_url.clone())
        .unwrap_or_default();
    let ca = settings
        .as_ref()
        .and_then(|s| s.ca_certificate.clone())
        .unwrap_or_default();
    let connect = settings.as_ref().map_or(10, |s| s.connect_timeout_secs);
    let request = settings.as_ref().map_or(60, |s| s.request_timeout_secs);
    let on_existing = settings
        .as_ref()
        .map_or(ExistingPolicy::Skip, |s| s.on_existing);
    let max_ops = settings
        .as_ref()
        .and_then(|s| s.max_operations)
        .map(|n| n.to_string())
        .unwrap_or_default();
    let secret_hint = move || {
        let label = match auth.get().as_str() {
            "basic" => "password",
            "oauth2" => "client secret",
            _ => "bearer token",
        };
        if secret_set && auth.get() == initial_auth {
            format!("A {label} is set; leave this empty to keep it.")
        } else {
            format!("Enter the {label}. It is stored encrypted and never shown again.")
        }
    };
    view! {
        <ActionForm action=save attr:class="target-settings">
            <input type="hidden" name="project" value=project />
            <input type="hidden" name="role" value=role.as_str() />
            <label for=field("preset")>"Kind of target"</label>
            <select id=field("preset") name="preset" on:change=move |ev| {
                if let Ok(p) = Preset::parse(&event_target_value(&ev)) { preset.set(p) }
            }>
                {Preset::ALL.into_iter().map(|p| view! {
                    <option value=p.as_str() selected=move || preset.get() == p>{p.label()}</option>
                }).collect_view()}
            </select>
            <p class="hint">{move || match preset.get() {
                Preset::Wso2 => "WSO2 Identity Server: the SCIM root is https://host:9443/scim2 (/scim2 is added when you give only the host). Users go before groups in each bulk request.",
                Preset::Asgardeo => "Asgardeo: https://api.asgardeo.io/t/ORGANIZATION/scim2. Bulk requests carry at most 100 operations.",
                Preset::Generic => "Any SCIM 2.0 service provider: give its SCIM root, where /ServiceProviderConfig is.",
            }}</p>
            <FieldError error field="preset" />

            <label for=field("base_url")>"SCIM base URL"</label>
            <input id=field("base_url") name="base_url" type="text" required placeholder="https://is.example.com:9443/scim2" value=base_url />
            <FieldError error field="base_url" />

            <label for=field("auth_type")>"Authentication"</label>
            <select id=field("auth_type") name="auth_type" on:change=move |ev| auth.set(event_target_value(&ev))>
                <option value="basic" selected=initial_auth == "basic">"HTTP Basic (user name and password)"</option>
                <option value="bearer" selected=initial_auth == "bearer">"Bearer token"</option>
                <option value="oauth2" selected=initial_auth == "oauth2">"OAuth2 client credentials"</option>
            </select>
            <FieldError error field="auth_type" />
            <div class:hidden=move || auth.get() != "basic">
                <label for=field("username")>"User name"</label>
                <input id=field("username") name="username" type="text" autocomplete="off" value=username />
                <FieldError error field="auth.username" />
            </div>
            <div class:hidden=move || auth.get() != "oauth2">
                <label for=field("token_url")>"Token endpoint"</label>
                <input id=field("token_url") name="token_url" type="text" placeholder="https://is.example.com:9443/oauth2/token" value=token_url />
                <FieldError error field="auth.token_url" />
                <label for=field("client_id")>"Client id"</label>
                <input id=field("client_id") name="client_id" type="text" autocomplete="off" value=client_id />
                <FieldError error field="auth.client_id" />
                <label for=field("scope")>"Scope"</label>
                <input id=field("scope") name="scope" type="text" placeholder="internal_user_mgt_create internal_user_mgt_list" value=scope />
            </div>
            <label for=field("secret")>{move || match auth.get().as_str() { "basic" => "Password", "oauth2" => "Client secret", _ => "Bearer token" }}</label>
            <input id=field("secret") name="secret" type="password" autocomplete="new-password" />
            <p class="hint">{secret_hint}</p>
            <FieldError error field="secret" />

            <details class="advanced">
                <summary>"Advanced: headers, CA certificate, timeouts, limits"</summary>
                <label for=field("headers_text")>"Extra request headers"</label>
                <textarea id=field("headers_text") name="headers_text" rows="3" placeholder="X-Tenant: acme"></textarea>
                <label class="check">
                    <input type="checkbox" name="replace_headers" value="on" checked=!has_headers />
                    {if has_headers { " Replace the stored headers with the ones above (their values are not shown)" } else { " Save these headers" }}
                </label>
                <p class="hint">"One per line as Name: value. Values are stored encrypted, like the secret."</p>
                <FieldError error field="headers" />
                <label for=field("ca_certificate")>"CA certificate (PEM)"</label>
                <textarea id=field("ca_certificate") name="ca_certificate" rows="4" placeholder="-----BEGIN CERTIFICATE-----" prop:value=ca.clone()>{ca.clone()}</textarea>
                <p class="hint">"For a target whose certificate comes from a private CA; added to the system's trusted certificates."</p>
                <FieldError error field="ca_certificate" />
                <div class="grid-3">
                    <div>
                        <label for=field("connect_timeout_secs")>"Connect timeout (s)"</label>
                        <input id=field("connect_timeout_secs") name="connect_timeout_secs" type="number" min="1" max="300" value=connect.to_string() />
                        <FieldError error field="connect_timeout_secs" />
                    </div>
                    <div>
                        <label for=field("request_timeout_secs")>"Request timeout (s)"</label>
                        <input id=field("request_timeout_secs") name="request_timeout_secs" type="number" min="1" max="3600" value=request.to_string() />
                        <FieldError error field="request_timeout_secs" />
                    </div>
                    <div>
                        <label for=field("max_operations")>"Operations per bulk, at most"</label>
                        <input id=field("max_operations") name="max_operations" type="number" min="1" placeholder="as advertised" value=max_ops />
                        <FieldError error field="max_operations" />
                    </div>
                </div>
            </details>

            <label for=field("on_existing")>"When a user already exists in the target"</label>
            <select id=field("on_existing") name="on_existing">
                {ExistingPolicy::ALL.into_iter().map(|p| view! {
                    <option value=p.as_str() selected=p == on_existing>{p.label()}</option>
                }).collect_view()}
            </select>
            <p class="hint">"Ferry finds the existing user by userName or externalId: skip leaves it as it is, update replaces its attributes, fail sends the record to review."</p>

            <FormError error />
            {move || saved().then(|| view! { <div class="alert success" role="status">"Saved. Test the connection to see what the target supports."</div> })}
            <div class="actions">
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save target"</button>
            </div>
        </ActionForm>
    }
    .into_any()
}
