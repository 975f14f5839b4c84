//! First start: the owner account is created with the one-time token from the log.

use crate::{
    api::auth::CompleteSetup,
    components::forms::{FieldError, FormError, action_error},
    pages::login::PasswordInput,
};
use domain::accounts::MIN_PASSWORD_CHARS;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SetupPage() -> impl IntoView {
    let setup = ServerAction::<CompleteSetup>::new();
    let error = action_error(setup);
    view! {
        <Title text="Set up" />
        <main class="auth">
            <section class="card auth-card">
                <p class="brand"><img class="brand-mark" src="/favicon.svg" alt="" width="22" height="22" />"Ferry"</p>
                <h1>"Set up Ferry"</h1>
                <p>
                    "Create the owner account. The owner manages members and can do everything. "
                    "To prove you run this server, enter the setup token that Ferry printed in its log when it started."
                </p>
                <ActionForm action=setup>
                    <label for="setup_token">"Setup token"</label>
                    <input id="setup_token" name="setup_token" type="text" autocomplete="off" spellcheck="false" required />
                    <FieldError error field="setup_token" />
                    <label for="display_name">"Your name"</label>
                    <input id="display_name" name="display_name" type="text" autocomplete="name" required />
                    <FieldError error field="display_name" />
                    <label for="email">"E-mail address"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required />
                    <FieldError error field="email" />
                    <label for="password">"Password"</label>
                    <PasswordInput id="password" name="password" autocomplete="new-password" minlength=MIN_PASSWORD_CHARS />
                    <p class="hint">{format!("At least {MIN_PASSWORD_CHARS} characters; a few unrelated words work well.")}</p>
                    <FieldError error field="password" />
                    <label for="confirm_password">"Password again"</label>
                    <PasswordInput id="confirm_password" name="confirm_password" autocomplete="new-password" />
                    <FieldError error field="confirm" />
                    <FormError error />
                    <button type="submit" class="primary" disabled=move || setup.pending().get()>
                        "Create owner account"
                    </button>
                </ActionForm>
            </section>
        </main>
    }
}
