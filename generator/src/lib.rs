//! The `prefiq` command line: codegen, watch, the dev loop, seeding, and the migration commands
//! that need a database (apply, status, drift). The generator itself is [`prefiq_codegen`].

// `Diagnostic` is the error type from one end of the pipeline to the other.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod deploy;
pub mod dev;
pub mod introspect;
pub mod seed;
pub mod watch;

pub use prefiq_codegen::{Session, diag, fixtures, generate, ir, load, migrate, output, write};
