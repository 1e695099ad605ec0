//! Hand-written business logic of the lms app. `prefiq codegen` created this file once
//! and never touches it again.
//!
//! Every method of [`LmsService`] has a default; override the hooks you need.

use prefiq_runtime::Db;

use crate::LmsService;

/// The lms service.
#[derive(Debug, Clone)]
pub struct Service {
    #[allow(dead_code)]
    db: Db,
}

impl Service {
    /// A service over the app's database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl LmsService for Service {}
