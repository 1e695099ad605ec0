//! Model types of the lms app, generated from `apps/lms/core/schema/`.
//!
//! Plain serde types with no web dependencies, for servers and clients alike.

#[rustfmt::skip]
mod generated;

pub use generated::*;
