//! The Uploads stage: send exports (file picker or drag and drop, several at once, each
//! with a progress bar), follow their reading, and see what could not be read.

use crate::{
    api::uploads::{list_uploads, upload_errors},
    components::{format_time, forms::LoadError, grouped, layout::current_account},
};
use domain::{
    roles::Permission,
    uploads::{LiveProgress, Upload, UploadStatus},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// A file on its way up.
#[derive(Clone, Debug, PartialEq)]
struct Sending {
    name: String,
    /// Share sent, 0 to 1.
    sent: f64,
    outcome: Option<Result<(), String>>,
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

#[component]
pub fn UploadsPage() -> impl IntoView {
    let params = use_params_map();
    let project = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let refresh = RwSignal::new(0u32);
    let uploads = Resource::new(
        move || (project.get(), refresh.get()),
        |(p, _)| list_uploads(p, None),
    );
    let sending = RwSignal::new(Vec::<Sending>::new());
    // The upload whose errors are shown: its id and file name.
    let selected = RwSignal::new(None::<(String, String)>);
    // The upload being read again with chosen settings.
    let reading = RwSignal::new(None::<(String, String)>);
    let me = current_account();

    // Reading progress arrives as server-sent events; the list is loaded again only
    // when an upload settles (or the stream reconnects and may have missed one).
    let live = RwSignal::new(Vec::<LiveProgress>::new());
    Effect::new(move |_| {
        let project = project.get();
        #[cfg(feature = "hydrate")]
        follow(&project, live, refresh);
        #[cfg(not(feature = "hydrate"))]
        let _ = (project, live);
    });

    let take_files = move |files: web_sys::FileList| {
        #[cfg(feature = "hydrate")]
        {
            let project = project.get_untracked();
            let first = sending.with_untracked(Vec::len);
            let files: Vec<web_sys::File> =
                (0..files.length()).filter_map(|i| files.get(i)).collect();
            sending.update(|list| {
                list.extend(files.iter().map(|f| Sending {
                    name: f.name(),
                    sent: 0.0,
                    outcome: None,
                }));
            });
            for (offset, file) in files.into_iter().enumerate() {
                send(&project, file, first + offset, sending, refresh);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (files, sending, refresh);
    };

    view! {
        <Title text="Uploads" />
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let may_upload = me.await.is_ok_and(|a| a.role.allows(Permission::ManageProjects));
                may_upload.then(|| view! {
                    <section class="card">
                        <h2>"Upload exports"</h2>
                        <p class="muted">
                            "CSV, JSON, NDJSON or LDIF from Auth0, Okta, Cognito, Keycloak, Firebase, LDAP or Entra ID, "
                            "plain or as .gz or .zip. Ferry recognizes the format from the content and stores the file encrypted."
                        </p>
                        <label
                            class="dropzone"
                            on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
                            on:drop=move |ev: web_sys::DragEvent| {
                                ev.prevent_default();
                                if let Some(files) = ev.data_transfer().and_then(|d| d.files()) {
                                    take_files(files);
                                }
                            }
                        >
                            <span>"Drop files here, or choose them"</span>
                            <input
                                id="upload-files"
                                type="file"
                                multiple
                                on:change=move |ev| {
                                    let input: web_sys::HtmlInputElement = event_target(&ev);
                                    if let Some(files) = input.files() {
                                        take_files(files);
                                    }
                                    input.set_value("");
                                }
                            />
                        </label>
                        <ul class="plain-list" id="sending">
                            {move || sending.get().into_iter().map(|s| view! {
                                <li>
                                    <span>{s.name.clone()}</span>
                                    {match s.outcome.clone() {
                                        None => view! { <progress max="1" value=s.sent></progress> }.into_any(),
                                        // Sent and kept: whether it reads shows in the table.
                                        Some(Ok(())) => view! { <span class="badge">"Uploaded"</span> }.into_any(),
                                        Some(Err(message)) => view! { <span class="field-error">{message}</span> }.into_any(),
                                    }}
                                </li>
                            }).collect_view()}
                        </ul>
                    </section>
                })
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="muted">"Loading uploads…"</p> }>
            {move || Suspend::new(async move {
                let role = me.await.ok().map(|a| a.role);
                let may_manage = role.is_some_and(|r| r.allows(Permission::ManageProjects));
                let may_purge = role.is_some_and(|r| r.allows(Permission::PurgeData));
                match uploads.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! { <p class="muted">"No exports uploaded yet."</p> }.into_any(),
                    Ok(page) => view! {
                        <div class="table-wrap">
                            <table class="data" id="uploads">
                                <thead>
                                    <tr>
                                        <th scope="col">"File"</th>
                                        <th scope="col">"Format"</th>
                                        <th scope="col">"Status"</th>
                                        <th scope="col">"Records"</th>
                                        <th scope="col">"New · changed · missing"</th>
                                        <th scope="col">"Not read"</th>
                                        <th scope="col">"Uploaded"</th>
                                        {may_manage.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                                    </tr>
                                </thead>
                                <tbody>
                                    {page.items.into_iter().map(|u| view! { <UploadRow upload=u selected live reading may_manage may_purge refresh /> }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
        {move || reading.get().map(|(id, name)| view! { <ReadAgainPanel upload=id file_name=name reading refresh /> }.into_any())}
        {move || selected.get().map(|(id, name)| view! { <ErrorsPanel upload=id file_name=name /> }.into_any())}
    }
}

#[component]
fn UploadRow(
    upload: Upload,
    selected: RwSignal<Option<(String, String)>>,
    live: RwSignal<Vec<LiveProgress>>,
    reading: RwSignal<Option<(String, String)>>,
    may_manage: bool,
    may_purge: bool,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    // Purging the file asks first too; once done, the list is read again.
    let purging = RwSignal::new(false);
    let purge = Action::new(move |(project, upload): &(String, String)| {
        crate::api::plan::purge_upload(project.clone(), upload.clone())
    });
    Effect::new(move |_| {
        if matches!(purge.value().get(), Some(Ok(_))) {
            refresh.update(|n| *n += 1);
        }
    });
    let purge_refused = move || {
        purge
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    let purge_target = (upload.project_id.to_string(), upload.id.to_string());
    let id = upload.id.to_string();
    // Removing asks first, in the row: what goes with it, and a second click.
    let confirming = RwSignal::new(false);
    let refused = RwSignal::new(None::<String>);
    let users = upload.rows_ok;
    let remove_id = id.clone();
    let remove = move |_| {
        #[cfg(feature = "hydrate")]
        remove_upload(&remove_id, refused, refresh);
        #[cfg(not(feature = "hydrate"))]
        let _ = (&remove_id, refused, refresh);
    };
    let name = upload.file_name.clone();
    let purged = upload.purged_at;
    let settled =
        purged.is_none() && matches!(upload.status, UploadStatus::Parsed | UploadStatus::Failed);
    let again = (id.clone(), name.clone());
    let upload_id = upload.id;
    let (saved_bytes, saved_rows, size_bytes) =
        (upload.bytes_read, upload.rows_ok, upload.size_bytes);
    // While it is read, the row follows the live counters rather than the saved ones.
    let now = move || live.with(|l| l.iter().find(|p| p.upload_id == upload_id).cloned());
    let progress_view = move || {
        let (fraction, bytes, rows, rate) = match now() {
            Some(p) => (
                p.fraction(),
                p.bytes_read,
                p.rows_ok + p.rows_failed,
                Some(p.records_per_second()),
            ),
            None => (
                saved_bytes as f64 / size_bytes.max(1) as f64,
                saved_bytes,
                saved_rows,
                None,
            ),
        };
        view! {
            <progress max="1" value=fraction.min(1.0)></progress>
            <span class="muted small live-progress">
                {format!(" {} read · {} records", size(bytes), grouped(rows))}
                {rate.map(|r| format!(" · {} records/s", grouped(r.round() as u64)))}
            </span>
        }
    };
    let status = match upload.status {
        _ if purged.is_some() => view! {
            <span class="badge muted" title=purged.map(format_time).unwrap_or_default()>"Purged"</span>
        }
        .into_any(),
        UploadStatus::Stored => view! {
            {move || match now() {
                Some(_) => progress_view().into_any(),
                None => view! { <span class="badge">"Waiting"</span> }.into_any(),
            }}
        }
        .into_any(),
        UploadStatus::Parsing => progress_view.into_any(),
        UploadStatus::Parsed => view! { <span class="badge ok">"Read"</span> }.into_any(),
        UploadStatus::Failed => view! {
            <span class="badge error">"Not readable"</span>
            <p class="field-error">{upload.error.clone().unwrap_or_default()}</p>
        }
        .into_any(),
    };
    let format = match (&upload.format, &upload.source) {
        (Some(f), Some(s)) => format!("{} · {}", f.to_uppercase(), s.replace('_', " ")),
        _ => "—".into(),
    };
    let failed = upload.rows_failed;
    // Compared with the project's earlier records only once it is read: a file that
    // could not be read changed nothing (its "missing" would read as users vanished).
    let compared = match upload.status {
        UploadStatus::Parsed => format!(
            "{} · {} · {}",
            upload.records_new, upload.records_changed, upload.records_missing
        ),
        UploadStatus::Failed => "— (not read)".to_string(),
        UploadStatus::Stored | UploadStatus::Parsing => "—".to_string(),
    };
    view! {
        <tr>
            <td>{upload.file_name.clone()}<br /><span class="muted small">{size(upload.size_bytes)}</span></td>
            <td>{format}</td>
            <td>{status}</td>
            <td class="records">{move || now().map_or(saved_rows, |p| p.rows_ok)}</td>
            <td class="compared">{compared}</td>
            <td>
                {if failed == 0 {
                    view! { <span>"0"</span> }.into_any()
                } else {
                    view! {
                        <button type="button" class="link-button" on:click=move |_| selected.set(Some((id.clone(), name.clone())))>
                            {format!("{failed} — show")}
                        </button>
                    }
                    .into_any()
                }}
            </td>
            <td class="nowrap">{format_time(upload.created_at)}</td>
            {may_manage.then(|| view! {
                <td class="upload-actions">
                    {settled.then(|| view! {
                        <button type="button" class="link-button" on:click=move |_| reading.set(Some(again.clone()))>
                            "Read again…"
                        </button>
                        " "
                        <button type="button" class="link-button remove-upload" on:click=move |_| confirming.set(true)>
                            "Remove…"
                        </button>
                    })}
                    {(settled && may_purge).then(|| view! {
                        " "
                        <button type="button" class="link-button purge-upload" on:click=move |_| purging.set(true)>
                            "Purge file…"
                        </button>
                    })}
                    {move || purging.get().then(|| {
                        let target = purge_target.clone();
                        view! {
                            <div class="confirm-remove" role="alert">
                                <p class="small">"Destroy this export's file, and the records whose newest version it brought? Records a later upload brought again stay. The upload stays listed as purged."</p>
                                <button type="button" class="danger small confirm-purge-button" on:click=move |_| { purge.dispatch(target.clone()); }>"Purge"</button>
                                " "
                                <button type="button" class="secondary small" on:click=move |_| purging.set(false)>"Keep it"</button>
                            </div>
                        }
                    })}
                    {move || purge_refused().map(|why| view! { <p class="field-error">{why}</p> })}
                    {move || confirming.get().then(|| {
                        let remove = remove.clone();
                        view! {
                            <div class="confirm-remove" role="alert">
                                <p class="small">{if users == 0 {
                                    "Remove this upload? No user was read from it.".to_string()
                                } else {
                                    format!("Remove this upload and the {} users only it delivered?", grouped(users))
                                }}</p>
                                <button type="button" class="danger small confirm-remove-button" on:click=remove>"Remove"</button>
                                " "
                                <button type="button" class="secondary small" on:click=move |_| { confirming.set(false); refused.set(None); }>"Keep it"</button>
                            </div>
                        }
                    })}
                    {move || refused.get().map(|why| view! { <p class="field-error">{why}</p> })}
                </td>
            })}
        </tr>
    }
    // Erased: the row's full type overflows the compiler's depth limit in the table.
    .into_any()
}

#[component]
fn ErrorsPanel(upload: String, file_name: String) -> impl IntoView {
    let offset = RwSignal::new(0u64);
    let id = upload.clone();
    let errors = Resource::new(
        move || (id.clone(), offset.get()),
        |(id, o)| upload_errors(id, Some(o)),
    );
    let download = format!("/uploads/{upload}/errors.csv");
    view! {
        <section class="card" id="upload-errors">
            <div class="page-head">
                <h2>{format!("What could not be read in {file_name}")}</h2>
                <a class="button" href=download download="">"Download CSV"</a>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match errors.await {
                        Err(error) => view! { <LoadError error /> }.into_any(),
                        Ok(page) => {
                            let (shown, total, at, limit) = (page.items.len() as u64, page.total, page.offset, u64::from(page.limit));
                            view! {
                                <div class="table-wrap">
                                    <table class="data">
                                        <thead><tr><th scope="col">"Where"</th><th scope="col">"Field"</th><th scope="col">"Why"</th></tr></thead>
                                        <tbody>
                                            {page.items.into_iter().map(|e| view! {
                                                <tr><td class="nowrap">{e.location}</td><td>{e.field.unwrap_or_default()}</td><td>{e.reason}</td></tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                <nav class="pager">
                                    <span class="muted">{format!("{}–{} of {total}", at + 1, at + shown)}</span>
                                    {(at > 0).then(|| view! { <button type="button" class="link-button" on:click=move |_| offset.set(at.saturating_sub(limit))>"← Previous"</button> })}
                                    {(at + shown < total).then(|| view! { <button type="button" class="link-button" on:click=move |_| offset.set(at + limit)>"Next →"</button> })}
                                </nav>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// Reading an upload again with a chosen format, or with the password hash parameters
/// a Firebase export needs (from the Firebase console: Authentication → Users → ⋮ →
/// Password hash parameters). Sent to `POST /uploads/{id}/read`.
#[component]
fn ReadAgainPanel(
    upload: String,
    file_name: String,
    reading: RwSignal<Option<(String, String)>>,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let format = RwSignal::new(String::new());
    let source = RwSignal::new("generic".to_string());
    let delimiter = RwSignal::new(",".to_string());
    let encoding = RwSignal::new("utf-8".to_string());
    let signer_key = RwSignal::new(String::new());
    let salt_separator = RwSignal::new(String::new());
    let rounds = RwSignal::new("8".to_string());
    let mem_cost = RwSignal::new("14".to_string());
    let message = RwSignal::new(None::<String>);
    let firebase = move || source.get() == "firebase";
    let target = upload.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut body = serde_json::Map::new();
        if !format.get_untracked().is_empty() {
            body.insert("format".into(), format.get_untracked().into());
            body.insert("source".into(), source.get_untracked().into());
            body.insert("delimiter".into(), delimiter.get_untracked().into());
            body.insert("encoding".into(), encoding.get_untracked().into());
        }
        if source.get_untracked() == "firebase" || !signer_key.get_untracked().is_empty() {
            let number = |s: RwSignal<String>| s.get_untracked().trim().parse::<u32>().ok();
            let (Some(r), Some(m)) = (number(rounds), number(mem_cost)) else {
                message.set(Some("Rounds and memory cost are whole numbers.".into()));
                return;
            };
            body.insert(
                "firebase".into(),
                serde_json::json!({
                    "signer_key": signer_key.get_untracked(),
                    "salt_separator": salt_separator.get_untracked(),
                    "rounds": r,
                    "mem_cost": m,
                }),
            );
        }
        #[cfg(feature = "hydrate")]
        read_again(
            &target,
            serde_json::Value::Object(body),
            message,
            reading,
            refresh,
        );
        #[cfg(not(feature = "hydrate"))]
        let _ = (body, &target, reading, refresh);
    };
    view! {
        <section class="card" id="read-again">
            <div class="page-head">
                <h2>{format!("Read {file_name} again")}</h2>
                <button type="button" class="link-button" on:click=move |_| reading.set(None)>"Close"</button>
            </div>
            <p class="muted">
                "Ferry recognizes formats from the content. Choose one here when it guessed wrong; "
                "records already read are updated by their source id, nothing is counted twice."
            </p>
            <form on:submit=submit>
                <label>"Format"
                    <select id="read-format" on:change=move |ev| format.set(event_target_value(&ev))>
                        <option value="" selected>"Recognize from the content"</option>
                        <option value="csv">"CSV"</option>
                        <option value="json">"JSON"</option>
                        <option value="ndjson">"NDJSON (one object per line)"</option>
                        <option value="ldif">"LDIF"</option>
                    </select>
                </label>
                <label>"Source"
                    <select id="read-source" on:change=move |ev| source.set(event_target_value(&ev))>
                        <option value="generic" selected>"Generic"</option>
                        <option value="auth0">"Auth0"</option>
                        <option value="okta">"Okta"</option>
                        <option value="cognito">"AWS Cognito"</option>
                        <option value="keycloak">"Keycloak"</option>
                        <option value="firebase">"Firebase"</option>
                        <option value="ldap">"LDAP"</option>
                        <option value="entra_id">"Microsoft Entra ID"</option>
                    </select>
                </label>
                <Show when=move || format.get() == "csv">
                    <label>"Delimiter"
                        <select id="read-delimiter" on:change=move |ev| delimiter.set(event_target_value(&ev))>
                            <option value="," selected>"Comma"</option>
                            <option value=";">"Semicolon"</option>
                            <option value="tab">"Tab"</option>
                            <option value="|">"Pipe"</option>
                        </select>
                    </label>
                </Show>
                <Show when=move || !format.get().is_empty()>
                    <label>"Text encoding"
                        <select id="read-encoding" on:change=move |ev| encoding.set(event_target_value(&ev))>
                            <option value="utf-8" selected>"UTF-8"</option>
                            <option value="utf-16le">"UTF-16 LE"</option>
                            <option value="utf-16be">"UTF-16 BE"</option>
                            <option value="latin1">"Latin-1 (Windows-1252)"</option>
                        </select>
                    </label>
                </Show>
                <Show when=firebase>
                    <fieldset>
                        <legend>"Firebase password hash parameters"</legend>
                        <p class="muted small">"From the Firebase console: Authentication → Users → ⋮ → Password hash parameters. Ferry keeps them encrypted with this project, for its later Firebase uploads."</p>
                        <label>"Signer key (base64)"
                            <input id="firebase-signer-key" type="password" autocomplete="off" required
                                on:input=move |ev| signer_key.set(event_target_value(&ev)) />
                        </label>
                        <label>"Salt separator (base64)"
                            <input id="firebase-salt-separator" type="text" autocomplete="off" required
                                on:input=move |ev| salt_separator.set(event_target_value(&ev)) />
                        </label>
                        <label>"Rounds"
                            <input id="firebase-rounds" type="text" inputmode="numeric" prop:value=move || rounds.get()
                                on:input=move |ev| rounds.set(event_target_value(&ev)) />
                        </label>
                        <label>"Memory cost"
                            <input id="firebase-mem-cost" type="text" inputmode="numeric" prop:value=move || mem_cost.get()
                                on:input=move |ev| mem_cost.set(event_target_value(&ev)) />
                        </label>
                    </fieldset>
                </Show>
                {move || message.get().map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                <button type="submit" class="primary">"Read again"</button>
            </form>
        </section>
    }
    .into_any()
}

/// Why the server refused a request: its `{"error": {"message", "field"}}`, or what
/// failed and the HTTP status when the answer says nothing.
#[cfg(feature = "hydrate")]
fn refusal(xhr: &web_sys::XmlHttpRequest, what: &str) -> String {
    let body = xhr.response_text().ok().flatten().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let message = v["error"]["message"].as_str()?;
            Some(match v["error"]["field"].as_str() {
                Some(field) if field != "body" => format!("{field}: {message}"),
                _ => message.to_string(),
            })
        })
        .unwrap_or_else(|| format!("{what} (HTTP {})", xhr.status().unwrap_or(0)))
}

/// Asks the server to remove the upload; on success reloads the list, else says why.
#[cfg(feature = "hydrate")]
fn remove_upload(upload: &str, refused: RwSignal<Option<String>>, refresh: RwSignal<u32>) {
    use wasm_bindgen::{JsCast, closure::Closure};
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        return;
    };
    if xhr
        .open_with_async("POST", &format!("/uploads/{upload}/remove"), true)
        .is_err()
    {
        return;
    }
    let done_xhr = xhr.clone();
    let done = Closure::<dyn FnMut()>::new(move || {
        if done_xhr.status().unwrap_or(0) == 204 {
            refresh.update(|n| *n += 1);
            return;
        }
        refused.set(Some(refusal(&done_xhr, "removing failed")));
    });
    xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
    done.forget();
    let _ = xhr.send();
}

/// Posts the read request; on success closes the panel and reloads the list.
#[cfg(feature = "hydrate")]
fn read_again(
    upload: &str,
    body: serde_json::Value,
    message: RwSignal<Option<String>>,
    reading: RwSignal<Option<(String, String)>>,
    refresh: RwSignal<u32>,
) {
    use wasm_bindgen::{JsCast, closure::Closure};
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        return;
    };
    if xhr
        .open_with_async("POST", &format!("/uploads/{upload}/read"), true)
        .is_err()
    {
        return;
    }
    let _ = xhr.set_request_header("content-type", "application/json");
    let done_xhr = xhr.clone();
    let done = Closure::<dyn FnMut()>::new(move || {
        let status = done_xhr.status().unwrap_or(0);
        if status == 202 {
            reading.set(None);
            refresh.update(|n| *n += 1);
            return;
        }
        message.set(Some(refusal(&done_xhr, "reading again failed")));
    });
    xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
    done.forget();
    let _ = xhr.send_with_opt_str(Some(&body.to_string()));
}

/// Follows the project's reading progress over server-sent events until the page or
/// project changes; an upload that settled (or a reconnect, after which some may have
/// settled unseen) reloads the list.
#[cfg(feature = "hydrate")]
fn follow(project: &str, live: RwSignal<Vec<LiveProgress>>, refresh: RwSignal<u32>) {
    use crate::live::{Next, follow};
    if project.is_empty() {
        return;
    }
    let reload = move || refresh.update(|n| *n += 1);
    follow(
        &format!("/projects/{project}/uploads/events"),
        move |list: Vec<LiveProgress>| {
            live.set(list);
            Next::Listen
        },
        move |_| {
            reload();
            Next::Listen
        },
        reload,
    );
}

/// Sends one file with XMLHttpRequest, whose upload events give the progress bar.
#[cfg(feature = "hydrate")]
fn send(
    project: &str,
    file: web_sys::File,
    index: usize,
    sending: RwSignal<Vec<Sending>>,
    refresh: RwSignal<u32>,
) {
    use wasm_bindgen::{JsCast, closure::Closure};
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        return;
    };
    let name: String = js_sys::encode_uri_component(&file.name()).into();
    if xhr
        .open_with_async(
            "POST",
            &format!("/uploads/{project}?file_name={name}"),
            true,
        )
        .is_err()
    {
        return;
    }
    let set = move |f: &dyn Fn(&mut Sending)| {
        sending.update(|list| {
            if let Some(item) = list.get_mut(index) {
                f(item);
            }
        });
    };
    if let Ok(upload) = xhr.upload() {
        let progress =
            Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
                if e.length_computable() && e.total() > 0.0 {
                    set(&|s| s.sent = e.loaded() / e.total());
                }
            });
        upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        progress.forget();
    }
    let done_xhr = xhr.clone();
    let done = Closure::<dyn FnMut()>::new(move || {
        let status = done_xhr.status().unwrap_or(0);
        let outcome = if status == 201 {
            Ok(())
        } else {
            Err(refusal(&done_xhr, "the upload failed"))
        };
        set(&|s| {
            s.sent = 1.0;
            s.outcome = Some(outcome.clone());
        });
        refresh.update(|n| *n += 1);
    });
    xhr.set_onloadend(Some(done.as_ref().unchecked_ref()));
    done.forget();
    let _ = xhr.send_with_opt_blob(Some(&file));
}
