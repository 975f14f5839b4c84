//! Ferry's SCIM 2.0 client side: the HTTP client of a target, pushing users and groups
//! with every answer classified, and the connection test with discovery.

pub mod client;
pub mod connector;
pub mod push;
