//! The one orchestration: a [`Session`] runs load → validate → lower → emit for a project and
//! owns everything a run may reuse from the last one (parses, the compiled meta-schema, the
//! built-in templates, formatted Rust). The caller owns the session; nothing is process-wide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::diag::{self, Diagnostic};
use crate::emit::Formatter;
use crate::fixtures::{self, Row};
use crate::ir::{App, Ir};
use crate::load::migrations::{MigrationsFolder, folder};
use crate::load::{self, AppInput, ParseCache, Project};
use crate::output::{Manifest, Output, Scaffold, recorded_digest};
use crate::templates::Templates;
use crate::validate::MetaValidator;
use crate::write::Finding;

/// A generator for one project, kept between runs.
#[derive(Debug)]
pub struct Session {
    root: PathBuf,
    parses: ParseCache,
    meta: Option<MetaValidatorCell>,
    builtin: Option<Templates>,
    formatter: Formatter,
}

/// The compiled meta-schema (not `Debug` itself).
struct MetaValidatorCell(MetaValidator);

impl std::fmt::Debug for MetaValidatorCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaValidator")
    }
}

/// What a run made of one app, besides its IR: the inputs later commands need.
#[derive(Debug)]
pub struct AppRun {
    /// Its migrations folder, as read.
    pub migrations: MigrationsFolder,
    /// Its templates: the built-in ones with the project's and the app's overrides.
    pub templates: Templates,
    /// Its fixture rows, checked against its schemas.
    pub fixtures: Vec<Row>,
    /// Its JSON Schema document ([`crate::schemas::document`]): made once, for the fixtures'
    /// check, the server's validators and the browser's.
    pub schemas: serde_json::Value,
}

/// The result of running the pipeline in memory.
#[derive(Debug, Default)]
pub struct Generation {
    /// The lowered project, when lowering ran.
    pub ir: Option<Ir>,
    /// The files to write (empty if there were errors).
    pub output: Output,
    /// Every diagnostic, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// How long each stage took, in order.
    pub timings: Vec<(&'static str, Duration)>,
    /// Per app, by name: what later commands need from the run.
    pub apps: BTreeMap<String, AppRun>,
}

impl Generation {
    /// Whether any diagnostic is an error (then nothing may be written).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The IR and the run of the app `name`.
    pub fn app(&self, name: &str) -> Option<(&App, &AppRun)> {
        let app = self.ir.as_ref()?.apps.iter().find(|a| a.name == name)?;
        Some((app, self.apps.get(name)?))
    }

    /// Migrations that lag behind the schema, and migrations edited after they were summed.
    pub fn migration_findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for app in self.ir.iter().flat_map(|ir| &ir.apps) {
            let Some(run) = self.apps.get(&app.name) else {
                continue;
            };
            let path = folder(&app.name);
            if let Some(what) = crate::migrate::uncovered(app, &run.migrations) {
                findings.push(Finding::Unmigrated {
                    path: path.clone(),
                    what: format!(
                        "{what}; run `prefiq migrate diff <name> --app {}`",
                        app.name
                    ),
                });
            }
            if let Some(problem) = crate::migrate::verify(&app.name, &run.migrations) {
                findings.push(Finding::MigrationEdited {
                    path: format!("{path}/migrations.sum"),
                    problem,
                });
            }
        }
        findings
    }
}

/// A stopwatch for the stages of a run.
struct Laps {
    clock: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Laps {
    fn lap(&mut self, stage: &'static str) {
        self.laps.push((stage, self.clock.elapsed()));
        self.clock = Instant::now();
    }
}

impl Session {
    /// A session for the project at `root`, for one run or a few.
    pub fn new(root: impl Into<PathBuf>) -> Session {
        Session {
            root: root.into(),
            parses: ParseCache::default(),
            meta: None,
            builtin: None,
            formatter: Formatter::default(),
        }
    }

    /// A session that runs again and again (the watcher's): it also remembers the Rust it
    /// formatted, so that an edit reformats only the files it changed.
    pub fn watching(root: impl Into<PathBuf>) -> Session {
        Session {
            formatter: Formatter::remembering(),
            ..Session::new(root)
        }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs load, validate, lower and emit for the project (or one app of it).
    pub fn generate(&mut self, app: Option<&str>) -> Generation {
        self.generate_observed(app, &|_| {})
    }

    /// Like [`generate`](Session::generate), telling `observe` what it is doing ("validating",
    /// "emitting crm"), for a progress display.
    pub fn generate_observed(&mut self, app: Option<&str>, observe: &dyn Fn(&str)) -> Generation {
        observe("loading schemas");
        let mut laps = Laps {
            clock: Instant::now(),
            laps: Vec::new(),
        };
        let (mut project, mut diagnostics) = load::load(&self.root, app, &mut self.parses);
        laps.lap("load");
        observe("validating");
        match self.meta() {
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
        let (ir, lowered) = crate::lower::lower(&project);
        diagnostics.extend(without_echoes(lowered, &project));
        if let Err(problems) = design_files(&project) {
            diagnostics.extend(problems);
        }
        let mut generation = Generation {
            ir: None,
            ..Generation::default()
        };
        for (app, input) in ir.apps.iter().zip(&project.apps) {
            let schemas = crate::schemas::document(app);
            let (rows, problems) = if diagnostics.iter().any(Diagnostic::is_error) {
                (Vec::new(), Vec::new())
            } else {
                fixtures::check(app, &schemas, &input.files)
            };
            diagnostics.extend(problems);
            match self.templates(&project, input) {
                Ok(templates) => {
                    generation.apps.insert(
                        app.name.clone(),
                        AppRun {
                            migrations: input.migrations.clone(),
                            templates,
                            fixtures: rows,
                            schemas,
                        },
                    );
                }
                Err(error) => diagnostics.push(error),
            }
        }
        diag::sort(&mut diagnostics);
        laps.lap("lower");
        generation.diagnostics = diagnostics;
        if !generation.has_errors() {
            match self.emit(&ir, &project, &generation.apps, observe) {
                Ok(output) => generation.output = output,
                Err(error) => generation.diagnostics.push(error),
            }
            laps.lap("emit");
        }
        generation.ir = Some(ir);
        generation.timings = laps.laps;
        generation
    }

    fn meta(&mut self) -> Result<&MetaValidator, Diagnostic> {
        if self.meta.is_none() {
            self.meta = Some(MetaValidatorCell(MetaValidator::new()?));
        }
        Ok(&self.meta.as_ref().expect("just set").0)
    }

    /// The templates of `input`: the built-ins, the project's overrides, then the app's.
    fn templates(&mut self, project: &Project, input: &AppInput) -> Result<Templates, Diagnostic> {
        if self.builtin.is_none() {
            self.builtin = Some(Templates::builtin()?);
        }
        self.builtin
            .clone()
            .expect("just set")
            .with_overrides(&project.templates)?
            .with_overrides(&input.templates)
    }

    fn emit(
        &self,
        ir: &Ir,
        project: &Project,
        runs: &BTreeMap<String, AppRun>,
        observe: &dyn Fn(&str),
    ) -> Result<Output, Diagnostic> {
        let mut output = crate::emit::project(&design_files(project).unwrap_or_default());
        for (app, input) in ir.apps.iter().zip(&project.apps) {
            let Some(run) = runs.get(&app.name) else {
                continue;
            };
            observe(&format!("emitting {}", app.name));
            let mut emitted = crate::emit::app(&crate::emit::Context {
                app,
                schemas: &run.schemas,
                config: &project.config,
                templates: &run.templates,
                formatter: &self.formatter,
            })?;
            let mut fingerprint = input.fingerprint.clone();
            if app.migrations.is_empty() {
                // A new app: its first migration is made once; later ones come from `prefiq migrate
                // diff`. Later runs read it as an input, so the manifest records their fingerprint.
                let initial = crate::migrate::initial(app, &run.templates)?;
                if let Some(folder) = MigrationsFolder::from_files(&app.name, &initial) {
                    fingerprint = project.fingerprint_with(input, &folder);
                }
                for (path, contents) in initial {
                    output.scaffolds.push(Scaffold { path, contents });
                }
            }
            let manifest = Manifest {
                fingerprint,
                migrations_ok: crate::migrate::uncovered(app, &run.migrations).is_none()
                    && crate::migrate::verify(&app.name, &run.migrations).is_none(),
                files: emitted
                    .files
                    .iter()
                    .map(|f| {
                        let digest = recorded_digest(&f.contents).unwrap_or_default();
                        (f.path.clone(), digest.to_owned())
                    })
                    .collect(),
                scaffolds: emitted.scaffolds.iter().map(|s| s.path.clone()).collect(),
            };
            output.files.push(manifest.file(&app.name));
            output.files.append(&mut emitted.files);
            output.scaffolds.append(&mut emitted.scaffolds);
        }
        output.sort();
        Ok(output)
    }

    /// Whether the output of the project (or one app) is up to date, without making it again:
    /// every app's inputs have the fingerprint its manifest records, its migrations were in order,
    /// and every file on disk is the one recorded. Then how many files that is; `None` means a
    /// run is needed to tell (or to write).
    pub fn up_to_date(&mut self, app: Option<&str>) -> Option<usize> {
        let (project, diagnostics) = load::load(&self.root, app, &mut self.parses);
        if diagnostics.iter().any(Diagnostic::is_error) {
            return None;
        }
        let mut manifests = Vec::new();
        for input in &project.apps {
            let manifest = crate::write::manifest(&self.root, &input.name)?;
            if manifest.fingerprint != input.fingerprint || !manifest.migrations_ok {
                return None;
            }
            manifests.push((Manifest::path(&input.name), manifest));
        }
        let files = match app {
            Some(_) => Vec::new(),
            None => crate::emit::project(&design_files(&project).ok()?).files,
        };
        let scope = crate::write::Scope::of(&self.root, app);
        crate::write::up_to_date(&self.root, &scope, &manifests, &files)
    }
}

/// The files made from the project's design tokens (none without a token file), or the
/// problems with it.
fn design_files(project: &Project) -> Result<Vec<crate::output::GeneratedFile>, Vec<Diagnostic>> {
    match &project.tokens {
        Some(file) => crate::design::check(file).map(|tokens| crate::emit::design::files(&tokens)),
        None => Ok(Vec::new()),
    }
}

/// Drops "unknown entity `Company`" errors when `company.yaml` itself failed to load or validate:
/// its own diagnostics already say what is wrong, and a half-typed file must not bury them.
fn without_echoes(lowered: Vec<Diagnostic>, project: &Project) -> Vec<Diagnostic> {
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

/// A TypeScript client of any OpenAPI 3.0 or 3.1 document (`prefiq openapi-ts`).
#[derive(Debug)]
pub struct TypescriptClient {
    /// `types.ts`, `client.ts` and `core.ts`, with headers naming `source`.
    pub files: Vec<crate::output::GeneratedFile>,
    /// How many operations it has.
    pub operations: usize,
    /// How many named types it has.
    pub types: usize,
    /// Schemas without a TypeScript shape, typed `unknown`.
    pub degraded: usize,
}

/// Makes a TypeScript client of the OpenAPI document `text` (JSON, or YAML unless `path` ends
/// with `.json`), as the app `name`.
pub fn typescript_client(
    text: &str,
    path: &str,
    name: &str,
) -> Result<TypescriptClient, Diagnostic> {
    // Large documents parse without a span index: only the value matters here.
    let parsed = if path.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(text).map_err(|e| e.to_string())
    } else {
        serde_yaml::from_str::<serde_json::Value>(text).map_err(|e| e.to_string())
    };
    let document = parsed.map_err(|error| {
        Diagnostic::error(
            "prefiq::import::parse",
            format!("{path} does not parse: {error}"),
        )
    })?;
    let imported = crate::import::import(&document, name)?;
    let templates = Templates::builtin()?;
    let (types, client) = crate::emit::ts::render(
        &imported.app,
        &templates,
        &crate::emit::ts::TsOptions {
            types_path: "./types.js",
            runtime: "./core.js",
        },
    )?;
    let core = crate::emit::ts::core(&templates)?;
    let source = path.rsplit('/').next().unwrap_or(path);
    Ok(TypescriptClient {
        files: [
            ("types.ts", types),
            ("client.ts", client),
            ("core.ts", core),
        ]
        .into_iter()
        .map(|(file, contents)| crate::output::GeneratedFile::new(file, source, &contents))
        .collect(),
        operations: imported.app.operations.len(),
        types: imported.app.types.len(),
        degraded: imported.degraded,
    })
}
