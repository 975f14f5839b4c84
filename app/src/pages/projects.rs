//! The list of projects and the form for a new one.

use crate::{
    api::projects::{CreateProject, list_projects, project_journeys},
    components::{
        format_time,
        forms::{FieldError, FormError, LoadError, action_error},
        layout::current_account,
        pager::Pager,
    },
};
use domain::{
    journey::{Journey, Step},
    pagination::Page,
    projects::{Project, SourceKind},
    roles::Permission,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn projects_href(offset: u64, archived: &str) -> String {
    format!("/?offset={offset}{archived}")
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let query = use_query_map();
    let offset = move || {
        query
            .read()
            .get("offset")
            .and_then(|o| o.parse::<u64>().ok())
    };
    let archived = move || query.read().get("archived").is_some_and(|a| a == "1");
    let projects = Resource::new(
        move || (offset(), archived()),
        |(offset, archived)| list_projects(offset, archived),
    );
    let me = current_account();
    view! {
        <Title text="Projects" />
        <div class="page-head">
            <h1>"Projects"</h1>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    me.await
                        .ok()
                        .filter(|a| a.role.allows(Permission::ManageProjects))
                        .map(|_| view! { <a class="button primary" href="/projects/new">"New project"</a> })
                })}
            </Transition>
        </div>
        <p class="toolbar">
            <a href=move || if archived() { "/".to_string() } else { "/?archived=1".to_string() }>
                {move || if archived() { "Hide archived projects" } else { "Show archived projects" }}
            </a>
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading projects…"</p> }>
            {move || Suspend::new(async move {
                match projects.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(page) if page.total == 0 => view! {
                        <div class="empty card">
                            <h2>"No projects yet"</h2>
                            <p>"A project holds one migration: its source exports, the target, mappings and runs."</p>
                        </div>
                    }.into_any(),
                    Ok(page) => view! { <ProjectTable page archived=archived() /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ProjectTable(page: Page<Project>, archived: bool) -> impl IntoView {
    let extra = if archived { "&archived=1" } else { "" };
    let (offset, shown, total, limit) = (page.offset, page.items.len(), page.total, page.limit);
    let ids = page
        .items
        .iter()
        .map(|p| p.id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    // Fetched after the list: the list shows at once, the progress as it comes.
    let journeys = Resource::new(move || ids.clone(), project_journeys);
    let progress = move |id: String| {
        view! {
            <Suspense fallback=|| view! { <span class="muted">"…"</span> }>
                {let id = id.clone(); move || {
                    let id = id.clone();
                    Suspend::new(async move {
                        let journey = journeys.await.ok().and_then(|all| {
                            all.into_iter().find(|(j, _)| *j == id).map(|(_, j)| j)
                        });
                        journey.map(|j| view! { <JourneyProgress journey=j /> })
                    })
                }}
            </Suspense>
        }
    };
    view! {
        <div class="table-wrap">
            <table class="data" id="projects">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Source"</th>
                        <th scope="col">"Progress"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Created"</th>
                    </tr>
                </thead>
                <tbody>
                    {page
                        .items
                        .into_iter()
                        .map(|p| {
                            view! {
                                <tr>
                                    <td><a href=format!("/projects/{}", p.id)>{p.name}</a></td>
                                    <td>{p.source_kind.label()}</td>
                                    <td class="journey-cell">{progress(p.id.to_string())}</td>
                                    <td>
                                        {if p.archived {
                                            view! { <span class="badge muted">"Archived"</span> }.into_any()
                                        } else {
                                            view! { <span class="badge ok">"Active"</span> }.into_any()
                                        }}
                                    </td>
                                    <td>{format_time(p.created_at)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
        <Pager offset shown total limit href_for=projects_href extra=extra />
    }
}

/// How far a project has got, in a line: steps done of all, and the next one.
#[component]
fn JourneyProgress(journey: Journey) -> impl IntoView {
    let done = journey.done();
    let all = Step::ALL.len();
    let next = match journey.next {
        Some(step) => format!("next: {}", step.label().to_lowercase()),
        None => "migrated".to_string(),
    };
    view! {
        <span class="journey-progress">
            <meter min="0" max=all.to_string() value=done.to_string()
                aria-label=format!("{done} of {all} steps done")></meter>
            " "<span class="small">{format!("{done} of {all} · {next}")}</span>
        </span>
    }
}

/// The `<select>` of source identity providers.
#[component]
pub fn SourceSelect(#[prop(optional)] selected: Option<SourceKind>) -> impl IntoView {
    view! {
        <select id="source_kind" name="source_kind" required>
            {SourceKind::ALL
                .into_iter()
                .map(|kind| {
                    view! {
                        <option value=kind.as_str() selected=Some(kind) == selected>
                            {kind.label()}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

#[component]
pub fn NewProjectPage() -> impl IntoView {
    let create = ServerAction::<CreateProject>::new();
    let error = action_error(create);
    view! {
        <Title text="New project" />
        <h1>"New project"</h1>
        <section class="card narrow">
            <ActionForm action=create>
                <label for="name">"Name"</label>
                <input id="name" name="name" type="text" maxlength="100" required aria-describedby="name-error" />
                <FieldError error field="name" />
                <label for="source_kind">"Source identity provider"</label>
                <SourceSelect />
                <FieldError error field="source_kind" />
                <label for="description">"Description"</label>
                <textarea id="description" name="description" rows="4" maxlength="2000"></textarea>
                <p class="hint">"What moves, for whom, and why. Optional."</p>
                <FieldError error field="description" />
                <FormError error />
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || create.pending().get()>"Create project"</button>
                    <a href="/">"Cancel"</a>
                </div>
            </ActionForm>
        </section>
    }
}
