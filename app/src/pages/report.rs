//! The Report stage: the final report of the migration — every user's standing, the
//! production runs as they happened with their crosswalks, why records were skipped or
//! failed, password coverage, the latest reconciliation, Ferry's milestones and the
//! plan's approvals — printable (or saved as PDF) and as JSON.

use crate::{
    api::plan::{PurgeProject, SaveRetention, get_report, get_retention},
    components::{
        charts::{Bar, BarChart},
        counted, format_optional_time, format_time,
        forms::{FieldError, FormError, LoadError, action_error, succeeded},
        grouped,
        layout::current_account,
    },
    pages::project::bump_on_success,
};
use domain::{
    retention::RetentionView,
    review::class_label,
    roles::Permission,
    runs::RunKind,
    service::{FinalReport, ReconcileResult},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn ReportPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let purge = ServerAction::<PurgeProject>::new();
    let purged = succeeded(purge);
    let report = Resource::new(
        move || (project.get(), purged.get()),
        |(p, _)| get_report(p),
    );
    view! {
        <Title text="Report" />
        <RetentionCard project purge />
        <Transition fallback=|| view! { <p class="muted">"Loading the report…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(report) => view! { <ReportView report project=project.get_untracked() /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ReportView(report: FinalReport, project: String) -> impl IntoView {
    let s = report.standing.clone();
    let bar = |label: &str, n: u64| Bar {
        label: label.into(),
        value: n as f64,
        text: grouped(n),
    };
    let bars = vec![
        bar("In the target", s.migrated),
        bar("Waiting in review", s.waiting),
        bar("Resolved in review", s.resolved),
        bar("Skipped by decision", s.skipped),
        bar("Not attempted", s.not_attempted),
    ];
    let json = format!("/api/v1/projects/{project}/report");
    view! {
        <article class="plan-document" id="final-report">
            <div class="row-actions no-print">
                <button type="button" id="print" onclick="window.print()">"Print or save as PDF"</button>
                <a href=json rel="external">"JSON"</a>
            </div>
            <h2>{format!("Final report: {}", report.project)}</h2>
            <p class="muted">{format!("{} export · generated {}", report.source, format_time(report.generated_at))}</p>
            {report.purged_at.map(|at| view! {
                <p class="alert info" id="report-kept">{format!("This is the report as it stood when the imported data was purged on {}.", format_time(at))}</p>
            })}
            <section class="card" id="report-standing">
                <h3>"Where every user stands"</h3>
                <p>{format!(
                    "Of {} users: {} in the target, {} waiting in review, {} resolved there, {} skipped by decision, {} not attempted.",
                    grouped(s.users), grouped(s.migrated), grouped(s.waiting), grouped(s.resolved), grouped(s.skipped), grouped(s.not_attempted)
                )}</p>
                <BarChart title="Users by standing" bars id="standing-chart" />
            </section>
            <section class="card" id="report-classes">
                <h3>"Skipped or failed in the latest real run, and why"</h3>
                {if report.classes.is_empty() {
                    view! { <p class="muted">"Nothing skipped or failed (or no real run yet)."</p> }.into_any()
                } else {
                    view! { <div class="table-wrap"><table class="data">
                        <thead><tr><th>"Why"</th><th>"Outcome"</th><th class="num">"Records"</th></tr></thead>
                        <tbody>{report.classes.iter().map(|c| view! {
                            <tr><td>{class_label(&c.error_class)}</td><td>{c.state.as_str()}</td><td class="num">{grouped(c.count)}</td></tr>
                        }).collect_view()}</tbody>
                    </table></div> }.into_any()
                }}
            </section>
            <section class="card" id="report-passwords">
                <h3>"Passwords"</h3>
                {if report.passwords.is_empty() {
                    view! { <p class="muted">"No user in the target moves a password yet."</p> }.into_any()
                } else {
                    view! { <div class="table-wrap"><table class="data">
                        <thead><tr><th>"User type"</th><th class="num">"Created"</th><th class="num">"Verified at login"</th><th class="num">"Reset"</th><th class="num">"Not moved"</th></tr></thead>
                        <tbody>{report.passwords.iter().map(|t| view! {
                            <tr><td>{t.user_type.clone().unwrap_or_else(|| "—".into())}</td><td class="num">{grouped(t.created)}</td><td class="num">{grouped(t.verified)}</td><td class="num">{grouped(t.reset)}</td><td class="num">{grouped(t.waiting)}</td></tr>
                        }).collect_view()}</tbody>
                    </table></div> }.into_any()
                }}
            </section>
            <section class="card" id="report-reconciliation">
                <h3>"Reconciliation"</h3>
                {match report.reconciliation.clone() {
                    None => view! { <p class="muted">"Not reconciled yet: start one on the Runs page."</p> }.into_any(),
                    Some(r) => view! { <Reconciled result=r project=project.clone() /> }.into_any(),
                }}
            </section>
            <section class="card" id="report-runs">
                <h3>"Timeline as it happened"</h3>
                <div class="table-wrap"><table class="data compact">
                    <thead><tr><th>"Run"</th><th>"Started"</th><th>"Finished"</th><th>"State"</th><th class="num">"Records"</th><th class="num">"Created"</th><th class="num">"Failed"</th><th>"Crosswalk"</th></tr></thead>
                    <tbody>{report.runs.iter().map(|r| {
                        let crosswalk = (r.counts.created > 0 && r.kind != RunKind::Rollback)
                            .then(|| format!("/api/v1/projects/{project}/runs/{}/crosswalk.csv", r.id));
                        view! {
                            <tr>
                                <td><a href=format!("/projects/{project}/runs/{}", r.id)>{r.kind.label()}</a></td>
                                <td>{format_optional_time(r.started_at)}</td>
                                <td>{format_optional_time(r.finished_at)}</td>
                                <td>{r.state.as_str()}</td>
                                <td class="num">{grouped(r.total)}</td>
                                <td class="num">{grouped(r.counts.created)}</td>
                                <td class="num">{grouped(r.counts.failed)}</td>
                                <td>{crosswalk.map(|href| view! { <a href=href rel="external">"CSV"</a> })}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
                <ol class="milestones">
                    {report.milestones.iter().map(|m| view! {
                        <li class=if m.done.is_some() { "done" } else { "waiting" }>
                            <strong>{m.title.clone()}</strong>" "
                            {match &m.done {
                                Some(d) => format!("— {} ({})", format_time(d.at), d.detail),
                                None => format!("— waiting for {}", m.waiting_for),
                            }}
                        </li>
                    }).collect_view()}
                </ol>
            </section>
            <section class="card" id="report-approvals">
                <h3>"Who approved what"</h3>
                {if report.approvals.is_empty() {
                    view! { <p class="muted">"No version of the plan was approved."</p> }.into_any()
                } else {
                    view! { <ul>{report.approvals.iter().map(|v| view! {
                        <li>{format!("Plan version {} — approved {} by {}", v.version, format_optional_time(v.approved_at), v.approved_by_email.clone().unwrap_or_else(|| "a former member".into()))}</li>
                    }).collect_view()}</ul> }.into_any()
                }}
            </section>
        </article>
    }
}

#[component]
fn Reconciled(result: ReconcileResult, project: String) -> impl IntoView {
    let run = result.run.clone();
    let extra = result
        .extra_users
        .as_ref()
        .map(|e| e.users.len() as u64 + e.more);
    view! {
        <p>{format!(
            "{} of {} users read back {}: {} as sent, {} found different or gone{}.",
            grouped(run.counts.settled()),
            grouped(run.total),
            run.finished_at.map(|at| format!("on {}", format_time(at))).unwrap_or_else(|| "(still running)".into()),
            grouped(run.counts.skipped),
            grouped(run.counts.failed),
            extra.map(|n| format!("; {} users in the target no run recorded", grouped(n))).unwrap_or_default(),
        )}" "<a href=format!("/projects/{project}/runs/{}", run.id)>"Open the reconciliation"</a></p>
        <div class="table-wrap"><table class="data compact">
            <thead><tr><th>"Class"</th><th class="num">"Users"</th></tr></thead>
            <tbody>{result.classes.iter().map(|c| view! {
                <tr><td>{class_label(&c.error_class)}</td><td class="num">{grouped(c.count)}</td></tr>
            }).collect_view()}</tbody>
        </table></div>
        {result.extra_users.clone().map(|e| view! { <crate::pages::runs::GroupCheckLine check=e.groups /> })}
    }
}

/// How long the imported data is kept, what a purge keeps, and the purge itself
/// (owners; administrators see it).
#[component]
fn RetentionCard(project: Signal<String>, purge: ServerAction<PurgeProject>) -> impl IntoView {
    let save = ServerAction::<SaveRetention>::new();
    let (saved, purged) = (succeeded(save), succeeded(purge));
    let retention = Resource::new(
        move || (project.get(), saved.get(), purged.get()),
        |(p, _, _)| get_retention(p),
    );
    bump_on_success(Signal::derive(move || purge.value().get()));
    let me = current_account();
    view! {
        <section class="card no-print" id="retention">
            <h2>"Retention and purge"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let owner = me.await.is_ok_and(|a| a.role.allows(Permission::PurgeData));
                    match retention.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(view) => view! { <RetentionBody view owner project=project.get_untracked() save purge /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RetentionBody(
    view: RetentionView,
    owner: bool,
    project: String,
    save: ServerAction<SaveRetention>,
    purge: ServerAction<PurgeProject>,
) -> impl IntoView {
    let (save_error, purge_error) = (action_error(save), action_error(purge));
    let outcome = move || purge.value().get().and_then(|r| r.ok());
    let h = &view.holding;
    let holding = format!(
        "The project holds {} from {}; the crosswalk has {}.",
        counted(h.records, "record", "records"),
        counted(h.uploads, "upload", "uploads"),
        counted(h.crosswalk_rows, "row", "rows")
    );
    let key = if view.own_key {
        "Its records, files and secrets are sealed under a key of the project's own: a purge destroys the key, so no copy anywhere (a backup, the database's free pages) can be opened again."
    } else {
        "Its records are sealed under the server's key (the project was made before keys were per project): a purge deletes them."
    };
    let schedule = match (
        view.retention.days,
        view.real_run_finished_at,
        view.purge_due_at,
    ) {
        (None, _, _) => {
            "No retention period: the imported data is kept until an owner purges it.".to_string()
        }
        (Some(days), None, _) => format!(
            "Kept {days} days after the real run finishes; no real run has finished yet, so no purge is scheduled."
        ),
        (Some(days), Some(finished), Some(due)) => format!(
            "Kept {days} days after the real run finished ({}): Ferry purges the imported data on {}.",
            format_time(finished),
            format_time(due)
        ),
        (Some(days), Some(_), None) => format!("Kept {days} days after the real run."),
    };
    let days = view
        .retention
        .days
        .map(|d| d.to_string())
        .unwrap_or_default();
    let name_hint = "Type the project's name to confirm";
    let (for_save, for_purge) = (project.clone(), project);
    match view.purged_at {
        Some(at) => view! {
            <p id="retention-purged">{format!(
                "Purged on {}. {}",
                format_time(at),
                match (view.retention.keep_crosswalk, view.retention.keep_report) {
                    (true, true) => "The crosswalk and the final report below were kept.",
                    (true, false) => "The crosswalk was kept; the report was not.",
                    (false, true) => "The final report below was kept; the crosswalk was not.",
                    (false, false) => "Neither the crosswalk nor the report was kept.",
                }
            )}</p>
            {move || outcome().map(|o| view! { <p class="alert success" id="purge-outcome">{format!("Purged: {}.", o.describe())}</p> })}
        }
        .into_any(),
        None => view! {
            <p id="retention-schedule">{schedule}</p>
            <p class="muted">{holding}" "{key}</p>
            {if owner {
                view! {
                    <ActionForm action=save attr:id="retention-form">
                        <input type="hidden" name="project" value=for_save />
                        <label for="retention-days">"Days to keep the imported data after the real run (empty: until purged by hand)"</label>
                        <input id="retention-days" name="days" type="number" min="1" max="3650" inputmode="numeric" value=days />
                        <FieldError error=save_error field="days" />
                        <label class="check"><input type="checkbox" name="keep_crosswalk" value="on" checked=view.retention.keep_crosswalk />" Keep the crosswalk (each legacy id with the target's id)"</label>
                        <label class="check"><input type="checkbox" name="keep_report" value="on" checked=view.retention.keep_report />" Keep the final report as it stands at the purge"</label>
                        <button type="submit" id="retention-save">"Save retention"</button>
                        <FormError error=save_error />
                    </ActionForm>
                    <details class="danger-zone" id="purge-zone">
                        <summary>"Purge the imported data now"</summary>
                        <p>"Destroys the project's records, uploaded files, assessment findings, reports, target and legacy secrets, the review queue and the password service's logins. The audit log stays; the crosswalk and the report stay as chosen above. The project becomes read only. This cannot be undone."</p>
                        <ActionForm action=purge attr:id="purge-form">
                            <input type="hidden" name="project" value=for_purge />
                            <label for="purge-confirm">{name_hint}</label>
                            <input id="purge-confirm" name="confirm" type="text" autocomplete="off" required />
                            <FieldError error=purge_error field="confirm" />
                            <button type="submit" id="purge" class="danger">"Purge the imported data"</button>
                            <FormError error=purge_error />
                        </ActionForm>
                    </details>
                }
                .into_any()
            } else {
                view! { <p class="muted">"Only an owner sets the retention period or purges the data."</p> }.into_any()
            }}
        }
        .into_any(),
    }
}
