//! Form feedback: an error beside its field, a banner for errors of the whole form,
//! and a panel for a page whose data could not be loaded.

use crate::error::AppError;
use leptos::prelude::*;

/// The message of `error` for `field`, shown under the field and linked by id.
#[component]
pub fn FieldError(
    #[prop(into)] error: Signal<Option<AppError>>,
    field: &'static str,
) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.for_field(field)).map(|message| {
            view! {
                <p class="field-error" id=format!("{field}-error") role="alert">
                    {message}
                </p>
            }
        })
    }
}

/// An error of the whole form (wrong password, no permission, conflict).
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().and_then(|e| e.general()).map(|message| {
            view! {
                <div class="alert error" role="alert">
                    {message}
                </div>
            }
        })
    }
}

/// The error of a server action, as a signal for the two components above.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(|r| r.err()))
}

/// The version of the action's last completion that succeeded: what a resource holding
/// a form refetches on. Keyed on every completion instead, a refused submit would draw
/// the form again from what is stored and throw away what was being entered.
pub fn succeeded<I, O>(action: ServerAction<I>) -> Memo<usize>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Memo::new(move |last: Option<&usize>| {
        let last = last.copied().unwrap_or(0);
        if action.pending().get() {
            return last;
        }
        match action.value().with(|v| matches!(v, Some(Ok(_)))) {
            true => action.version().get(),
            false => last,
        }
    })
}

/// Shown in place of a page's content when loading it failed.
#[component]
pub fn LoadError(error: AppError) -> impl IntoView {
    let signed_out = error.is_unauthenticated();
    let message = error
        .general()
        .or_else(|| Some(error.to_string()))
        .unwrap_or_default();
    view! {
        <div class="alert error" role="alert">
            <p>{message}</p>
            {signed_out.then(|| view! { <p><a href="/login">"Sign in again"</a></p> })}
        </div>
    }
}
