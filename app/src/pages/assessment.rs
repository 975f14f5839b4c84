//! The Assessment stage: what the uploaded users look like before anything moves —
//! totals, password hashes, attributes with their classes, groups, data quality with a
//! drill-down, and sign-in activity — as charts and tables, printable.

use crate::{
    api::assessment::{
        SetAttributeClass, StartAssessment, assessment_findings, get_assessment, reveal_example,
    },
    components::{
        charts::{Bar, BarChart, Heatmap},
        format_time,
        forms::{FormError, LoadError, action_error, succeeded},
        grouped,
        pager::Pager,
    },
};
use domain::assess::{
    AssessmentStatus, AssessmentView, AttributeReport, NamedCount, Report, Totals, Uniqueness,
    classify::DataClass,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// Time zones offered for the heatmap; any IANA name works through the address.
const ZONES: [&str; 14] = [
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
];

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "—".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

#[component]
pub fn AssessmentPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let zone = Signal::derive(move || query.read().get("zone"));
    let refresh = RwSignal::new(0u32);
    let start = ServerAction::<StartAssessment>::new();
    let class_set = ServerAction::<SetAttributeClass>::new();
    let (started, class_changed) = (succeeded(start), succeeded(class_set));
    let view_data = Resource::new(
        move || {
            (
                project.get(),
                zone.get(),
                refresh.get(),
                // Only a change that was made: a refused one keeps the form as entered.
                started.get(),
                class_changed.get(),
            )
        },
        |(p, z, ..)| get_assessment(p, z),
    );
    // Records done while an assessment runs, pushed by the server.
    let live = RwSignal::new(None::<u64>);
    let start_error = action_error(start);
    // An effect owns the stream, so it lives until the report it follows is replaced.
    Effect::new(move |_| {
        let running = view_data
            .get()
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|v| v.status == AssessmentStatus::Running);
        if running {
            #[cfg(feature = "hydrate")]
            follow(&project.get_untracked(), live, refresh);
        }
    });
    view! {
        <Title text="Assessment" />
        <Transition fallback=|| view! { <p class="muted">"Loading the assessment…"</p> }>
            {move || Suspend::new(async move {
                match view_data.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(found) => {
                        let running = found.as_ref().is_some_and(|v| v.status == AssessmentStatus::Running);
                        let can_manage = found.as_ref().is_none_or(|v| v.can_reveal);
                        view! {
                            <StatusCard found=found.clone() live project=project.get_untracked() />
                            {can_manage.then(|| view! {
                                <section class="card no-print">
                                    <h2>{if found.is_some() { "Compute again" } else { "Compute the assessment" }}</h2>
                                    <p class="muted">"Reads every record of the project in the background. Uploading a newer export? Compute again afterwards."</p>
                                    <ActionForm action=start attr:class="inline-form">
                                        <input type="hidden" name="project" value=project.get_untracked() />
                                        <label for="phone_region">"Phone region"</label>
                                        <input id="phone_region" name="phone_region" type="text" maxlength="2" size="3"
                                            placeholder="US" title="Country for phone numbers written without a country code" />
                                        <button type="submit" id="start-assessment" disabled=running>"Compute"</button>
                                    </ActionForm>
                                    <FormError error=start_error />
                                </section>
                            })}
                            {found.and_then(|v| v.report.clone().map(|report| view! {
                                <ReportView report view=v class_set project=project.get_untracked() />
                            }))}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn StatusCard(
    found: Option<AssessmentView>,
    live: RwSignal<Option<u64>>,
    project: String,
) -> impl IntoView {
    let Some(v) = found else {
        return view! {
            <section class="card"><p class="muted" id="assessment-status">"No assessment yet."</p></section>
        }
        .into_any();
    };
    let total = v.records_total;
    let stored_done = v.records_done;
    let status = match v.status {
        AssessmentStatus::Running => "Computing",
        AssessmentStatus::Ready => "Ready",
        AssessmentStatus::Failed => "Failed",
    };
    view! {
        <section class="card">
            <div class="card-head">
                <h2>"Assessment " <span class="badge" id="assessment-status">{status}</span></h2>
                <span class="no-print">
                    <a href=format!("/projects/{project}/assessment.json") download="assessment.json">"JSON"</a>
                    " · "
                    <a href="#" on:click=move |ev| {
                        ev.prevent_default();
                        #[cfg(feature = "hydrate")]
                        if let Some(window) = web_sys::window() {
                            let _ = window.print();
                        }
                    }>"Print"</a>
                </span>
            </div>
            {(v.status == AssessmentStatus::Running).then(|| view! {
                <p>
                    <progress max=total.max(1) value=move || live.get().unwrap_or(stored_done)></progress>
                    " "
                    <span class="live-progress">
                        {move || format!("{} of {} records", grouped(live.get().unwrap_or(stored_done)), grouped(total))}
                    </span>
                </p>
            })}
            {v.error.clone().map(|e| view! { <p class="field-error">{e}</p> })}
            <p class="muted">
                {format!("{} records · started {}", grouped(total), format_time(v.started_at))}
                {v.finished_at.map(|at| format!(" · finished {}", format_time(at)))}
                {v.report.as_ref().and_then(|r| r.options.phone_region.clone()).map(|r| format!(" · phone region {r}"))}
            </p>
        </section>
    }
    .into_any()
}

#[component]
fn ReportView(
    report: Report,
    view: AssessmentView,
    class_set: ServerAction<SetAttributeClass>,
    project: String,
) -> impl IntoView {
    let users = report.totals.users;
    let fill_bars: Vec<Bar> = report
        .attributes
        .iter()
        .take(30)
        .map(|a| Bar {
            label: a.path.clone(),
            value: a.filled as f64,
            text: percent(a.filled, users),
        })
        .collect();
    let group_bars = counted(&report.groups[..report.groups.len().min(20)], |n| {
        (n.name.clone(), grouped(n.count))
    });
    let per_user_bars = counted(&report.users_by_group_count, |n| {
        (format!("{} groups", n.name), grouped(n.count))
    });
    let recency_bars = counted(&report.recency, |n| {
        let text = format!("{} ({})", grouped(n.count), percent(n.count, users));
        (n.name.clone(), text)
    });
    let without_group = report.users_by_group_count.first().map_or(0, |g| g.count);
    let zone = view.zone.clone();
    let can_reveal = view.can_reveal;
    (
        view! {
        <TotalsCard totals=report.totals.clone() />
        }.into_any(),
        view! {
        {(report.uploads.len() > 1).then(|| view! {
            <section class="card">
                <h2>"Per upload"</h2>
                <table>
                    <thead><tr><th>"Upload"</th><th>"Users"</th><th>"Active"</th><th>"Disabled"</th><th>"With password"</th><th>"Verified e-mail"</th></tr></thead>
                    <tbody>
                        {report.uploads.iter().map(|u| view! {
                            <tr>
                                <td><code>{u.upload_id.to_string()}</code></td>
                                <td>{grouped(u.totals.users)}</td>
                                <td>{grouped(u.totals.active)}</td>
                                <td>{grouped(u.totals.disabled)}</td>
                                <td>{grouped(u.totals.with_password)}</td>
                                <td>{grouped(u.totals.email_verified)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <p class="hint">"Users are counted under the upload that last delivered them."</p>
            </section>
        })}
        }.into_any(),
        view! {
        <section class="card">
            <h2>"Passwords"</h2>
            {if report.credentials.is_empty() {
                view! { <p class="muted">"No password hashes in the exports: every user will set a password."</p> }.into_any()
            } else {
                view! {
                    <table id="credentials">
                        <thead><tr><th>"Algorithm"</th><th>"Parameters"</th><th>"Users"</th><th>"Share"</th></tr></thead>
                        <tbody>
                            {report.credentials.iter().map(|c| view! {
                                <tr><td>{c.algorithm.clone()}</td><td>{c.parameters.clone()}</td><td>{grouped(c.users)}</td><td>{percent(c.users, users)}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        }.into_any(),
        view! {
        <section class="card">
            <h2>"Data quality"</h2>
            <table id="quality">
                <thead><tr><th>"Check"</th><th>"Records"</th><th></th></tr></thead>
                <tbody>
                    {report.quality.iter().map(|q| {
                        let href = format!("/projects/{project}/assessment/findings?check={}", q.check.as_str());
                        view! {
                            <tr>
                                <td>{q.label.clone()}</td>
                                <td>{grouped(q.count)}</td>
                                <td>{(q.count > 0).then(|| view! { <a href=href>"Show records"</a> })}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        }.into_any(),
        view! {
        <section class="card">
            <h2>"Attributes"</h2>
            <BarChart title="Fill rate by attribute" bars=fill_bars max=users as f64 id="fill-chart" />
            {(report.more_attributes > 0).then(|| view! {
                <p class="hint">{format!("{} more attribute paths were seen and not profiled.", report.more_attributes)}</p>
            })}
            <AttributeTable attributes=report.attributes.clone() users project=project.clone() can_reveal class_set />
        </section>
        }.into_any(),
        view! {
        <section class="card">
            <h2>"Groups and roles"</h2>
            <p>{format!("{} groups · {} roles · {} users without any group ({})",
                grouped(report.groups.len() as u64), grouped(report.roles.len() as u64),
                grouped(without_group), percent(without_group, users))}</p>
            {(!group_bars.is_empty()).then(|| view! { <BarChart title="Members per group" bars=group_bars id="group-chart" /> })}
            <BarChart title="Users by number of groups" bars=per_user_bars />
            <NamedList title="Roles" items=report.roles.iter().map(|r| (r.name.clone(), r.count)).collect() />
            <NamedList title="Permissions" items=report.permissions.iter().map(|r| (r.name.clone(), r.count)).collect() />
        </section>
        }.into_any(),
        view! {
        <section class="card">
            <h2>"Sign-in activity"</h2>
            <BarChart title="Last sign-in" bars=recency_bars max=users as f64 id="recency-chart" />
            <form method="get" class="inline-form no-print">
                <label for="zone">"Time zone"</label>
                <select id="zone" name="zone">
                    {ZONES.iter().map(|z| view! { <option value=*z selected=*z == zone>{*z}</option> }).collect_view()}
                    {(!ZONES.contains(&zone.as_str())).then(|| view! { <option value=zone.clone() selected>{zone.clone()}</option> })}
                </select>
                <button type="submit" class="secondary">"Show"</button>
            </form>
            <Heatmap title=format!("Last sign-ins by weekday and hour ({})", view.zone) grid=view.heatmap.clone() />
            <p class="hint">"The quiet hours are candidates for the downtime window."</p>
        </section>

        }.into_any(),
    )
}

/// Bars of counts, each labelled and described by `describe`.
fn counted(items: &[NamedCount], describe: impl Fn(&NamedCount) -> (String, String)) -> Vec<Bar> {
    items
        .iter()
        .map(|n| {
            let (label, text) = describe(n);
            Bar {
                label,
                value: n.count as f64,
                text,
            }
        })
        .collect()
}

#[component]
fn TotalsCard(totals: Totals) -> impl IntoView {
    let users = totals.users;
    let facts = [
        ("Users", totals.users),
        ("Active", totals.active),
        ("Disabled", totals.disabled),
        ("Pending", totals.pending),
        ("Status unknown", totals.status_unknown),
        ("With a password hash", totals.with_password),
        ("Without a password hash", totals.without_password),
        ("E-mail verified", totals.email_verified),
        ("E-mail not verified", totals.email_unverified),
        ("Verification unknown", totals.email_verification_unknown),
        ("Without e-mail", totals.without_email),
    ];
    view! {
        <section class="card">
            <h2>"Totals"</h2>
            <dl class="stats" id="totals">
                {facts.into_iter().map(|(label, n)| view! {
                    <div>
                        <dt>{label}</dt>
                        <dd>{grouped(n)}<small>{(label != "Users").then(|| format!(" {}", percent(n, users)))}</small></dd>
                    </div>
                }).collect_view()}
            </dl>
        </section>
    }
    .into_any()
}

#[component]
fn NamedList(#[prop(into)] title: String, items: Vec<(String, u64)>) -> impl IntoView {
    (!items.is_empty()).then(|| {
        view! {
            <h3>{title}</h3>
            <ul class="tags">
                {items.into_iter().take(50).map(|(name, count)| view! {
                    <li>{name}" "<span class="muted">{grouped(count)}</span></li>
                }).collect_view()}
            </ul>
        }
    })
}

fn class_badge(class: DataClass) -> &'static str {
    match class {
        DataClass::Pii => "badge warn",
        DataClass::Confidential => "badge danger",
        DataClass::Other => "badge muted",
    }
}

fn uniqueness(a: &AttributeReport) -> &'static str {
    match a.uniqueness {
        Uniqueness::Unique => "unique",
        Uniqueness::LikelyUnique => "unique (estimated)",
        Uniqueness::NotUnique => "repeats",
    }
}

#[component]
fn AttributeTable(
    attributes: Vec<AttributeReport>,
    users: u64,
    project: String,
    can_reveal: bool,
    class_set: ServerAction<SetAttributeClass>,
) -> impl IntoView {
    let error = action_error(class_set);
    view! {
        <FormError error />
        <div class="table-scroll">
            <table id="attributes">
                <thead>
                    <tr>
                        <th>"Attribute"</th><th>"Filled"</th><th>"Distinct"</th><th>"Length"</th>
                        <th>"Type"</th><th>"Values"</th><th>"Class"</th>
                    </tr>
                </thead>
                <tbody>
                    {attributes.into_iter().map(|a| {
                        let distinct = if a.distinct_exact { grouped(a.distinct) } else { format!("≈{}", grouped(a.distinct)) };
                        let path = a.path.clone();
                        let form_path = a.path.clone();
                        let form_project = project.clone();
                        let (class, overridden) = (a.class, a.overridden);
                        view! {
                            <tr data-path=a.path.clone()>
                                <td><code>{a.path.clone()}</code></td>
                                <td>{percent(a.filled, users)}</td>
                                <td>{distinct}<br /><small class="muted">{uniqueness(&a)}</small></td>
                                <td>{format!("{}–{} (avg {:.1})", a.min_length, a.max_length, a.average_length)}</td>
                                <td>{a.value_type.label()}</td>
                                <td>
                                    {if a.class == DataClass::Confidential {
                                        view! { <span class="muted">"never shown"</span> }.into_any()
                                    } else {
                                        view! {
                                            {(!a.top.is_empty()).then(|| view! {
                                                <span class="top-values">
                                                    {a.top.iter().take(8).map(|t| format!("{} ({})", t.name, grouped(t.count))).collect::<Vec<_>>().join(", ")}
                                                </span>
                                                <br />
                                            })}
                                            <Examples project=project.clone() path=path.clone() examples=a.examples.clone() can_reveal />
                                        }.into_any()
                                    }}
                                </td>
                                <td>
                                    <span class=class_badge(a.class)>{a.class.label()}</span>
                                    <br /><small class="muted">{a.class_reason.clone()}</small>
                                    {can_reveal.then(move || view! {
                                        <ActionForm action=class_set attr:class="class-form no-print">
                                            <input type="hidden" name="project" value=form_project />
                                            <input type="hidden" name="path" value=form_path.clone() />
                                            <select name="class" aria-label=format!("Class of {form_path}")>
                                                <option value="" selected=!overridden>"Automatic"</option>
                                                <option value="pii" selected=overridden && class == DataClass::Pii>"PII"</option>
                                                <option value="confidential" selected=overridden && class == DataClass::Confidential>"Confidential"</option>
                                                <option value="other" selected=overridden && class == DataClass::Other>"Not personal"</option>
                                            </select>
                                            <button type="submit" class="secondary small">"Set"</button>
                                        </ActionForm>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// Masked examples; owners and admins reveal one at a time (each reveal is audited).
#[component]
fn Examples(
    project: String,
    path: String,
    examples: Vec<String>,
    can_reveal: bool,
) -> impl IntoView {
    let revealed = RwSignal::new(Vec::<(usize, Result<String, String>)>::new());
    let reveal = Action::new(move |(project, path, index): &(String, String, usize)| {
        let (project, path, index) = (project.clone(), path.clone(), *index);
        async move {
            let outcome = reveal_example(project, path, index)
                .await
                .map_err(|e| e.to_string());
            revealed.update(|list| list.push((index, outcome)));
        }
    });
    examples
        .into_iter()
        .enumerate()
        .map(|(index, masked)| {
            let (project, path) = (project.clone(), path.clone());
            let shown = move || {
                revealed
                    .get()
                    .into_iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, outcome)| outcome)
            };
            view! {
                <span class="example">
                    {move || match shown() {
                        Some(Ok(value)) => view! { <span class="revealed">{value}</span> }.into_any(),
                        Some(Err(message)) => view! { <span class="field-error">{message}</span> }.into_any(),
                        None => view! { <span class="masked">{masked.clone()}</span> }.into_any(),
                    }}
                    {can_reveal.then(|| view! {
                        <button type="button" class="link-button no-print" on:click=move |_| {
                            reveal.dispatch((project.clone(), path.clone(), index));
                        }>"reveal"</button>
                    })}
                </span>
            }
        })
        .collect_view()
}

/// Follows a running assessment's progress until it settles, then reloads the report.
#[cfg(feature = "hydrate")]
fn follow(project: &str, live: RwSignal<Option<u64>>, refresh: RwSignal<u32>) {
    use crate::live::{Next, follow};
    follow(
        &format!("/projects/{project}/assessment/events"),
        move |done: u64| {
            live.set(Some(done));
            Next::Listen
        },
        move |_| {
            refresh.update(|n| *n += 1);
            Next::Close
        },
        || {},
    );
}

/// The records one quality check found, fifty to a page.
#[component]
pub fn FindingsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let check = Signal::derive(move || query.read().get("check").unwrap_or_default());
    let offset = Signal::derive(move || query.read().get("offset").and_then(|o| o.parse().ok()));
    let page = Resource::new(
        move || (project.get(), check.get(), offset.get()),
        |(p, c, o)| assessment_findings(p, c, o),
    );
    let label = move || {
        domain::assess::Check::parse(&check.get())
            .map(|c| c.label())
            .unwrap_or("Findings")
    };
    view! {
        <Title text="Findings" />
        <section class="card">
            <p class="crumbs"><a href=move || format!("/projects/{}/assessment", project.get())>"Assessment"</a>" /"</p>
            <h2>{label}</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(page) => {
                            let shown = page.items.len();
                            view! {
                                <table id="findings">
                                    <thead><tr><th>"Record"</th><th>"Field"</th><th>"Finding"</th></tr></thead>
                                    <tbody>
                                        {page.items.into_iter().map(|f| view! {
                                            <tr>
                                                <td><code>{f.source_id}</code></td>
                                                <td>{f.field.unwrap_or_default()}</td>
                                                <td>{f.note}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <Pager offset=page.offset shown total=page.total limit=page.limit
                                    href_for=|offset, extra| format!("?{extra}&offset={offset}")
                                    extra=format!("check={}", check.get_untracked()) />
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}
