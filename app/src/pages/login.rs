//! Sign-in.

use crate::{
    api::auth::SignIn,
    components::forms::{FieldError, FormError, action_error},
};
use leptos::prelude::*;
use leptos_meta::Title;

/// A password input with a button that shows what was typed.
#[component]
pub fn PasswordInput(
    id: &'static str,
    name: &'static str,
    autocomplete: &'static str,
    #[prop(optional)] minlength: Option<usize>,
) -> impl IntoView {
    let visible = RwSignal::new(false);
    view! {
        <div class="password-field">
            <input
                id=id
                name=name
                type=move || if visible.get() { "text" } else { "password" }
                autocomplete=autocomplete
                minlength=minlength
                aria-describedby=format!("{name}-error")
                required
            />
            <button
                type="button"
                class="ghost"
                aria-controls=id
                aria-pressed=move || visible.get().to_string()
                on:click=move |_| visible.update(|v| *v = !*v)
            >
                {move || if visible.get() { "Hide" } else { "Show" }}
            </button>
        </div>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    let error = action_error(sign_in);
    view! {
        <Title text="Sign in" />
        <main class="auth">
            <section class="card auth-card">
                <p class="brand"><img class="brand-mark" src="/favicon.svg" alt="" width="22" height="22" />"Ferry"</p>
                <h1>"Sign in"</h1>
                <ActionForm action=sign_in>
                    <label for="email">"E-mail address"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required />
                    <FieldError error field="email" />
                    <label for="password">"Password"</label>
                    <PasswordInput id="password" name="password" autocomplete="current-password" />
                    <FieldError error field="password" />
                    <FormError error />
                    <button type="submit" class="primary" disabled=move || sign_in.pending().get()>
                        {move || if sign_in.pending().get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
                <p class="muted small">
                    "No account? An owner of this Ferry adds members and sends them a link."
                </p>
            </section>
        </main>
    }
}
