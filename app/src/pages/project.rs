//! One project: its header and stage navigation, the overview with editing, archiving
//! and support staff, and the project's activity from the audit log.

use crate::{
    api::{
        audit::load_audit,
        projects::{
            AssignSupport, SetProjectArchived, UnassignSupport, UpdateProject, get_journey,
            get_project, project_support,
        },
    },
    components::{
        format_time,
        forms::{FieldError, FormError, LoadError, action_error, succeeded},
        layout::current_account,
    },
    error::AppError,
    pages::{audit::AuditTable, projects::SourceSelect},
};
use domain::{
    journey::{Journey, StepState},
    projects::{Project, Stage},
    roles::{Permission, Role},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::{A, Outlet},
    hooks::{use_params_map, use_query_map},
};

#[derive(Clone, Copy)]
struct CurrentProject {
    id: Signal<String>,
    project: Resource<Result<Project, AppError>>,
}

fn stage_permission(stage: Stage) -> Option<Permission> {
    match stage {
        Stage::Project | Stage::Uploads | Stage::Assessment | Stage::Runs | Stage::Review => None,
        Stage::Target
        | Stage::Goals
        | Stage::Mapping
        | Stage::Plan
        | Stage::Passwords
        | Stage::Report => Some(Permission::ManageProjects),
        Stage::Activity => Some(Permission::ViewAudit),
    }
}

#[component]
pub fn ProjectLayout() -> impl IntoView {
    let params = use_params_map();
    let id = Signal::derive(move || params.read().get("id").unwrap_or_default());
    // Actions on the overview bump these versions so the header refreshes too.
    let updated = RwSignal::new(0u32);
    provide_context(updated);
    let project = Resource::new(move || (id.get(), updated.get()), |(id, _)| get_project(id));
    provide_context(CurrentProject { id, project });
    let me = current_account();
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading project…"</p> }>
            {move || Suspend::new(async move {
                let role = me.await.map(|a| a.role).unwrap_or(Role::Support);
                match project.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(p) => {
                        let base = format!("/projects/{}", p.id);
                        view! {
                            <Title text=p.name.clone() />
                            <div class="page-head">
                                <div>
                                    <p class="crumbs"><a href="/">"Projects"</a>" /"</p>
                                    <h1>{p.name.clone()}</h1>
                                    <p class="muted">
                                        {p.source_kind.label()}
                                        {p.archived.then(|| view! { " · " <span class="badge muted">"Archived"</span> })}
                                        {p.purged_at.is_some().then(|| view! { " · " <span class="badge muted">"Purged"</span> })}
                                    </p>
                                </div>
                            </div>
                            {p.purged_at.map(|at| view! {
                                <p class="alert info" id="purged-notice">
                                    {format!(
                                        "This project's imported data was purged on {}: its records, uploaded files and secrets were destroyed with the project's key. The project is read only; the audit log and what the purge kept (the crosswalk, the final report) stay readable.",
                                        crate::components::format_time(at)
                                    )}
                                </p>
                            })}
                            <nav class="stages" aria-label="Migration stages">
                                {Stage::AVAILABLE
                                    .into_iter()
                                    .filter(|s| stage_permission(*s).is_none_or(|p| role.allows(p)))
                                    .map(|stage| {
                                        let href = format!("{base}{}", stage.path_segment());
                                        view! { <A href=href exact=true>{stage.label()}</A> }
                                    })
                                    .collect_view()}
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Transition>
        <Outlet />
    }
}

#[component]
pub fn ProjectOverview() -> impl IntoView {
    let Some(current) = use_context::<CurrentProject>() else {
        return ().into_any();
    };
    let me = current_account();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let can_manage = me.await.is_ok_and(|a| a.role.allows(Permission::ManageProjects));
                match current.project.await {
                    Err(_) => ().into_any(),
                    Ok(project) => view! {
                        <JourneyCard project_id=project.id.to_string() />
                        <ReviewNotice project_id=project.id.to_string() />
                        <div class="grid-2">
                            <section class="card">
                                <h2>"About"</h2>
                                <dl class="facts">
                                    <dt>"Source"</dt><dd>{project.source_kind.label()}</dd>
                                    <dt>"Created"</dt><dd>{format_time(project.created_at)}</dd>
                                    <dt>"Last change"</dt><dd>{format_time(project.updated_at)}</dd>
                                    <dt>"Description"</dt>
                                    <dd class="prewrap">{if project.description.is_empty() { "—".to_string() } else { project.description.clone() }}</dd>
                                </dl>
                                {can_manage.then(|| view! { <ArchiveControl project=project.clone() /> })}
                            </section>
                            <SupportStaffCard project_id=project.id.to_string() can_manage />
                        </div>
                        {(can_manage && !project.archived && project.purged_at.is_none()).then(|| view! { <EditProject project /> })}
                    }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// Where the project's users stand once a run has reached them: how many wait for
/// review and since when, and that every user is accounted for.
#[component]
fn ReviewNotice(project_id: String) -> impl IntoView {
    let id = project_id.clone();
    let summary = Resource::new(move || id.clone(), crate::api::review::queue_summary);
    view! {
        <Transition fallback=|| ()>
            {move || {
                let project = project_id.clone();
                Suspend::new(async move {
                    match summary.await {
                        Ok(s) if s.users > 0 && s.not_attempted < s.users => {
                            view! { <crate::pages::review::StandingCard summary=s project /> }.into_any()
                        }
                        _ => ().into_any(),
                    }
                })
            }}
        </Transition>
    }
    .into_any()
}

/// The stage checklist: each step of the migration with its state and what it holds,
/// and a link to the next step.
#[component]
fn JourneyCard(project_id: String) -> impl IntoView {
    let id = project_id.clone();
    let journey = Resource::new(move || id.clone(), get_journey);
    view! {
        <section class="card" id="journey">
            <h2>"Where this migration stands"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let project_id = project_id.clone();
                    Suspend::new(async move {
                        match journey.await {
                            Err(error) => view! { <LoadError error /> }.into_any(),
                            Ok(journey) => view! { <JourneySteps journey project_id /> }.into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn JourneySteps(journey: Journey, project_id: String) -> impl IntoView {
    let base = format!("/projects/{project_id}");
    let next = journey.next.map(|step| {
        let href = format!("{base}{}", step.stage().path_segment());
        view! {
            <p class="journey-next">"Next: "<a class="button primary" href=href>{step.label()}</a></p>
        }
    });
    let finished = journey.next.is_none().then(|| {
        view! { <p class="journey-next">"The real run has finished and every user is accounted for: migrated, or skipped on purpose."</p> }
    });
    view! {
        <ol class="journey">
            {journey.steps.into_iter().map(|s| {
                let class = match s.state {
                    StepState::Done => "ok",
                    StepState::Working => "info",
                    StepState::NeedsAttention => "warn",
                    StepState::NotStarted => "muted",
                };
                let href = format!("{base}{}", s.step.stage().path_segment());
                let current = (journey.next == Some(s.step)).then_some("step");
                view! {
                    <li data-step=s.step.key() aria-current=current>
                        <span class=format!("badge {class}")>{s.state.label()}</span>
                        <a href=href>{s.step.label()}</a>
                        <span class="muted small">{s.summary}</span>
                    </li>
                }
            }).collect_view()}
        </ol>
        {next}
        {finished}
    }
}

pub(crate) fn bump_on_success<T: Clone + Send + Sync + 'static>(
    value: Signal<Option<Result<T, AppError>>>,
) {
    let updated = use_context::<RwSignal<u32>>();
    Effect::new(move |_| {
        if matches!(value.get(), Some(Ok(_)))
            && let Some(updated) = updated
        {
            updated.update(|v| *v += 1);
        }
    });
}

#[component]
fn ArchiveControl(project: Project) -> impl IntoView {
    let archive = ServerAction::<SetProjectArchived>::new();
    bump_on_success(Signal::derive(move || archive.value().get()));
    let error = action_error(archive);
    let (label, next) = if project.archived {
        ("Restore project", "false")
    } else {
        ("Archive project", "true")
    };
    view! {
        <ActionForm action=archive attr:class="inline-form">
            <input type="hidden" name="id" value=project.id.to_string() />
            <input type="hidden" name="archived" value=next />
            <button type="submit" class="secondary">{label}</button>
        </ActionForm>
        <p class="hint">
            {if project.archived {
                "Archived projects are read-only and hidden from the list."
            } else {
                "Archiving hides the project and makes it read-only; it can be restored."
            }}
        </p>
        <FormError error />
    }
}

#[component]
fn EditProject(project: Project) -> impl IntoView {
    let update = ServerAction::<UpdateProject>::new();
    bump_on_success(Signal::derive(move || update.value().get()));
    let error = action_error(update);
    let saved = move || matches!(update.value().get(), Some(Ok(_)));
    view! {
        <section class="card">
            <h2>"Edit project"</h2>
            <ActionForm action=update>
                <input type="hidden" name="id" value=project.id.to_string() />
                <label for="name">"Name"</label>
                <input id="name" name="name" type="text" maxlength="100" required value=project.name.clone() />
                <FieldError error field="name" />
                <label for="source_kind">"Source identity provider"</label>
                <SourceSelect selected=project.source_kind />
                <FieldError error field="source_kind" />
                <label for="description">"Description"</label>
                <textarea id="description" name="description" rows="4" maxlength="2000" prop:value=project.description.clone()>{project.description.clone()}</textarea>
                <FieldError error field="description" />
                <FormError error />
                {move || saved().then(|| view! { <div class="alert success" role="status">"Saved."</div> })}
                <button type="submit" class="primary" disabled=move || update.pending().get()>"Save changes"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn SupportStaffCard(project_id: String, can_manage: bool) -> impl IntoView {
    let assign = ServerAction::<AssignSupport>::new();
    let unassign = ServerAction::<UnassignSupport>::new();
    let (assigned, unassigned) = (succeeded(assign), succeeded(unassign));
    let id = project_id.clone();
    let staff = Resource::new(
        move || (id.clone(), assigned.get(), unassigned.get()),
        |(id, _, _)| project_support(id),
    );
    let assign_error = action_error(assign);
    let unassign_error = action_error(unassign);
    view! {
        <section class="card">
            <h2>"Support staff"</h2>
            <p class="muted">"Support members see only the projects they are assigned to."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let project_id = project_id.clone();
                    Suspend::new(async move {
                        match staff.await {
                            Err(error) => view! { <LoadError error /> }.into_any(),
                            Ok(staff) => view! {
                                {staff.assigned.is_empty().then(|| view! { <p>"Nobody is assigned."</p> })}
                                <ul class="plain-list" id="support-staff">
                                    {staff.assigned.into_iter().map(|member| {
                                        let project_id = project_id.clone();
                                        view! {
                                            <li>
                                                <span>{member.display_name}" "<span class="muted">{member.email}</span></span>
                                                {can_manage.then(|| view! {
                                                    <ActionForm action=unassign attr:class="inline-form">
                                                        <input type="hidden" name="id" value=project_id />
                                                        <input type="hidden" name="account" value=member.id.to_string() />
                                                        <button type="submit" class="link-button">"Remove"</button>
                                                    </ActionForm>
                                                })}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                                {(can_manage && !staff.candidates.is_empty()).then(|| view! {
                                    <ActionForm action=assign attr:class="row-form">
                                        <input type="hidden" name="id" value=project_id.clone() />
                                        <label for="assign-account" class="sr-only">"Support member"</label>
                                        <select id="assign-account" name="account">
                                            {staff.candidates.into_iter().map(|m| view! {
                                                <option value=m.id.to_string()>{format!("{} ({})", m.display_name, m.email)}</option>
                                            }).collect_view()}
                                        </select>
                                        <button type="submit" class="secondary">"Assign"</button>
                                    </ActionForm>
                                })}
                            }.into_any(),
                        }
                    })
                }}
            </Transition>
            <FormError error=assign_error />
            <FormError error=unassign_error />
        </section>
    }
}

#[component]
pub fn ProjectActivity() -> impl IntoView {
    let Some(current) = use_context::<CurrentProject>() else {
        return ().into_any();
    };
    let query = use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<i64>().ok())
    };
    let entries = Resource::new(
        move || (before(), current.id.get()),
        |(before, id)| load_audit(before, Some(id)),
    );
    view! {
        <section class="card">
            <h2>"Activity"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading activity…"</p> }>
                {move || Suspend::new(async move {
                    let base = format!("/projects/{}/activity", current.id.get_untracked());
                    match entries.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(page) => view! { <AuditTable page base show_project=false /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}
