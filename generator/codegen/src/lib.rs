//! Prefiq's code generator, as a library.
//!
//! A [`Session`] runs the pipeline, one module per stage:
//! [`load`] (files → values with spans) → [`validate`] (meta-schema) → [`lower`] (→ [`ir::Ir`]) →
//! [`emit`] (→ files in memory, [`output::Output`]) → [`write`] (disk, or `--check`).
//! Diagnostics are collected along the way; a run with any error writes nothing. Two modules
//! sit below the stages: [`model`], the database model of an app (which `load` reads back from
//! the committed snapshot), and [`schemas`], an app's JSON Schema document (which the fixtures'
//! check, the documents and the validators share). [`migrate`] diffs models and writes their SQL.
//!
//! Nothing here starts an async runtime or opens a database: the `prefiq` command line does that.

#![deny(missing_docs)]
// `Diagnostic` is the error type from one end of the pipeline to the other. It is returned only
// when something is wrong, and boxing it would cost an allocation per diagnostic for nothing.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod design;
pub mod diag;
pub mod emit;
pub mod fixtures;
pub mod format;
mod import;
pub mod load;
mod lower;
pub mod migrate;
pub mod model;
mod names;
pub mod output;
pub mod schemas;
mod session;
pub mod sql;
pub mod templates;
mod validate;
pub mod vocab;
pub mod write;

pub use prefiq_ir as ir;
pub use session::{AppRun, Generation, Session, TypescriptClient, typescript_client};

/// Runs the pipeline once, in a new [`Session`]: for one-shot commands and tests.
pub fn generate(root: &std::path::Path, app: Option<&str>) -> Generation {
    Session::new(root).generate(app)
}
