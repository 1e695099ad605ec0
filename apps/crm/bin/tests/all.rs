//! The integration tests, one module per file, built as one test binary: one link where
//! there was one per file, and the tests of every file share the test threads.

mod api;
mod binary;
mod browser;
mod concurrency;
mod connections;
mod differential;
mod hardening;
mod idempotency;
mod jobs;
mod metrics;
mod round_trips;
mod rust_client;
mod schemathesis;
mod typescript;
