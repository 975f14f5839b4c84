//! One module per screen, named after what the user sees.

pub mod account;
pub mod assessment;
pub mod audit;
pub mod goals;
pub mod invite;
pub mod login;
pub mod mapping;
pub mod members;
pub mod not_found;
pub mod passwords;
pub mod plan;
pub mod project;
pub mod projects;
pub mod report;
pub mod review;
pub mod runs;
pub mod setup;
pub mod target;
pub mod tokens;
pub mod uploads;
