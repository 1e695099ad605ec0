//! What an app tells the server that hosts it: its entities, its permissions and the roles
//! granted them by default, its migrations and its OpenAPI document. Generated per app from the
//! IR; Cortex reads them to mount apps, seed roles, build the admin UI and merge documents.

use axum::Router;

use crate::db::Db;
use crate::meta::TableMeta;
use crate::migrate::Migration;

/// A permission an app checks, and the roles its schemas grant it by default.
#[derive(Debug)]
pub struct Permission {
    /// As the handler checks it: `crm.deal.read`, `crm.winDeal`.
    pub name: &'static str,
    /// The entity it concerns, for CRUD routes.
    pub entity: Option<&'static str>,
    /// `read`, `create`, `update`, `delete`, `all-rows`, or the operation id.
    pub action: &'static str,
    /// Roles granted it by default.
    pub roles: &'static [&'static str],
    /// Whose business it is: a platform permission is a platform operator's alone, whatever a
    /// tenant's roles grant.
    pub scope: crate::auth::Scope,
}

/// An entity, as the admin UI shows it.
#[derive(Debug)]
pub struct EntityInfo {
    /// As in `Deal`.
    pub name: &'static str,
    /// Its name in words, for headings: `Sales deal` for `SalesDeal`, `Api key` for `APIKey`
    /// (the generator's word split, which its paths and permissions use too).
    pub label: &'static str,
    /// The URL segment of its collection, as in `deals`.
    pub plural: &'static str,
    /// The collection's path, as in `/api/crm/deals`.
    pub collection: &'static str,
    /// Its description, if its schema has one.
    pub description: Option<&'static str>,
    /// The OpenAPI component names of what a client reads, sends to create one, and patches.
    pub schemas: [&'static str; 3],
    /// The table.
    pub table: &'static TableMeta,
    /// Whether the API only lists and reads its rows (no create, update or delete).
    pub read_only: bool,
}

/// Everything a host needs to know about an app.
#[derive(Debug)]
pub struct AppCatalog {
    /// As in `crm`.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
    /// Its migrations, in order.
    pub migrations: &'static [Migration],
    /// Its OpenAPI 3.1 document.
    pub openapi: &'static str,
    /// Its entities.
    pub entities: &'static [EntityInfo],
    /// Its permissions.
    pub permissions: &'static [Permission],
    /// The handlers and schedules of its jobs (its service's `jobs()`), which a host's workers
    /// run.
    pub jobs: fn() -> crate::jobs::Registry,
}

/// Makes an app's router over a database (its service is built inside).
pub type MakeRouter = fn(Db) -> Result<Router, Box<dyn std::error::Error + Send + Sync>>;

/// An app installed in a host.
#[derive(Debug, Clone, Copy)]
pub struct Installed {
    /// What it is.
    pub catalog: &'static AppCatalog,
    /// How to serve it.
    pub router: MakeRouter,
}
