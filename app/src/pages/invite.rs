//! A member opens the link the owner gave them and sets a password.

use crate::{
    api::auth::{AcceptInvite, load_invite},
    components::forms::{FieldError, FormError, LoadError, action_error},
    pages::login::PasswordInput,
};
use domain::accounts::MIN_PASSWORD_CHARS;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let info = Resource::new(token, load_invite);
    let accept = ServerAction::<AcceptInvite>::new();
    let error = action_error(accept);
    view! {
        <Title text="Set your password" />
        <main class="auth">
            <section class="card auth-card">
                <p class="brand"><img class="brand-mark" src="/favicon.svg" alt="" width="22" height="22" />"Ferry"</p>
                <Suspense fallback=|| view! { <p class="muted">"Checking the link…"</p> }>
                    {move || Suspend::new(async move {
                        match info.await {
                            Err(error) => view! {
                                <h1>"This link does not work"</h1>
                                <LoadError error />
                                <p>"Ask an owner of this Ferry for a new link."</p>
                            }.into_any(),
                            Ok(info) => view! {
                                <h1>{format!("Welcome, {}", info.display_name)}</h1>
                                <p>
                                    {if info.is_reset { "Choose a new password for " } else { "Choose a password for " }}
                                    <strong>{info.email}</strong>"."
                                </p>
                                <ActionForm action=accept>
                                    <input type="hidden" name="token" value=token() />
                                    <label for="password">"Password"</label>
                                    <PasswordInput id="password" name="password" autocomplete="new-password" minlength=MIN_PASSWORD_CHARS />
                                    <p class="hint">{format!("At least {MIN_PASSWORD_CHARS} characters.")}</p>
                                    <FieldError error field="password" />
                                    <label for="confirm_password">"Password again"</label>
                                    <PasswordInput id="confirm_password" name="confirm_password" autocomplete="new-password" />
                                    <FieldError error field="confirm" />
                                    <FormError error />
                                    <button type="submit" class="primary" disabled=move || accept.pending().get()>
                                        "Set password and sign in"
                                    </button>
                                </ActionForm>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </main>
    }
}
