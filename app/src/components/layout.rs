//! The frame of every signed-in page: top bar, navigation by role, sign-out.

use crate::{
    api::auth::{SignOut, whoami},
    components::forms::LoadError,
    error::AppError,
};
use domain::{accounts::Account, roles::Permission};
use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

/// The signed-in account, loaded once by the layout and read by the pages.
#[derive(Clone, Copy)]
pub struct CurrentAccount(pub Resource<Result<Account, AppError>>);

/// The current account's resource; pages `.await` it inside `Suspend`.
pub fn current_account() -> Resource<Result<Account, AppError>> {
    match use_context::<CurrentAccount>() {
        Some(current) => current.0,
        None => Resource::new(|| (), |_| whoami()),
    }
}

#[component]
pub fn Layout() -> impl IntoView {
    let me = Resource::new(|| (), |_| whoami());
    provide_context(CurrentAccount(me));
    let menu_open = RwSignal::new(false);
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <div class="app">
            <header class="topbar">
                <a class="brand" href="/">
                    <img class="brand-mark" src="/favicon.svg" alt="" width="22" height="22" />
                    "Ferry"
                </a>
                <button
                    type="button"
                    class="menu-toggle"
                    aria-controls="main-nav"
                    aria-expanded=move || menu_open.get().to_string()
                    on:click=move |_| menu_open.update(|open| *open = !*open)
                >
                    "Menu"
                </button>
                <nav
                    id="main-nav"
                    class="main-nav"
                    class:open=move || menu_open.get()
                    aria-label="Main"
                >
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            match me.await {
                                Ok(account) => {
                                    view! { <NavLinks account sign_out /> }.into_any()
                                }
                                Err(_) => view! { <a href="/login">"Sign in"</a> }.into_any(),
                            }
                        })}
                    </Transition>
                </nav>
            </header>
            <main class="content" id="content">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match me.await {
                            Err(error) => Some(view! { <LoadError error /> }),
                            Ok(_) => None,
                        }
                    })}
                </Transition>
                <Outlet />
            </main>
        </div>
    }
}

#[component]
fn NavLinks(account: Account, sign_out: ServerAction<SignOut>) -> impl IntoView {
    let role = account.role;
    view! {
        <A href="/" exact=true>
            "Projects"
        </A>
        {role
            .allows(Permission::ViewAudit)
            .then(|| view! { <A href="/audit">"Audit log"</A> })}
        {role
            .allows(Permission::ManageMembers)
            .then(|| view! { <A href="/members">"Members"</A> })}
        {role
            .allows(Permission::ManageApiTokens)
            .then(|| view! { <A href="/settings/tokens">"API tokens"</A> })}
        <span class="spacer"></span>
        <A href="/account">
            <span class="who">{account.display_name}</span>
            <span class="badge">{role.label()}</span>
        </A>
        <ActionForm action=sign_out attr:class="inline-form">
            <button type="submit" class="link-button">
                "Sign out"
            </button>
        </ActionForm>
    }
}
