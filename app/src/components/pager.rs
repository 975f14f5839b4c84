//! Previous / next links for a server-side page of results.

use leptos::prelude::*;

/// `href_for(offset)` builds the link for another page, keeping the page's other filters.
#[component]
pub fn Pager(
    offset: u64,
    shown: usize,
    total: u64,
    limit: u32,
    href_for: fn(u64, &str) -> String,
    #[prop(into, default = String::new())] extra: String,
) -> impl IntoView {
    let first = if shown == 0 { 0 } else { offset + 1 };
    let last = offset + shown as u64;
    let previous = (offset > 0).then(|| href_for(offset.saturating_sub(u64::from(limit)), &extra));
    let next = (last < total).then(|| href_for(offset + u64::from(limit), &extra));
    view! {
        <nav class="pager" aria-label="Pages">
            <span class="muted">{format!("{first}–{last} of {total}")}</span>
            {previous.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}
            {next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}
        </nav>
    }
}
