//! Cortex: one server that runs every installed app, with identity, RBAC, tenancy, an audit
//! log and an admin UI. Its own entities (tenants, users, roles, teams, organisations,
//! settings, app registrations) are generated from `cortex/core/schema/` like any app's; the
//! rest is written here.

pub mod admin;
pub mod config;
pub mod docs;
#[rustfmt::skip]
pub mod generated;
pub mod identity;
pub mod messages;
pub mod notifications;
pub mod oauth;
pub mod server;
pub mod services;
pub mod settings;
pub mod web;
pub mod webhooks;

pub use generated::{CortexService, router};
