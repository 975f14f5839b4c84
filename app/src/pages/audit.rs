//! The audit log: every state-changing action, newest first, paged on the server.

use crate::{
    api::audit::load_audit,
    components::{format_time, forms::LoadError},
};
use domain::audit::{AuditEntry, AuditPage, ObjectKind};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let query = use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<i64>().ok())
    };
    let entries = Resource::new(before, |before| load_audit(before, None));
    view! {
        <Title text="Audit log" />
        <div class="page-head">
            <h1>"Audit log"</h1>
        </div>
        <p class="muted">"Every change made in Ferry: who, what, which object, when and from where."</p>
        <Transition fallback=|| view! { <p class="muted">"Loading the audit log…"</p> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(page) => view! { <AuditTable page base="/audit".to_string() show_project=true /> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn object_cell(entry: &AuditEntry) -> AnyView {
    match entry.object_kind {
        ObjectKind::Project => view! {
            <a href=format!("/projects/{}", entry.object_id)>"project"</a>
        }
        .into_any(),
        kind => view! { <span>{kind.as_str().replace('_', " ")}</span> }.into_any(),
    }
}

/// A page of audit entries with a link to older ones. `base` is the page's own path.
#[component]
pub fn AuditTable(page: AuditPage, base: String, show_project: bool) -> impl IntoView {
    if page.entries.is_empty() {
        return view! { <p class="muted">"Nothing recorded yet."</p> }.into_any();
    }
    let older = page.next_before.map(|seq| format!("{base}?before={seq}"));
    view! {
        <div class="table-wrap">
            <table class="data" id="audit">
                <thead>
                    <tr>
                        <th scope="col">"When"</th>
                        <th scope="col">"Who"</th>
                        <th scope="col">"Action"</th>
                        <th scope="col">"Object"</th>
                        <th scope="col">"Detail"</th>
                        {show_project.then(|| view! { <th scope="col">"Project"</th> })}
                        <th scope="col">"From"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.entries.into_iter().map(|entry| {
                        let object = object_cell(&entry);
                        let who = entry.actor_email.clone().unwrap_or_else(|| "—".into());
                        let via = if entry.channel.starts_with("api") { "API" } else { "web" };
                        let project = entry.project_id.map(|p| p.to_string());
                        view! {
                            <tr>
                                <td class="nowrap">{format_time(entry.at)}</td>
                                <td>{who}</td>
                                <td>{entry.action.label()}</td>
                                <td>{object}</td>
                                <td>{entry.detail.clone()}</td>
                                {show_project.then(|| view! {
                                    <td>{project.map(|p| view! { <a href=format!("/projects/{p}")>"open"</a> })}</td>
                                })}
                                <td class="muted nowrap">{format!("{via} · {}", entry.address.clone().unwrap_or_default())}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <nav class="pager" aria-label="Pages">
            <a href=base.clone()>"Newest"</a>
            {older.map(|href| view! { <a href=href rel="next">"Older entries →"</a> })}
        </nav>
    }
    .into_any()
}
