//! The Mapping stage: the source attributes with their assessment facts, the rules
//! (target attribute from the target's schemas, source, transform chain, checks), a
//! live preview of sample records, the impact over every record computed in the
//! background, and the saved versions with their differences, export and import.

use crate::{
    api::{
        assessment::get_assessment,
        goals::{
            export_mapping, get_impact, get_mapping, import_mapping, mapping_diff, mapping_targets,
            mapping_versions, preview_mapping, save_mapping, start_impact,
        },
    },
    components::{
        charts::{Bar, BarChart},
        format_time,
        forms::LoadError,
        grouped,
    },
};
use domain::{
    assess::{AssessmentStatus, AttributeReport, classify::DataClass},
    mapping::{
        Rule, RuleProblem,
        source::{FIELDS, SourceVocabulary},
        target::Offered,
        transform::Transform,
        versions::{MappingVersionSummary, RuleChange},
    },
    service::{ImpactView, MappingView, Preview},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::BTreeMap;

#[component]
pub fn MappingPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    // Bumped by an import, which replaces the rules being edited.
    let reloaded = RwSignal::new(0u32);
    let loaded = Resource::new(
        move || (project.get(), reloaded.get()),
        |(p, _)| async move {
            let mapping = get_mapping(p.clone(), None).await?;
            let targets = mapping_targets(p.clone()).await?;
            let attributes = get_assessment(p, None)
                .await?
                .and_then(|a| a.report)
                .map(|r| r.attributes)
                .unwrap_or_default();
            Ok::<_, crate::error::AppError>((mapping, targets, attributes))
        },
    );
    view! {
        <Title text="Mapping" />
        <p class="muted intro">
            "Each rule writes one SCIM attribute of the target from the source records: a field or a \
             template, a chain of transforms, and checks. Rules are checked against the target's own \
             schemas; the preview shows what they make of real records, and the impact counts what \
             they would reject over every record."
        </p>
        <Transition fallback=|| view! { <p class="muted">"Loading the mapping…"</p> }>
            {move || Suspend::new(async move {
                match loaded.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok((view, targets, attributes)) => view! {
                        <MappingEditor project=project.get_untracked() view targets attributes reloaded />
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// A change to the rules being edited.
type Edit = Box<dyn FnOnce(&mut Vec<Rule>)>;
type EditRules = Callback<Edit>;

fn rules_json(rules: &[Rule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

/// Which records the preview maps.
#[derive(Clone, Debug, PartialEq)]
enum Pick {
    Random(u64),
    Search(String),
    Failing(usize, Vec<String>),
    /// One record, opened from support staff's review of it.
    Record(String),
}

impl Pick {
    fn json(&self) -> String {
        match self {
            Pick::Random(seed) => format!(r#"{{"kind":"random","seed":{seed}}}"#),
            Pick::Search(text) => serde_json::json!({"kind": "search", "text": text}).to_string(),
            Pick::Failing(_, ids) => serde_json::json!({"kind": "ids", "ids": ids}).to_string(),
            Pick::Record(id) => serde_json::json!({"kind": "ids", "ids": [id]}).to_string(),
        }
    }
}

#[component]
fn MappingEditor(
    project: String,
    view: MappingView,
    targets: Vec<Offered>,
    attributes: Vec<AttributeReport>,
    reloaded: RwSignal<u32>,
) -> impl IntoView {
    let rules = RwSignal::new(view.mapping.rules.clone());
    let problems = RwSignal::new(view.problems.clone());
    // The assessment's attributes by the names rules read them with.
    let vocabulary = StoredValue::new(SourceVocabulary::new(
        attributes.iter().map(|a| a.path.clone()).collect(),
    ));
    let initial = view.version.as_ref().map(|v| v.version);
    let version = RwSignal::new(initial);
    let dirty = RwSignal::new(false);
    let json = Memo::new(move |_| rules_json(&rules.get()));
    // `?record=` (from a failed user's page in the review) previews that record.
    let pick = RwSignal::new(
        use_query_map()
            .read_untracked()
            .get("record")
            .filter(|r| !r.is_empty())
            .map_or(Pick::Random(1), Pick::Record),
    );
    let note = RwSignal::new(String::new());

    let save = {
        let project = project.clone();
        Action::new(move |(json, note): &(String, String)| {
            save_mapping(project.clone(), json.clone(), note.clone())
        })
    };
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            problems.set(saved.problems);
            version.set(saved.version.map(|v| v.version));
            dirty.set(false);
            note.set(String::new());
        }
    });
    let preview = {
        let project = project.clone();
        Resource::new(
            move || (json.get(), pick.get()),
            move |(json, pick)| preview_mapping(project.clone(), json, pick.json()),
        )
    };
    // The rules' problems follow the rules as they are edited (the preview checks the
    // rules being edited, not only the saved ones).
    Effect::new(move |_| {
        if let Some(Ok(checked)) = preview.get() {
            problems.set(checked.problems);
        }
    });
    let edit = Callback::new(move |f: Edit| {
        rules.update(|r| f(r));
        dirty.set(true);
    });
    let mapped_sources = Memo::new(move |_| {
        rules
            .get()
            .into_iter()
            .map(|r| (r.source, r.target))
            .collect::<Vec<_>>()
    });
    let notes = view.notes.clone();
    let checked = if view.checked_against_target {
        "Checked against the production target's schemas."
    } else {
        "Not checked against a target yet: test the production target's connection to check the rules against its schemas."
    };
    let source_options: Vec<String> = FIELDS
        .iter()
        .map(|(name, _)| (*name).to_string())
        .chain(
            attributes
                .iter()
                .filter(|a| a.class != DataClass::Confidential && !a.path.contains("[]"))
                .map(|a| format!("attributes.{}", a.path)),
        )
        .collect();
    let saved_line = view.version.as_ref().map_or(
        "Suggested for this source; not saved yet.".to_string(),
        |v| {
            format!(
                "Version {} saved {}{}.",
                v.version,
                format_time(v.created_at),
                v.created_by_email
                    .as_ref()
                    .map(|e| format!(" by {e}"))
                    .unwrap_or_default()
            )
        },
    );
    view! {
        <datalist id="target-paths">
            {targets.iter().map(|t| view! { <option value=t.path.clone()>{format!("{}{}", t.kind, if t.required { ", required" } else { "" })}</option> }).collect_view()}
        </datalist>
        <datalist id="source-fields">
            {source_options.iter().map(|s| view! { <option value=s.clone()></option> }).collect_view()}
        </datalist>
        <SourceAttributes attributes mapped=mapped_sources edit vocabulary />
        <section class="card" id="rules">
            <div class="card-head">
                <h2>"Rules"</h2>
                <span class="muted small" id="mapping-version">{move || match version.get() {
                    Some(v) if dirty.get() => format!("Version {v}, with unsaved changes"),
                    Some(v) => format!("Version {v}"),
                    None => "Not saved".to_string(),
                }}</span>
            </div>
            <p class="muted small">
                {move || match version.get() {
                    Some(v) if Some(v) != initial => format!("Saved as version {v}."),
                    _ => saved_line.clone(),
                }}
                " " {checked}
            </p>
            {move || (!notes.is_empty() && version.get().is_none()).then(|| view! {
                <div class="alert info" id="suggestion-notes">
                    <p>"Fitted to the records this project holds:"</p>
                    <ul>{notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
                </div>
            })}
            <table class="data rules">
                <thead><tr><th>"#"</th><th>"Target attribute"</th><th>"Source"</th><th>"Transforms"</th><th>"Checks"</th><th></th></tr></thead>
                <tbody>
                    {move || rules.get().into_iter().enumerate().map(|(i, rule)| {
                        let mine: Vec<RuleProblem> = problems.get().into_iter().filter(|p| p.rule == Some(i)).collect();
                        let unknown = vocabulary.with_value(|v| v.unknown(&rule.source));
                        view! { <RuleRow index=i rule problems=mine unknown edit /> }
                    }).collect_view()}
                </tbody>
            </table>
            {move || problems.get().into_iter().filter(|p| p.rule.is_none()).map(|p| view! { <div class="alert error">{p.message}</div> }).collect_view()}
            <div class="row-actions">
                <button type="button" id="add-rule" on:click=move |_| edit.run(Box::new(|r: &mut Vec<Rule>| r.push(Rule::new("", "", Vec::new()))))>"Add a rule"</button>
                <input type="text" id="version-note" placeholder="What changed (optional)" maxlength="500"
                    prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev)) />
                <button type="button" class="primary" id="save-mapping" disabled=move || save.pending().get()
                    on:click=move |_| { save.dispatch((json.get_untracked(), note.get_untracked())); }>
                    {move || if save.pending().get() { "Saving…" } else { "Save as a new version" }}
                </button>
            </div>
            {move || save.value().get().and_then(|r| r.err()).map(|e| view! { <div class="alert error" role="alert">{e.to_string()}</div> })}
        </section>
        <section class="card" id="preview">
            <div class="card-head">
                <h2>"Preview"</h2>
                <PickControls pick />
            </div>
            <Transition fallback=|| view! { <p class="muted">"Mapping sample records…"</p> }>
                {move || Suspend::new(async move {
                    match preview.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(p) => view! { <PreviewView preview=p /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <ImpactCard project=project.clone() json pick />
        <VersionsCard project=project.clone() version reloaded />
    }
    .into_any()
}

#[component]
fn SourceAttributes(
    attributes: Vec<AttributeReport>,
    mapped: Memo<Vec<(String, String)>>,
    edit: EditRules,
    vocabulary: StoredValue<SourceVocabulary>,
) -> impl IntoView {
    if attributes.is_empty() {
        return view! {
            <section class="card" id="source-attributes">
                <h2>"Source attributes"</h2>
                <p class="muted">"Compute the assessment to see the source attributes with their fill rate and class."</p>
            </section>
        }
        .into_any();
    }
    let most = attributes
        .iter()
        .map(|a| a.filled)
        .max()
        .unwrap_or(0)
        .max(1);
    view! {
        <section class="card" id="source-attributes">
            <details>
                <summary><h2 class="inline">"Source attributes"</h2>" "<span class="muted small">{format!("{} from the assessment", attributes.len())}</span></summary>
                <p class="muted small">"Each attribute of the export as the assessment names it, and what a rule reads to get it: a column Ferry recognises is read into one of its own fields (a first_name column is given_name)."</p>
                <table class="data compact">
                    <thead><tr><th>"Attribute"</th><th>"A rule reads"</th><th class="num">"Filled"</th><th>"Class"</th><th>"Mapped to"</th><th></th></tr></thead>
                    <tbody>
                        {attributes.into_iter().map(|a| {
                            let source = vocabulary.with_value(|v| v.source_for(&a.path));
                            let secret = a.class == DataClass::Confidential;
                            let path = a.path.clone();
                            let targets = move || {
                                let path = path.clone();
                                vocabulary.with_value(|v| {
                                    mapped
                                        .get()
                                        .into_iter()
                                        .filter(|(s, _)| v.reads(s, &path))
                                        .map(|(_, t)| t)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                })
                            };
                            let add = source.clone();
                            view! {
                                <tr data-attribute=a.path.clone()>
                                    <td><code>{a.path.clone()}</code></td>
                                    <td>{(!secret).then(|| view! { <code class="read-as">{source.clone()}</code> })}</td>
                                    <td class="num">{format!("{:.0} %", a.filled as f64 * 100.0 / most as f64)}</td>
                                    <td><span class=format!("badge {}", if secret { "danger" } else if a.class == DataClass::Pii { "warn" } else { "muted" })>{a.class.label()}</span></td>
                                    <td class="mapped-to">{targets}</td>
                                    <td>{if secret {
                                        view! { <span class="muted small">"never moves"</span> }.into_any()
                                    } else {
                                        view! { <button type="button" class="small" disabled=a.path.contains("[]")
                                            on:click=move |_| { let s = add.clone(); edit.run(Box::new(move |r: &mut Vec<Rule>| r.push(Rule::new("", &s, Vec::new())))) }>"Map"</button> }.into_any()
                                    }}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
        </section>
    }
    .into_any()
}

/// A transform in words.
fn describe(t: &Transform) -> String {
    match t {
        Transform::Split { separator, index } => match index {
            Some(i) => format!("split at {separator:?}, part {i}"),
            None => format!("split at {separator:?}"),
        },
        Transform::Join { separator } => format!("join with {separator:?}"),
        Transform::Replace {
            pattern,
            replacement,
        } => format!("replace /{pattern}/ → {replacement:?}"),
        Transform::Truncate { max } => format!("truncate to {max}"),
        Transform::Date { format: Some(f) } => format!("date from {f}"),
        Transform::Phone { region: Some(r) } => format!("phone ({r})"),
        Transform::Lookup { table, default } => format!(
            "lookup ({} entries{})",
            table.len(),
            default
                .as_ref()
                .map(|d| format!(", else {d:?}"))
                .unwrap_or_default()
        ),
        Transform::Default { value } => format!("default {value:?}"),
        Transform::Constant { value } => format!("constant {value:?}"),
        other => other.label().to_string(),
    }
}

const OPS: [(&str, &str, &str); 14] = [
    ("trim", "", ""),
    ("lower", "", ""),
    ("upper", "", ""),
    ("email", "", ""),
    ("bool", "", ""),
    ("split", "separator", "part (0, 1, …; empty: all)"),
    ("join", "separator", ""),
    (
        "replace",
        "regular expression",
        "replacement ($1 for a group)",
    ),
    ("truncate", "length", ""),
    ("date", "format, e.g. %d/%m/%Y (empty: ISO or epoch)", ""),
    ("phone", "country, e.g. US (empty: needs +)", ""),
    ("lookup", "from=to; from=to", "else (empty: fail)"),
    ("default", "value when empty", ""),
    ("constant", "value", ""),
];

/// Builds a transform from the editor's operation and two parameters.
fn build(op: &str, a: &str, b: &str) -> Result<Transform, String> {
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    Ok(match op {
        "trim" => Transform::Trim,
        "lower" => Transform::Lower,
        "upper" => Transform::Upper,
        "email" => Transform::Email,
        "bool" => Transform::Bool,
        "split" => Transform::Split {
            separator: a.to_string(),
            index: match opt(b) {
                Some(i) => Some(i.parse().map_err(|_| "the part is a number: 0, 1, …")?),
                None => None,
            },
        },
        "join" => Transform::Join {
            separator: a.to_string(),
        },
        "replace" => Transform::Replace {
            pattern: a.to_string(),
            replacement: b.to_string(),
        },
        "truncate" => Transform::Truncate {
            max: a.trim().parse().map_err(|_| "the length is a number")?,
        },
        "date" => Transform::Date { format: opt(a) },
        "phone" => Transform::Phone { region: opt(a) },
        "lookup" => {
            let mut table = BTreeMap::new();
            for pair in a.split(';').filter(|p| !p.trim().is_empty()) {
                let (from, to) = pair
                    .split_once('=')
                    .ok_or("write each entry as from=to, separated by ;")?;
                table.insert(from.trim().to_string(), to.trim().to_string());
            }
            Transform::Lookup {
                table,
                default: opt(b),
            }
        }
        "default" => Transform::Default {
            value: a.to_string(),
        },
        "constant" => Transform::Constant {
            value: a.to_string(),
        },
        other => return Err(format!("unknown transform {other}")),
    })
}

#[component]
fn RuleRow(
    index: usize,
    rule: Rule,
    problems: Vec<RuleProblem>,
    /// Attributes the source names that no record has.
    unknown: Vec<String>,
    edit: EditRules,
) -> impl IntoView {
    let set = move |f: fn(&mut Rule, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            edit.run(Box::new(move |r: &mut Vec<Rule>| {
                if let Some(rule) = r.get_mut(index) {
                    f(rule, value)
                }
            }))
        }
    };
    let flag = move |f: fn(&mut Rule, bool)| {
        move |ev: leptos::ev::Event| {
            let on = event_target_checked(&ev);
            edit.run(Box::new(move |r: &mut Vec<Rule>| {
                if let Some(rule) = r.get_mut(index) {
                    f(rule, on)
                }
            }))
        }
    };
    let op = RwSignal::new("trim".to_string());
    let a = RwSignal::new(String::new());
    let b = RwSignal::new(String::new());
    let add_error = RwSignal::new(None::<String>);
    let hints = move || {
        OPS.iter()
            .find(|(o, _, _)| *o == op.get())
            .map(|(_, a, b)| (*a, *b))
            .unwrap_or(("", ""))
    };
    let problem_of = |field: &str| {
        problems
            .iter()
            .filter(|p| {
                p.field == field || (field == "transforms" && p.field.starts_with("transforms"))
            })
            .map(|p| p.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let (target_problem, source_problem, transform_problem, check_problem) = (
        problem_of("target"),
        problem_of("source"),
        problem_of("transforms"),
        problem_of("checks"),
    );
    let has_problem = !problems.is_empty();
    view! {
        <tr class=if has_problem { "rule has-problem" } else { "rule" } data-rule=index>
            <td class="num rule-number" data-label="Rule">{index + 1}</td>
            <td data-label="Target attribute">
                <input type="text" class="rule-target" list="target-paths" placeholder="userName" title=rule.target.clone() value=rule.target.clone() on:change=set(|r, v| r.target = v.trim().to_string()) />
                {(!target_problem.is_empty()).then(|| view! { <p class="field-error">{target_problem}</p> })}
            </td>
            <td data-label="Source">
                <input type="text" class="rule-source" list="source-fields" placeholder="email or {given_name}.{family_name}" value=rule.source.clone() on:change=set(|r, v| r.source = v.trim().to_string()) />
                {(!source_problem.is_empty()).then(|| view! { <p class="field-error">{source_problem}</p> })}
                {(!unknown.is_empty()).then(|| view! {
                    <p class="field-warning">{format!(
                        "No record has {}: this rule will never find a value (the Source attributes list what the export has).",
                        unknown.join(" or ")
                    )}</p>
                })}
            </td>
            <td class="transforms" data-label="Transforms">
                <ol class="chain">
                    {rule.transforms.iter().enumerate().map(|(n, t)| view! {
                        <li class="chip">{describe(t)}
                            <button type="button" class="chip-remove" title="Remove this transform"
                                on:click=move |_| edit.run(Box::new(move |r: &mut Vec<Rule>| { if let Some(rule) = r.get_mut(index) { rule.transforms.remove(n); } }))>"×"</button>
                        </li>
                    }).collect_view()}
                </ol>
                <details class="add-transform">
                    <summary>"Add a transform"</summary>
                    <select class="transform-op" on:change=move |ev| op.set(event_target_value(&ev))>
                        {OPS.iter().map(|(o, _, _)| view! { <option value=*o>{*o}</option> }).collect_view()}
                    </select>
                    {move || (!hints().0.is_empty()).then(|| view! { <input type="text" class="transform-a" placeholder=hints().0 on:input=move |ev| a.set(event_target_value(&ev)) /> })}
                    {move || (!hints().1.is_empty()).then(|| view! { <input type="text" class="transform-b" placeholder=hints().1 on:input=move |ev| b.set(event_target_value(&ev)) /> })}
                    <button type="button" class="small add-transform-button" on:click=move |_| {
                        match build(&op.get_untracked(), &a.get_untracked(), &b.get_untracked()) {
                            Ok(t) => { add_error.set(None); edit.run(Box::new(move |r: &mut Vec<Rule>| if let Some(rule) = r.get_mut(index) { rule.transforms.push(t) })) }
                            Err(e) => add_error.set(Some(e)),
                        }
                    }>"Add"</button>
                    {move || add_error.get().map(|e| view! { <p class="field-error">{e}</p> })}
                </details>
                {(!transform_problem.is_empty()).then(|| view! { <p class="field-error">{transform_problem}</p> })}
            </td>
            <td class="checks" data-label="Checks">
                <label><input type="checkbox" class="rule-required" prop:checked=rule.required on:change=flag(|r, on| r.required = on) />" required"</label>
                <label><input type="checkbox" class="rule-unique" prop:checked=rule.unique on:change=flag(|r, on| r.unique = on) />" unique"</label>
                <label>"max " <input type="number" class="rule-max" min="1" value=rule.max_length.map(|n| n.to_string()).unwrap_or_default()
                    on:change=set(|r, v| r.max_length = v.trim().parse().ok()) /></label>
                {(!check_problem.is_empty()).then(|| view! { <p class="field-error">{check_problem}</p> })}
            </td>
            <td><button type="button" class="small danger" title="Remove this rule"
                on:click=move |_| edit.run(Box::new(move |r: &mut Vec<Rule>| { r.remove(index); }))>"Remove"</button></td>
        </tr>
    }
    .into_any()
}

#[component]
fn PickControls(pick: RwSignal<Pick>) -> impl IntoView {
    let search = RwSignal::new(String::new());
    view! {
        <div class="pick">
            <button type="button" class="small" id="preview-random"
                on:click=move |_| pick.update(|p| *p = match p { Pick::Random(s) => Pick::Random(*s + 1), _ => Pick::Random(1) })>"Other random records"</button>
            <form class="inline-form" on:submit=move |ev| { ev.prevent_default(); pick.set(Pick::Search(search.get_untracked())) }>
                <input type="search" id="preview-search" placeholder="id, user name, e-mail or name" on:input=move |ev| search.set(event_target_value(&ev)) />
                <button type="submit" class="small">"Find"</button>
            </form>
            <span class="muted small">{move || match pick.get() {
                Pick::Random(_) => "random records".to_string(),
                Pick::Search(t) => format!("records matching {t:?}"),
                Pick::Failing(rule, _) => format!("records rule {} rejects", rule + 1),
                Pick::Record(id) => format!("the record {id} from the review"),
            }}</span>
        </div>
    }
}

#[component]
fn PreviewView(preview: Preview) -> impl IntoView {
    if preview.records.is_empty() {
        let why = if preview.total == 0 {
            "The project has no records yet: upload an export first."
        } else {
            "No record matches."
        };
        return view! { <p class="muted" id="preview-empty">{why}</p> }.into_any();
    }
    let failing = preview
        .records
        .iter()
        .filter(|r| r.rules.iter().any(|x| x.error.is_some()))
        .count();
    view! {
        <p class="muted small" id="preview-summary">{format!("{} records shown, {} rejected by a rule.", preview.records.len(), failing)}</p>
        {preview.problems.iter().map(|p| view! {
            <div class="alert warn">{format!("Rule {} left out: {}", p.rule.map(|r| r + 1).unwrap_or(0), p.message)}</div>
        }).collect_view()}
        {preview.records.into_iter().map(|record| {
            let rejected = record.rules.iter().any(|r| r.error.is_some());
            let json = serde_json::to_string_pretty(&record.resource).unwrap_or_default();
            view! {
                <details class="preview-record" data-source-id=record.source_id.clone() open=rejected>
                    <summary>
                        <code>{record.source_id.clone()}</code>" "
                        {if rejected { view! { <span class="badge error">"rejected"</span> }.into_any() } else { view! { <span class="badge ok">"ok"</span> }.into_any() }}
                        " "<span class="muted small">{match (&record.user_type, record.moves) {
                            (Some(s), true) => format!("{s}: moves"),
                            (Some(s), false) => format!("{s}: left behind"),
                            (None, _) => "in no user type: does not move".to_string(),
                        }}</span>
                    </summary>
                    <div class="preview-body">
                        <table class="data compact">
                            <thead><tr><th>"Rule"</th><th>"Source value"</th><th>"Result"</th></tr></thead>
                            <tbody>
                                {record.rules.into_iter().map(|r| { let class = if r.error.is_some() { "rule-result failed" } else { "rule-result" }; view! {
                                    <tr class=class>
                                        <td><code>{r.target}</code></td>
                                        <td>{r.source.unwrap_or_else(|| "—".into())}</td>
                                        <td>{match (r.error, r.value) {
                                            (Some(e), _) => view! { <span class="field-error">{e}</span> }.into_any(),
                                            (None, Some(v)) => view! { <code>{v.to_string()}</code> }.into_any(),
                                            (None, None) => view! { <span class="muted">"not written"</span> }.into_any(),
                                        }}</td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                        <pre class="scim-json">{json}</pre>
                    </div>
                </details>
            }
        }).collect_view()}
    }
    .into_any()
}

#[component]
fn ImpactCard(project: String, json: Memo<String>, pick: RwSignal<Pick>) -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let start = {
        let project = project.clone();
        Action::new(move |json: &String| start_impact(project.clone(), json.clone()))
    };
    let impact = {
        let project = project.clone();
        Resource::new(
            move || (tick.get(), start.version().get()),
            move |_| get_impact(project.clone()),
        )
    };
    view! {
        <section class="card" id="impact">
            <div class="card-head">
                <h2>"Impact over every record"</h2>
                <button type="button" class="primary" id="compute-impact" disabled=move || start.pending().get()
                    on:click=move |_| { start.dispatch(json.get_untracked()); }>"Compute the impact of these rules"</button>
            </div>
            {move || start.value().get().and_then(|r| r.err()).map(|e| view! { <div class="alert error" role="alert">{e.to_string()}</div> })}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match impact.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(None) => view! { <p class="muted" id="impact-none">"Not computed yet. It maps every record with these rules and the saved user types, and counts what each rule rejects."</p> }.into_any(),
                        Ok(Some(view)) => {
                            if view.status == AssessmentStatus::Running {
                                // Progress comes from memory on the server; ask again shortly
                                // (in the browser only: effects do not run on the server).
                                Effect::new(move |_| {
                                    set_timeout(move || tick.update(|t| *t += 1), std::time::Duration::from_millis(700));
                                });
                            }
                            let computed_for = rules_json(&view.mapping.rules);
                            let editing = Signal::derive(move || json.get() == computed_for);
                            view! { <ImpactReportView view editing pick /> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ImpactReportView(
    view: ImpactView,
    editing: Signal<bool>,
    pick: RwSignal<Pick>,
) -> impl IntoView {
    let progress = view! {
        <p id="impact-status">
            {match view.status {
                AssessmentStatus::Running => view! {
                    <span class="badge muted">"Computing"</span>" "
                    <progress max=view.records_total.max(1) value=view.records_done></progress>" "
                    {format!("{} of {} records", grouped(view.records_done), grouped(view.records_total))}
                }.into_any(),
                AssessmentStatus::Ready => view! {
                    <span class="badge ok">"Computed"</span>" "
                    <span class="muted small">{format!("{} over {} records", view.finished_at.map(format_time).unwrap_or_default(), grouped(view.records_total))}</span>
                }.into_any(),
                AssessmentStatus::Failed => view! {
                    <span class="badge error">"Failed"</span>" "{view.error.clone().unwrap_or_default()}
                }.into_any(),
            }}
            " "
            {move || (!editing.get()).then(|| view! { <span class="badge warn" id="impact-stale">"computed for other rules than the ones being edited"</span> })}
        </p>
    };
    let Some(report) = view.report.clone() else {
        return progress.into_any();
    };
    let bars: Vec<Bar> = report
        .rules
        .iter()
        .map(|r| Bar {
            label: format!("{}. {}", r.rule + 1, r.target),
            value: r.rejected as f64,
            text: grouped(r.rejected),
        })
        .collect();
    let left_behind = report.left_behind();
    view! {
        {progress}
        <dl class="facts" id="impact-totals">
            <dt>"Records"</dt><dd>{grouped(report.records)}</dd>
            <dt>"Moving"</dt><dd>{grouped(report.user_types.moving)}</dd>
            <dt>"Accepted by every rule"</dt><dd id="impact-accepted">{grouped(report.accepted)}</dd>
            <dt>"Rejected"</dt><dd id="impact-rejected">{grouped(report.rejected)}</dd>
            <dt>"Left behind by a user type"</dt><dd>{grouped(left_behind)}</dd>
            <dt>"In no user type"</dt><dd>{grouped(report.user_types.unmatched)}</dd>
        </dl>
        <BarChart title="Records each rule rejects" bars id="rejects-chart" />
        {report.rules.iter().all(|r| r.rejected == 0).then(|| view! { <p class="muted" id="impact-none-rejected">"No rule rejects any record."</p> })}
        <table class="data" id="impact-rules" hidden=report.rules.iter().all(|r| r.rejected == 0)>
            <thead><tr><th>"Rule"</th><th class="num">"Rejects"</th><th>"Why"</th><th class="num">"Collisions"</th><th></th></tr></thead>
            <tbody>
                {report.rules.iter().filter(|r| r.rejected > 0).map(|r| {
                    let ids = r.examples.clone();
                    let rule = r.rule;
                    view! {
                        <tr data-rule=r.rule>
                            <td><code>{format!("{}. {}", r.rule + 1, r.target)}</code></td>
                            <td class="num rejected">{grouped(r.rejected)}</td>
                            <td>{r.reasons.iter().map(|x| view! { <div>{format!("{} — {}", grouped(x.count), x.message)}</div> }).collect_view()}</td>
                            <td class="num">{grouped(r.collisions)}</td>
                            <td><button type="button" class="small preview-failing" on:click=move |_| pick.set(Pick::Failing(rule, ids.clone()))>"Preview these"</button></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        {(!report.collisions.is_empty()).then(|| view! {
            <h3>"Uniqueness collisions"</h3>
            <p class="muted small">"Two source users end with the same value of a unique attribute: the target takes it once."</p>
            <table class="data compact" id="collisions">
                <thead><tr><th>"Rule"</th><th>"Value"</th><th>"First record"</th><th>"Colliding record"</th></tr></thead>
                <tbody>
                    {report.collisions.iter().map(|c| view! {
                        <tr><td>{c.rule + 1}</td><td><code>{c.value.clone()}</code></td><td><code>{c.first.clone()}</code></td><td><code>{c.second.clone()}</code></td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        })}
    }
    .into_any()
}

#[component]
fn VersionsCard(
    project: String,
    version: RwSignal<Option<u32>>,
    reloaded: RwSignal<u32>,
) -> impl IntoView {
    let versions = {
        let project = project.clone();
        Resource::new(
            move || version.get(),
            move |_| mapping_versions(project.clone(), None),
        )
    };
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let diff = {
        let project = project.clone();
        Action::new(move |(a, b): &(u32, u32)| mapping_diff(project.clone(), *a, *b))
    };
    let export = {
        let project = project.clone();
        Action::new(move |_: &()| export_mapping(project.clone(), None))
    };
    let document = RwSignal::new(String::new());
    let import = {
        let project = project.clone();
        Action::new(move |doc: &String| import_mapping(project.clone(), doc.clone()))
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = import.value().get() {
            reloaded.update(|n| *n += 1);
        }
    });
    view! {
        <section class="card" id="versions">
            <h2>"Versions"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading versions…"</p> }>
                {move || Suspend::new(async move {
                    match versions.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(page) if page.items.is_empty() => view! { <p class="muted">"No version saved yet."</p> }.into_any(),
                        Ok(page) => view! { <VersionList items=page.items total=page.total /> }.into_any(),
                    }
                })}
            </Transition>
            <div class="row-actions">
                <label>"Compare version " <input type="number" min="1" class="small-number" id="diff-from" on:input=move |ev| from.set(event_target_value(&ev)) /></label>
                <label>" with " <input type="number" min="1" class="small-number" id="diff-to" on:input=move |ev| to.set(event_target_value(&ev)) /></label>
                <button type="button" class="small" id="compare-versions" on:click=move |_| {
                    if let (Ok(a), Ok(b)) = (from.get_untracked().parse(), to.get_untracked().parse()) { diff.dispatch((a, b)); }
                }>"Compare"</button>
            </div>
            {move || diff.value().get().map(|r| match r {
                Err(e) => view! { <div class="alert error">{e.to_string()}</div> }.into_any(),
                Ok(changes) => view! { <DiffView changes /> }.into_any(),
            })}
            <div class="row-actions">
                <button type="button" class="small" id="export-mapping" on:click=move |_| { export.dispatch(()); }>"Export the latest version"</button>
                {move || export.value().get().map(|r| match r {
                    Err(e) => view! { <span class="field-error">{e.to_string()}</span> }.into_any(),
                    Ok(doc) => {
                        let href = format!("data:application/json;charset=utf-8,{}", urlencoding(&doc));
                        view! { <a href=href download="mapping.json" id="export-link">"Download mapping.json"</a> }.into_any()
                    }
                })}
            </div>
            <details>
                <summary>"Import a mapping"</summary>
                <p class="muted small">"Paste an exported document; it is saved as the next version."</p>
                <textarea id="import-document" rows="6" on:input=move |ev| document.set(event_target_value(&ev))></textarea>
                <button type="button" class="small" id="import-mapping" on:click=move |_| { import.dispatch(document.get_untracked()); }>"Import as a new version"</button>
                {move || import.value().get().and_then(|r| r.err()).map(|e| view! { <div class="alert error" role="alert">{e.to_string()}</div> })}
            </details>
        </section>
    }
}

/// Percent-encodes text for a `data:` link.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
fn VersionList(items: Vec<MappingVersionSummary>, total: u64) -> impl IntoView {
    view! {
        <table class="data compact" id="version-list">
            <thead><tr><th class="num">"Version"</th><th>"Saved"</th><th>"By"</th><th class="num">"Rules"</th><th>"Note"</th></tr></thead>
            <tbody>
                {items.into_iter().map(|v| view! {
                    <tr>
                        <td class="num">{v.version}</td>
                        <td>{format_time(v.created_at)}</td>
                        <td>{v.created_by_email.unwrap_or_default()}</td>
                        <td class="num">{v.rules}</td>
                        <td>{v.note}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {(total > 10).then(|| view! { <p class="muted small">{format!("The 10 latest of {total}; all are in the API.")}</p> })}
    }
    .into_any()
}

/// A rule on one line: target, source, transforms and checks.
fn summary(rule: &Rule) -> String {
    let mut line = format!("{} ← {}", rule.target, rule.source);
    for t in &rule.transforms {
        line.push_str(&format!(" | {}", describe(t)));
    }
    if rule.required {
        line.push_str(" [required]");
    }
    if rule.unique {
        line.push_str(" [unique]");
    }
    if let Some(max) = rule.max_length {
        line.push_str(&format!(" [max {max}]"));
    }
    line
}

#[component]
fn DiffView(changes: Vec<RuleChange>) -> impl IntoView {
    if changes.is_empty() {
        return view! { <p class="muted" id="diff">"No differences."</p> }.into_any();
    }
    view! {
        <ul id="diff" class="diff">
            {changes.into_iter().map(|c| match c {
                RuleChange::Added { rule } => view! { <li class="added">"Added: "<code>{summary(&rule)}</code></li> }.into_any(),
                RuleChange::Removed { rule } => view! { <li class="removed">"Removed: "<code>{summary(&rule)}</code></li> }.into_any(),
                RuleChange::Changed { before, after } => view! {
                    <li class="changed">"Changed: "<code>{summary(&before)}</code>" → "<code>{summary(&after)}</code></li>
                }.into_any(),
            }).collect_view()}
        </ul>
    }
    .into_any()
}
