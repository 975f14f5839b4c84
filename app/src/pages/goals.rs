//! The Goals stage: the user types that decide who moves and how their
//! password moves, edited with live counts over the project's records (a sample beyond
//! ten thousand), the users in no type, and the estimate of the real run.

use crate::{
    api::goals::{count_user_types, get_goals, save_user_types},
    components::{
        charts::{Bar, BarChart},
        format_time,
        forms::LoadError,
        grouped,
    },
    error::AppError,
};
use domain::{
    service::{Estimate, GoalsView, UserTypeEstimate},
    user_types::{
        Combine, Condition, PasswordStrategy, Test, UserType, UserTypeProblem, UserTypes,
    },
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn GoalsPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let saved = RwSignal::new(0u32);
    let goals = Resource::new(move || (project.get(), saved.get()), |(p, _)| get_goals(p));
    view! {
        <Title text="Goals" />
        <p class="muted intro">
            "Decide which users move. Each user type is a rule over the source records; a user belongs \
             to the first type whose conditions hold. Leave types behind (dormant accounts, say), and \
             choose per type how passwords move. Users in no type do not move and are counted here."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading goals…"</p> }>
            {move || Suspend::new(async move {
                match goals.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(view) => view! { <GoalsEditor project=project.get_untracked() view saved /> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn to_json(user_types: &[UserType]) -> String {
    serde_json::to_string(&UserTypes {
        user_types: user_types.to_vec(),
    })
    .unwrap_or_default()
}

#[component]
fn GoalsEditor(project: String, view: GoalsView, saved: RwSignal<u32>) -> impl IntoView {
    let user_types = RwSignal::new(view.user_types.user_types.user_types.clone());
    let problems = RwSignal::new(view.user_types.problems.clone());
    let dirty = RwSignal::new(false);
    let json = Memo::new(move |_| to_json(&user_types.get()));
    let counted = {
        let project = project.clone();
        Resource::new(
            move || json.get(),
            move |json| count_user_types(project.clone(), json),
        )
    };
    let save = {
        let project = project.clone();
        Action::new(move |json: &String| save_user_types(project.clone(), json.clone()))
    };
    Effect::new(move |_| {
        if let Some(Ok(view)) = save.value().get() {
            problems.set(view.problems);
            dirty.set(false);
            saved.update(|n| *n += 1);
        }
    });
    let save_error = move || save.value().get().and_then(|r| r.err());
    let edit = move |f: Change| {
        user_types.update(|s| f(s));
        dirty.set(true);
    };
    let saved_line = match (&view.user_types.saved_at, &view.user_types.saved_by_email) {
        (Some(at), Some(by)) => format!("Saved {} by {by}.", format_time(*at)),
        (Some(at), None) => format!("Saved {}.", format_time(*at)),
        _ => "Not saved yet: everyone moves with a forced reset until you save user types.".into(),
    };
    view! {
        <section class="card" id="user-types">
            <div class="card-head">
                <h2>"User types"</h2>
                <span class="muted small">{move || {
                    // Saved with problems is kept, not ready: say so where "Saved" shows.
                    let n = problems.get().len();
                    if n == 0 || dirty.get() {
                        saved_line.clone()
                    } else {
                        format!(
                            "Saved with {n} problem{} to fix: no run can start until they are fixed.",
                            if n == 1 { "" } else { "s" }
                        )
                    }
                }}</span>
            </div>
            {move || {
                let list = user_types.get();
                let count = list.len();
                list.into_iter().enumerate().map(|(i, user_type)| {
                    let mine: Vec<UserTypeProblem> = problems.get().into_iter().filter(|p| p.user_type == Some(i)).collect();
                    view! { <UserTypeEditor index=i count user_type problems=mine edit=Callback::new(move |f| edit(f)) /> }
                }).collect_view()
            }}
            <div class="row-actions">
                <button type="button" id="add-user-type" on:click=move |_| edit(Box::new(|s: &mut Vec<UserType>| s.push(UserType {
                    name: format!("Type {}", s.len() + 1),
                    combine: Combine::All,
                    conditions: vec![Condition { test: Test::InGroup, field: String::new(), value: String::new(), negate: false }],
                    include: true,
                    password: PasswordStrategy::ForcedReset,
                })))>"Add a user type"</button>
                <button type="button" class="primary" id="save-user-types"
                    disabled=move || save.pending().get()
                    on:click=move |_| { save.dispatch(json.get_untracked()); }>
                    {move || if save.pending().get() { "Saving…" } else { "Save user types" }}
                </button>
                <span class="muted small">{move || dirty.get().then_some("Unsaved changes")}</span>
            </div>
            {move || save_error().map(|e| view! { <div class="alert error" role="alert">{e.to_string()}</div> })}
            {move || {
                let general: Vec<UserTypeProblem> = problems.get().into_iter().filter(|p| p.user_type.is_none()).collect();
                general.into_iter().map(|p| view! { <div class="alert error">{p.message}</div> }).collect_view()
            }}
        </section>
        <section class="card" id="user-type-counts">
            <h2>"Who moves"</h2>
            <Transition fallback=|| view! { <p class="muted">"Counting…"</p> }>
                {move || Suspend::new(async move {
                    match counted.await {
                        Err(AppError::Domain(e)) => view! { <p class="muted">{format!("Fix the user types to count them: {}", e.message())}</p> }.into_any(),
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(estimate) => view! { <Counts estimate user_types=user_types.get_untracked() /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card" id="estimate">
            <h2>"Estimate of the real run"</h2>
            <EstimateView estimate=view.run.clone() />
        </section>
    }
    .into_any()
}

/// A change to the user types being edited.
type Change = Box<dyn FnOnce(&mut Vec<UserType>)>;
type Edit = Callback<Change>;

#[component]
fn UserTypeEditor(
    index: usize,
    count: usize,
    user_type: UserType,
    problems: Vec<UserTypeProblem>,
    edit: Edit,
) -> impl IntoView {
    let at = move |f: fn(&mut UserType, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            edit.run(Box::new(move |s: &mut Vec<UserType>| {
                if let Some(user_type) = s.get_mut(index) {
                    f(user_type, value)
                }
            }))
        }
    };
    let name_problem = problems
        .iter()
        .find(|p| p.condition.is_none())
        .map(|p| p.message.clone());
    let conditions = user_type.conditions.clone();
    view! {
        <fieldset class="user-type" data-user-type=index>
            <legend>{format!("{}. {}", index + 1, user_type.name)}</legend>
            <div class="user-type-head">
                <label>"Name " <input type="text" class="user-type-name" value=user_type.name.clone() on:change=at(|s, v| s.name = v) /></label>
                <label>
                    <input type="checkbox" class="user-type-include" prop:checked=user_type.include
                        on:change=move |ev| { let on = event_target_checked(&ev); edit.run(Box::new(move |s: &mut Vec<UserType>| if let Some(x) = s.get_mut(index) { x.include = on })) } />
                    " Moves"
                </label>
                <label>"Password "
                    <select class="user-type-password" on:change=at(|s, v| if let Some(p) = PasswordStrategy::parse(&v) { s.password = p })>
                        {PasswordStrategy::ALL.into_iter().map(|p| view! {
                            <option value=p.as_str() selected=p == user_type.password>{p.label()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Match "
                    <select class="user-type-combine" on:change=at(|s, v| s.combine = if v == "any" { Combine::Any } else { Combine::All })>
                        <option value="all" selected=user_type.combine == Combine::All>"all conditions"</option>
                        <option value="any" selected=user_type.combine == Combine::Any>"any condition"</option>
                    </select>
                </label>
                <span class="row-actions">
                    <button type="button" class="small" disabled=index == 0 title="Try earlier"
                        on:click=move |_| edit.run(Box::new(move |s: &mut Vec<UserType>| s.swap(index, index - 1)))>"↑"</button>
                    <button type="button" class="small" disabled=index + 1 == count title="Try later"
                        on:click=move |_| edit.run(Box::new(move |s: &mut Vec<UserType>| s.swap(index, index + 1)))>"↓"</button>
                    <button type="button" class="small danger" title="Remove this user type"
                        on:click=move |_| edit.run(Box::new(move |s: &mut Vec<UserType>| { s.remove(index); }))>"Remove"</button>
                </span>
            </div>
            {name_problem.map(|m| view! { <p class="field-error">{m}</p> })}
            {conditions.is_empty().then(|| view! { <p class="muted small">"No conditions: every user not in an earlier type."</p> })}
            <ul class="conditions">
                {conditions.into_iter().enumerate().map(|(n, c)| {
                    let problem = problems.iter().find(|p| p.condition == Some(n)).map(|p| p.message.clone());
                    let set = move |f: fn(&mut Condition, String)| {
                        move |ev: leptos::ev::Event| {
                            let value = event_target_value(&ev);
                            edit.run(Box::new(move |s: &mut Vec<UserType>| {
                                if let Some(c) = s.get_mut(index).and_then(|x| x.conditions.get_mut(n)) { f(c, value) }
                            }))
                        }
                    };
                    view! {
                        <li class="condition">
                            <label class="negate"><input type="checkbox" prop:checked=c.negate
                                on:change=move |ev| { let on = event_target_checked(&ev); edit.run(Box::new(move |s: &mut Vec<UserType>| if let Some(c) = s.get_mut(index).and_then(|x| x.conditions.get_mut(n)) { c.negate = on })) } />" not"</label>
                            <select class="condition-test" on:change=set(|c, v| if let Some(t) = Test::parse(&v) { c.test = t })>
                                {Test::ALL.into_iter().map(|t| view! { <option value=t.as_str() selected=t == c.test>{t.label()}</option> }).collect_view()}
                            </select>
                            {c.test.takes_field().then(|| view! {
                                <input type="text" class="condition-field" placeholder="field, e.g. attributes.department" list="source-fields"
                                    value=c.field.clone() on:change=set(|c, v| c.field = v) />
                            })}
                            {c.test.takes_value().then(|| view! {
                                <input type="text" class="condition-value" placeholder=placeholder(c.test)
                                    value=c.value.clone() on:change=set(|c, v| c.value = v) />
                            })}
                            <button type="button" class="small" title="Remove this condition"
                                on:click=move |_| edit.run(Box::new(move |s: &mut Vec<UserType>| { if let Some(x) = s.get_mut(index) { x.conditions.remove(n); } }))>"×"</button>
                            {problem.map(|m| view! { <span class="field-error">{m}</span> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <button type="button" class="small add-condition"
                on:click=move |_| edit.run(Box::new(move |s: &mut Vec<UserType>| if let Some(x) = s.get_mut(index) {
                    x.conditions.push(Condition { test: Test::InGroup, field: String::new(), value: String::new(), negate: false })
                }))>"Add a condition"</button>
        </fieldset>
    }
    .into_any()
}

fn placeholder(test: Test) -> &'static str {
    match test {
        Test::InGroup => "group name",
        Test::HasRole => "role name",
        Test::EmailDomain => "example.com",
        Test::Status => "active, disabled, pending or unknown",
        Test::LastLoginBefore | Test::LastLoginAfter => "2025-01-31 or 365 days",
        Test::Matches => "regular expression",
        _ => "value",
    }
}

#[component]
fn Counts(estimate: UserTypeEstimate, user_types: Vec<UserType>) -> impl IntoView {
    let c = &estimate.counts;
    let exact = c.counted == estimate.records;
    let scale = |n: u64| {
        if exact || c.counted == 0 {
            n
        } else {
            (n as f64 * estimate.records as f64 / c.counted as f64).round() as u64
        }
    };
    let shown = |n: u64| {
        if exact {
            grouped(n)
        } else {
            format!("≈ {}", grouped(scale(n)))
        }
    };
    let bars: Vec<Bar> = user_types
        .iter()
        .zip(&c.user_types)
        .map(|(s, n)| Bar {
            label: s.name.clone(),
            value: *n as f64,
            text: shown(*n),
        })
        .chain(std::iter::once(Bar {
            label: "In no user type".into(),
            value: c.unmatched as f64,
            text: shown(c.unmatched),
        }))
        .collect();
    let basis = if exact {
        format!("Counted on all {} records.", grouped(estimate.records))
    } else {
        format!(
            "Estimated from a random sample of {} of {} records; the impact on the Mapping page counts every record.",
            grouped(c.counted),
            grouped(estimate.records)
        )
    };
    view! {
        <p class="muted small" id="count-basis">{basis}</p>
        <table class="data" id="user-type-count-table">
            <thead><tr><th>"User type"</th><th>"Moves"</th><th>"Password"</th><th class="num">"Users"</th></tr></thead>
            <tbody>
                {user_types.iter().zip(&c.user_types).map(|(s, n)| view! {
                    <tr data-user-type=s.name.clone()>
                        <td>{s.name.clone()}</td>
                        <td>{if s.include { view! { <span class="badge ok">"moves"</span> }.into_any() } else { view! { <span class="badge muted">"left behind"</span> }.into_any() }}</td>
                        <td>{s.password.label()}</td>
                        <td class="num count">{shown(*n)}</td>
                    </tr>
                }).collect_view()}
                <tr id="unmatched-row">
                    <td>"In no user type"</td>
                    <td><span class="badge warn">"not moving"</span></td>
                    <td>"—"</td>
                    <td class="num count">{shown(c.unmatched)}</td>
                </tr>
            </tbody>
            <tfoot><tr><th colspan="3">"Moving"</th><th class="num" id="moving-count">{shown(c.moving)}</th></tr></tfoot>
        </table>
        <BarChart title="Users per user type" bars id="user-type-chart" />
    }
    .into_any()
}

/// A duration in words: `2 h 05 min`, `4 min 10 s`.
pub fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s:02} s"),
        _ => format!("{h} h {m:02} min"),
    }
}

#[component]
fn EstimateView(estimate: Estimate) -> impl IntoView {
    let users = if estimate.exact {
        grouped(estimate.moving)
    } else {
        format!("≈ {}", grouped(estimate.moving))
    };
    view! {
        <dl class="facts">
            <dt>"Users that move"</dt><dd id="estimate-users">{users}</dd>
            <dt>"Rate"</dt><dd>{estimate.users_per_second.map_or("not measured yet".to_string(), |r| format!("{} users/s", grouped(r.round() as u64)))}</dd>
            <dt>"Duration"</dt><dd id="estimate-duration">{estimate.seconds.map_or("—".to_string(), duration)}</dd>
        </dl>
        <p class="muted small">{estimate.basis}</p>
    }
    .into_any()
}
