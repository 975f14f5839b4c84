//! The Passwords stage: how far the passwords have followed the users (per user type,
//! by day, and how verifications ended), the verification service WSO2's login script
//! calls (settings, URLs, a client secret or static key shown once), the script ready
//! to paste, a rehearsal of the whole loop on a test-run user, the legacy identity
//! provider that checks passwords of users without a hash, and the log of every
//! verification.

use crate::{
    api::passwords::{
        DeleteLegacyConnection, IssueServiceSecret, RehearseLogin, RevokeServiceKey,
        SaveLegacyConnection, SavePasswordService, SaveWavePlan, StartWave, TestLegacyConnection,
        legacy_connection, password_coverage, password_script, password_service,
        password_verifications, password_waves, rehearsal_candidates,
    },
    components::{
        charts::{Bar, BarChart},
        format_time,
        forms::{FieldError, FormError, LoadError, action_error, succeeded},
        pager::Pager,
    },
};
use domain::{
    legacy::{LegacySettings, LegacyView},
    numbers::grouped,
    password_service::{Coverage, IssuedServiceSecret, SecretKind, ServiceView, WavesView},
    runs::RunState,
    service::Rehearsal,
    user_types::PasswordStrategy,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

const LOG_PAGE: u32 = 25;

fn log_href(offset: u64, project: &str) -> String {
    format!("/projects/{project}/passwords?offset={offset}#verifications")
}

#[component]
pub fn PasswordsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let offset = Memo::new(move |_| {
        query
            .read()
            .get("offset")
            .and_then(|o| o.parse::<u64>().ok())
            .unwrap_or(0)
    });
    let save = ServerAction::<SavePasswordService>::new();
    let issue = ServerAction::<IssueServiceSecret>::new();
    let revoke = ServerAction::<RevokeServiceKey>::new();
    let rehearse = ServerAction::<RehearseLogin>::new();
    // A refused save must not draw the form again from what is stored (it would throw
    // away what was being entered): only saves that succeeded refresh the service.
    let saved = succeeded(save);
    let changed = move || saved.get() + issue.version().get() + revoke.version().get();
    let service = Resource::new(
        move || (project.get(), changed()),
        |(p, _)| password_service(p),
    );
    let coverage = Resource::new(
        move || (project.get(), rehearse.version().get()),
        |(p, _)| password_coverage(p),
    );
    view! {
        <Title text="Passwords" />
        <p class="muted intro">
            "Users keep their password when it moves silently: the target's login script sends the password \
             of a failed login to Ferry, Ferry checks it against the hash exported from the legacy identity \
             provider, and on success the script sets it in the target and marks the user migrated. Users of \
             forced-reset types choose a new password instead."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading coverage…"</p> }>
            {move || Suspend::new(async move {
                match coverage.await {
                    Ok(c) => view! { <CoverageCard coverage=c /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="muted">"Loading the service…"</p> }>
            {move || Suspend::new(async move {
                match service.await {
                    Ok(view) => view! {
                        <ServiceCard project=project.get_untracked() service=view.clone() save issue revoke />
                        <ScriptCard project=project.get_untracked() service=view.clone() />
                        <RehearsalCard project=project.get_untracked() service=view rehearse />
                    }
                    .into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
        <LegacySection project />
        <WavesSection project />
        <VerificationsCard project offset />
    }
    .into_any()
}

#[component]
fn LegacySection(project: Signal<String>) -> impl IntoView {
    let save = ServerAction::<SaveLegacyConnection>::new();
    let test = ServerAction::<TestLegacyConnection>::new();
    let remove = ServerAction::<DeleteLegacyConnection>::new();
    let saved = succeeded(save);
    let connection = Resource::new(
        move || {
            (
                project.get(),
                saved.get(),
                test.version().get(),
                remove.version().get(),
            )
        },
        |(p, ..)| legacy_connection(p),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading the legacy connection…"</p> }>
            {move || Suspend::new(async move {
                match connection.await {
                    Ok(view) => view! { <LegacyCard project=project.get_untracked() connection=view save test remove /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// The method's fields as stored, for the form.
#[derive(Clone, Default)]
struct LegacyFields {
    url: String,
    dn_template: String,
    starttls: bool,
    token_url: String,
    client_id: String,
    scope: String,
    org_url: String,
    region: String,
    endpoint: String,
}

impl LegacyFields {
    fn of(settings: &LegacySettings) -> Self {
        let mut f = LegacyFields::default();
        match settings.clone() {
            LegacySettings::Ldap {
                url,
                dn_template,
                starttls,
            } => {
                f.url = url;
                f.dn_template = dn_template.unwrap_or_default();
                f.starttls = starttls;
            }
            LegacySettings::OAuth2Password {
                token_url,
                client_id,
                scope,
            } => {
                f.token_url = token_url;
                f.client_id = client_id;
                f.scope = scope;
            }
            LegacySettings::Okta { org_url } => f.org_url = org_url,
            LegacySettings::Cognito {
                region,
                client_id,
                endpoint,
            } => {
                f.region = region;
                f.client_id = client_id;
                f.endpoint = endpoint.unwrap_or_default();
            }
        }
        f
    }
}

#[component]
fn LegacyCard(
    project: String,
    connection: Option<LegacyView>,
    save: ServerAction<SaveLegacyConnection>,
    test: ServerAction<TestLegacyConnection>,
    remove: ServerAction<DeleteLegacyConnection>,
) -> impl IntoView {
    let save_error = action_error(save);
    let test_error = action_error(test);
    let kind = RwSignal::new(
        connection
            .as_ref()
            .map_or("ldap", |c| c.settings.kind())
            .to_string(),
    );
    let f = connection
        .as_ref()
        .map(|c| LegacyFields::of(&c.settings))
        .unwrap_or_default();
    let has_secret = connection.as_ref().is_some_and(|c| c.has_secret);
    let status = match &connection {
        None => view! {
            <p id="legacy-status" class="muted">"No legacy connection: users whose export carried no password hash cannot keep their password. Invite them in waves, or connect the provider that still holds their passwords."</p>
        }
        .into_any(),
        Some(c) => {
            let test = match &c.last_test {
                None => view! { <span class="badge muted">"not tested"</span> }.into_any(),
                Some(t) if t.ok => view! { <span class="badge ok">{format!("test passed {}", format_time(t.at))}</span> }.into_any(),
                Some(t) => view! { <span class="badge bad">{format!("test failed {}", format_time(t.at))}</span> }.into_any(),
            };
            let message = c.last_test.as_ref().map(|t| t.message.clone());
            view! {
                <p id="legacy-status">
                    {format!("Passwords of users without a hash are checked by {} at ", c.method)}
                    <code>{c.destination.clone()}</code>". "{test}
                </p>
                {message.map(|m| view! { <p class="muted small" id="legacy-test-message">{m}</p> })}
            }
            .into_any()
        }
    };
    let configured = connection.is_some();
    let (p1, p2, p3) = (project.clone(), project.clone(), project.clone());
    view! {
        <section class="card" id="legacy">
            <h2>"Users without a password hash"</h2>
            <p>"Okta, Cognito and Entra ID never export password hashes, and a directory may withhold them. For those users Ferry can ask the legacy identity provider, at their first login, whether the password is right; the provider must then keep running until they have moved. The same lockout applies before the provider is asked."</p>
            {status}
            <ActionForm action=save attr:class="stack-form" attr:id="legacy-form">
                <input type="hidden" name="project" value=p1 />
                <label>"Ask the provider by"
                    <select name="kind" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="ldap">"LDAP bind as the user"</option>
                        <option value="oauth2_password">"OAuth2 password grant (Keycloak, Auth0, Entra ID)"</option>
                        <option value="okta">"Okta authentication API"</option>
                        <option value="cognito">"Amazon Cognito (USER_PASSWORD_AUTH)"</option>
                    </select>
                </label>
                <FieldError error=save_error field="kind" />
                {
                    let f = f.clone();
                    move || match kind.get().as_str() {
                        "ldap" => view! {
                            <label>"Directory address"<input type="text" name="url" placeholder="ldaps://ldap.example.org:636" value=f.url.clone() /></label>
                            <FieldError error=save_error field="url" />
                            <label>"DN template (optional)"<input type="text" name="dn_template" placeholder="uid={login},ou=people,dc=example,dc=org" value=f.dn_template.clone() /></label>
                            <p class="muted small">"Without a template, Ferry binds to the DN the export gave each user."</p>
                            <FieldError error=save_error field="dn_template" />
                            <label class="check"><input type="checkbox" name="starttls" value="on" checked=f.starttls />" Upgrade ldap:// with StartTLS"</label>
                            <FieldError error=save_error field="starttls" />
                        }.into_any(),
                        "oauth2_password" => view! {
                            <label>"Token endpoint"<input type="text" name="token_url" placeholder="https://idp.example.com/realms/main/protocol/openid-connect/token" value=f.token_url.clone() /></label>
                            <FieldError error=save_error field="token_url" />
                            <div class="field-row">
                                <label>"Client id"<input type="text" name="client_id" value=f.client_id.clone() /></label>
                                <label>"Scope"<input type="text" name="scope" placeholder="openid" value=f.scope.clone() /></label>
                            </div>
                            <FieldError error=save_error field="client_id" />
                        }.into_any(),
                        "okta" => view! {
                            <label>"Okta organization"<input type="text" name="org_url" placeholder="https://example.okta.com" value=f.org_url.clone() /></label>
                            <FieldError error=save_error field="org_url" />
                        }.into_any(),
                        _ => view! {
                            <div class="field-row">
                                <label>"Region"<input type="text" name="region" placeholder="eu-west-1" value=f.region.clone() /></label>
                                <label>"App client id"<input type="text" name="client_id" value=f.client_id.clone() /></label>
                            </div>
                            <FieldError error=save_error field="region" />
                            <FieldError error=save_error field="client_id" />
                            <label>"Endpoint (optional)"<input type="text" name="endpoint" placeholder="https://cognito-idp.eu-west-1.amazonaws.com/" value=f.endpoint.clone() /></label>
                            <FieldError error=save_error field="endpoint" />
                        }.into_any(),
                    }
                }
                <Show when=move || matches!(kind.get().as_str(), "oauth2_password" | "cognito")>
                    <label>"Client secret"
                        <input type="password" name="secret" autocomplete="off"
                            placeholder=if has_secret { "stored; leave empty to keep it" } else { "only if the client has one" } />
                    </label>
                    {has_secret.then(|| view! { <label class="check"><input type="checkbox" name="remove_secret" value="on" />" Remove the stored secret"</label> })}
                    <FieldError error=save_error field="secret" />
                </Show>
                <FormError error=save_error />
                <button type="submit" class="primary" disabled=move || save.pending().get()>"Save the connection"</button>
            </ActionForm>
            {configured.then(|| view! {
                <div class="row-form">
                    <ActionForm action=test attr:id="legacy-test">
                        <input type="hidden" name="project" value=p2 />
                        <button type="submit" disabled=move || test.pending().get()>
                            {move || if test.pending().get() { "Testing…" } else { "Test the connection" }}
                        </button>
                    </ActionForm>
                    <ActionForm action=remove attr:id="legacy-remove">
                        <input type="hidden" name="project" value=p3 />
                        <button type="submit" class="danger">"Remove"</button>
                    </ActionForm>
                </div>
                <p class="muted small">"The test asks about a made-up user and password: a working connection refuses them."</p>
                <FormError error=test_error />
            })}
        </section>
    }
    .into_any()
}

#[component]
fn WavesSection(project: Signal<String>) -> impl IntoView {
    let save = ServerAction::<SaveWavePlan>::new();
    let start = ServerAction::<StartWave>::new();
    let saved = succeeded(save);
    let waves = Resource::new(
        move || (project.get(), saved.get(), start.version().get()),
        |(p, ..)| password_waves(p),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading the invitation waves…"</p> }>
            {move || Suspend::new(async move {
                match waves.await {
                    Ok(view) => view! { <WavesCard project=project.get_untracked() waves=view save start /> }.into_any(),
                    Err(error) => view! { <LoadError error /> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn WavesCard(
    project: String,
    waves: WavesView,
    save: ServerAction<SaveWavePlan>,
    start: ServerAction<StartWave>,
) -> impl IntoView {
    let save_error = action_error(save);
    let start_error = action_error(start);
    let plan = waves.plan.clone();
    let started = {
        let project = project.clone();
        move || match start.value().get() {
            Some(Ok(run)) => Some(view! {
                <p class="alert success" role="status" id="wave-started">
                    {format!("A wave of {} users started. ", grouped(run.total))}
                    <a href=format!("/projects/{project}/runs/{}", run.id)>"Watch it"</a>
                </p>
            }),
            _ => None,
        }
    };
    let days = waves
        .calendar
        .iter()
        .map(|d| Bar {
            label: d.date.clone(),
            value: d.users as f64,
            text: grouped(d.users),
        })
        .collect::<Vec<_>>();
    let rows = waves
        .waves
        .iter()
        .map(|run| {
            let c = &run.counts;
            let state = match run.state {
                RunState::Succeeded => view! { <span class="badge ok">"settled"</span> }.into_any(),
                RunState::Running => view! { <span class="badge">"sending"</span> }.into_any(),
                other => view! { <span class="badge muted">{other.as_str()}</span> }.into_any(),
            };
            view! {
                <tr>
                    <td><a href=format!("/projects/{project}/runs/{}", run.id)>{format_time(run.created_at)}</a></td>
                    <td>{if run.created_by.is_some() { "by hand" } else { "by the plan" }}</td>
                    <td>{state}</td>
                    <td class="num">{grouped(run.total)}</td>
                    <td class="num">{grouped(c.updated)}</td>
                    <td class="num">{grouped(c.skipped)}</td>
                    <td class="num">{grouped(c.failed)}</td>
                </tr>
            }
        })
        .collect_view();
    let has_waves = !waves.waves.is_empty();
    let p = project.clone();
    view! {
        <section class="card" id="waves">
            <h2>"Invitation waves"</h2>
            <p>"Users of forced-reset types are created without an invitation. Waves then ask the target to have them choose a new password, a few at a time inside the hours you choose, and mark them migrated so that an old password is never checked again."</p>
            <p id="waves-waiting">{format!(
                "{}; waves took {} today.",
                match waves.waiting {
                    1 => "1 user waits for an invitation".to_string(),
                    n => format!("{} users wait for an invitation", grouped(n)),
                },
                grouped(waves.sent_today)
            )}</p>
            {match waves.reset_attribute.clone() {
                Some(attribute) => view! { <p class="muted small">{format!("A wave sets {attribute} (and is_migrated) on each user.")}</p> }.into_any(),
                None => view! { <p class="alert warn">"The production target defines neither forcePasswordReset nor askPassword: test it again once it does, or waves fail."</p> }.into_any(),
            }}
            {(!days.is_empty()).then(|| view! { <BarChart title="Invitations the plan sends, by day" bars=days id="wave-calendar" /> })}
            <ActionForm action=start attr:class="row-form" attr:id="start-wave">
                <input type="hidden" name="project" value=p />
                <label>"Users in this wave"<input type="number" name="size" min="1" placeholder=plan.wave_size.to_string() /></label>
                <button type="submit" class="primary" disabled=move || start.pending().get()>"Start a wave now"</button>
            </ActionForm>
            <FormError error=start_error />
            {started}
            {has_waves.then(|| view! {
                <div class="table-scroll">
                    <table class="data" id="wave-list">
                        <thead><tr><th>"Started"</th><th>"How"</th><th>"State"</th><th class="num">"Users"</th><th class="num">"Invited"</th><th class="num">"Moved before"</th><th class="num">"Failed"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            })}
            <details open=!plan.enabled>
                <summary>"The plan"</summary>
                <ActionForm action=save attr:class="stack-form" attr:id="wave-plan">
                    <input type="hidden" name="project" value=project />
                    <label class="check"><input type="checkbox" name="enabled" value="on" checked=plan.enabled />" Start waves by this plan"</label>
                    <div class="field-row">
                        <label>"Users a wave"<input type="number" name="wave_size" min="1" value=plan.wave_size.to_string() /></label>
                        <label>"At most a minute"<input type="number" name="per_minute" min="1" value=plan.per_minute.to_string() /></label>
                        <label>"At most a day"<input type="number" name="daily_cap" min="1" value=plan.daily_cap.to_string() /></label>
                    </div>
                    <FieldError error=save_error field="wave_size" />
                    <FieldError error=save_error field="per_minute" />
                    <FieldError error=save_error field="daily_cap" />
                    <div class="field-row">
                        <label>"From"<input type="time" name="from" value=plan.from.clone() /></label>
                        <label>"Until"<input type="time" name="until" value=plan.until.clone() /></label>
                        <label>"Time zone"<input type="text" name="zone" value=plan.zone.clone() /></label>
                    </div>
                    <FieldError error=save_error field="from" />
                    <FieldError error=save_error field="until" />
                    <FieldError error=save_error field="zone" />
                    <label>"Also invite silent-migration users whose password has not moved after (days)"
                        <input type="number" name="long_tail_days" min="1" placeholder="leave empty: forced-reset users only" value=plan.long_tail_days.map(|d| d.to_string()).unwrap_or_default() />
                    </label>
                    <FieldError error=save_error field="long_tail_days" />
                    <FormError error=save_error />
                    <button type="submit" class="primary">"Save the plan"</button>
                </ActionForm>
            </details>
        </section>
    }
    .into_any()
}

fn strategy_label(strategy: Option<PasswordStrategy>) -> &'static str {
    match strategy {
        Some(PasswordStrategy::SilentMigration) => "silent migration",
        Some(PasswordStrategy::ForcedReset) => "forced reset",
        Some(PasswordStrategy::None) => "disabled, no password",
        None => "not recorded",
    }
}

#[component]
fn CoverageCard(coverage: Coverage) -> impl IntoView {
    let created: u64 = coverage.by_type.iter().map(|t| t.created).sum();
    let verified: u64 = coverage.by_type.iter().map(|t| t.verified).sum();
    let reset: u64 = coverage.by_type.iter().map(|t| t.reset).sum();
    let waiting: u64 = coverage.by_type.iter().map(|t| t.waiting).sum();
    if created == 0 {
        return view! {
            <section class="card" id="coverage">
                <h2>"Where the passwords stand"</h2>
                <p>"No real run has created users yet: passwords follow the users once they are in the target."</p>
            </section>
        }
        .into_any();
    }
    let share = |n: u64| {
        if created == 0 {
            0.0
        } else {
            n as f64 * 100.0 / created as f64
        }
    };
    let bars = coverage
        .by_type
        .iter()
        .map(|t| {
            let moved = t.verified + t.reset;
            let pct = if t.created == 0 {
                0.0
            } else {
                moved as f64 * 100.0 / t.created as f64
            };
            Bar {
                label: t
                    .user_type
                    .clone()
                    .unwrap_or_else(|| "(no user type)".into()),
                value: pct,
                text: format!("{pct:.0} % ({} of {})", grouped(moved), grouped(t.created)),
            }
        })
        .collect::<Vec<_>>();
    let days = coverage
        .by_day
        .iter()
        .map(|d| Bar {
            label: d.day.clone(),
            value: (d.verified + d.reset) as f64,
            text: grouped(d.verified + d.reset),
        })
        .collect::<Vec<_>>();
    let outcomes = coverage
        .outcomes
        .iter()
        .map(|o| Bar {
            label: o.label.clone(),
            value: o.count as f64,
            text: grouped(o.count),
        })
        .collect::<Vec<_>>();
    let rows = coverage
        .by_type
        .iter()
        .map(|t| {
            view! {
                <tr>
                    <td>{t.user_type.clone().unwrap_or_else(|| "(no user type)".into())}</td>
                    <td>{strategy_label(t.strategy)}</td>
                    <td class="num">{grouped(t.created)}</td>
                    <td class="num">{grouped(t.verified)}</td>
                    <td class="num">{grouped(t.reset)}</td>
                    <td class="num">{grouped(t.waiting)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" id="coverage">
            <h2>"Where the passwords stand"</h2>
            <p>
                {format!(
                    "Of {} users the real runs created, {} ({:.0} %) moved their password at a login, {} ({:.0} %) were reset by invitation, and {} ({:.0} %) have not moved yet.",
                    grouped(created), grouped(verified), share(verified), grouped(reset), share(reset), grouped(waiting), share(waiting),
                )}
            </p>
            <div class="table-scroll">
                <table class="data" id="coverage-by-type">
                    <thead><tr>
                        <th>"User type"</th><th>"Passwords"</th><th class="num">"Created"</th>
                        <th class="num">"Verified at login"</th><th class="num">"Reset"</th><th class="num">"Not moved yet"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <BarChart title="Passwords moved, by user type" bars max=100.0 />
            {(!days.is_empty()).then(|| view! { <BarChart title="Passwords moved a day (verified or reset; last 60 days)" bars=days /> })}
            {(!outcomes.is_empty()).then(|| view! { <BarChart title="Verifications, by how they ended" bars=outcomes id="outcomes" /> })}
        </section>
    }
    .into_any()
}

#[component]
fn ServiceCard(
    project: String,
    service: ServiceView,
    save: ServerAction<SavePasswordService>,
    issue: ServerAction<IssueServiceSecret>,
    revoke: ServerAction<RevokeServiceKey>,
) -> impl IntoView {
    let save_error = action_error(save);
    let issue_error = action_error(issue);
    let revoke_error = action_error(revoke);
    let s = service.settings.clone();
    let ready = service.missing.is_empty();
    let badge = if ready {
        view! { <span class="badge ok">"Answering"</span> }.into_any()
    } else if s.enabled {
        view! { <span class="badge warn">"On, not ready"</span> }.into_any()
    } else {
        view! { <span class="badge muted">"Off"</span> }.into_any()
    };
    let missing = service.missing.clone();
    let secret_text = service.client_secret.as_ref().map_or_else(
        || "none yet".to_string(),
        |c| format!("{} (made {})", c.hint, format_time(c.set_at)),
    );
    let key_text = service.static_key.as_ref().map_or_else(
        || "none".to_string(),
        |c| format!("{} (made {})", c.hint, format_time(c.set_at)),
    );
    let has_key = service.static_key.is_some();
    let issued = move || match issue.value().get() {
        Some(Ok(issued)) => Some(view! { <IssuedSecret issued /> }.into_any()),
        _ => None,
    };
    let p = project.clone();
    let p2 = project.clone();
    let p3 = project.clone();
    view! {
        <section class="card" id="service">
            <div class="card-head">
                <h2>"Verification service"</h2>
                {badge}
            </div>
            <p>{match service.silent_users {
                0 => "No user of a silent-migration type is in the production target yet: they arrive with the real run, and each moves their password at their first login once the target's script calls this service.".to_string(),
                1 => "1 user of a silent-migration type is in the production target. They move their password at their first login once the target's script calls this service.".to_string(),
                n => format!("{} users of silent-migration types are in the production target. Each moves their password at their first login once the target's script calls this service.", grouped(n)),
            }}</p>
            {(!missing.is_empty()).then(|| view! {
                <div class="alert warn" role="note" id="service-missing">
                    <p>"Before it can answer:"</p>
                    <ul>{missing.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul>
                </div>
            })}
            <dl class="facts" id="service-urls">
                <dt>"Start"</dt><dd><code>{service.urls.start.clone()}</code></dd>
                <dt>"Status"</dt><dd><code>{service.urls.status.clone()}</code></dd>
                <dt>"Token endpoint"</dt><dd><code>{service.urls.token.clone()}</code></dd>
                <dt>"Client id"</dt><dd><code id="client-id">{service.client_id.clone().unwrap_or_else(|| "made when the settings are first saved".into())}</code></dd>
                <dt>"Client secret"</dt><dd id="secret-hint">{secret_text}</dd>
                <dt>"Static key"</dt><dd id="key-hint">{key_text}</dd>
                <dt>"is_migrated in the target"</dt><dd>{service.migrated_attribute.clone().unwrap_or_else(|| "not found in the target's schemas".into())}</dd>
            </dl>
            {issued}
            <div class="button-row">
                <ActionForm action=issue attr:class="inline-form">
                    <input type="hidden" name="project" value=p.clone() />
                    <input type="hidden" name="kind" value="client_secret" />
                    <button type="submit" id="new-secret">{if service.client_secret.is_some() { "Make a new client secret" } else { "Make a client secret" }}</button>
                </ActionForm>
                <ActionForm action=issue attr:class="inline-form">
                    <input type="hidden" name="project" value=p2 />
                    <input type="hidden" name="kind" value="static_key" />
                    <button type="submit" id="new-key">{if has_key { "Make a new static key" } else { "Make a static key" }}</button>
                </ActionForm>
                {has_key.then(|| view! {
                    <ActionForm action=revoke attr:class="inline-form">
                        <input type="hidden" name="project" value=p3 />
                        <button type="submit" class="danger">"Remove the static key"</button>
                    </ActionForm>
                })}
            </div>
            <FormError error=issue_error />
            <FormError error=revoke_error />
            <p class="muted small">"A new client secret ends every access token issued under the old one: update the secret in the target's script secrets at the same time."</p>
            <details open=!s.enabled>
                <summary>"Settings"</summary>
                <ActionForm action=save attr:class="stack-form" attr:id="service-settings">
                    <input type="hidden" name="project" value=project />
                    <label class="check"><input type="checkbox" name="enabled" value="on" checked=s.enabled />" Answer the login script (switch off to refuse every call)"</label>
                    <label>"Origin of the target's login pages"
                        <input type="url" name="login_origin" placeholder="https://login.example.com" value=s.login_origin.clone().unwrap_or_default() />
                    </label>
                    <FieldError error=save_error field="login_origin" />
                    <p class="muted small">"The waiting page's browser asks this service for the status; only this origin may read the answer."</p>
                    <div class="field-row">
                        <label>"A login waits at most (seconds)"<input type="number" name="context_ttl_secs" min="10" max="600" value=s.context_ttl_secs.to_string() /></label>
                        <label>"Access tokens last (seconds)"<input type="number" name="token_ttl_secs" min="60" max="86400" value=s.token_ttl_secs.to_string() /></label>
                    </div>
                    <FieldError error=save_error field="context_ttl_secs" />
                    <FieldError error=save_error field="token_ttl_secs" />
                    <div class="field-row">
                        <label>"Lock a user name after failures"<input type="number" name="max_user_failures" min="1" max="100" value=s.max_user_failures.to_string() /></label>
                        <label>"Lock the caller after failures"<input type="number" name="max_caller_failures" min="1" value=s.max_caller_failures.to_string() /></label>
                        <label>"Within (seconds)"<input type="number" name="failure_window_secs" min="60" max="86400" value=s.failure_window_secs.to_string() /></label>
                    </div>
                    <FieldError error=save_error field="max_user_failures" />
                    <FieldError error=save_error field="max_caller_failures" />
                    <FieldError error=save_error field="failure_window_secs" />
                    <p class="muted small">"A locked user name or caller is answered FAIL without its password being checked, until the oldest failure leaves the window."</p>
                    <FormError error=save_error />
                    <button type="submit" class="primary">"Save settings"</button>
                </ActionForm>
            </details>
        </section>
    }
    .into_any()
}

#[component]
fn IssuedSecret(issued: IssuedServiceSecret) -> impl IntoView {
    let (what, place) = match issued.kind {
        SecretKind::ClientSecret => (
            "The new client secret",
            "Store it in the target as the conditional-authentication secret named ferry_client_secret.",
        ),
        SecretKind::StaticKey => (
            "The new static key",
            "Send it as Authorization: Bearer … from the script, instead of the client credentials.",
        ),
    };
    view! {
        <div class="alert success issued" role="status" id="issued-secret">
            <p><strong>{what}</strong>" — copy it now: Ferry keeps only its hash and will not show it again."</p>
            <code class="secret">{issued.secret}</code>
            <p class="muted small">{place}</p>
        </div>
    }
    .into_any()
}

#[component]
fn ScriptCard(project: String, service: ServiceView) -> impl IntoView {
    let variant = RwSignal::new("identity_server".to_string());
    let saved = service.client_id.is_some();
    let script = Resource::new(
        move || (project.clone(), variant.get(), saved),
        |(p, v, saved)| async move {
            if saved {
                password_script(p, v).await.map(Some)
            } else {
                Ok(None)
            }
        },
    );
    let attribute = service
        .migrated_attribute
        .clone()
        .unwrap_or_else(|| "urn:scim:wso2:schema:is_migrated".into());
    view! {
        <section class="card" id="script">
            <h2>"The login script"</h2>
            <p>"Paste it into the application's login flow as its conditional-authentication script. It runs only when a normal login fails and the user's password has not moved yet."</p>
            <div class="tabs" role="tablist">
                <button type="button" role="tab" aria-selected=move || (variant.get() == "identity_server").to_string()
                    on:click=move |_| variant.set("identity_server".into())>"WSO2 Identity Server"</button>
                <button type="button" role="tab" aria-selected=move || (variant.get() == "asgardeo").to_string()
                    on:click=move |_| variant.set("asgardeo".into())>"Asgardeo"</button>
            </div>
            <ol class="steps">
                <li>"Add a local claim "<code>"http://wso2.org/claims/is_migrated"</code>" (text) and map it to the SCIM attribute "<code>{attribute}</code>"; then test the target again here so Ferry finds it."</li>
                <li>{move || if variant.get() == "asgardeo" {
                    "In Asgardeo, open the application → Login Flow → Conditional Authentication, and add a secret named ferry_client_secret holding the client secret."
                } else {
                    "In the Console, open the application → Login Flow → Conditional Authentication, and add a secret named ferry_client_secret holding the client secret."
                }}</li>
                <li>"Paste the script below and save; then rehearse the loop below before real users log in."</li>
            </ol>
            <Transition fallback=|| view! { <p class="muted">"Writing the script…"</p> }>
                {move || Suspend::new(async move {
                    match script.await {
                        Ok(Some(text)) => {
                            let href = format!("data:text/javascript;charset=utf-8,{}", urlencode(&text));
                            view! {
                                // The value as a property too: a textarea's text child alone was
                                // emptied when the page hydrated.
                                <textarea class="code" id="script-text" readonly rows="18" aria-label="The login script" prop:value=text.clone()>{text.clone()}</textarea>
                                <p><a href=href download="ferry-login-script.js">"Download the script"</a></p>
                            }.into_any()
                        }
                        Ok(None) => view! { <p class="muted">"Save the service's settings first: the script names its client id."</p> }.into_any(),
                        Err(error) => view! { <LoadError error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

/// Percent-encodes text for a `data:` link.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
fn RehearsalCard(
    project: String,
    service: ServiceView,
    rehearse: ServerAction<RehearseLogin>,
) -> impl IntoView {
    let error = action_error(rehearse);
    let p = project.clone();
    let candidates = Resource::new(
        move || (p.clone(), rehearse.version().get()),
        |(p, _)| rehearsal_candidates(p),
    );
    let result = move || match rehearse.value().get() {
        Some(Ok(r)) => Some(view! { <RehearsalResult rehearsal=r /> }.into_any()),
        _ => None,
    };
    let can = service.migrated_attribute.is_some();
    view! {
        <section class="card" id="rehearsal">
            <h2>"Rehearse the loop"</h2>
            <p>"Plays the login script's part for a user the latest test run created: starts a verification with the password you type, polls until it is complete, reads the status, then sets that password and is_migrated on the user in the test target and reads them back."</p>
            {(!can).then(|| view! { <p class="alert warn">"The test target defines no is_migrated attribute yet: add the claim, then test the target again."</p> })}
            <Transition fallback=|| view! { <p class="muted">"Loading test-run users…"</p> }>
                {move || {
                    let project = project.clone();
                    Suspend::new(async move {
                        match candidates.await {
                            Ok(list) if list.is_empty() => view! {
                                <p class="muted">"No test-run user of a silent-migration type is left to rehearse with: run a test first."</p>
                            }.into_any(),
                            Ok(list) => view! {
                                <ActionForm action=rehearse attr:class="stack-form" attr:id="rehearsal-form">
                                    <input type="hidden" name="project" value=project />
                                    <label>"Test-run user"
                                        <select name="scim_id">
                                            {list.into_iter().map(|c| {
                                                let label = match &c.user_type {
                                                    Some(t) => format!("{} ({t})", c.source_id),
                                                    None => c.source_id.clone(),
                                                };
                                                view! { <option value=c.scim_id>{label}</option> }
                                            }).collect_view()}
                                        </select>
                                    </label>
                                    <label>"Login name, as the user types it"<input type="text" name="username" autocomplete="off" required /></label>
                                    <label>"Their legacy password"<input type="password" name="password" autocomplete="off" required /></label>
                                    <button type="submit" class="primary" disabled=move || rehearse.pending().get()>
                                        {move || if rehearse.pending().get() { "Rehearsing…" } else { "Rehearse the login" }}
                                    </button>
                                </ActionForm>
                            }.into_any(),
                            Err(error) => view! { <LoadError error /> }.into_any(),
                        }
                    })
                }}
            </Transition>
            <FormError error />
            {result}
        </section>
    }
    .into_any()
}

#[component]
fn RehearsalResult(rehearsal: Rehearsal) -> impl IntoView {
    let summary = if rehearsal.passed {
        view! { <p class="alert success" role="status" id="rehearsal-result">"The whole loop worked: the password was verified, set in the test target, and is_migrated reads true."</p> }.into_any()
    } else {
        view! { <p class="alert error" role="status" id="rehearsal-result">"The loop stopped at the step marked failed below."</p> }.into_any()
    };
    view! {
        {summary}
        <div class="table-scroll">
            <table class="data" id="rehearsal-steps">
                <thead><tr><th>"Step"</th><th>"Result"</th><th>"What happened"</th></tr></thead>
                <tbody>
                    {rehearsal.steps.into_iter().map(|s| view! {
                        <tr>
                            <td>{s.step.replace('_', " ")}</td>
                            <td>{if s.passed { view! { <span class="badge ok">"Passed"</span> }.into_any() } else { view! { <span class="badge error">"Failed"</span> }.into_any() }}</td>
                            <td class="detail">{s.detail}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn VerificationsCard(project: Signal<String>, offset: Memo<u64>) -> impl IntoView {
    let log = Resource::new(
        move || (project.get(), offset.get()),
        |(p, o)| password_verifications(p, o),
    );
    view! {
        <section class="card" id="verifications">
            <h2>"Verifications"</h2>
            <p class="muted">"Every password the service checked: when, for whom (ids only), how it ended and by which hash scheme. Passwords are never stored."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match log.await {
                        Ok(page) if page.total == 0 => view! { <p class="muted">"None yet."</p> }.into_any(),
                        Ok(page) => {
                            let shown = page.items.len();
                            view! {
                                <div class="table-scroll">
                                    <table class="data">
                                        <thead><tr><th>"When"</th><th>"Legacy id"</th><th>"User type"</th><th>"Outcome"</th><th>"Scheme"</th><th>"Caller"</th></tr></thead>
                                        <tbody>
                                            {page.items.into_iter().map(|v| view! {
                                                <tr>
                                                    <td>{format_time(v.at)}</td>
                                                    <td>{v.source_id.unwrap_or_else(|| "—".into())}</td>
                                                    <td>{v.user_type.unwrap_or_else(|| "—".into())}</td>
                                                    <td>{if v.reason.is_success() { view! { <span class="badge ok">{v.reason.label()}</span> }.into_any() } else { view! { <span class="badge muted">{v.reason.label()}</span> }.into_any() }}</td>
                                                    <td>{v.method.unwrap_or_else(|| "—".into())}</td>
                                                    <td>{v.caller}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                <Pager offset=page.offset shown total=page.total limit=LOG_PAGE href_for=log_href extra=project.get_untracked() />
                            }.into_any()
                        }
                        Err(error) => view! { <LoadError error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}
