//! The page for addresses that lead nowhere.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <main class="auth">
            <section class="card auth-card">
                <h1>"Nothing here"</h1>
                <p>"This address does not lead to a page of Ferry."</p>
                <p>
                    <a href="/">"Go to your projects"</a>
                </p>
            </section>
        </main>
    }
}
