//! Model types of the crm app, generated from `apps/crm/core/schema/`.
//!
//! Plain serde types with no web dependencies, for servers and clients alike.

#[rustfmt::skip]
mod generated;

pub use generated::*;
