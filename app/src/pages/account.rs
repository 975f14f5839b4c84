//! The signed-in person's own account: who they are and a password change.

use crate::{
    api::auth::ChangePassword,
    components::{
        format_optional_time,
        forms::{FieldError, FormError, LoadError, action_error},
        layout::current_account,
    },
    pages::login::PasswordInput,
};
use domain::accounts::MIN_PASSWORD_CHARS;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AccountPage() -> impl IntoView {
    let me = current_account();
    let change = ServerAction::<ChangePassword>::new();
    let error = action_error(change);
    let done = move || matches!(change.value().get(), Some(Ok(())));
    view! {
        <Title text="Your account" />
        <h1>"Your account"</h1>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Err(error) => view! { <LoadError error /> }.into_any(),
                    Ok(account) => view! {
                        <dl class="facts card">
                            <dt>"Name"</dt><dd>{account.display_name}</dd>
                            <dt>"E-mail"</dt><dd>{account.email}</dd>
                            <dt>"Role"</dt><dd>{account.role.label()}</dd>
                            <dt>"Last sign-in"</dt><dd>{format_optional_time(account.last_sign_in_at)}</dd>
                        </dl>
                    }.into_any(),
                }
            })}
        </Transition>
        <section class="card">
            <h2>"Change password"</h2>
            <p class="muted">"Your other sessions end when the password changes."</p>
            <ActionForm action=change>
                <label for="current_password">"Current password"</label>
                <PasswordInput id="current_password" name="current_password" autocomplete="current-password" />
                <FieldError error field="current_password" />
                <label for="password">"New password"</label>
                <PasswordInput id="password" name="password" autocomplete="new-password" minlength=MIN_PASSWORD_CHARS />
                <FieldError error field="password" />
                <label for="confirm_password">"New password again"</label>
                <PasswordInput id="confirm_password" name="confirm_password" autocomplete="new-password" />
                <FieldError error field="confirm" />
                <FormError error />
                {move || done().then(|| view! { <div class="alert success" role="status">"Password changed."</div> })}
                <button type="submit" class="primary" disabled=move || change.pending().get()>"Change password"</button>
            </ActionForm>
        </section>
    }
}
