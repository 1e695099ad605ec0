//! The runtime's behaviour on real databases: every test runs on SQLite and PostgreSQL.

mod jobs;
