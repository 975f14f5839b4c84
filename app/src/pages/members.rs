//! Members: the owner invites people, sets their roles, lets support staff see personal
//! data unmasked, and disables accounts.

use crate::{
    api::{
        InviteLink,
        members::{ChangeRole, InviteMember, ReissueInvite, SetMemberEnabled, list_members},
        review::{SetPersonalDataGrant, personal_data_grants},
    },
    components::{
        format_optional_time,
        forms::{FieldError, FormError, LoadError, action_error},
        pager::Pager,
    },
    error::AppError,
};
use domain::{
    accounts::{Account, AccountStatus},
    roles::Role,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn members_href(offset: u64, _: &str) -> String {
    format!("/members?offset={offset}")
}

/// Shows a freshly made invite link once, with what to do with it.
#[component]
fn LinkNotice(link: Signal<Option<Result<InviteLink, AppError>>>) -> impl IntoView {
    move || {
        link.get().and_then(|r| r.ok()).map(|invite| {
            view! {
                <div class="alert success" role="status" id="invite-link">
                    <p>
                        "Send this link to " <strong>{invite.email}</strong>
                        " over a channel you trust. It works once, until "
                        {crate::components::format_time(invite.expires_at)} "."
                    </p>
                    <code class="secret">{invite.link}</code>
                </div>
            }
        })
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    let query = use_query_map();
    let offset = move || {
        query
            .read()
            .get("offset")
            .and_then(|o| o.parse::<u64>().ok())
    };
    let invite = ServerAction::<InviteMember>::new();
    let reissue = ServerAction::<ReissueInvite>::new();
    let role = ServerAction::<ChangeRole>::new();
    let enabled = ServerAction::<SetMemberEnabled>::new();
    let grant = ServerAction::<SetPersonalDataGrant>::new();
    let grants = Resource::new(move || grant.version().get(), |_| personal_data_grants());
    let members = Resource::new(
        move || {
            (
                offset(),
                invite.version().get(),
                role.version().get(),
                enabled.version().get(),
            )
        },
        |(offset, ..)| list_members(offset),
    );
    let invite_error = action_error(invite);
    let row_errors = Signal::derive(move || {
        action_error(role)
            .get()
            .or_else(|| action_error(enabled).get())
            .or_else(|| action_error(reissue).get())
            .or_else(|| action_error(grant).get())
    });
    view! {
        <Title text="Members" />
        <h1>"Members"</h1>
        <section class="card">
            <h2>"Invite a member"</h2>
            <ActionForm action=invite attr:class="grid-form">
                <div>
                    <label for="invite-name">"Name"</label>
                    <input id="invite-name" name="display_name" type="text" required />
                    <FieldError error=invite_error field="display_name" />
                </div>
                <div>
                    <label for="invite-email">"E-mail address"</label>
                    <input id="invite-email" name="email" type="email" required />
                    <FieldError error=invite_error field="email" />
                </div>
                <div>
                    <label for="invite-role">"Role"</label>
                    <RoleSelect id="invite-role" selected=Role::Support />
                </div>
                <div class="actions">
                    <button type="submit" class="primary" disabled=move || invite.pending().get()>"Create invite link"</button>
                </div>
            </ActionForm>
            <FormError error=invite_error />
            <LinkNotice link=invite.value().into() />
            <p class="hint">
                "Owners manage members and everything else; administrators run projects, API tokens and read the audit log; "
                "support staff review the projects they are assigned to, with personal data masked unless you let them see it (audited)."
            </p>
        </section>
        <LinkNotice link=reissue.value().into() />
        <FormError error=row_errors />
        <Transition fallback=|| view! { <p class="muted">"Loading members…"</p> }>
            {move || Suspend::new(async move {
                let granted = grants.await.unwrap_or_default();
                match members.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(page) => {
                        let (offset, shown, total, limit) = (page.offset, page.items.len(), page.total, page.limit);
                        view! {
                            <div class="table-wrap">
                                <table class="data" id="members">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Name"</th>
                                            <th scope="col">"E-mail"</th>
                                            <th scope="col">"Role"</th>
                                            <th scope="col">"Status"</th>
                                            <th scope="col">"Last sign-in"</th>
                                            <th scope="col">"Personal data"</th>
                                            <th scope="col">"Actions"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page.items.into_iter().map(|m| {
                                            let sees = granted.contains(&m.id.to_string());
                                            view! { <MemberRow member=m role enabled reissue grant sees /> }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <Pager offset shown total limit href_for=members_href />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn RoleSelect(id: &'static str, selected: Role) -> impl IntoView {
    view! {
        <select id=id name="role">
            {Role::ALL.into_iter().map(|r| view! {
                <option value=r.as_str() selected=r == selected>{r.label()}</option>
            }).collect_view()}
        </select>
    }
}

#[component]
fn MemberRow(
    member: Account,
    role: ServerAction<ChangeRole>,
    enabled: ServerAction<SetMemberEnabled>,
    reissue: ServerAction<ReissueInvite>,
    grant: ServerAction<SetPersonalDataGrant>,
    /// An owner let this member see personal data unmasked.
    sees: bool,
) -> impl IntoView {
    let id = member.id.to_string();
    let id_grant = id.clone();
    let grant_button = format!("grant-{id}");
    let (id_role, id_enabled, id_link) = (id.clone(), id.clone(), id.clone());
    let status = match member.status {
        AccountStatus::Active => view! { <span class="badge ok">"Active"</span> }.into_any(),
        AccountStatus::Invited => view! { <span class="badge warn">"Invited"</span> }.into_any(),
        AccountStatus::Disabled => view! { <span class="badge muted">"Disabled"</span> }.into_any(),
    };
    let disabled = member.status == AccountStatus::Disabled;
    let link_label = if member.status == AccountStatus::Invited {
        "New invite link"
    } else {
        "Password reset link"
    };
    let select_id: &'static str = "role";
    view! {
        <tr>
            <td>{member.display_name.clone()}</td>
            <td>{member.email.clone()}</td>
            <td>
                <ActionForm action=role attr:class="row-form">
                    <input type="hidden" name="id" value=id_role />
                    <select name="role" aria-label=format!("Role of {}", member.display_name) id=format!("{select_id}-{id}")>
                        {Role::ALL.into_iter().map(|r| view! {
                            <option value=r.as_str() selected=r == member.role>{r.label()}</option>
                        }).collect_view()}
                    </select>
                    <button type="submit" class="secondary small">"Change"</button>
                </ActionForm>
            </td>
            <td>{status}</td>
            <td class="nowrap">{format_optional_time(member.last_sign_in_at)}</td>
            <td>
                {if member.role == Role::Support {
                    view! {
                        <ActionForm action=grant attr:class="inline-form">
                            <input type="hidden" name="member" value=id_grant />
                            <input type="hidden" name="granted" value=if sees { "false" } else { "true" } />
                            {if sees { "Shown " } else { "Masked " }}
                            <button type="submit" class="link-button" id=grant_button>{if sees { "Mask again" } else { "Let them see it" }}</button>
                        </ActionForm>
                    }.into_any()
                } else {
                    view! { <span class="muted">"Shown (manages mappings)"</span> }.into_any()
                }}
            </td>
            <td>
                <div class="row-actions">
                <ActionForm action=enabled attr:class="inline-form">
                    <input type="hidden" name="id" value=id_enabled />
                    <input type="hidden" name="enabled" value=if disabled { "true" } else { "false" } />
                    <button type="submit" class="link-button">{if disabled { "Enable" } else { "Disable" }}</button>
                </ActionForm>
                {(!disabled).then(|| view! {
                    <ActionForm action=reissue attr:class="inline-form">
                        <input type="hidden" name="id" value=id_link.clone() />
                        <button type="submit" class="link-button">{link_label}</button>
                    </ActionForm>
                })}
                </div>
            </td>
        </tr>
    }
}
