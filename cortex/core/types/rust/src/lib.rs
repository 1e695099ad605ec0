//! Model types of the cortex app, generated from `apps/cortex/core/schema/`.
//!
//! Plain serde types with no web dependencies, for servers and clients alike.

#[rustfmt::skip]
mod generated;

pub use generated::*;
