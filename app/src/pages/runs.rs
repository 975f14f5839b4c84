//! The Runs stage: test runs on a sample, the real run's pre-flight checks and its
//! downtime window, the history of runs; and one run's page, live without reloading
//! (progress from server-sent events): counts per state, progress bar, rate chart,
//! ETA against the window, errors by class, records, groups, read-back, controls,
//! crosswalk, retry and rollback.

use crate::{
    api::runs::{
        control_run, get_run, list_runs, retry_plan, retry_run, rollback_run, run_preflight,
        run_records, start_delta, start_real_run, start_reconciliation, start_test_run,
    },
    api::uploads::list_uploads,
    components::{
        charts::{Bar, BarChart, LineChart},
        counted, format_optional_time, format_time,
        forms::{FieldError, FormError, LoadError},
        grouped,
        layout::current_account,
    },
};
use domain::review::class_label;
use domain::{
    roles::Permission,
    runs::{Preflight, Progress, ReconcileRequest, SampleHow, TestRunRequest, Tuning},
    runs::{RecordState, Run, RunKind, RunState},
    service::RunView,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

fn state_badge(state: RunState) -> impl IntoView {
    let class = match state {
        RunState::Succeeded => "badge ok",
        RunState::Failed => "badge warn",
        RunState::Cancelled => "badge bad",
        RunState::Running => "badge live",
        _ => "badge muted",
    };
    view! { <span class=class data-state=state.as_str()>{state.label()}</span> }
}

/// `3 h 05 min`, `4 min 12 s`.
fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s:02} s"),
        _ => format!("{h} h {m:02} min"),
    }
}

/// Opens the page of the run `started` gives (the run an action just started), once
/// it gives one.
fn open_started_run(project: String, started: impl Fn() -> Option<Run> + 'static) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(run) = started() {
            navigate(
                &format!("/projects/{project}/runs/{}", run.id),
                Default::default(),
            );
        }
    });
}

fn number(text: &str) -> Option<u32> {
    text.trim().replace(',', "").parse().ok()
}

#[component]
pub fn RunsPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let me = current_account();
    let refresh = RwSignal::new(0u32);
    let runs = Resource::new(
        move || (project.get(), refresh.get()),
        |(p, _)| list_runs(p, None),
    );
    view! {
        <Title text="Runs" />
        <Transition fallback=|| view! { <p class="muted">"Loading runs…"</p> }>
            {move || Suspend::new(async move {
                let may_run = me.await.is_ok_and(|a| a.role.allows(Permission::ManageProjects));
                view! {
                    {may_run.then(|| view! {
                        <div class="grid-2">
                            <TestRunCard project />
                            <RealRunCard project />
                        </div>
                        <div class="grid-2">
                            <DeltaCard project />
                            <ReconcileCard project />
                        </div>
                    })}
                    <section class="card">
                        <h2>"History"</h2>
                        {match runs.await {
                            Err(error) => view! { <LoadError error /> }.into_any(),
                            Ok(page) if page.items.is_empty() => view! {
                                <p class="muted">"No runs yet. Start a test run on a sample first."</p>
                            }.into_any(),
                            Ok(page) => view! { <RunHistory project=project.get_untracked() runs=page.items /> }.into_any(),
                        }}
                    </section>
                }.into_any()
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn RunHistory(project: String, runs: Vec<Run>) -> impl IntoView {
    view! {
        <table class="data compact" id="run-history">
            <thead><tr>
                <th>"Created"</th><th>"Kind"</th><th>"Target"</th><th>"State"</th>
                <th class="num">"Records"</th><th class="num">"Created (deleted)"</th><th class="num">"Failed"</th><th></th>
            </tr></thead>
            <tbody>
                {runs.into_iter().map(|run| {
                    let href = format!("/projects/{project}/runs/{}", run.id);
                    view! {
                        <tr>
                            <td>{format_time(run.created_at)}</td>
                            <td>{run.kind.label()}</td>
                            <td>{run.target_role.clone()}</td>
                            <td>{state_badge(run.state)}</td>
                            <td class="num">{grouped(run.total)}</td>
                            <td class="num">{if run.kind == RunKind::Rollback { format!("({})", grouped(run.counts.deleted)) } else { grouped(run.counts.created) }}</td>
                            <td class="num">{grouped(run.counts.failed)}</td>
                            <td><a href=href>"Open"</a></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn TestRunCard(project: Signal<String>) -> impl IntoView {
    let size = RwSignal::new("50".to_string());
    let how = RwSignal::new("random".to_string());
    let seed = RwSignal::new(String::new());
    let target = RwSignal::new("test".to_string());
    let concurrency = RwSignal::new("2".to_string());
    let rate = RwSignal::new(String::new());
    let start =
        Action::new(move |json: &String| start_test_run(project.get_untracked(), json.clone()));
    let error = Signal::derive(move || start.value().get().and_then(|r| r.err()));
    open_started_run(project.get_untracked(), move || {
        start.value().get().and_then(Result::ok)
    });
    let submit = move |_| {
        let request = TestRunRequest {
            size: number(&size.get_untracked()).unwrap_or(0),
            how: if how.get_untracked() == "stratified" {
                SampleHow::Stratified
            } else {
                SampleHow::Random
            },
            seed: seed.get_untracked().trim().parse().ok(),
            target: target.get_untracked(),
            tuning: Tuning {
                concurrency: number(&concurrency.get_untracked()).unwrap_or(0),
                max_users_per_second: number(&rate.get_untracked()),
                ..Tuning::default()
            },
        };
        start.dispatch(serde_json::to_string(&request).unwrap_or_default());
    };
    view! {
        <section class="card" id="test-run">
            <h2>"Test run"</h2>
            <p class="muted">"Moves a sample of the users who move with the latest mapping, then reads each created user back and compares it with what was sent."</p>
            <FormError error />
            <div class="form-grid">
                <label>"Records"<input id="test-size" type="number" min="1" max="10000" prop:value=size on:input=move |e| size.set(event_target_value(&e)) /></label>
                <FieldError error field="size" />
                <label>"Sample"
                    <select id="test-how" on:change=move |e| how.set(event_target_value(&e))>
                        <option value="random" selected=true>"Random"</option>
                        <option value="stratified">"Stratified by user type"</option>
                    </select>
                </label>
                <label>"Seed (optional)"<input id="test-seed" type="text" inputmode="numeric" prop:value=seed on:input=move |e| seed.set(event_target_value(&e)) placeholder="new" /></label>
                <label>"Target"
                    <select id="test-target" on:change=move |e| target.set(event_target_value(&e))>
                        <option value="test" selected=true>"Test target"</option>
                        <option value="production">"Production target"</option>
                    </select>
                </label>
                <FieldError error field="target" />
                <label>"Workers"<input id="test-concurrency" type="number" min="1" max="16" prop:value=concurrency on:input=move |e| concurrency.set(event_target_value(&e)) /></label>
                <FieldError error field="concurrency" />
                <label>"Users per second, at most"<input id="test-rate" type="number" min="1" prop:value=rate on:input=move |e| rate.set(event_target_value(&e)) placeholder="no limit" /></label>
                <FieldError error field="max_users_per_second" />
            </div>
            <FieldError error field="mapping" />
            <FieldError error field="user_types" />
            <button type="button" id="start-test-run" class="primary" disabled=move || start.pending().get() on:click=submit>
                {move || if start.pending().get() { "Starting…" } else { "Start test run" }}
            </button>
        </section>
    }
}

#[component]
fn ReconcileCard(project: Signal<String>) -> impl IntoView {
    let sample = RwSignal::new(String::new());
    let rate = RwSignal::new(String::new());
    let start = Action::new(move |json: &String| {
        start_reconciliation(project.get_untracked(), json.clone())
    });
    let error = Signal::derive(move || start.value().get().and_then(|r| r.err()));
    open_started_run(project.get_untracked(), move || {
        start.value().get().and_then(Result::ok)
    });
    let submit = move |_| {
        let request = ReconcileRequest {
            sample: number(&sample.get_untracked()),
            max_users_per_minute: number(&rate.get_untracked()),
        };
        start.dispatch(serde_json::to_string(&request).unwrap_or_default());
    };
    view! {
        <section class="card" id="reconcile">
            <h2>"Reconcile with the target"</h2>
            <p class="muted">
                "After the real run (and after a cutover), reads every user the runs put in the production \
                 target back by its id and compares it with what the latest mapping makes of its record. \
                 Users changed or deleted in the target fail into the review queue, where a retry puts \
                 them right; users the target holds as sent are counted as skipped (\"matches\")."
            </p>
            <FormError error />
            <div class="form-grid">
                <label>"Users to read (a random sample)"<input id="reconcile-sample" type="number" min="1" prop:value=sample on:input=move |e| sample.set(event_target_value(&e)) placeholder="every user" /></label>
                <FieldError error field="sample" />
                <label>"Users per minute, at most"<input id="reconcile-rate" type="number" min="1" prop:value=rate on:input=move |e| rate.set(event_target_value(&e)) placeholder="no limit" /></label>
                <FieldError error field="max_users_per_minute" />
            </div>
            <FieldError error field="records" />
            <FieldError error field="mapping" />
            <button type="button" id="start-reconcile" class="primary" disabled=move || start.pending().get() on:click=submit>
                {move || if start.pending().get() { "Starting…" } else { "Reconcile" }}
            </button>
        </section>
    }
}

/// At cutover: a newer export of the same source as a delta run.
#[component]
fn DeltaCard(project: Signal<String>) -> impl IntoView {
    let uploads = Resource::new(move || project.get(), |p| list_uploads(p, None));
    let chosen = RwSignal::new(String::new());
    let missing = RwSignal::new("leave".to_string());
    let rate = RwSignal::new(String::new());
    let start =
        Action::new(move |json: &String| start_delta(project.get_untracked(), json.clone()));
    let error = Signal::derive(move || start.value().get().and_then(|r| r.err()));
    open_started_run(project.get_untracked(), move || {
        start.value().get().and_then(Result::ok)
    });
    // The newest read upload until another is chosen: worked out where it is used,
    // so the page renders the same on the server and in the browser.
    let newest = move || {
        uploads
            .get_untracked()
            .and_then(Result::ok)
            .and_then(|page| {
                page.items.into_iter().find(|u| {
                    u.status == domain::uploads::UploadStatus::Parsed && u.purged_at.is_none()
                })
            })
            .map(|u| u.id.to_string())
            .unwrap_or_default()
    };
    let submit = move |_| {
        let upload = Some(chosen.get_untracked())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(newest);
        let request = serde_json::json!({
            "upload": upload,
            "missing": missing.get_untracked(),
            "max_users_per_minute": number(&rate.get_untracked()),
        });
        start.dispatch(request.to_string());
    };
    view! {
        <section class="card" id="delta">
            <h2>"Cutover delta"</h2>
            <p class="muted">
                "After the real run, a newer export of the same source: its new users are created, the users \
                 it changed are updated where the target differs (only those attributes), and the users it no \
                 longer has are handled as chosen. Every decision is counted, and the run's rollback undoes them."
            </p>
            <FormError error />
            <Transition fallback=|| view! { <p class="muted">"Loading uploads…"</p> }>
                {move || Suspend::new(async move {
                    let read: Vec<domain::uploads::Upload> = uploads
                        .await
                        .map(|p| p.items)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|u| u.status == domain::uploads::UploadStatus::Parsed && u.purged_at.is_none())
                        .collect();
                    let first = read.first().map(|u| u.id.to_string()).unwrap_or_default();
                    let shown = move || Some(chosen.get()).filter(|c| !c.is_empty()).unwrap_or_else(|| first.clone());
                    let counts = read.clone();
                    view! {
                        <div class="form-grid">
                            <label>"The newer export"
                                <select id="delta-upload" on:change=move |e| chosen.set(event_target_value(&e))>
                                    {read.iter().map(|u| {
                                        let id = u.id.to_string();
                                        view! { <option value=id>{format!("{} ({})", u.file_name, format_time(u.created_at))}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                            <FieldError error field="upload" />
                            <label>"Users gone from it"
                                <select id="delta-missing" on:change=move |e| missing.set(event_target_value(&e))>
                                    <option value="leave">"Leave them as they are"</option>
                                    <option value="deactivate">"Deactivate them"</option>
                                    <option value="delete">"Delete them"</option>
                                </select>
                            </label>
                            <label>"Users per minute, at most"<input id="delta-rate" type="number" min="1" prop:value=rate on:input=move |e| rate.set(event_target_value(&e)) placeholder="no limit" /></label>
                            <FieldError error field="max_users_per_minute" />
                        </div>
                        <p class="muted small" id="delta-counts">{move || counts.iter().find(|u| u.id.to_string() == shown()).map(|u| format!(
                            "Against the records before it: {} new, {} changed, {} gone from it.",
                            grouped(u.records_new), grouped(u.records_changed), grouped(u.records_missing)
                        ))}</p>
                    }
                })}
            </Transition>
            <FieldError error field="mapping" />
            <button type="button" id="start-delta" class="primary" disabled=move || start.pending().get() on:click=submit>
                {move || if start.pending().get() { "Starting…" } else { "Start the delta" }}
            </button>
        </section>
    }
}

#[component]
fn RealRunCard(project: Signal<String>) -> impl IntoView {
    // Colliding records accepted to fail into review: the number the data check gave.
    let accepted: RwSignal<Option<u64>> = RwSignal::new(None);
    let checks =
        Action::new(move |accept: &Option<u64>| run_preflight(project.get_untracked(), *accept));
    let start_at = RwSignal::new(String::new());
    let end_at = RwSignal::new(String::new());
    let zone = RwSignal::new("UTC".to_string());
    let create =
        Action::new(move |json: &String| start_real_run(project.get_untracked(), json.clone()));
    let error = Signal::derive(move || create.value().get().and_then(|r| r.err()));
    let passed = Signal::derive(move || matches!(checks.value().get(), Some(Ok(p)) if p.passed()));
    open_started_run(project.get_untracked(), move || {
        create.value().get().and_then(Result::ok)
    });
    let launch = move |windowed: bool| {
        let window = windowed.then(|| serde_json::json!({
            "start": start_at.get_untracked(), "end": end_at.get_untracked(), "zone": zone.get_untracked()
        }));
        create.dispatch(
            serde_json::json!({ "window": window, "accept_collisions": accepted.get_untracked() })
                .to_string(),
        );
    };
    // Why Start and Schedule are not open yet, in words.
    let why_closed = move || match checks.value().get() {
        None if !checks.pending().get() => Some(
            "Run the pre-flight checks first: Start and Schedule open when every check passes."
                .to_string(),
        ),
        Some(Ok(p)) if !p.passed() => {
            let failed = p.checks.iter().filter(|c| !c.passed).count();
            Some(format!(
                "{failed} check{} did not pass: fix {} (see above), then run the checks again.",
                if failed == 1 { "" } else { "s" },
                if failed == 1 { "it" } else { "them" }
            ))
        }
        Some(Err(_)) => Some("The checks could not run: try again.".to_string()),
        _ => None,
    };
    // The data check's colliding records, when they are the only thing in the way.
    let acceptable = move || match checks.value().get() {
        Some(Ok(p)) => p
            .checks
            .iter()
            .find(|c| c.name == "data" && !c.passed)
            .and_then(|c| c.acceptable),
        _ => None,
    };
    view! {
        <section class="card" id="real-run">
            <h2>"Real run"</h2>
            <p class="muted">"Every user who moves, against the production target. It may start only when every check passes."</p>
            <button type="button" id="run-preflight" disabled=move || checks.pending().get() on:click=move |_| { checks.dispatch(accepted.get_untracked()); }>
                {move || if checks.pending().get() { "Checking…" } else { "Run pre-flight checks" }}
            </button>
            {move || match checks.value().get() {
                None => ().into_any(),
                Some(Err(error)) => view! { <LoadError error /> }.into_any(),
                Some(Ok(preflight)) => view! { <ChecksList preflight /> }.into_any(),
            }}
            {move || acceptable().map(|n| view! {
                <div class="alert warn" id="accept-collisions">
                    <p>{format!(
                        "Or go ahead without changing the mapping: the later record of each colliding pair ({} in all) fails into review, where support staff can fix it. The decision is recorded in the audit log.",
                        grouped(n)
                    )}</p>
                    <button type="button" class="secondary" on:click=move |_| {
                        accepted.set(Some(n));
                        checks.dispatch(Some(n));
                    }>{format!("Accept: let these {} records fail into review", grouped(n))}</button>
                </div>
            })}
            <h3>"Downtime window"</h3>
            <FormError error />
            <div class="form-grid">
                <label>"Starts (local time)"<input id="window-start" type="datetime-local" prop:value=start_at on:input=move |e| start_at.set(event_target_value(&e)) /></label>
                <FieldError error field="window.start" />
                <label>"Ends"<input id="window-end" type="datetime-local" prop:value=end_at on:input=move |e| end_at.set(event_target_value(&e)) /></label>
                <FieldError error field="window.end" />
                <label>"Time zone"<input id="window-zone" type="text" list="zones" prop:value=zone on:input=move |e| zone.set(event_target_value(&e)) /></label>
                <FieldError error field="window.zone" />
                <datalist id="zones">
                    {["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]
                        .map(|z| view! { <option value=z></option> }).collect_view()}
                </datalist>
            </div>
            <div class="actions">
                <button type="button" id="schedule-run" class="primary" disabled=move || !passed.get() || create.pending().get() on:click=move |_| launch(true)>"Schedule in this window"</button>
                <button type="button" id="start-real-run" disabled=move || !passed.get() || create.pending().get() on:click=move |_| launch(false)>"Start now"</button>
            </div>
            {move || why_closed().map(|why| view! { <p class="muted small" id="why-closed">{why}</p> })}
        </section>
    }
}

#[component]
fn ChecksList(preflight: Preflight) -> impl IntoView {
    view! {
        <ul class="checks" id="preflight-checks">
            {preflight.checks.into_iter().map(|c| view! {
                <li class=if c.passed { "check ok" } else { "check bad" } data-check=c.name.clone()>
                    <span aria-hidden="true">{if c.passed { "✓" } else { "✗" }}</span>
                    <strong>{c.label}</strong>" — "{c.detail}
                </li>
            }).collect_view()}
        </ul>
    }
}

/// One run, live.
#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let run = Signal::derive(move || params.read().get("run").unwrap_or_default());
    let refresh = RwSignal::new(0u32);
    let view_of = Resource::new(
        move || (project.get(), run.get(), refresh.get()),
        |(p, j, _)| get_run(p, j),
    );
    let live: RwSignal<Option<Progress>> = RwSignal::new(None);
    Effect::new(move |_| {
        let (p, j) = (project.get(), run.get());
        // Another run's progress must not show while this one's first event comes.
        live.set(None);
        #[cfg(feature = "hydrate")]
        follow(&p, &j, live, refresh);
        #[cfg(not(feature = "hydrate"))]
        let _ = (p, j, live, refresh);
    });
    view! {
        <Title text="Run" />
        <Transition fallback=|| view! { <p class="muted">"Loading the run…"</p> }>
            {move || Suspend::new(async move {
                match view_of.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(run) => view! { <RunBody shown=run live project=project.get_untracked() refresh /> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// Follows the run's progress events; reloads the view when the state changes, and
/// stops following once the run is over.
#[cfg(feature = "hydrate")]
fn follow(project: &str, run: &str, live: RwSignal<Option<Progress>>, refresh: RwSignal<u32>) {
    use crate::live::{Next, follow};
    follow(
        &format!("/projects/{project}/runs/{run}/events"),
        move |progress: Progress| {
            let before = live.get_untracked().and_then(|p| p.state);
            let now = progress.state;
            live.set(Some(progress));
            if before.is_some() && before != now {
                refresh.update(|n| *n += 1);
            }
            if now.is_some_and(|s| s.is_final()) {
                refresh.update(|n| *n += 1);
                return Next::Close;
            }
            Next::Listen
        },
        |_| Next::Listen,
        || {},
    );
}

#[component]
fn RunBody(
    shown: RunView,
    live: RwSignal<Option<Progress>>,
    project: String,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let initial = shown.progress.clone();
    let progress = Signal::derive(move || live.get().unwrap_or_else(|| initial.clone()));
    let run = shown.run.clone();
    let run_id = run.id.to_string();
    let run_ended = run.state.is_final();
    let mut record_classes: Vec<String> = shown
        .classes
        .iter()
        .map(|c| c.error_class.clone())
        .collect();
    // A reason can stand for failed and for skipped records: listed once.
    record_classes.sort();
    record_classes.dedup();
    let sample = shown.settings.sample.map(|s| {
        format!(
            "{} records, {}, seed {}",
            s.size,
            if s.how == SampleHow::Stratified {
                "stratified by user type"
            } else {
                "random"
            },
            s.seed
        )
    });
    view! {
        <div class="page-head">
            <div>
                <p class="crumbs"><a href=format!("/projects/{project}/runs")>"Runs"</a>" /"</p>
                <h2>{run.kind.label()}" "{move || progress.get().state.map(state_badge)}</h2>
                <p class="muted">
                    {format!("{} target · mapping version {} · created {}", run.target_role, run.mapping_version.map_or("—".into(), |v| v.to_string()), format_time(run.created_at))}
                    {sample.map(|s| format!(" · sample: {s}"))}
                </p>
            </div>
        </div>
        {(run.kind == RunKind::Reconcile).then(|| view! {
            <p class="muted" id="reconcile-legend">"Each user in the target read back and compared, with the groups its record names: skipped means the target holds what the mapping makes of the record; failed means it holds something else, no longer has the user, or has other group memberships — those wait in the review queue."</p>
        })}
        {(run.kind == RunKind::DeltaRun).then(|| view! {
            <p class="muted" id="delta-legend">"Each user of the newer export decided: created means new to the target; updated means changed (only the attributes that differ were sent) or, gone from the export, deactivated; deleted means gone and deleted; skipped means the target held it already, or the policy left it. The classes below count each decision, and a rollback undoes them."</p>
        })}
        {shown.paused_because.clone().map(|why| view! { <div class="alert warn" id="paused-because" role="status">"Paused: "{why}</div> })}
        {shown.may_control.then(|| view! { <Controls project=project.clone() run=run_id.clone() state=run.state refresh /> })}
        <ProgressCard progress window=shown.window.clone() />
        {shown.window.clone().map(|w| view! { <WindowCard window=w ended=run_ended /> })}
        {if matches!(run.kind, RunKind::Reconcile | RunKind::DeltaRun) {
            // Neither sends groups: their card would only say nothing.
            view! { <ClassesCard shown=shown.clone() project=project.clone() /> }.into_any()
        } else {
            view! {
                <div class="grid-2">
                    <ClassesCard shown=shown.clone() project=project.clone() />
                    <GroupsCard shown=shown.clone() />
                </div>
            }.into_any()
        }}
        {shown.readback.clone().map(|r| view! { <ReadBackCard readback=r /> })}
        {shown.extra_users.clone().map(|extra| view! { <ExtraUsersCard extra /> })}
        <RecordsCard project=project.clone() run=run_id.clone() classes=record_classes />
        {shown.may_control.then(|| view! { <AfterCard shown=shown.clone() project=project.clone() /> })}
    }
}

#[component]
fn Controls(
    project: String,
    run: String,
    state: RunState,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let act = Action::new(move |action: &&'static str| {
        control_run(project.clone(), run.clone(), action.to_string())
    });
    let error = Signal::derive(move || act.value().get().and_then(|r| r.err()));
    Effect::new(move |_| {
        if let Some(Ok(_)) = act.value().get() {
            refresh.update(|n| *n += 1);
        }
    });
    let button = move |label: &'static str, action: &'static str, shown: bool| {
        shown.then(|| view! {
            <button type="button" id=format!("run-{action}") disabled=move || act.pending().get()
                on:click=move |_| { act.dispatch(action); }>{label}</button>
        })
    };
    view! {
        <div class="actions" id="run-controls">
            {button("Start now", "start_now", state == RunState::Scheduled)}
            {button("Pause", "pause", state == RunState::Running)}
            {button("Resume", "resume", state == RunState::Paused)}
            {button("Cancel", "cancel", state.is_active())}
        </div>
        <FormError error />
    }
}

#[component]
fn ProgressCard(
    progress: Signal<Progress>,
    window: Option<domain::service::WindowView>,
) -> impl IntoView {
    let parts = [
        (RecordState::Created, "created"),
        (RecordState::Updated, "updated"),
        (RecordState::Skipped, "skipped"),
        (RecordState::Failed, "failed"),
        (RecordState::Deleted, "deleted"),
        (RecordState::InFlight, "in-flight"),
    ];
    let closes_in = window.filter(|w| w.phase == "open").map(|w| w.seconds);
    view! {
        <section class="card" id="run-progress">
            <h2>"Progress"</h2>
            {move || {
                let p = progress.get();
                let total = p.total.max(1) as f64;
                let settled = p.counts.settled();
                view! {
                    <svg class="stacked-bar" viewBox="0 0 1000 18" preserveAspectRatio="none" width="100%" height="18"
                        role="img" aria-label=format!("{} of {} records settled", settled, p.total)>
                        <rect x="0" y="0" width="1000" height="18" class="seg-track"></rect>
                        {
                            let mut x = 0.0;
                            parts.iter().map(|(state, class)| {
                                let n = p.counts.get(*state);
                                let width = n as f64 / total * 1000.0;
                                let at = x;
                                x += width;
                                view! {
                                    <rect x=format!("{at:.2}") y="0" width=format!("{width:.2}") height="18" class=format!("seg {class}")>
                                        <title>{format!("{class}: {n}")}</title>
                                    </rect>
                                }
                            }).collect_view()
                        }
                    </svg>
                    <p id="settled-line"><strong>{grouped(settled)}</strong>" of "{grouped(p.total)}" records settled"</p>
                    <dl class="facts counts" id="run-counts">
                        {RecordState::ALL.iter().map(|s| view! {
                            <dt>{s.as_str().replace('_', " ")}</dt>
                            <dd data-count=s.as_str()>{grouped(p.counts.get(*s))}</dd>
                        }).collect_view()}
                    </dl>
                    <dl class="facts">
                        <dt>"Current rate"</dt><dd id="current-rate">{p.current_rate.filter(|_| p.state == Some(RunState::Running)).map_or("—".into(), |r| format!("{r:.1} users/s"))}</dd>
                        <dt>"Average rate"</dt><dd>{p.average_rate.map_or("—".into(), |r| format!("{r:.1} users/s"))}</dd>
                        <dt>"Time left"</dt><dd>{if p.state.is_some_and(|s| s.is_final()) { "—".into() } else { p.eta_seconds.map_or("—".into(), duration) }}</dd>
                    </dl>
                    {match (p.eta_seconds, closes_in) {
                        (Some(eta), Some(close)) if eta > close => Some(view! {
                            <div class="alert warn" role="status">{format!("At this rate the run needs {} but the window closes in {}: it will pause at the window's end.", duration(eta), duration(close))}</div>
                        }),
                        _ => None,
                    }}
                    {(p.rate_points.len() > 2).then(|| {
                        let rates: Vec<(f64, f64)> = p.rate_points.windows(2).map(|w| {
                            let dt = (w[1].0.saturating_sub(w[0].0)).max(1) as f64;
                            (w[1].0 as f64, w[1].1.saturating_sub(w[0].1) as f64 / dt)
                        }).collect();
                        view! { <LineChart title="Users settled per second" points=rates unit="users/s" id="rate-chart" /> }
                    })}
                }
            }}
        </section>
    }
}

#[component]
fn WindowCard(
    window: domain::service::WindowView,
    /// The run has ended: its window no longer counts down.
    ended: bool,
) -> impl IntoView {
    let span = (window.placed.ends_at - window.placed.starts_at)
        .num_seconds()
        .max(1) as f64;
    // Where now falls, from the server's count of seconds (the browser's clock may be off).
    let at = match window.phase.as_str() {
        "before" => 0.0,
        "open" => (1.0 - window.seconds as f64 / span).clamp(0.0, 1.0) * 100.0,
        _ => 100.0,
    };
    let said = match window.phase.as_str() {
        _ if ended => "the run has ended".to_string(),
        "before" => format!("opens in {}", duration(window.seconds)),
        "open" => format!("open, closes in {}", duration(window.seconds)),
        _ => "over".to_string(),
    };
    // `2026-12-06T23:00` as people write it.
    let local = |at: &str| at.replacen('T', " ", 1);
    view! {
        <section class="card" id="run-window">
            <h2>"Downtime window"</h2>
            <p>{format!("{} to {} ({})", local(&window.window.start), local(&window.window.end), window.window.zone)}" — "<strong id="window-phase">{said}</strong></p>
            <svg class="timeline" viewBox="0 0 1000 24" preserveAspectRatio="none" width="100%" height="24"
                role="img" aria-label="The window on a timeline, now marked">
                <rect x="0" y="5" width="1000" height="14" rx="7" class="window-span"></rect>
                <rect x=format!("{:.1}", at * 10.0 - 1.5) y="0" width="3" height="24" class="now-mark"><title>"now"</title></rect>
            </svg>
            <p class="muted">{format!("{} – {}", format_time(window.placed.starts_at), format_time(window.placed.ends_at))}</p>
        </section>
    }
}

#[component]
fn ClassesCard(shown: RunView, project: String) -> impl IntoView {
    let run = shown.run.id;
    view! {
        <section class="card" id="run-classes">
            <h2>{match shown.run.kind {
                RunKind::Reconcile => "What the target holds, by class",
                RunKind::DeltaRun => "Each decision, by class",
                _ => "Not created, by reason",
            }}</h2>
            {(shown.run.counts.failed > 0 && shown.run.state.is_final()).then(|| view! {
                <p><a id="run-review" href=format!("/projects/{project}/review?run={run}")>
                    {format!("Review its {} failed user(s) in the queue →", grouped(shown.run.counts.failed))}
                </a></p>
            })}
            {
                // Users their user type leaves behind did what was asked: not errors.
                let behind: u64 = shown.classes.iter().filter(|c| c.error_class == "left_behind").map(|c| c.count).sum();
                (behind > 0).then(|| view! {
                    <p class="muted" id="left-behind">{format!("{} left behind by their user type, as the user types say (not errors).", grouped(behind))}</p>
                })
            }
            {if shown.classes.iter().all(|c| c.error_class == "left_behind") {
                view! { <p class="muted">"No failed or skipped records."</p> }.into_any()
            } else {
                let bars = shown.classes.iter().filter(|c| c.error_class != "left_behind").map(|c| Bar {
                    label: format!("{} ({})", class_label(&c.error_class), c.state.as_str()),
                    value: c.count as f64,
                    text: grouped(c.count),
                }).collect();
                view! {
                    <BarChart title=if matches!(shown.run.kind, RunKind::Reconcile | RunKind::DeltaRun) { "Users per class" } else { "Records per error class" } bars />
                    <table class="data compact">
                        <thead><tr><th>"Class"</th><th class="num">"Records"</th><th>"Example"</th></tr></thead>
                        <tbody>
                            {shown.classes.into_iter().filter(|c| c.error_class != "left_behind").map(|c| view! {
                                <tr data-class=c.error_class.clone()>
                                    <td><a href=format!("/projects/{project}/runs/{run}?class={}#run-records", c.error_class)>{class_label(&c.error_class)}</a></td>
                                    <td class="num">{grouped(c.count)}</td>
                                    <td class="muted">{c.example.unwrap_or_default()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn GroupsCard(shown: RunView) -> impl IntoView {
    view! {
        <section class="card" id="run-groups">
            <h2>"Groups"</h2>
            {match shown.groups {
                None => view! { <p class="muted">"Groups follow the users when every record is settled."</p> }.into_any(),
                Some(g) if shown.run.kind == RunKind::Rollback => view! {
                    <dl class="facts">
                        <dt>"Deleted or gone already (created by the run, left empty)"</dt><dd>{grouped(g.deleted)}</dd>
                        <dt>"Kept (they still hold members)"</dt><dd>{grouped(g.kept)}</dd>
                        <dt>"Failed"</dt><dd>{grouped(g.failed)}</dd>
                    </dl>
                    <ul>{g.errors.into_iter().map(|e| view! { <li class="field-error">{e}</li> }).collect_view()}</ul>
                }.into_any(),
                Some(g) => view! {
                    <dl class="facts">
                        <dt>"Created"</dt><dd>{grouped(g.created)}</dd>
                        <dt>"Existing, members added"</dt><dd>{grouped(g.updated)}</dd>
                        <dt>"Failed"</dt><dd>{grouped(g.failed)}</dd>
                        <dt>"Memberships added"</dt><dd>{grouped(g.memberships)}</dd>
                    </dl>
                    <ul>{g.errors.into_iter().map(|e| view! { <li class="field-error">{e}</li> }).collect_view()}</ul>
                }.into_any(),
            }}
        </section>
    }
}

/// A reconciliation's users in the target that no run of the project recorded.
#[component]
fn ExtraUsersCard(extra: domain::runs::ExtraUsers) -> impl IntoView {
    let count = extra.users.len() as u64 + extra.more;
    view! {
        <section class="card" id="extra-users">
            <h2>"Users in the target no run recorded"</h2>
            <p class="muted">{format!(
                "{} users listed in the target; {} carry an externalId that no run of this project recorded \
                 (another tool's, or a duplicate of an earlier attempt). Users without an externalId are the \
                 target's own and are not counted.",
                grouped(extra.listed),
                grouped(count)
            )}</p>
            {extra.incomplete.clone().map(|why| view! { <div class="alert warn" role="status">{why}</div> })}
            {(!extra.users.is_empty()).then(|| view! {
                <div class="table-wrap">
                    <table class="data compact">
                        <thead><tr><th>"SCIM id"</th><th>"externalId"</th></tr></thead>
                        <tbody>
                            {extra.users.iter().map(|u| view! {
                                <tr><td><code>{u.scim_id.clone()}</code></td><td><code>{u.external_id.clone()}</code></td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            })}
            {(extra.more > 0).then(|| view! { <p class="muted">{format!("and {} more", grouped(extra.more))}</p> })}
            <GroupCheckLine check=extra.groups.clone() />
        </section>
    }
}

/// What a reconciliation found of group memberships, in words.
#[component]
pub fn GroupCheckLine(check: domain::runs::GroupCheck) -> impl IntoView {
    let words = if check.compared == 0 && check.missing_groups.is_empty() {
        "Group memberships: the records name no groups, so none were compared.".to_string()
    } else {
        format!(
            "Group memberships: {} compared with their members in the target; {} whose memberships differ from their records (in the review queue).",
            counted(check.compared, "group", "groups"),
            counted(check.users_differing, "user", "users"),
        )
    };
    view! {
        <p id="group-check">{words}</p>
        {(!check.missing_groups.is_empty()).then(|| view! {
            <p class="alert warn" role="status">{format!("Groups the records name that the target does not have: {}.", check.missing_groups.join(", "))}</p>
        })}
        {check.incomplete.map(|why| view! { <div class="alert warn" role="status">{why}</div> })}
    }
}

#[component]
fn ReadBackCard(readback: domain::runs::ReadBack) -> impl IntoView {
    view! {
        <section class="card" id="run-readback">
            <h2>"Read back"</h2>
            <p>
                <strong>{grouped(readback.matching)}</strong>" of "{grouped(readback.checked)}
                " users read back exactly as sent"
                {(readback.missing > 0).then(|| format!("; {} no longer in the target", readback.missing))}
                {(readback.unreadable > 0).then(|| format!("; {} could not be read ({})", readback.unreadable, readback.unreadable_reason.clone().unwrap_or_default()))}
                "."
            </p>
            {(!readback.mismatches.is_empty()).then(|| view! {
                <table class="data compact" id="mismatches">
                    <thead><tr><th>"Record"</th><th>"Attribute"</th><th>"Sent"</th><th>"Kept by the target"</th></tr></thead>
                    <tbody>
                        {readback.mismatches.into_iter().map(|m| view! {
                            <tr>
                                <td>{m.source_id}</td>
                                <td><code>{m.path}</code></td>
                                <td><code>{m.sent.to_string()}</code></td>
                                <td><code>{m.received.map_or("(missing)".into(), |v| v.to_string())}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {(readback.more_mismatches > 0).then(|| view! { <p class="muted">{format!("and {} more", readback.more_mismatches)}</p> })}
            })}
        </section>
    }
}

#[component]
fn RecordsCard(project: String, run: String, classes: Vec<String>) -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let class = RwSignal::new(query.read_untracked().get("class").unwrap_or_default());
    let state = RwSignal::new(String::new());
    // The `after` of each page seen, to go back.
    let pages = RwSignal::new(vec![None::<u64>]);
    // A class chosen by its link (`?class=…`) filters at once, not after a reload.
    Effect::new(move |_| {
        let wanted = query.read().get("class").unwrap_or_default();
        if class.get_untracked() != wanted {
            class.set(wanted);
            pages.set(vec![None]);
        }
    });
    let (p, j) = (project.clone(), run.clone());
    let records = Resource::new(
        move || {
            (
                state.get(),
                class.get(),
                pages.get().last().copied().flatten(),
            )
        },
        move |(s, c, after)| run_records(p.clone(), j.clone(), Some(s), Some(c), after),
    );
    let reset = move || pages.set(vec![None]);
    view! {
        <section class="card" id="run-records">
            <h2>"Records"</h2>
            <div class="filters">
                <label>"State"
                    <select id="records-state" on:change=move |e| { state.set(event_target_value(&e)); reset(); }>
                        <option value="">"Any"</option>
                        {RecordState::ALL.map(|s| view! { <option value=s.as_str()>{s.as_str().replace('_', " ")}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Reason"
                    <select id="records-class" prop:value=move || class.get() on:change=move |e| { class.set(event_target_value(&e)); reset(); }>
                        <option value="">"Any"</option>
                        {classes.into_iter().map(|c| {
                            let label = class_label(&c);
                            view! { <option value=c.clone() selected=move || class.get() == c>{label}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading records…"</p> }>
                {move || Suspend::new(async move {
                    match records.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(page) => {
                            let next = page.next_after;
                            view! {
                                <table class="data compact" id="records-table">
                                    <thead><tr><th class="num">"#"</th><th>"Legacy id"</th><th>"State"</th><th class="num">"Attempts"</th><th>"SCIM id"</th><th>"Reason"</th><th>"Detail"</th><th>"Settled"</th></tr></thead>
                                    <tbody>
                                        {page.records.into_iter().map(|r| view! {
                                            <tr>
                                                <td class="num">{r.seq + 1}</td>
                                                <td>{r.source_id}</td>
                                                <td>{r.state.as_str().replace('_', " ")}</td>
                                                <td class="num">{r.attempts}</td>
                                                <td><code>{r.scim_id.unwrap_or_default()}</code></td>
                                                <td>{r.error_class.as_deref().map(class_label).unwrap_or_default()}</td>
                                                <td class="muted">{r.error_detail.unwrap_or_default()}</td>
                                                <td>{format_optional_time(r.settled_at)}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <div class="actions">
                                    <button type="button" disabled=move || pages.with(|p| p.len() < 2) on:click=move |_| pages.update(|p| { p.pop(); })>"Previous"</button>
                                    <button type="button" id="records-next" disabled=next.is_none() on:click=move |_| pages.update(|p| p.push(next))>"Next"</button>
                                </div>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn AfterCard(shown: RunView, project: String) -> impl IntoView {
    let run = shown.run.clone();
    let id = run.id.to_string();
    let finished = run.state.is_final();
    let (p1, j1, p2, j2) = (project.clone(), id.clone(), project.clone(), id.clone());
    let (p3, j3) = (project.clone(), id.clone());
    // The retry is confirmed after reading what it would do and what changed.
    let plan = Action::new(move |_: &()| retry_plan(p3.clone(), j3.clone()));
    let retry = Action::new(move |n: &u64| retry_run(p1.clone(), j1.clone(), *n));
    let confirm = RwSignal::new(String::new());
    let rollback = Action::new(move |n: &String| rollback_run(p2.clone(), j2.clone(), n.clone()));
    let retry_error = Signal::derive(move || retry.value().get().and_then(|r| r.err()));
    let rollback_error = Signal::derive(move || rollback.value().get().and_then(|r| r.err()));
    open_started_run(project.clone(), move || {
        retry
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| rollback.value().get().and_then(Result::ok))
    });
    let created = run.counts.created;
    // A delta run's rollback also puts back what it changed and deleted.
    let delta = run.kind == RunKind::DeltaRun;
    let undone = if delta {
        created + run.counts.updated + run.counts.deleted
    } else {
        created
    };
    let can_retry = finished && run.counts.failed > 0 && run.kind != RunKind::Rollback;
    let can_roll_back = finished && undone > 0 && run.kind != RunKind::Rollback;
    let rollback_words = if delta {
        format!(
            "Deletes the {} this delta created, puts back the former values of the {} it changed or deactivated, and creates again the {} it deleted. Type {} to confirm.",
            counted(created, "user", "users"),
            counted(run.counts.updated, "user", "users"),
            counted(run.counts.deleted, "user", "users"),
            undone
        )
    } else {
        format!(
            "Deletes the {} users this run created from the target. Type {} to confirm.",
            grouped(created),
            created
        )
    };
    view! {
        <section class="card" id="run-after">
            <h2>"After the run"</h2>
            <p><a id="crosswalk" href=format!("/projects/{project}/runs/{id}/crosswalk.csv") download="">"Download the crosswalk (legacy id → SCIM id)"</a></p>
            {can_retry.then(|| view! {
                <FormError error=retry_error />
                <button type="button" id="retry-failed" disabled=move || plan.pending().get() on:click=move |_| { plan.dispatch(()); }>
                    {format!("Retry the {} failed records…", grouped(run.counts.failed))}
                </button>
                <p class="muted">"A new run with the latest mapping and user types: fix the data or the mapping first. You confirm after seeing what changed."</p>
                {move || match plan.value().get() {
                    None => ().into_any(),
                    Some(Err(error)) => view! { <LoadError error /> }.into_any(),
                    Some(Ok(p)) => {
                        let n = p.failed;
                        let whom = if p.target_role == "production" { "the production target" } else { "the test target" };
                        view! {
                            <div class=if p.changed.is_empty() { "alert warn" } else { "alert info" } id="retry-plan">
                                <p>{format!("Sends {} records again to {whom}, with mapping version {}.", grouped(n), p.mapping_version)}</p>
                                {if p.changed.is_empty() {
                                    view! { <p><strong>"Nothing changed since this run"</strong>{format!(
                                        ": the same mapping and user types. {} of these records failed on a mapping rule and will fail the same way; the others failed at the target and may succeed if what stopped them is gone.",
                                        grouped(p.failed_on_mapping)
                                    )}</p> }.into_any()
                                } else {
                                    view! { <p>"Changed since this run:"</p><ul>{p.changed.iter().map(|c| view! { <li>{c.clone()}</li> }).collect_view()}</ul> }.into_any()
                                }}
                                {p.checks.clone().map(|preflight| view! { <ChecksList preflight /> })}
                                <div class="actions">
                                    <button type="button" class="primary" id="retry-confirm" disabled=move || retry.pending().get() on:click=move |_| { retry.dispatch(n); }>
                                        {format!("Retry {} records now", grouped(n))}
                                    </button>
                                    <button type="button" class="secondary" on:click=move |_| plan.clear()>"Not now"</button>
                                </div>
                            </div>
                        }.into_any()
                    }
                }}
            })}
            {can_roll_back.then(|| view! {
                <h3>"Roll back"</h3>
                <p>{rollback_words}</p>
                <FormError error=rollback_error />
                <div class="actions">
                    <input id="rollback-confirm" type="text" inputmode="numeric" prop:value=confirm on:input=move |e| confirm.set(event_target_value(&e)) aria-label="Users to delete" />
                    <button type="button" id="rollback" class="danger" on:click=move |_| { rollback.dispatch(confirm.get_untracked()); }>{if delta { "Undo the delta" } else { "Delete them" }}</button>
                </div>
                <FieldError error=rollback_error field="confirm" />
            })}
            {(!finished).then(|| view! { <p class="muted">"Retry and rollback open when the run has ended."</p> })}
        </section>
    }
}
