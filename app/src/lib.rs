//! Ferry's user interface: the HTML shell, the routes, and the hydration entry point.
//! Pages live in `pages/`, shared pieces in `components/`, server functions in `api/`.

pub mod api;
pub mod components;
pub mod error;
pub mod live;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path,
};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// A strict policy: scripts only from Ferry itself or carrying this response's nonce
/// (the hydration bootstrap), wasm compilation allowed, no framing, no plugins.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use http::{HeaderValue, header::CONTENT_SECURITY_POLICY};
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: the mark tells people and tests that the page
    // is interactive.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/ferry.css" />
        <Title formatter=|text: String| {
            if text.is_empty() { "Ferry".to_string() } else { format!("{text} · Ferry") }
        } />
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/login") view=pages::login::LoginPage />
                <Route path=path!("/setup") view=pages::setup::SetupPage />
                <Route path=path!("/invite/:token") view=pages::invite::InvitePage />
                <ParentRoute path=path!("") view=components::layout::Layout>
                    <Route path=path!("") view=pages::projects::ProjectsPage />
                    <Route path=path!("projects/new") view=pages::projects::NewProjectPage />
                    <ParentRoute path=path!("projects/:id") view=pages::project::ProjectLayout>
                        <Route path=path!("") view=pages::project::ProjectOverview />
                        <Route path=path!("target") view=pages::target::TargetPage />
                        <Route path=path!("uploads") view=pages::uploads::UploadsPage />
                        <Route path=path!("assessment") view=pages::assessment::AssessmentPage />
                        <Route path=path!("assessment/findings") view=pages::assessment::FindingsPage />
                        <Route path=path!("goals") view=pages::goals::GoalsPage />
                        <Route path=path!("mapping") view=pages::mapping::MappingPage />
                        <Route path=path!("plan") view=pages::plan::PlanPage />
                        <Route path=path!("plan/print") view=pages::plan::PlanPrintPage />
                        <Route path=path!("report") view=pages::report::ReportPage />
                        <Route path=path!("runs") view=pages::runs::RunsPage />
                        <Route path=path!("runs/:run") view=pages::runs::RunPage />
                        <Route path=path!("passwords") view=pages::passwords::PasswordsPage />
                        <Route path=path!("review") view=pages::review::ReviewPage />
                        <Route path=path!("review/record") view=pages::review::RecordPage />
                        <Route path=path!("activity") view=pages::project::ProjectActivity />
                    </ParentRoute>
                    <Route path=path!("members") view=pages::members::MembersPage />
                    <Route path=path!("audit") view=pages::audit::AuditLogPage />
                    <Route path=path!("settings/tokens") view=pages::tokens::TokensPage />
                    <Route path=path!("account") view=pages::account::AccountPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
