//! Pieces shared by the pages: the signed-in layout, form feedback, paging, time.

pub mod charts;
pub mod forms;
pub mod layout;
pub mod pager;

use chrono::{DateTime, Utc};

/// One format for every timestamp, identical on server and client so hydration matches.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn format_optional_time(at: Option<DateTime<Utc>>) -> String {
    at.map(format_time).unwrap_or_else(|| "never".into())
}

/// "12,345" for people to read (one rule for the server's words and the page's).
pub use domain::numbers::{counted, grouped};
