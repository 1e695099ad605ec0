//! The integration tests, one module per file, built as one test binary: one link where
//! there was one per file, and the tests of every file share the test threads.

mod admin;
mod binary;
mod browser;
mod common;
mod credentials;
mod events;
mod isolation;
mod notifications;
mod oauth;
mod schemathesis;
mod scopes;
mod webhooks;
