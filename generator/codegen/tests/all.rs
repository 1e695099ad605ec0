//! The integration tests, one module per file, built as one test binary: one link where
//! there was one per file, and the tests of every file share the test threads.

mod errors;
mod golden;
mod readable;
mod scaffold;
