//! The lms app: routes, handlers and repositories generated from `core/schema/`,
//! and the hand-written services in `services/`.

#[rustfmt::skip]
pub mod generated;
pub mod services;

pub use generated::{LmsService, router};
