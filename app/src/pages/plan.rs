//! The Plan stage: the written migration plan — requirements, what each user type will
//! experience, the acceptable impact Ferry checks, risks (Ferry's proposals from its own
//! data beside the team's), the timeline with Ferry's milestones and the suggested
//! window — saved as versions, compared, approved by an owner; and the plan as a
//! printable document.

use crate::{
    api::plan::{
        approve_plan, compare_plan, get_plan, get_plan_version, get_plan_versions, save_plan,
    },
    components::{charts::Heatmap, format_time, forms::LoadError},
    error::AppError,
};
use chrono::{NaiveDate, NaiveDateTime};
use domain::{
    plan::{
        AcceptableImpact, Experience, ImpactTest, Level, Milestone, Period, PlanDocument,
        Requirement, RequirementStatus, Risk, RiskKind, UserSees,
    },
    service::{AutoMilestone, PlanView},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn PlanPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let saved = RwSignal::new(0u32);
    let plan = Resource::new(move || (project.get(), saved.get()), |(p, _)| get_plan(p));
    view! {
        <Title text="Plan" />
        <p class="muted intro">
            "Write down how the migration will go before it goes: the company's and legal \
             requirements, what each user type will see, the impact you accept (Ferry checks it \
             against the latest impact of the mapping), the risks with their mitigations, and the \
             timeline. Ferry proposes the risks its data shows and a downtime window from the last \
             logins. Each save is a version; an owner approves one, and the real run then waits for \
             the approval of the latest."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading the plan…"</p> }>
            {move || Suspend::new(async move {
                match plan.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(view) => view! { <PlanEditor project=project.get_untracked() view saved /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A change to the document being edited.
type Change = Box<dyn FnOnce(&mut PlanDocument)>;
type Edit = Callback<Change>;

/// One of the document's lists.
type List<T> = fn(&mut PlanDocument) -> &mut Vec<T>;

/// Changes item `i` of a list of the document.
fn set_item<T: 'static>(edit: Edit, list: List<T>, i: usize, f: Box<dyn FnOnce(&mut T)>) {
    edit.run(Box::new(move |d: &mut PlanDocument| {
        if let Some(item) = list(d).get_mut(i) {
            f(item)
        }
    }))
}

/// Removes item `i` of a list of the document.
fn remove_item<T: 'static>(edit: Edit, list: List<T>, i: usize) {
    edit.run(Box::new(move |d: &mut PlanDocument| {
        let items = list(d);
        if i < items.len() {
            items.remove(i);
        }
    }))
}

fn date_value(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn parse_date(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok()
}

fn local_value(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn parse_local(v: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

fn local_words(t: NaiveDateTime) -> String {
    t.format("%a %Y-%m-%d %H:%M").to_string()
}

#[component]
fn PlanEditor(project: String, view: PlanView, saved: RwSignal<u32>) -> impl IntoView {
    let doc = RwSignal::new(view.document.clone());
    let dirty = RwSignal::new(false);
    let note = RwSignal::new(String::new());
    let edit = Callback::new(move |f: Change| {
        doc.update(|d| f(d));
        dirty.set(true);
    });
    let save = {
        let project = project.clone();
        Action::new(move |(document, note): &(String, String)| {
            save_plan(project.clone(), document.clone(), note.clone())
        })
    };
    let approve = {
        let project = project.clone();
        Action::new(move |version: &u32| approve_plan(project.clone(), *version))
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            dirty.set(false);
            saved.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = approve.value().get() {
            saved.update(|n| *n += 1);
        }
    });
    let save_error = move || save.value().get().and_then(|r| r.err());
    let approve_error = move || approve.value().get().and_then(|r| r.err());
    let latest = view.latest.clone();
    let status = match (&view.latest, &view.approved) {
        (None, _) => "Not saved yet: below is the guide's checklist to start from.".to_string(),
        (Some(l), Some(a)) if a.version == l.version => format!(
            "Version {} saved {}{}, approved {} by {}.",
            l.version,
            format_time(l.saved_at),
            l.saved_by_email
                .as_ref()
                .map(|e| format!(" by {e}"))
                .unwrap_or_default(),
            a.approved_at.map(format_time).unwrap_or_default(),
            a.approved_by_email.as_deref().unwrap_or("a former member"),
        ),
        (Some(l), approved) => format!(
            "Version {} saved {}{}; not approved{}. The real run waits for an owner's approval of it.",
            l.version,
            format_time(l.saved_at),
            l.saved_by_email
                .as_ref()
                .map(|e| format!(" by {e}"))
                .unwrap_or_default(),
            approved
                .as_ref()
                .map(|a| format!(" (version {} was)", a.version))
                .unwrap_or_default(),
        ),
    };
    let approvable = view
        .latest
        .as_ref()
        .filter(|l| l.approved_at.is_none() && view.may_approve)
        .map(|l| l.version);
    let print_href = format!(
        "/projects/{project}/plan/print{}",
        latest
            .as_ref()
            .map(|l| format!("?version={}", l.version))
            .unwrap_or_default()
    );
    let json_href = latest
        .as_ref()
        .map(|l| format!("/api/v1/projects/{project}/plan/versions/{}", l.version));
    view! {
        <section class="card" id="plan-status">
            <div class="card-head">
                <h2>"The plan"</h2>
                <span class="muted small" id="plan-state">{status}</span>
            </div>
            <div class="row-actions">
                <label class="grow">"What changed "
                    <input type="text" id="plan-note" maxlength="500" placeholder="a note for this version (optional)"
                        prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev)) />
                </label>
                <button type="button" class="primary" id="save-plan"
                    disabled=move || save.pending().get()
                    on:click=move |_| {
                        let json = serde_json::to_string(&doc.get_untracked()).unwrap_or_default();
                        save.dispatch((json, note.get_untracked()));
                    }>
                    {move || if save.pending().get() { "Saving…" } else { "Save a version" }}
                </button>
                {approvable.map(|v| view! {
                    <button type="button" id="approve-plan" disabled=move || approve.pending().get() || dirty.get()
                        title="Approve the saved version (save your changes first)"
                        on:click=move |_| { approve.dispatch(v); }>
                        {format!("Approve version {v}")}
                    </button>
                })}
                <a href=print_href.clone() id="print-plan">"Printable plan"</a>
                {json_href.map(|href| view! { <a href=href id="plan-json" rel="external">"JSON"</a> })}
                <span class="muted small">{move || dirty.get().then_some("Unsaved changes")}</span>
            </div>
            {move || save_error().map(|e| view! { <div class="alert error" role="alert" id="plan-error">{e.to_string()}</div> })}
            {move || approve_error().map(|e| view! { <div class="alert error" role="alert">{e.to_string()}</div> })}
        </section>
        <Requirements doc edit />
        <Experiences doc edit view=view.clone() />
        <Impact doc edit tests=view.impact.clone() />
        <Risks doc edit view=view.clone() project=project.clone() />
        <Timeline doc edit view=view.clone() />
        <Versions project=project.clone() latest=view.latest.as_ref().map(|l| l.version) />
    }
    .into_any()
}

#[component]
fn Requirements(doc: RwSignal<PlanDocument>, edit: Edit) -> impl IntoView {
    let list: List<Requirement> = |d| &mut d.requirements;
    let set = move |i: usize, f: fn(&mut Requirement, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            set_item(edit, list, i, Box::new(move |r| f(r, value)))
        }
    };
    view! {
        <section class="card" id="plan-requirements">
            <h2>"Company and legal requirements"</h2>
            <p class="muted small">"Each with who owns it, where it stands and when it was settled."</p>
            {move || doc.get().requirements.into_iter().enumerate().map(|(i, r)| view! {
                <fieldset class="plan-item requirement" data-key=r.key.clone()>
                    <label class="wide">"Requirement "
                        <input type="text" class="requirement-title" value=r.title.clone() on:change=set(i, |r, v| r.title = v) />
                    </label>
                    <label>"Status "
                        <select class="requirement-status" on:change=set(i, |r, v| if let Some(s) = RequirementStatus::parse(&v) { r.status = s })>
                            {RequirementStatus::ALL.into_iter().map(|s| view! {
                                <option value=s.as_str() selected=s == r.status>{s.label()}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Owner " <input type="text" class="requirement-owner" value=r.owner.clone() on:change=set(i, |r, v| r.owner = v) /></label>
                    <label>"Date " <input type="date" class="requirement-date" value=date_value(r.date) on:change=set(i, |r, v| r.date = parse_date(&v)) /></label>
                    <label class="wide">"Note " <textarea class="requirement-note" rows="2" prop:value=r.note.clone() on:change=set(i, |r, v| r.note = v)></textarea></label>
                    <button type="button" class="link" on:click=move |_| remove_item(edit, list, i)>"Remove"</button>
                </fieldset>
            }).collect_view()}
            <div class="row-actions">
                <button type="button" id="add-requirement" on:click=move |_| edit.run(Box::new(|d: &mut PlanDocument| {
                    let n = d.requirements.len() + 1;
                    d.requirements.push(Requirement {
                        key: format!("own_{n}"),
                        title: String::new(),
                        status: RequirementStatus::Open,
                        owner: String::new(),
                        note: String::new(),
                        date: None,
                    })
                }))>"Add a requirement"</button>
            </div>
        </section>
    }
}

#[component]
fn Experiences(doc: RwSignal<PlanDocument>, edit: Edit, view: PlanView) -> impl IntoView {
    // Every user type has a row: its saved experience, or what its strategy implies.
    let types = view.user_types.clone();
    let row_of = move |d: &PlanDocument, name: &str, sees: UserSees| {
        d.experiences
            .iter()
            .find(|e| e.user_type == name)
            .cloned()
            .unwrap_or(Experience {
                user_type: name.to_string(),
                sees,
                message: String::new(),
                when: String::new(),
            })
    };
    let upsert = move |name: String, sees: UserSees, f: Box<dyn FnOnce(&mut Experience)>| {
        edit.run(Box::new(move |d: &mut PlanDocument| {
            let i = match d.experiences.iter().position(|e| e.user_type == name) {
                Some(i) => i,
                None => {
                    d.experiences.push(Experience {
                        user_type: name.clone(),
                        sees,
                        message: String::new(),
                        when: String::new(),
                    });
                    d.experiences.len() - 1
                }
            };
            f(&mut d.experiences[i]);
        }))
    };
    view! {
        <section class="card" id="plan-experiences">
            <h2>"What users will experience"</h2>
            <p class="muted small">"Per user type (Goals page): what they see, the message they get and when."</p>
            {(types.is_empty()).then(|| view! { <p class="muted">"No user types saved: everyone moves with a forced reset (Goals page)."</p> })}
            {move || {
                let d = doc.get();
                types.iter().map(|t| {
                    let row = row_of(&d, &t.name, t.sees);
                    let (n1, n2, n3) = (t.name.clone(), t.name.clone(), t.name.clone());
                    let sees = t.sees;
                    view! {
                        <fieldset class="plan-item experience" data-user-type=t.name.clone()>
                            <legend>{t.name.clone()}{(!t.moves).then_some(" (stays behind)")}</legend>
                            <label class="wide">"They see "
                                <select class="experience-sees" on:change=move |ev| {
                                    let v = event_target_value(&ev);
                                    upsert(n1.clone(), sees, Box::new(move |e| if let Some(s) = UserSees::parse(&v) { e.sees = s }))
                                }>
                                    {UserSees::ALL.into_iter().map(|s| view! { <option value=s.as_str() selected=s == row.sees>{s.label()}</option> }).collect_view()}
                                </select>
                            </label>
                            <label class="wide">"Message " <textarea class="experience-message" rows="2" prop:value=row.message.clone()
                                on:change=move |ev| { let v = event_target_value(&ev); upsert(n2.clone(), sees, Box::new(move |e| e.message = v)) }></textarea></label>
                            <label class="wide">"When " <input type="text" class="experience-when" value=row.when.clone()
                                on:change=move |ev| { let v = event_target_value(&ev); upsert(n3.clone(), sees, Box::new(move |e| e.when = v)) } /></label>
                        </fieldset>
                    }
                }).collect_view()
            }}
        </section>
    }
}

fn number<T: std::str::FromStr>(v: &str) -> Option<T> {
    let v = v.trim();
    if v.is_empty() { None } else { v.parse().ok() }
}

#[component]
fn Impact(doc: RwSignal<PlanDocument>, edit: Edit, tests: Vec<ImpactTest>) -> impl IntoView {
    let set = move |f: fn(&mut AcceptableImpact, String)| {
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            edit.run(Box::new(move |d: &mut PlanDocument| {
                f(&mut d.acceptable, v)
            }))
        }
    };
    let value = |x: Option<String>| x.unwrap_or_default();
    let a = doc.get_untracked().acceptable;
    view! {
        <section class="card" id="plan-impact">
            <h2>"Acceptable impact"</h2>
            <p class="muted small">"Numbers Ferry can check: leave one empty to state no limit. The checks use the saved version."</p>
            <div class="plan-item">
                <label>"Most users needing a reset (%) "
                    <input type="number" min="0" max="100" step="0.1" id="max-reset-percent" value=value(a.max_reset_percent.map(|v| v.to_string()))
                        on:change=set(|a: &mut AcceptableImpact, v: String| a.max_reset_percent = number(&v)) /></label>
                <label>"Most records failing their mapping "
                    <input type="number" min="0" id="max-failed-records" value=value(a.max_failed_records.map(|v| v.to_string()))
                        on:change=set(|a: &mut AcceptableImpact, v: String| a.max_failed_records = number(&v)) /></label>
                <label>"Longest downtime (minutes) "
                    <input type="number" min="0" id="max-downtime-minutes" value=value(a.max_downtime_minutes.map(|v| v.to_string()))
                        on:change=set(|a: &mut AcceptableImpact, v: String| a.max_downtime_minutes = number(&v)) /></label>
            </div>
            {if tests.is_empty() {
                view! { <p class="muted">"No limit stated yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="data" id="impact-tests">
                            <thead><tr><th>"Limit"</th><th class="num">"Stated"</th><th class="num">"Now"</th><th>"Met?"</th></tr></thead>
                            <tbody>
                                {tests.into_iter().map(|t| view! {
                                    <tr data-test=t.name.clone()>
                                        <td>{t.label.clone()}</td>
                                        <td class="num">{t.limit.to_string()}</td>
                                        <td class="num">{t.actual.map(|a| a.to_string()).unwrap_or_else(|| "—".into())}</td>
                                        <td>{if t.met {
                                            view! { <span class="badge ok">"met"</span> }.into_any()
                                        } else {
                                            view! { <span class="badge error">{if t.actual.is_some() { "over" } else { "not measured" }}</span> " " <span class="muted small">{t.detail.clone()}</span> }.into_any()
                                        }}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

fn level_select(
    current: Level,
    class: &'static str,
    on: impl Fn(Level) + 'static,
) -> impl IntoView {
    view! {
        <select class=class on:change=move |ev| if let Some(l) = Level::parse(&event_target_value(&ev)) { on(l) }>
            {Level::ALL.into_iter().map(|l| view! { <option value=l.as_str() selected=l == current>{l.label()}</option> }).collect_view()}
        </select>
    }
}

#[component]
fn Risks(
    doc: RwSignal<PlanDocument>,
    edit: Edit,
    view: PlanView,
    project: String,
) -> impl IntoView {
    let proposals = view.proposals.clone();
    let list: List<Risk> = |d| &mut d.risks;
    let set = move |i: usize, f: Box<dyn FnOnce(&mut Risk)>| set_item(edit, list, i, f);
    view! {
        <section class="card" id="plan-risks">
            <h2>"Risks"</h2>
            <h3>"What Ferry's data shows"</h3>
            {if proposals.is_empty() {
                view! { <p class="muted" id="no-proposals">"Nothing in the assessment, the mapping's impact, the password set-up or the timeline points to a risk now."</p> }.into_any()
            } else {
                view! {
                    <ul class="proposals" id="risk-proposals">
                        {proposals.into_iter().map(|p| {
                            let key = p.key.clone();
                            let adopted = move || doc.get().risks.iter().any(|r| r.proposal.as_deref() == Some(key.as_str()));
                            let adopt = {
                                let p = p.clone();
                                move |_| {
                                    let p = p.clone();
                                    edit.run(Box::new(move |d: &mut PlanDocument| d.risks.push(Risk {
                                        title: p.title,
                                        kind: p.kind,
                                        likelihood: p.likelihood,
                                        impact: p.impact,
                                        mitigation: p.mitigation,
                                        proposal: Some(p.key),
                                    })))
                                }
                            };
                            view! {
                                <li data-proposal=p.key.clone()>
                                    <strong>{p.title.clone()}</strong>" "
                                    <span class="badge muted">{p.kind.label()}</span>" "
                                    <span class="badge warn">{format!("likelihood {}, impact {}", p.likelihood.label().to_lowercase(), p.impact.label().to_lowercase())}</span>
                                    <p class="small">{p.evidence.clone()}" "<a href=format!("/projects/{project}/{}", p.page)>{format!("See the {} page", p.page)}</a></p>
                                    {move || if adopted() {
                                        view! { <span class="badge ok">"In the plan"</span> }.into_any()
                                    } else {
                                        view! { <button type="button" class="adopt-risk" on:click=adopt.clone()>"Add to the plan"</button> }.into_any()
                                    }}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <h3>"The plan's risks"</h3>
            {move || {
                let risks = doc.get().risks;
                if risks.is_empty() {
                    return view! { <p class="muted">"None recorded yet."</p> }.into_any();
                }
                risks.into_iter().enumerate().map(|(i, r)| view! {
                    <fieldset class="plan-item risk" data-proposal=r.proposal.clone().unwrap_or_default()>
                        <label class="wide">"Risk " <input type="text" class="risk-title" value=r.title.clone()
                            on:change=move |ev| { let v = event_target_value(&ev); set(i, Box::new(move |r| r.title = v)) } /></label>
                        <label>"Kind "
                            <select class="risk-kind" on:change=move |ev| { let v = event_target_value(&ev); set(i, Box::new(move |r| if let Some(k) = RiskKind::parse(&v) { r.kind = k })) }>
                                {RiskKind::ALL.into_iter().map(|k| view! { <option value=k.as_str() selected=k == r.kind>{k.label()}</option> }).collect_view()}
                            </select>
                        </label>
                        <label>"Likelihood " {level_select(r.likelihood, "risk-likelihood", move |l| set(i, Box::new(move |r| r.likelihood = l)))}</label>
                        <label>"Impact " {level_select(r.impact, "risk-impact", move |l| set(i, Box::new(move |r| r.impact = l)))}</label>
                        <label class="wide">"Mitigation " <textarea class="risk-mitigation" rows="2" prop:value=r.mitigation.clone()
                            on:change=move |ev| { let v = event_target_value(&ev); set(i, Box::new(move |r| r.mitigation = v)) }></textarea></label>
                        <button type="button" class="link" on:click=move |_| remove_item(edit, list, i)>"Remove"</button>
                    </fieldset>
                }).collect_view().into_any()
            }}
            <div class="row-actions">
                <button type="button" id="add-risk" on:click=move |_| edit.run(Box::new(|d: &mut PlanDocument| d.risks.push(Risk {
                    title: String::new(),
                    kind: RiskKind::DataLoss,
                    likelihood: Level::Medium,
                    impact: Level::Medium,
                    mitigation: String::new(),
                    proposal: None,
                })))>"Add a risk"</button>
            </div>
        </section>
    }
}

#[component]
fn FerryMilestones(milestones: Vec<AutoMilestone>) -> impl IntoView {
    view! {
        <ol class="milestones" id="ferry-milestones">
            {milestones.into_iter().map(|m| view! {
                <li data-milestone=m.key.clone() class=if m.done.is_some() { "done" } else { "waiting" }>
                    <strong>{m.title.clone()}</strong>" "
                    {match m.done.clone() {
                        Some(done) => view! { <span class="badge ok">{format!("done {}", format_time(done.at))}</span> " " <span class="muted small">{done.detail}</span> }.into_any(),
                        None => view! { <span class="badge muted">"waiting"</span> " " <span class="muted small">{format!("for {}", m.waiting_for)}</span> }.into_any(),
                    }}
                </li>
            }).collect_view()}
        </ol>
    }
}

/// Editable periods (downtime windows or peak periods) of the document.
#[component]
fn Periods(
    doc: RwSignal<PlanDocument>,
    edit: Edit,
    peaks: bool,
    #[prop(into)] add_label: String,
    /// Where a new period starts: a week from today, at 22:00 in the plan's zone.
    new_start: NaiveDateTime,
) -> impl IntoView {
    let list: List<Period> = if peaks {
        |d| &mut d.peaks
    } else {
        |d| &mut d.windows
    };
    let set = move |i: usize, f: Box<dyn FnOnce(&mut Period)>| set_item(edit, list, i, f);
    let class = if peaks {
        "plan-item peak"
    } else {
        "plan-item window"
    };
    view! {
        {move || {
            let d = doc.get();
            let items = if peaks { d.peaks } else { d.windows };
            if items.is_empty() {
                return view! { <p class="muted">{if peaks { "No peak periods recorded." } else { "No downtime window recorded." }}</p> }.into_any();
            }
            items.into_iter().enumerate().map(|(i, p)| view! {
                <fieldset class=class>
                    <label>"Name " <input type="text" class="period-label" value=p.label.clone()
                        on:change=move |ev| { let v = event_target_value(&ev); set(i, Box::new(move |p| p.label = v)) } /></label>
                    <label>"From " <input type="datetime-local" class="period-start" value=local_value(p.starts)
                        on:change=move |ev| { if let Some(t) = parse_local(&event_target_value(&ev)) { set(i, Box::new(move |p| p.starts = t)) } } /></label>
                    <label>"To " <input type="datetime-local" class="period-end" value=local_value(p.ends)
                        on:change=move |ev| { if let Some(t) = parse_local(&event_target_value(&ev)) { set(i, Box::new(move |p| p.ends = t)) } } /></label>
                    <span class="muted small">{format!("{} min", p.minutes())}</span>
                    <button type="button" class="link" on:click=move |_| remove_item(edit, list, i)>"Remove"</button>
                </fieldset>
            }).collect_view().into_any()
        }}
        <div class="row-actions">
            <button type="button" class=if peaks { "add-peak" } else { "add-window" } on:click=move |_| edit.run(Box::new(move |d: &mut PlanDocument| {
                list(d).push(Period { label: String::new(), starts: new_start, ends: new_start + chrono::Duration::hours(4) })
            }))>{add_label.clone()}</button>
        </div>
    }
}

#[component]
fn Timeline(doc: RwSignal<PlanDocument>, edit: Edit, view: PlanView) -> impl IntoView {
    let suggestion = view.suggestion.clone();
    let new_start = (view.today + chrono::Duration::days(7))
        .and_hms_opt(22, 0, 0)
        .unwrap_or_default();
    let list: List<Milestone> = |d| &mut d.milestones;
    let set = move |i: usize, f: Box<dyn FnOnce(&mut Milestone)>| set_item(edit, list, i, f);
    view! {
        <section class="card" id="plan-timeline">
            <h2>"Timeline"</h2>
            <label>"Time zone (IANA, e.g. Europe/Berlin) "
                <input type="text" id="plan-zone" value=doc.get_untracked().time_zone
                    on:change=move |ev| { let v = event_target_value(&ev); edit.run(Box::new(move |d: &mut PlanDocument| d.time_zone = v)) } />
            </label>
            <p class="muted small">"Dates, windows and the heatmap below are read in this time zone (saved, then shown)."</p>
            <h3>"Milestones Ferry completes"</h3>
            <FerryMilestones milestones=view.milestones.clone() />
            <h3>"The team's milestones"</h3>
            {move || doc.get().milestones.into_iter().enumerate().map(|(i, m)| view! {
                <fieldset class="plan-item milestone">
                    <label class="wide">"Milestone " <input type="text" class="milestone-title" value=m.title.clone()
                        on:change=move |ev| { let v = event_target_value(&ev); set(i, Box::new(move |m| m.title = v)) } /></label>
                    <label>"Due " <input type="date" class="milestone-due" value=date_value(m.due)
                        on:change=move |ev| { let v = parse_date(&event_target_value(&ev)); set(i, Box::new(move |m| m.due = v)) } /></label>
                    <label>"Owner " <input type="text" class="milestone-owner" value=m.owner.clone()
                        on:change=move |ev| { let v = event_target_value(&ev); set(i, Box::new(move |m| m.owner = v)) } /></label>
                    <label><input type="checkbox" class="milestone-done" prop:checked=m.done
                        on:change=move |ev| { let on = event_target_checked(&ev); set(i, Box::new(move |m| m.done = on)) } />" Done"</label>
                    <button type="button" class="link" on:click=move |_| remove_item(edit, list, i)>"Remove"</button>
                </fieldset>
            }).collect_view()}
            <div class="row-actions">
                <button type="button" id="add-milestone" on:click=move |_| edit.run(Box::new(|d: &mut PlanDocument| d.milestones.push(Milestone {
                    title: String::new(), due: None, owner: String::new(), done: false,
                })))>"Add a milestone"</button>
            </div>
            <h3>"Downtime windows"</h3>
            <div class="suggestion" id="suggested-window">
                {match suggestion {
                    Some(s) => {
                        let (starts, ends) = (s.starts, s.ends);
                        view! {
                            <p><strong>"Suggested: "</strong>{format!("{} to {} ({} h)", local_words(s.starts), local_words(s.ends), s.hours)}</p>
                            <p class="muted small">{s.reason.clone()}</p>
                            <button type="button" id="use-suggestion" on:click=move |_| edit.run(Box::new(move |d: &mut PlanDocument| d.windows.push(Period {
                                label: "Suggested by Ferry".into(), starts, ends,
                            })))>"Use this window"</button>
                        }.into_any()
                    }
                    None => view! { <p class="muted">{format!("No window to suggest yet: {}.", view.suggestion_missing.clone().unwrap_or_default())}</p> }.into_any(),
                }}
            </div>
            {view.heatmap.clone().map(|grid| view! { <Heatmap title=format!("Last logins by weekday and hour ({})", doc.get_untracked().time_zone) grid /> })}
            <Periods doc edit peaks=false add_label="Add a window" new_start />
            <h3>"Peak usage periods"</h3>
            <Periods doc edit peaks=true add_label="Add a peak period" new_start />
        </section>
    }
}

#[component]
fn Versions(project: String, latest: Option<u32>) -> impl IntoView {
    let versions = {
        let project = project.clone();
        Resource::new(move || (), move |_| get_plan_versions(project.clone()))
    };
    let from = RwSignal::new(latest.map(|l| l.saturating_sub(1).max(1)).unwrap_or(1));
    let to = RwSignal::new(latest.unwrap_or(1));
    let compare = {
        let project = project.clone();
        Action::new(move |(a, b): &(u32, u32)| compare_plan(project.clone(), *a, *b))
    };
    view! {
        <section class="card" id="plan-versions">
            <h2>"Versions"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading versions…"</p> }>
                {move || {
                    let project = project.clone();
                    Suspend::new(async move {
                        match versions.await {
                            Err(error) => view! { <LoadError error /> }.into_any(),
                            Ok(page) if page.items.is_empty() => view! { <p class="muted">"No version saved yet."</p> }.into_any(),
                            Ok(page) => view! {
                                <div class="table-wrap">
                                    <table class="data" id="plan-version-list">
                                        <thead><tr><th class="num">"Version"</th><th>"Saved"</th><th>"Note"</th><th>"Approved"</th><th></th></tr></thead>
                                        <tbody>
                                            {page.items.into_iter().map(|v| view! {
                                                <tr>
                                                    <td class="num">{v.version}</td>
                                                    <td>{format_time(v.saved_at)}{v.saved_by_email.map(|e| format!(" by {e}"))}</td>
                                                    <td>{v.note}</td>
                                                    <td>{match v.approved_at {
                                                        Some(at) => format!("{} by {}", format_time(at), v.approved_by_email.unwrap_or_else(|| "a former member".into())),
                                                        None => "—".into(),
                                                    }}</td>
                                                    <td><a href=format!("/projects/{project}/plan/print?version={}", v.version)>"View"</a></td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any(),
                        }
                    })
                }}
            </Transition>
            <div class="row-actions">
                <label>"Compare version " <input type="number" min="1" id="compare-from" class="narrow" prop:value=move || from.get().to_string()
                    on:change=move |ev| if let Some(v) = number(&event_target_value(&ev)) { from.set(v) } /></label>
                <label>" with " <input type="number" min="1" id="compare-to" class="narrow" prop:value=move || to.get().to_string()
                    on:change=move |ev| if let Some(v) = number(&event_target_value(&ev)) { to.set(v) } /></label>
                <button type="button" id="compare-plan" on:click=move |_| { compare.dispatch((from.get_untracked(), to.get_untracked())); }>"Compare"</button>
            </div>
            {move || compare.value().get().map(|r| match r {
                Err(e) => view! { <div class="alert error" role="alert">{e.to_string()}</div> }.into_any(),
                Ok(changes) if changes.is_empty() => view! { <p class="muted" id="plan-changes">"The two versions say the same."</p> }.into_any(),
                Ok(changes) => view! {
                    <div class="table-wrap">
                        <table class="data" id="plan-changes">
                            <thead><tr><th>"Field"</th><th>"Before"</th><th>"After"</th></tr></thead>
                            <tbody>
                                {changes.into_iter().map(|c| view! {
                                    <tr><td><code>{c.path}</code></td><td class="wrap">{c.before.unwrap_or_else(|| "—".into())}</td><td class="wrap">{c.after.unwrap_or_else(|| "—".into())}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
            })}
        </section>
    }
}

// ---- the printable document ----------------------------------------------------------

#[component]
pub fn PlanPrintPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let version = Signal::derive(move || {
        query
            .read()
            .get("version")
            .and_then(|v| v.parse::<u32>().ok())
    });
    let data = Resource::new(
        move || (project.get(), version.get()),
        |(p, v)| async move {
            let view = get_plan(p.clone()).await?;
            let chosen = match v {
                Some(v) => Some(get_plan_version(p, v).await?),
                None => None,
            };
            Ok::<_, AppError>((view, chosen))
        },
    );
    view! {
        <Title text="Migration plan" />
        <Transition fallback=|| view! { <p class="muted">"Loading the plan…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok((view, chosen)) => view! { <PlanDocumentView view chosen project=project.get_untracked() /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn PlanDocumentView(
    view: PlanView,
    chosen: Option<domain::plan::PlanVersion>,
    project: String,
) -> impl IntoView {
    let (document, summary) = match chosen {
        Some(v) => (v.document, Some(v.summary)),
        None => (view.document.clone(), view.latest.clone()),
    };
    let heading = match &summary {
        Some(s) => format!(
            "Version {} — saved {}{}{}",
            s.version,
            format_time(s.saved_at),
            s.saved_by_email
                .as_ref()
                .map(|e| format!(" by {e}"))
                .unwrap_or_default(),
            match (&s.approved_at, &s.approved_by_email) {
                (Some(at), by) => format!(
                    "; approved {} by {}",
                    format_time(*at),
                    by.as_deref().unwrap_or("a former member")
                ),
                (None, _) => "; not approved".into(),
            }
        ),
        None => "Not saved yet: the guide's checklist".into(),
    };
    let json = summary
        .as_ref()
        .map(|s| format!("/api/v1/projects/{project}/plan/versions/{}", s.version));
    view! {
        <article class="plan-document" id="plan-document">
            <div class="row-actions no-print">
                <a href=format!("/projects/{project}/plan")>"Back to the plan"</a>
                <button type="button" id="print" onclick="window.print()">"Print or save as PDF"</button>
                {json.map(|href| view! { <a href=href rel="external">"JSON"</a> })}
            </div>
            <h2>"Migration plan"</h2>
            <p class="muted" id="plan-version">{heading}</p>
            <p class="small">{format!("Dates and times in {}. Ferry's own findings below are as of now.", document.time_zone)}</p>
            <section class="card">
                <h3>"Company and legal requirements"</h3>
                <div class="table-wrap"><table class="data">
                    <thead><tr><th>"Requirement"</th><th>"Status"</th><th>"Owner"</th><th>"Date"</th><th>"Note"</th></tr></thead>
                    <tbody>{document.requirements.iter().map(|r| view! {
                        <tr><td>{r.title.clone()}</td><td>{r.status.label()}</td><td>{r.owner.clone()}</td><td>{date_value(r.date)}</td><td class="wrap">{r.note.clone()}</td></tr>
                    }).collect_view()}</tbody>
                </table></div>
            </section>
            <section class="card">
                <h3>"What users will experience"</h3>
                {if document.experiences.is_empty() {
                    view! { <p class="muted">"Not described."</p> }.into_any()
                } else {
                    view! { <div class="table-wrap"><table class="data">
                        <thead><tr><th>"User type"</th><th>"They see"</th><th>"Message"</th><th>"When"</th></tr></thead>
                        <tbody>{document.experiences.iter().map(|e| view! {
                            <tr><td>{e.user_type.clone()}</td><td>{e.sees.label()}</td><td class="wrap">{e.message.clone()}</td><td>{e.when.clone()}</td></tr>
                        }).collect_view()}</tbody>
                    </table></div> }.into_any()
                }}
            </section>
            <section class="card">
                <h3>"Acceptable impact"</h3>
                <ul>
                    <li>{format!("Users needing a reset: {}", document.acceptable.max_reset_percent.map(|v| format!("at most {v} %")).unwrap_or_else(|| "no limit stated".into()))}</li>
                    <li>{format!("Records failing their mapping: {}", document.acceptable.max_failed_records.map(|v| format!("at most {v}")).unwrap_or_else(|| "no limit stated".into()))}</li>
                    <li>{format!("Downtime: {}", document.acceptable.max_downtime_minutes.map(|v| format!("at most {v} minutes")).unwrap_or_else(|| "no limit stated".into()))}</li>
                </ul>
            </section>
            <section class="card">
                <h3>"Risks"</h3>
                {if document.risks.is_empty() {
                    view! { <p class="muted">"None recorded."</p> }.into_any()
                } else {
                    view! { <div class="table-wrap"><table class="data" id="document-risks">
                        <thead><tr><th>"Risk"</th><th>"Kind"</th><th>"Likelihood"</th><th>"Impact"</th><th>"Mitigation"</th></tr></thead>
                        <tbody>{document.risks.iter().map(|r| view! {
                            <tr><td>{r.title.clone()}</td><td>{r.kind.label()}</td><td>{r.likelihood.label()}</td><td>{r.impact.label()}</td><td class="wrap">{r.mitigation.clone()}</td></tr>
                        }).collect_view()}</tbody>
                    </table></div> }.into_any()
                }}
                {(!view.proposals.iter().all(|p| p.adopted)).then(|| view! {
                    <p class="small">{format!("Ferry's data also shows: {}.", view.proposals.iter().filter(|p| !p.adopted).map(|p| p.title.clone()).collect::<Vec<_>>().join("; "))}</p>
                })}
            </section>
            <section class="card">
                <h3>"Timeline"</h3>
                <FerryMilestones milestones=view.milestones.clone() />
                {(!document.milestones.is_empty()).then(|| view! {
                    <div class="table-wrap"><table class="data">
                        <thead><tr><th>"Milestone"</th><th>"Due"</th><th>"Owner"</th><th>"Done"</th></tr></thead>
                        <tbody>{document.milestones.iter().map(|m| view! {
                            <tr><td>{m.title.clone()}</td><td>{date_value(m.due)}</td><td>{m.owner.clone()}</td><td>{if m.done { "yes" } else { "no" }}</td></tr>
                        }).collect_view()}</tbody>
                    </table></div>
                })}
                <p><strong>"Downtime windows: "</strong>{if document.windows.is_empty() { "none".to_string() } else {
                    document.windows.iter().map(|w| format!("{} ({} to {})", w.label, local_words(w.starts), local_words(w.ends))).collect::<Vec<_>>().join("; ")
                }}</p>
                <p><strong>"Peak periods: "</strong>{if document.peaks.is_empty() { "none".to_string() } else {
                    document.peaks.iter().map(|w| format!("{} ({} to {})", w.label, local_words(w.starts), local_words(w.ends))).collect::<Vec<_>>().join("; ")
                }}</p>
            </section>
        </article>
    }
}
