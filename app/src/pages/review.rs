//! Support staff's review: the project's queue of failed users (where the users stand,
//! filters kept in the address, grouped views with a chart, keyset pages, actions on a
//! selection or on everything a filter matches, export and imported corrections), and
//! one user's page (the record as imported and corrected, a correction tried live,
//! what the mapping makes of it, every attempt, its history, and its actions).

use crate::{
    api::review::{
        cancel_review_task, correct_record, import_corrections, preview_correction, review_act,
        review_groups, review_queue, review_record, review_retry, review_tasks,
    },
    components::{
        charts::{Bar, BarChart},
        format_optional_time, format_time,
        forms::LoadError,
        layout::current_account,
    },
    error::AppError,
};
use domain::{
    numbers::grouped,
    review::{
        GroupBy, QueueFilter, QueueItem, RecordFields, ReviewState, ReviewSummary, TaskState,
        class_label,
    },
    roles::Permission,
    service::{CorrectionPreview, PreviewRecord, RecordReview},
};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

/// The query parameters the queue's filter is kept in, in the order the form shows them.
const FILTER_KEYS: [&str; 9] = [
    "search",
    "state",
    "error_class",
    "fault",
    "scim_type",
    "user_type",
    "assignee",
    "run",
    "text",
];

fn filter_of(query: &leptos_router::params::ParamsMap) -> QueueFilter {
    let get = |k: &str| query.get(k).filter(|v| !v.trim().is_empty());
    QueueFilter {
        search: get("search"),
        error_class: get("error_class"),
        fault: get("fault"),
        scim_type: get("scim_type"),
        run: get("run").and_then(|r| r.parse().ok()),
        user_type: get("user_type"),
        assignee: get("assignee"),
        state: get("state"),
        text: get("text"),
    }
}

/// The query string of a filter (without `after`), for links and the export.
fn query_of(filter: &QueueFilter, extra: &[(&str, String)]) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let mut put = |k: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    };
    put("search", &filter.search);
    put("state", &filter.state);
    put("error_class", &filter.error_class);
    put("fault", &filter.fault);
    put("scim_type", &filter.scim_type);
    put("user_type", &filter.user_type);
    put("assignee", &filter.assignee);
    put("run", &filter.run.map(|r| r.to_string()));
    put("text", &filter.text);
    pairs.extend(extra.iter().cloned());
    if pairs.is_empty() {
        return String::new();
    }
    let encoded: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", urlencoding(&v)))
        .collect();
    format!("?{}", encoded.join("&"))
}

fn urlencoding(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn state_label(state: ReviewState) -> &'static str {
    state.label()
}

/// Where the project's users stand, in one sentence and a chart.
#[component]
pub fn StandingCard(summary: ReviewSummary, project: String) -> impl IntoView {
    let s = summary;
    let bars = [
        ("Migrated", s.migrated),
        ("Waiting for review", s.waiting),
        ("Skipped on purpose", s.skipped),
        ("Resolved without a run", s.resolved),
        ("Not yet through a real run", s.not_attempted),
    ]
    .into_iter()
    .map(|(label, n)| Bar {
        label: label.into(),
        value: n as f64,
        text: grouped(n),
    })
    .collect();
    view! {
        <section class="card" id="review-standing">
            <h2>"Where the users stand"</h2>
            <p>
                {format!("Of {} users: {} migrated, ", grouped(s.users), grouped(s.migrated))}
                <a href=format!("/projects/{project}/review")><strong>{format!("{} waiting for review", grouped(s.waiting))}</strong></a>
                {s.oldest_waiting_since.map(|at| format!(" (the oldest since {})", format_time(at)))}
                {format!(", {} skipped on purpose, {} resolved without a run, {} not yet through a real run.",
                    grouped(s.skipped), grouped(s.resolved), grouped(s.not_attempted))}
            </p>
            {(s.waiting > 0).then(|| view! { <p class="muted">{match s.unassigned {
                0 => "Every one of them is assigned to someone.".to_string(),
                1 => "1 of them is assigned to nobody.".to_string(),
                n => format!("{} of them are assigned to nobody.", grouped(n)),
            }}</p> })}
            <BarChart title="Users by where they stand" bars />
        </section>
    }
    .into_any()
}

#[component]
pub fn ReviewPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let filter = Memo::new(move |_| filter_of(&query.read()));
    let after = Memo::new(move |_| query.read().get("after").filter(|a| !a.is_empty()));
    let by = Memo::new(move |_| {
        query
            .read()
            .get("by")
            .and_then(|b| GroupBy::parse(&b))
            .unwrap_or(GroupBy::Class)
    });
    // Bumped by every action, so the queue and the groups show its effect.
    let changed = RwSignal::new(0u32);
    let queue = Resource::new(
        move || (project.get(), filter.get(), after.get(), changed.get()),
        |(project, filter, after, _)| async move {
            let json = serde_json::to_string(&filter).unwrap_or_default();
            review_queue(project, json, after).await
        },
    );
    let groups = Resource::new(
        move || (project.get(), filter.get(), by.get(), changed.get()),
        |(project, filter, by, _)| async move {
            let json = serde_json::to_string(&filter).unwrap_or_default();
            review_groups(project, json, by.as_str().to_string()).await
        },
    );
    let me = current_account();
    view! {
        <leptos_meta::Title text="Review" />
        <TasksCard project=project changed />
        <Transition fallback=|| view! { <p class="muted">"Loading the queue…"</p> }>
            {move || Suspend::new(async move {
                let admin = me.await.is_ok_and(|a| a.role.allows(Permission::ManageProjects));
                match queue.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(view) => {
                        let p = project.get_untracked();
                        let f = filter.get_untracked();
                        view! {
                            <StandingCard summary=view.summary.clone() project=p.clone() />
                            <FilterCard filter=f.clone() members=view.members.clone() project=p.clone() />
                            <GroupsCard groups=groups by=by.get_untracked() filter=f.clone() project=p.clone() />
                            <QueueCard view=view filter=f project=p changed admin />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
    .into_any()
}

/// The project's background actions: each with its progress while it runs (asked
/// again every two seconds), how it ended, and a way to stop it.
#[component]
fn TasksCard(project: Signal<String>, changed: RwSignal<u32>) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let tasks = Resource::new(
        move || (project.get(), tick.get(), changed.get()),
        |(p, _, _)| review_tasks(p),
    );
    let cancel = Action::new(move |task: &String| {
        let (p, t) = (project.get_untracked(), task.clone());
        async move { cancel_review_task(p, t).await }
    });
    Effect::new(move |_| {
        if cancel.value().get().is_some() {
            tick.update(|t| *t += 1);
        }
    });
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let tasks = tasks.await.unwrap_or_default();
                if tasks.iter().any(|t| t.state == TaskState::Running) {
                    set_timeout(move || {
                        tick.update(|t| *t += 1);
                        changed.update(|n| *n += 1);
                    }, std::time::Duration::from_secs(2));
                }
                let recent: Vec<_> = tasks.into_iter().take(5).collect();
                (!recent.is_empty()).then(|| view! {
                    <section class="card" id="review-tasks">
                        <h2>"Background actions"</h2>
                        <ul class="plain-list">
                            {recent.into_iter().map(|t| {
                                let id = t.id.to_string();
                                let running = t.state == TaskState::Running;
                                view! {
                                    <li data-state=t.state.as_str()>
                                        <strong>{t.detail.clone()}</strong>
                                        {format!(" — {} of {} users", grouped(t.done), grouped(t.total))}
                                        {running.then(|| view! { " " <progress max=t.total.max(1) value=t.done></progress> })}
                                        {match t.state {
                                            TaskState::Running => " (running)".to_string(),
                                            TaskState::Succeeded => format!(" (done {})", format_optional_time(t.finished_at)),
                                            TaskState::Cancelled => " (stopped; what was done stays done)".to_string(),
                                            TaskState::Failed => format!(" (failed: {})", t.error.clone().unwrap_or_default()),
                                        }}
                                        {running.then(|| view! {
                                            " "<button type="button" class="link-button" on:click=move |_| { cancel.dispatch(id.clone()); }>"Stop"</button>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    </section>
                }.into_any())
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn FilterCard(
    filter: QueueFilter,
    members: Vec<(domain::ids::AccountId, String)>,
    project: String,
) -> impl IntoView {
    let navigate = use_navigate();
    let values: Vec<RwSignal<String>> = FILTER_KEYS
        .iter()
        .map(|k| {
            let v = match *k {
                "search" => filter.search.clone(),
                "state" => filter.state.clone(),
                "error_class" => filter.error_class.clone(),
                "fault" => filter.fault.clone(),
                "scim_type" => filter.scim_type.clone(),
                "user_type" => filter.user_type.clone(),
                "assignee" => filter.assignee.clone(),
                "run" => filter.run.map(|r| r.to_string()),
                _ => filter.text.clone(),
            };
            RwSignal::new(v.unwrap_or_default())
        })
        .collect();
    let apply = {
        let values = values.clone();
        let project = project.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let pairs: Vec<String> = FILTER_KEYS
                .iter()
                .zip(&values)
                .filter(|(_, v)| !v.get_untracked().trim().is_empty())
                .map(|(k, v)| format!("{k}={}", urlencoding(v.get_untracked().trim())))
                .collect();
            let q = if pairs.is_empty() {
                String::new()
            } else {
                format!("?{}", pairs.join("&"))
            };
            navigate(
                &format!("/projects/{project}/review{q}"),
                Default::default(),
            );
        }
    };
    let text_input = |i: usize, id: &'static str, label: &'static str, hint: &'static str| {
        let v = values[i];
        view! {
            <label>{label}
                <input id=id type="text" placeholder=hint prop:value=move || v.get() on:input=move |e| v.set(event_target_value(&e)) />
            </label>
        }
    };
    let state = values[1];
    let assignee = values[6];
    view! {
        <section class="card" id="review-filters">
            <h2>"Find and filter"</h2>
            <form class="filters" on:submit=apply>
                {text_input(0, "filter-search", "E-mail, user name or legacy id", "exact, any case")}
                <label>"Review state"
                    <select id="filter-state" prop:value=move || state.get() on:change=move |e| state.set(event_target_value(&e))>
                        <option value="">"Waiting for review"</option>
                        {ReviewState::ALL.map(|s| view! { <option value=s.as_str()>{state_label(s)}</option> }).collect_view()}
                        <option value="migrated">"Migrated by a later run"</option>
                        <option value="all">"All"</option>
                    </select>
                </label>
                {text_input(2, "filter-class", "Error class", "mapping, invalid_data…")}
                {text_input(3, "filter-fault", "Rule or attribute", "rule 1, emails…")}
                {text_input(4, "filter-scim-type", "scimType", "uniqueness, invalidValue…")}
                {text_input(5, "filter-user-type", "User type", "")}
                <label>"Assignee"
                    <select id="filter-assignee" prop:value=move || assignee.get() on:change=move |e| assignee.set(event_target_value(&e))>
                        <option value="">"Anyone"</option>
                        <option value="none">"Nobody"</option>
                        {members.into_iter().map(|(id, name)| view! { <option value=id.0.to_string()>{name}</option> }).collect_view()}
                    </select>
                </label>
                {text_input(7, "filter-run", "Run id", "")}
                {text_input(8, "filter-text", "Text in the target's detail", "")}
                <div class="actions">
                    <button type="submit" class="primary" id="filter-apply">"Apply"</button>
                    <a href=format!("/projects/{project}/review") class="button secondary">"Clear"</a>
                </div>
            </form>
        </section>
    }
    .into_any()
}

#[component]
fn GroupsCard(
    groups: Resource<Result<Vec<domain::review::GroupCount>, AppError>>,
    by: GroupBy,
    filter: QueueFilter,
    project: String,
) -> impl IntoView {
    let links = GroupBy::ALL
        .into_iter()
        .map(|g| {
            let href = format!(
                "/projects/{project}/review{}",
                query_of(&filter, &[("by", g.as_str().to_string())])
            );
            view! {
                <a href=href class=if g == by { "chip active" } else { "chip" } aria-current=(g == by).then_some("true")>{g.label()}</a>
            }
        })
        .collect_view();
    view! {
        <section class="card" id="review-groups">
            <h2>"Grouped"</h2>
            <nav class="chips" aria-label="Group by">{links}</nav>
            <Transition fallback=|| view! { <p class="muted">"Counting…"</p> }>
                {move || {
                    let (filter, project) = (filter.clone(), project.clone());
                    Suspend::new(async move {
                        match groups.await {
                            Err(error) => view! { <LoadError error /> }.into_any(),
                            Ok(groups) if groups.is_empty() => view! { <p class="muted">"No user matches."</p> }.into_any(),
                            Ok(groups) => {
                                let bars = groups.iter().map(|g| Bar { label: g.label.clone(), value: g.count as f64, text: grouped(g.count) }).collect();
                                let rows = groups.into_iter().map(|g| {
                                    // A group narrows the filter (a state or an assignee by its key).
                                    let mut narrowed = filter.clone();
                                    let key = g.key.clone();
                                    match by {
                                        GroupBy::Class => narrowed.error_class = key,
                                        GroupBy::Fault => narrowed.fault = key,
                                        GroupBy::ScimType => narrowed.scim_type = key,
                                        GroupBy::UserType => narrowed.user_type = key,
                                        GroupBy::Run => narrowed.run = key.and_then(|k| k.parse().ok()),
                                        GroupBy::State => narrowed.state = key,
                                        GroupBy::Assignee => narrowed.assignee = Some(key.unwrap_or_else(|| "none".into())),
                                        GroupBy::Pattern => narrowed.text = key,
                                    }
                                    let href = format!("/projects/{project}/review{}", query_of(&narrowed, &[("by", by.as_str().to_string())]));
                                    view! {
                                        <tr>
                                            <td><a href=href>{g.label}</a></td>
                                            <td class="num">{grouped(g.count)}</td>
                                        </tr>
                                    }
                                }).collect_view();
                                view! {
                                    <BarChart title=format!("Users by {}", by.label().to_lowercase()) bars id="review-chart" />
                                    <table class="data compact" id="review-group-table">
                                        <thead><tr><th>{by.label()}</th><th class="num">"Users"</th></tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                }.into_any()
                            }
                        }
                    })
                }}
            </Transition>
        </section>
    }
    .into_any()
}

/// A selection as the server reads it: the ids ticked, or everything matching.
fn selection_json(all: bool, ids: &[String], filter: &QueueFilter, matching: u64) -> String {
    if all {
        serde_json::json!({"kind": "filter", "filter": filter, "expected": matching}).to_string()
    } else {
        serde_json::json!({"kind": "ids", "ids": ids}).to_string()
    }
}

#[component]
fn QueueCard(
    view: domain::service::QueueView,
    filter: QueueFilter,
    project: String,
    changed: RwSignal<u32>,
    admin: bool,
) -> impl IntoView {
    let matching = view.matching;
    let items = view.page.items.clone();
    let next = view.page.next_after.clone();
    let members = view.members.clone();
    let selected = RwSignal::new(Vec::<String>::new());
    let all = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let comment = RwSignal::new(String::new());
    let assignee = RwSignal::new(String::new());
    let state = RwSignal::new(String::new());
    let message = RwSignal::new(None::<Result<String, AppError>>);
    let (p, f) = (project.clone(), filter.clone());
    let act = Action::new(move |action: &serde_json::Value| {
        let selection =
            selection_json(all.get_untracked(), &selected.get_untracked(), &f, matching);
        let (p, action) = (p.clone(), action.to_string());
        async move { review_act(p, selection, action).await }
    });
    let (p2, f2) = (project.clone(), filter.clone());
    let retry = Action::new(move |_: &()| {
        let selection = selection_json(
            all.get_untracked(),
            &selected.get_untracked(),
            &f2,
            matching,
        );
        let p = p2.clone();
        async move { review_retry(p, selection).await }
    });
    Effect::new(move |_| {
        if let Some(result) = act.value().get() {
            message.set(Some(
                result.map(|r| format!("Done for {} user(s).", grouped(r.affected))),
            ));
            selected.set(Vec::new());
            all.set(false);
            changed.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(result) = retry.value().get() {
            message.set(Some(result.map(|run| format!(
                "Retry run started for {} user(s): it is on the Runs page; users it migrates leave the queue.",
                grouped(run.total)
            ))));
            selected.set(Vec::new());
            all.set(false);
            changed.update(|n| *n += 1);
        }
    });
    let count = move || {
        if all.get() {
            matching
        } else {
            selected.with(|s| s.len() as u64)
        }
    };
    let none = move || count() == 0;
    let export = format!(
        "/projects/{project}/review/export.csv{}",
        query_of(&filter, &[])
    );
    let first = format!("/projects/{project}/review{}", query_of(&filter, &[]));
    let next_href = next.map(|n| {
        format!(
            "/projects/{project}/review{}",
            query_of(&filter, &[("after", n)])
        )
    });
    let ids: Vec<String> = items.iter().map(|i| i.source_id.clone()).collect();
    let p3 = project.clone();
    view! {
        <section class="card" id="review-queue">
            <h2>{if matching > domain::service::COUNTED_UP_TO {
                format!("More than {} users match", grouped(domain::service::COUNTED_UP_TO))
            } else if matching == 1 {
                "1 user matches".to_string()
            } else {
                format!("{} users match", grouped(matching))
            }}</h2>
            {view.masked.then(|| view! { <p class="muted">"Values are masked: an owner can let you see personal data."</p> })}
            {move || message.get().map(|m| match m {
                Ok(text) => view! { <div class="alert success" role="status" id="review-message">{text}</div> }.into_any(),
                Err(error) => view! { <div class="alert error" role="alert" id="review-message">{error.general().unwrap_or_else(|| error.to_string())}</div> }.into_any(),
            })}
            {(matching == 0).then(|| view! { <p class="muted" id="review-empty">"Nobody here: no user matches this filter."</p> })}
            {(matching > 0).then(|| {
                let ids = ids.clone();
                let bulk = view! {
                    <div class="bulk" id="review-bulk">
                        <p>
                            <strong>{move || format!("{} selected", grouped(count()))}</strong>
                            <label class="inline">
                                <input type="checkbox" id="select-all-matching" prop:checked=move || all.get() on:change=move |e| all.set(event_target_checked(&e)) />
                                {if matching > domain::service::COUNTED_UP_TO {
                                    format!(" all of them (more than {})", grouped(domain::service::COUNTED_UP_TO))
                                } else {
                                    format!(" all {} matching", grouped(matching))
                                }}
                            </label>
                        </p>
                        <div class="bulk-actions">
                            <label>"Assign to"
                                <select id="bulk-assignee" on:change=move |e| assignee.set(event_target_value(&e))>
                                    <option value="">"Choose…"</option>
                                    <option value="none">"Nobody"</option>
                                    {members.iter().map(|(id, name)| view! { <option value=id.0.to_string()>{name.clone()}</option> }).collect_view()}
                                </select>
                            </label>
                            <button type="button" id="bulk-assign" disabled=move || none() || assignee.get().is_empty() on:click=move |_| {
                                let member = assignee.get_untracked();
                                let member = if member == "none" { serde_json::Value::Null } else { serde_json::Value::String(member) };
                                act.dispatch(serde_json::json!({"action": "assign", "member": member}));
                            }>"Assign"</button>
                            <label>"Review state"
                                <select id="bulk-state" on:change=move |e| state.set(event_target_value(&e))>
                                    <option value="">"Choose…"</option>
                                    {[ReviewState::Open, ReviewState::InProgress, ReviewState::Waiting, ReviewState::Resolved].map(|s| view! { <option value=s.as_str()>{s.label()}</option> }).collect_view()}
                                </select>
                            </label>
                            <button type="button" id="bulk-state-set" disabled=move || none() || state.get().is_empty() on:click=move |_| {
                                act.dispatch(serde_json::json!({"action": "set_state", "state": state.get_untracked()}));
                            }>"Set"</button>
                            <label>"Skip: the reason"
                                <input id="bulk-reason" type="text" prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e)) />
                            </label>
                            <button type="button" id="bulk-skip" disabled=move || none() || reason.get().trim().is_empty() on:click=move |_| {
                                act.dispatch(serde_json::json!({"action": "skip", "reason": reason.get_untracked()}));
                            }>"Skip them"</button>
                            <label>"Comment"
                                <input id="bulk-comment" type="text" prop:value=move || comment.get() on:input=move |e| comment.set(event_target_value(&e)) />
                            </label>
                            <button type="button" id="bulk-comment-add" disabled=move || none() || comment.get().trim().is_empty() on:click=move |_| {
                                act.dispatch(serde_json::json!({"action": "comment", "text": comment.get_untracked()}));
                            }>"Add"</button>
                            <button type="button" class="primary" id="bulk-retry" disabled=move || none() || retry.pending().get() on:click=move |_| { retry.dispatch(()); }>
                                "Retry against production"
                            </button>
                        </div>
                        <p class="muted">{if admin {
                            "A retry sends the users again with the latest mapping and their corrections; users an earlier attempt may have created are looked up first."
                        } else {
                            "A retry sends the users again with the latest mapping and their corrections; users an earlier attempt may have created are looked up first. Administrators change the mapping."
                        }}</p>
                    </div>
                }.into_any();
                let table = view! {
                    <div class="table-scroll">
                        <table class="data compact" id="review-table">
                            <thead><tr>
                                <th><input type="checkbox" aria-label="Select this page" on:change=move |e| {
                                    let on = event_target_checked(&e);
                                    selected.set(if on { ids.clone() } else { Vec::new() });
                                } /></th>
                                <th>"Legacy id"</th><th>"Reason"</th><th>"Rule or attribute"</th><th>"Target's detail"</th><th>"State"</th><th>"Assignee"</th><th>"Failed"</th>
                            </tr></thead>
                            <tbody>
                                {items.into_iter().map(|item| queue_row(item, &p3, selected)).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any();
                view! { {bulk} {table} }.into_any()
            })}
            <div class="actions">
                {after_first(&first)}
                {next_href.map(|href| view! { <a href=href class="button secondary" id="review-next" rel="next">"Next page →"</a> })}
                <a href=export class="button secondary" id="review-export" download="">"Export as CSV"</a>
            </div>
            <ImportCorrections project=project.clone() changed />
        </section>
    }
    .into_any()
}

fn after_first(first: &str) -> impl IntoView + use<> {
    let query = use_query_map();
    let first = first.to_string();
    move || {
        query
            .read()
            .get("after")
            .is_some()
            .then(|| view! { <a href=first.clone() class="button secondary">"← First page"</a> })
    }
}

fn queue_row(item: QueueItem, project: &str, selected: RwSignal<Vec<String>>) -> AnyView {
    let id = item.source_id.clone();
    let (check_id, toggle_id) = (id.clone(), id.clone());
    let href = format!("/projects/{project}/review/record?id={}", urlencoding(&id));
    let state = match (item.outcome, item.state) {
        (domain::review::Outcome::Migrated, _) => "Migrated".to_string(),
        (_, ReviewState::Skipped) => {
            format!("Skipped: {}", item.skip_reason.clone().unwrap_or_default())
        }
        (_, s) => s.label().to_string(),
    };
    view! {
        <tr data-id=id.clone()>
            <td><input type="checkbox" aria-label=format!("Select {id}")
                prop:checked=move || selected.with(|s| s.contains(&check_id))
                on:change=move |e| {
                    let on = event_target_checked(&e);
                    selected.update(|s| { s.retain(|x| x != &toggle_id); if on { s.push(toggle_id.clone()); } });
                } /></td>
            <td><a href=href class="record-link">{id.clone()}</a>{item.corrected.then(|| view! { " " <span class="badge muted">"corrected"</span> })}</td>
            <td>{class_label(&item.error_class)}{item.scim_type.map(|t| view! { " " <code>{t}</code> })}</td>
            <td>{item.fault.unwrap_or_default()}</td>
            <td class="muted detail">{item.detail}</td>
            <td>{state}</td>
            <td>{item.assignee_name.unwrap_or_else(|| "—".into())}</td>
            <td>{format_time(item.first_failed_at)}</td>
        </tr>
    }
    .into_any()
}

#[component]
fn ImportCorrections(project: String, changed: RwSignal<u32>) -> impl IntoView {
    let report = Action::new(move |csv: &String| {
        let (p, csv) = (project.clone(), csv.clone());
        async move { import_corrections(p, csv).await }
    });
    Effect::new(move |_| {
        if report.value().get().is_some_and(|r| r.is_ok()) {
            changed.update(|n| *n += 1);
        }
    });
    let on_file = move |e: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                let promise = file.text();
                leptos::task::spawn_local(async move {
                    if let Ok(text) = wasm_bindgen_futures::JsFuture::from(promise).await
                        && let Some(text) = text.as_string()
                    {
                        report.dispatch(text);
                    }
                });
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (e, report);
    };
    view! {
        <details class="import" id="review-import">
            <summary>"Import corrections from CSV"</summary>
            <p class="muted">"A file with a source_id column and any of username, email, given_name, family_name, display_name, phone or attributes.<name> — the export works as it is. Empty and masked cells change nothing; each row is kept as a correction beside the imported record."</p>
            <input type="file" accept=".csv,text/csv" id="corrections-file" on:change=on_file />
            {move || report.value().get().map(|r| match r {
                Err(error) => view! { <div class="alert error" role="alert">{error.general().unwrap_or_else(|| error.to_string())}</div> }.into_any(),
                Ok(r) => {
                    let class = if r.problems.is_empty() { "alert success" } else { "alert warn" };
                    view! {
                    <div class=class id="corrections-report">
                        <p>{format!("{} row(s): {} corrected, {} unchanged, {} with a problem.", grouped(r.rows), grouped(r.corrected), grouped(r.unchanged), r.problems.len())}</p>
                        <ul>{r.problems.into_iter().map(|p| view! { <li>{format!("Line {}{}: {}", p.line, p.field.map(|f| format!(", {f}")).unwrap_or_default(), p.message)}</li> }).collect_view()}</ul>
                    </div>
                    }.into_any()
                }
            })}
        </details>
    }
    .into_any()
}

// ---- one user's page ------------------------------------------------------------

fn fields_table(id: &'static str, fields: RecordFields, other: Option<&RecordFields>) -> AnyView {
    let rows = fields
        .fields
        .into_iter()
        .map(|(name, value)| {
            let differs = other.is_some_and(|o| {
                o.fields
                    .iter()
                    .find(|(n, _)| *n == name)
                    .is_none_or(|(_, v)| *v != value)
            });
            view! {
                <tr class=differs.then_some("changed")>
                    <th scope="row"><code>{name}</code></th>
                    <td class="value">{value}</td>
                </tr>
            }
        })
        .collect_view();
    view! { <table class="data compact fields" id=id><tbody>{rows}</tbody></table> }.into_any()
}

fn mapped_view(mapped: Option<PreviewRecord>, version: Option<u32>) -> AnyView {
    match mapped {
        None => view! { <p class="muted">"No mapping is saved yet: an administrator saves one on the Mapping page."</p> }.into_any(),
        Some(m) => {
            let errors: Vec<String> = m
                .rules
                .iter()
                .filter_map(|r| r.error.as_ref().map(|e| format!("rule {} ({}): {e}", r.rule + 1, r.target)))
                .collect();
            let json = serde_json::to_string_pretty(&m.resource).unwrap_or_default();
            view! {
                {version.map(|v| view! { <p class="muted">{format!("Mapping version {v}{}", m.user_type.map(|t| format!(", user type {t}")).unwrap_or_default())}</p> })}
                {if errors.is_empty() {
                    view! { <p class="ok-text" id="mapped-clean">"The mapping accepts this record."</p> }.into_any()
                } else {
                    view! { <ul class="field-errors" id="mapped-errors">{errors.into_iter().map(|e| view! { <li class="field-error">{e}</li> }).collect_view()}</ul> }.into_any()
                }}
                <pre class="scim-json" id="mapped-resource">{json}</pre>
            }
            .into_any()
        }
    }
}

/// The retry run a record's page follows until it ends.
#[derive(Clone, Copy)]
struct Following(RwSignal<Option<domain::runs::Run>>);

#[component]
pub fn RecordPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let source_id = Signal::derive(move || query.read().get("id").unwrap_or_default());
    let changed = RwSignal::new(0u32);
    let record = Resource::new(
        move || (project.get(), source_id.get(), changed.get()),
        |(p, id, _)| review_record(p, id),
    );
    // A retry started here is followed, every two seconds, until it has ended; then
    // the record shows its outcome. Kept above the record so a reload keeps it.
    let following = RwSignal::new(None::<domain::runs::Run>);
    let ended = RwSignal::new(None::<domain::runs::RunState>);
    provide_context(Following(following));
    let tick = RwSignal::new(0u32);
    Effect::new(move |_| {
        tick.get();
        let Some(run) = following.get() else { return };
        let p = project.get_untracked();
        leptos::task::spawn_local(async move {
            match crate::api::runs::get_run(p, run.id.to_string()).await {
                Ok(view) if view.run.state.is_final() => {
                    ended.set(Some(view.run.state));
                    following.set(None);
                    changed.update(|n| *n += 1);
                }
                Ok(_) => set_timeout(
                    move || tick.update(|t| *t += 1),
                    std::time::Duration::from_secs(2),
                ),
                Err(_) => following.set(None),
            }
        });
    });
    let me = current_account();
    view! {
        <leptos_meta::Title text="A failed user" />
        {move || following.get().map(|run| view! {
            <div class="alert info" role="status" id="retry-following">
                "Sent again in a retry run; this page follows it until it ends. "
                <a href=format!("/projects/{}/runs/{}", project.get_untracked(), run.id)>"Open the run"</a>
            </div>
        })}
        {move || ended.get().map(|state| view! {
            <div class=if state == domain::runs::RunState::Succeeded { "alert success" } else { "alert warn" } role="status" id="retry-ended">
                {format!("The retry run has ended: {}. The attempts below say what the target answered.", state.as_str())}
            </div>
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading the record…"</p> }>
            {move || Suspend::new(async move {
                let admin = me.await.is_ok_and(|a| a.role.allows(Permission::ManageProjects));
                match record.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(r) => view! { <RecordView r project=project.get_untracked() changed admin /> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn RecordView(
    r: RecordReview,
    project: String,
    changed: RwSignal<u32>,
    admin: bool,
) -> impl IntoView {
    let id = r.source_id.clone();
    let back = format!("/projects/{project}/review");
    let status = match &r.item {
        None => "Never failed".to_string(),
        Some(item) if item.outcome == domain::review::Outcome::Migrated => {
            "Migrated by a later run".into()
        }
        Some(item) if item.state == ReviewState::Skipped => {
            format!("Skipped: {}", item.skip_reason.clone().unwrap_or_default())
        }
        Some(item) => item.state.label().to_string(),
    };
    let summary = r.item.as_ref().map(|item| {
        format!(
            "{}{} — {}",
            class_label(&item.error_class),
            item.fault
                .as_ref()
                .map(|f| format!(" at {f}"))
                .unwrap_or_default(),
            item.detail
        )
    });
    let waiting = r.item.as_ref().is_some_and(|i| {
        i.outcome == domain::review::Outcome::Failed && i.state != ReviewState::Skipped
    });
    let assignee = r.item.as_ref().and_then(|i| i.assignee_name.clone());
    let current = r.corrected.clone().or(r.imported.clone());
    view! {
        <p class="crumbs"><a href=back>"Review"</a>" /"</p>
        <section class="card" id="record-head">
            <h2>{format!("Legacy id {id}")}</h2>
            <p><strong id="record-status">{status}</strong>{assignee.map(|a| format!(" · assigned to {a}"))}</p>
            {summary.map(|s| view! { <p class="muted" id="record-failure">{s}</p> })}
            {r.masked.then(|| view! { <p class="muted">"Values are masked: an owner can let you see personal data."</p> })}
        </section>
        {r.correction.as_ref().filter(|c| c.conflict).map(|_| view! {
            <div class="alert warn" id="correction-conflict">"A newer export changed this user after the correction was made: compare the two and correct again, or the correction is what runs send."</div>
        })}
        <div class="grid-2">
            <section class="card" id="record-imported">
                <h2>"As imported"</h2>
                {match r.imported.clone() {
                    Some(f) => fields_table("imported-fields", f, None),
                    None => view! { <p class="muted">"A newer export no longer holds this user."</p> }.into_any(),
                }}
            </section>
            {match (r.corrected.clone(), r.correction.clone()) {
                (Some(fields), Some(info)) => view! {
                    <section class="card" id="record-corrected">
                        <h2>"As corrected"</h2>
                        <p class="muted">{format!("{} changed {} on {}; runs send this version.",
                            info.by_name.clone().unwrap_or_else(|| "a former member".into()), info.fields.join(", "), format_time(info.at))}</p>
                        {fields_table("corrected-fields", fields, r.imported.as_ref())}
                    </section>
                }.into_any(),
                _ => view! {
                    <section class="card" id="record-mapped">
                        <h2>"What the target would receive"</h2>
                        {mapped_view(r.mapped.clone(), r.mapping_version)}
                        {admin.then(|| view! { <p><a href=format!("/projects/{project}/mapping?record={}", urlencoding(&id))>"Open in the mapping preview"</a></p> })}
                    </section>
                }.into_any(),
            }}
        </div>
        {r.correction.is_some().then(|| view! {
            <section class="card" id="record-mapped">
                <h2>"What the target would receive"</h2>
                {mapped_view(r.mapped.clone(), r.mapping_version)}
                {admin.then(|| view! { <p><a href=format!("/projects/{project}/mapping?record={}", urlencoding(&id))>"Open in the mapping preview"</a></p> })}
            </section>
        })}
        {current.map(|c| view! { <CorrectCard project=project.clone() source_id=id.clone() current=c changed /> })}
        <RecordActions project=project.clone() source_id=id.clone() waiting changed />
        <section class="card" id="record-attempts">
            <h2>"Attempts"</h2>
            {if r.attempts.is_empty() {
                view! { <p class="muted">"No run has sent this user yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table class="data compact">
                            <thead><tr><th>"Run"</th><th>"Target"</th><th>"Outcome"</th><th>"Reason"</th><th>"Target's detail"</th><th class="num">"Tries"</th><th>"When"</th></tr></thead>
                            <tbody>
                                {r.attempts.into_iter().map(|a| view! {
                                    <tr>
                                        <td><a href=format!("/projects/{project}/runs/{}", a.run_id)>{domain::runs::RunKind::parse(&a.run_kind).map(|k| k.label()).unwrap_or("Run")}</a></td>
                                        <td>{a.target_role}</td>
                                        <td>{a.state.replace('_', " ")}</td>
                                        <td>{a.error_class.as_deref().map(class_label).unwrap_or_default()}{a.scim_type.map(|t| view! { " " <code>{t}</code> })}</td>
                                        <td class="muted detail">{a.detail.unwrap_or_default()}</td>
                                        <td class="num">{a.attempts}</td>
                                        <td>{format_optional_time(a.at)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
        <section class="card" id="record-history">
            <h2>"History"</h2>
            <ol class="history">
                {r.history.into_iter().map(|e| view! {
                    <li data-kind=e.kind.clone()>
                        <span class="muted">{format_time(e.at)}</span>" "
                        <strong>{e.actor_name.unwrap_or_else(|| "Ferry".into())}</strong>": "{e.detail}
                    </li>
                }).collect_view()}
            </ol>
        </section>
    }
    .into_any()
}

/// The fields a correction may change, with the label the form shows.
const EDITABLE: [(&str, &str); 6] = [
    ("email", "E-mail address"),
    ("username", "User name"),
    ("given_name", "Given name"),
    ("family_name", "Family name"),
    ("display_name", "Display name"),
    ("phone", "Phone"),
];

#[component]
fn CorrectCard(
    project: String,
    source_id: String,
    current: RecordFields,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let masked = current.masked;
    // Unmasked viewers start from the values; masked ones type new values only.
    let start = |name: &str| {
        if masked {
            String::new()
        } else {
            current
                .fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        }
    };
    let values: Vec<(&'static str, &'static str, RwSignal<String>, String)> = EDITABLE
        .iter()
        .map(|(name, label)| {
            let s = start(name);
            (*name, *label, RwSignal::new(s.clone()), s)
        })
        .collect();
    let correction = {
        let values = values.clone();
        Memo::new(move |_| {
            let mut map = serde_json::Map::new();
            for (name, _, v, original) in &values {
                let text = v.get();
                if !text.trim().is_empty() && text != *original {
                    map.insert((*name).to_string(), serde_json::Value::String(text));
                }
            }
            serde_json::Value::Object(map).to_string()
        })
    };
    let (p, s) = (project.clone(), source_id.clone());
    // The live preview: asked again as the correction changes.
    let preview = Resource::new(
        move || correction.get(),
        move |json| {
            let (p, s) = (p.clone(), s.clone());
            async move {
                if json == "{}" {
                    return Ok::<Option<CorrectionPreview>, AppError>(None);
                }
                preview_correction(p, s, json).await.map(Some)
            }
        },
    );
    let (p2, s2) = (project.clone(), source_id.clone());
    let save = Action::new(move |json: &String| {
        let (p, s, json) = (p2.clone(), s2.clone(), json.clone());
        async move { correct_record(p, s, json).await }
    });
    Effect::new(move |_| {
        if save.value().get().is_some_and(|r| r.is_ok()) {
            changed.update(|n| *n += 1);
        }
    });
    view! {
        <section class="card" id="record-correct">
            <h2>"Correct the data"</h2>
            <p class="muted">{if masked {
                "Type the new value of a field; the others stay as they are. The correction is kept beside the imported record, never over it, and runs send it from now on."
            } else {
                "Change what is wrong; the correction is kept beside the imported record, never over it, and runs send it from now on."
            }}</p>
            <div class="form-grid">
                {values.iter().map(|(name, label, v, _)| {
                    let v = *v;
                    view! {
                        <label>{*label}
                            <input type="text" id=format!("correct-{name}") prop:value=move || v.get() on:input=move |e| v.set(event_target_value(&e)) />
                        </label>
                    }
                }).collect_view()}
            </div>
            <Transition fallback=|| view! { <p class="muted">"Mapping the correction…"</p> }>
                {move || Suspend::new(async move {
                    match preview.await {
                        Ok(None) => view! { <p class="muted">"Change a field to see what the target would receive."</p> }.into_any(),
                        Err(error) => view! { <div class="alert error" role="alert" id="correction-error">{error.general().unwrap_or_else(|| error.to_string())}{error.for_field("email").map(|m| format!("E-mail address: {m}"))}</div> }.into_any(),
                        Ok(Some(p)) => view! {
                            <div id="correction-preview" class=if p.maps_cleanly { "alert success" } else { "alert warn" }>
                                <p>{format!("Changes {}. ", p.changed.join(", "))}{if p.maps_cleanly { "The mapping accepts the corrected record." } else { "The mapping still rejects it:" }}</p>
                                {mapped_view(p.mapped, None)}
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
            {move || save.value().get().and_then(|r| r.err()).map(|error| view! { <div class="alert error" role="alert">{error.general().unwrap_or_else(|| error.to_string())}</div> })}
            <div class="actions">
                <button type="button" class="primary" id="correct-save" disabled=move || correction.get() == "{}" || save.pending().get()
                    on:click=move |_| { save.dispatch(correction.get_untracked()); }>"Save the correction"</button>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn RecordActions(
    project: String,
    source_id: String,
    waiting: bool,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let selection = serde_json::json!({"kind": "ids", "ids": [source_id]}).to_string();
    let (p, s1) = (project.clone(), selection.clone());
    let act = Action::new(move |action: &serde_json::Value| {
        let (p, s, a) = (p.clone(), s1.clone(), action.to_string());
        async move { review_act(p, s, a).await }
    });
    let (p2, s2) = (project.clone(), selection.clone());
    let retry = Action::new(move |_: &()| {
        let (p, s) = (p2.clone(), s2.clone());
        async move { review_retry(p, s).await }
    });
    let reason = RwSignal::new(String::new());
    let comment = RwSignal::new(String::new());
    Effect::new(move |_| {
        if act.value().get().is_some_and(|r| r.is_ok()) {
            reason.set(String::new());
            comment.set(String::new());
            changed.update(|n| *n += 1);
        }
    });
    let following = use_context::<Following>();
    Effect::new(move |_| {
        if let Some(Ok(run)) = retry.value().get()
            && let Some(Following(f)) = following
        {
            f.set(Some(run));
        }
    });
    view! {
        <section class="card" id="record-actions">
            <h2>"Act"</h2>
            {move || act.value().get().and_then(|r| r.err()).map(|error| view! { <div class="alert error" role="alert">{error.general().unwrap_or_else(|| error.to_string())}</div> })}
            {move || retry.value().get().and_then(|r| r.err()).map(|error| view! {
                <div class="alert error" role="alert" id="retry-message">{error.general().unwrap_or_else(|| error.to_string())}</div>
            })}
            {waiting.then(|| view! {
                <div class="actions">
                    <button type="button" class="primary" id="record-retry" disabled=move || retry.pending().get() on:click=move |_| { retry.dispatch(()); }>"Retry against production"</button>
                    <button type="button" id="record-in-progress" on:click=move |_| { act.dispatch(serde_json::json!({"action": "set_state", "state": "in_progress"})); }>"Mark in progress"</button>
                    <button type="button" id="record-waiting" on:click=move |_| { act.dispatch(serde_json::json!({"action": "set_state", "state": "waiting"})); }>"Waiting for the customer"</button>
                    <button type="button" id="record-resolved" on:click=move |_| { act.dispatch(serde_json::json!({"action": "set_state", "state": "resolved"})); }>"Mark resolved"</button>
                </div>
                <div class="actions">
                    <label>"Skip this user: the reason"
                        <input type="text" id="record-skip-reason" prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e)) />
                    </label>
                    <button type="button" id="record-skip" class="danger" disabled=move || reason.get().trim().is_empty()
                        on:click=move |_| { act.dispatch(serde_json::json!({"action": "skip", "reason": reason.get_untracked()})); }>"Skip: do not migrate"</button>
                </div>
            })}
            {(!waiting).then(|| view! {
                <div class="actions">
                    <button type="button" id="record-reopen" on:click=move |_| { act.dispatch(serde_json::json!({"action": "set_state", "state": "open"})); }>"Open again"</button>
                </div>
            })}
            <div class="actions">
                <label>"Comment"
                    <input type="text" id="record-comment" prop:value=move || comment.get() on:input=move |e| comment.set(event_target_value(&e)) />
                </label>
                <button type="button" id="record-comment-add" disabled=move || comment.get().trim().is_empty()
                    on:click=move |_| { act.dispatch(serde_json::json!({"action": "comment", "text": comment.get_untracked()})); }>"Add the comment"</button>
            </div>
        </section>
    }
    .into_any()
}
