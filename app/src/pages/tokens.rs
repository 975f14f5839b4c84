//! API tokens: created with a name and a role, shown once, revocable.

use crate::{
    api::tokens::{CreateApiToken, RevokeApiToken, list_api_tokens},
    components::{
        format_optional_time, format_time,
        forms::{FieldError, FormError, LoadError, action_error},
        layout::current_account,
        pager::Pager,
    },
};
use domain::{api_tokens::ApiToken, roles::Role};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn tokens_href(offset: u64, _: &str) -> String {
    format!("/settings/tokens?offset={offset}")
}

#[component]
pub fn TokensPage() -> impl IntoView {
    let query = use_query_map();
    let offset = move || {
        query
            .read()
            .get("offset")
            .and_then(|o| o.parse::<u64>().ok())
    };
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = Resource::new(
        move || (offset(), create.version().get(), revoke.version().get()),
        |(offset, ..)| list_api_tokens(offset),
    );
    let me = current_account();
    let create_error = action_error(create);
    let revoke_error = action_error(revoke);
    view! {
        <Title text="API tokens" />
        <h1>"API tokens"</h1>
        <section class="card">
            <h2>"Create a token"</h2>
            <p class="muted">
                "Automation calls the REST API under /api/v1 with the header "
                <code>"Authorization: Bearer ferry_…"</code>
                ". A token acts for you with at most the role you choose, and never more than yours."
            </p>
            <ActionForm action=create attr:class="grid-form">
                <div>
                    <label for="token-name">"Name"</label>
                    <input id="token-name" name="name" type="text" maxlength="80" placeholder="nightly report" required />
                    <FieldError error=create_error field="name" />
                </div>
                <div>
                    <label for="token-role">"Role"</label>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let mine = me.await.map(|a| a.role).unwrap_or(Role::Support);
                            view! {
                                <select id="token-role" name="role">
                                    {Role::ALL.into_iter().filter(|r| *r <= mine).map(|r| view! {
                                        <option value=r.as_str() selected=r == Role::Support>{r.label()}</option>
                                    }).collect_view()}
                                </select>
                            }
                        })}
                    </Transition>
                    <FieldError error=create_error field="role" />
                </div>
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || create.pending().get()>"Create token"</button>
                </div>
            </ActionForm>
            <FormError error=create_error />
            {move || create.value().get().and_then(|r| r.ok()).map(|issued| view! {
                <div class="alert success" role="status" id="new-token">
                    <p>"Copy the token now: Ferry stores only its hash and cannot show it again."</p>
                    <code class="secret">{issued.secret}</code>
                </div>
            })}
        </section>
        <FormError error=revoke_error />
        <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
            {move || Suspend::new(async move {
                match tokens.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(page) if page.total == 0 => view! { <p class="muted">"No tokens yet."</p> }.into_any(),
                    Ok(page) => {
                        let (offset, shown, total, limit) = (page.offset, page.items.len(), page.total, page.limit);
                        view! {
                            <div class="table-wrap">
                                <table class="data" id="tokens">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Name"</th>
                                            <th scope="col">"Token"</th>
                                            <th scope="col">"Role"</th>
                                            <th scope="col">"Created"</th>
                                            <th scope="col">"Last used"</th>
                                            <th scope="col">"Status"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page.items.into_iter().map(|t| view! { <TokenRow token=t revoke /> }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <Pager offset shown total limit href_for=tokens_href />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn TokenRow(token: ApiToken, revoke: ServerAction<RevokeApiToken>) -> impl IntoView {
    let creator = token.created_by_email.clone().unwrap_or_default();
    view! {
        <tr>
            <td>{token.name.clone()}</td>
            <td><code>{format!("{}…", token.hint)}</code></td>
            <td>{token.role.label()}</td>
            <td class="nowrap">{format_time(token.created_at)}<br /><span class="muted small">{creator}</span></td>
            <td class="nowrap">{format_optional_time(token.last_used_at)}</td>
            <td>
                {match token.revoked_at {
                    Some(at) => view! { <span class="badge muted">{format!("Revoked {}", format_time(at))}</span> }.into_any(),
                    None => view! {
                        <ActionForm action=revoke attr:class="inline-form">
                            <input type="hidden" name="id" value=token.id.to_string() />
                            <button type="submit" class="link-button danger">"Revoke"</button>
                        </ActionForm>
                    }.into_any(),
                }}
            </td>
        </tr>
    }
}
