//! Ferry's domain: the rules of accounts, roles, projects, API tokens and the audit log,
//! the ports the outside world implements, and the use-cases that tie them together.
//!
//! Nothing here performs I/O or reads the clock: time, randomness, password hashing and
//! storage arrive through the traits in [`ports`], so every rule is testable and the
//! crate builds for `wasm32-unknown-unknown` (the browser shares these types).

pub mod accounts;
pub mod api_tokens;
pub mod assess;
pub mod audit;
pub mod error;
pub mod ids;
pub mod import;
pub mod journey;
pub mod legacy;
pub mod mapping;
pub mod numbers;
pub mod pagination;
pub mod password_service;
pub mod passwords;
pub mod plan;
pub mod ports;
pub mod projects;
pub mod retention;
pub mod review;
pub mod roles;
pub mod runs;
pub mod scim;
pub mod service;
pub mod throttle;
pub mod uploads;
pub mod user_types;

pub use error::{DomainError, Result};
