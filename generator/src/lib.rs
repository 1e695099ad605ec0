//! Prefiq: a schema-first code generator.
//!
//! The pipeline, one module per stage:
//! [`load`] (files → values with spans) → [`validate`] (meta-schema) → [`lower`] (→ [`ir::Ir`]) →
//! [`emit`] (→ files in memory) → [`write`] (disk, or `--check`). Diagnostics are collected
//! along the way; a run with any error writes nothing. [`watch`] reruns the pipeline on save.

// `Diagnostic` is the error type from one end of the pipeline to the other. It is returned only
// when something is wrong, and boxing it would cost an allocation per diagnostic for nothing.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod dev;
pub mod diag;
pub mod emit;
pub mod fixtures;
pub mod import;
pub mod ir;
pub mod load;
pub mod lower;
pub mod migrate;
pub mod seed;
pub mod validate;
pub mod vocab;
pub mod watch;
pub mod write;

use std::path::Path;

use diag::Diagnostic;

/// The result of running the pipeline in memory.
#[derive(Debug)]
pub struct Generation {
    /// The lowered project, when lowering ran.
    pub ir: Option<ir::Ir>,
    /// The files to write (empty if there were errors).
    pub output: emit::Output,
    /// Every diagnostic, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// How long each stage took, in order.
    pub timings: Vec<(&'static str, std::time::Duration)>,
    /// Files still being made on other threads (only from [`generate_split`]).
    pub pending: Vec<emit::Pending>,
}

impl Generation {
    /// Whether any diagnostic is an error (then nothing may be written).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Waits for the [`pending`](Generation::pending) files and returns them; a file that could
    /// not be made becomes a diagnostic.
    pub fn wait_pending(&mut self) -> Vec<emit::GeneratedFile> {
        let mut files = Vec::new();
        for pending in std::mem::take(&mut self.pending) {
            match pending.wait() {
                Ok(file) => files.push(file),
                Err(error) => self.diagnostics.push(error),
            }
        }
        files
    }

    /// Waits for the [`pending`](Generation::pending) files and adds them to the output; the
    /// wait counts as emit time.
    pub fn finish(&mut self) {
        let waited = std::time::Instant::now();
        let files = self.wait_pending();
        self.output.files.extend(files);
        self.output.later.clear();
        self.output.files.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(emit) = self.timings.iter_mut().find(|(stage, _)| *stage == "emit") {
            emit.1 += waited.elapsed();
        }
    }
}

/// A stopwatch for the stages of a run.
struct Laps {
    clock: std::time::Instant,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl Laps {
    fn lap(&mut self, stage: &'static str) {
        self.laps.push((stage, self.clock.elapsed()));
        self.clock = std::time::Instant::now();
    }
}

/// Runs load, validate, lower and emit for the project at `root` (or one app of it).
pub fn generate(root: &Path, app: Option<&str>) -> Generation {
    let mut generation = generate_split(root, app, emit::Clients::Background);
    generation.finish();
    generation
}

/// Like [`generate`], but returns as soon as everything but the Rust clients is emitted; those
/// are left in [`Generation::pending`], made as `clients` says.
pub fn generate_split(root: &Path, app: Option<&str>, clients: emit::Clients) -> Generation {
    generate_observed(root, app, clients, &|_| {})
}

/// Like [`generate_split`], telling `observe` what it is doing ("validating", "emitting crm"),
/// for a progress display.
pub fn generate_observed(
    root: &Path,
    app: Option<&str>,
    clients: emit::Clients,
    observe: &dyn Fn(&str),
) -> Generation {
    observe("loading schemas");
    let mut laps = Laps {
        clock: std::time::Instant::now(),
        laps: Vec::new(),
    };
    let (mut project, mut diagnostics) = load::load(root, app);
    laps.lap("load");
    observe("validating");
    match validate::MetaValidator::shared() {
        Ok(meta) => {
            for input in &mut project.apps {
                for file in &mut input.files {
                    let problems = meta.check(file);
                    if !problems.is_empty() {
                        // Lowering skips a file whose shape is wrong, so its errors do not cascade.
                        file.value = None;
                        diagnostics.extend(problems);
                    }
                }
            }
        }
        Err(error) => diagnostics.push(error),
    }
    laps.lap("validate");
    observe("lowering");
    let (ir, lowered) = lower::lower(&project);
    diagnostics.extend(without_echoes(lowered, &project));
    if !diagnostics.iter().any(Diagnostic::is_error) {
        for (app, input) in ir.apps.iter().zip(&project.apps) {
            diagnostics.extend(fixtures::check(app, &input.files).1);
        }
    }
    diag::sort(&mut diagnostics);
    laps.lap("lower");
    let mut generation = Generation {
        ir: Some(ir),
        output: emit::Output::default(),
        diagnostics,
        timings: Vec::new(),
        pending: Vec::new(),
    };
    if !generation.has_errors() {
        if let Some(ir) = &generation.ir {
            match emit::emit_split(ir, &project.config, root, clients, observe) {
                Ok((output, pending)) => {
                    generation.output = output;
                    generation.pending = pending;
                }
                Err(error) => generation.diagnostics.push(error),
            }
        }
        laps.lap("emit");
    }
    generation.timings = laps.laps;
    generation
}

/// Drops "unknown entity `Company`" errors when `company.yaml` itself failed to load or validate:
/// its own diagnostics already say what is wrong, and a half-typed file must not bury them.
fn without_echoes(lowered: Vec<Diagnostic>, project: &load::Project) -> Vec<Diagnostic> {
    use heck::ToSnakeCase as _;
    let broken: Vec<String> = project
        .apps
        .iter()
        .flat_map(|app| &app.files)
        .filter(|file| file.value.is_none())
        .filter_map(|file| {
            let name = file.path().rsplit('/').next()?;
            Some(name.split('.').next()?.to_owned())
        })
        .collect();
    if broken.is_empty() {
        return lowered;
    }
    lowered
        .into_iter()
        .filter(|d| {
            if d.code != "prefiq::lower::unknown_entity" {
                return true;
            }
            let Some(entity) = d.message.split('`').nth(3) else {
                return true;
            };
            let stem = entity.to_snake_case();
            !broken
                .iter()
                .any(|b| *b == stem || *b == format!("{stem}s"))
        })
        .collect()
}
