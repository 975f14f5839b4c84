//! The Report stage: the final report of the migration — every user's standing, the
//! production runs as they happened with their crosswalks, why records were skipped or
//! failed, password coverage, the latest reconciliation, Ferry's milestones and the
//! plan's approvals — printable (or saved as PDF) and as JSON.

use crate::{
    api::plan::get_report,
    components::{
        charts::{Bar, BarChart},
        format_optional_time, format_time,
        forms::LoadError,
        grouped,
    },
};
use domain::{
    review::class_label,
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
    let report = Resource::new(move || project.get(), get_report);
    view! {
        <Title text="Report" />
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
    }
}
