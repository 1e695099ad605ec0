//! Hand-written business logic of the showcase app. `prefiq codegen` created this file once
//! and never touches it again.
//!
//! Every method of [`ShowcaseService`] has a default; override the hooks you need.

use prefiq_runtime::Db;

use crate::ShowcaseService;

/// The showcase service.
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

impl ShowcaseService for Service {}
