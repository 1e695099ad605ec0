//! Model types of the showcase app, generated from `apps/showcase/core/schema/`.
//!
//! Plain serde types with no web dependencies, for servers and clients alike.

#[rustfmt::skip]
mod generated;

pub use generated::*;
