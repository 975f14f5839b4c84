//! Reading legacy identity-provider exports into one normalized record per user.
//! Readers take any `std::io::BufRead`, stream record by record, and report each
//! record they cannot use with its location, keeping the good ones.

pub mod csv_reader;
pub mod detect;
pub mod fields;
pub mod json_stream;
pub mod json_users;
pub mod ldif;
pub mod record;

pub use record::{Email, Location, NormalizedUser, Phone, RecordError, UserStatus};
