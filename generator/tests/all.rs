//! The integration tests, one module per file, built as one test binary: one link where
//! there was one per file, and the tests of every file share the test threads.

mod architecture;
mod check;
mod contracts;
mod cortex_apps;
mod deploy;
mod design;
mod dev;
mod growth;
mod help;
mod import;
mod migrations;
mod readme;
mod seed;
mod watch;
