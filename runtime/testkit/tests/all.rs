//! The runtime's behaviour on real databases: every test runs on SQLite and PostgreSQL.

#[macro_use]
mod support;

mod events;
mod jobs;
mod processes;
