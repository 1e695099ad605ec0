//! The `prefiq` command line: argument parsing, rendering of diagnostics and reports.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};

mod dev;
mod migrate;

use crate::diag::{self, Diagnostic, RenderOptions};
use crate::write::{self, Finding, Scope};

/// Prefiq turns JSON Schema entities into axum services, SQL migrations, Rust and TypeScript
/// types and OpenAPI documents.
#[derive(Debug, Parser)]
#[command(name = "prefiq", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The project root (the folder holding `apps/`). Default: found from the current folder up.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
    /// Print only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Print every file written.
    #[arg(long, short, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// Rendered for people, with the source line.
    Human,
    /// One JSON object per line, for editors and CI.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate code from every app's schemas (or check that it is up to date).
    #[command(
        after_help = "Examples:\n  prefiq codegen                 generate every app\n  prefiq codegen --app crm       generate one app\n  prefiq codegen --check         fail if any generated file is stale, missing, orphaned or hand-edited\n  prefiq codegen --watch         regenerate on every save; a bad file keeps the last good output"
    )]
    Codegen(CodegenArgs),
    /// Watch, regenerate, rebuild and restart the app servers, and serve their frontends: the whole
    /// loop in one terminal.
    #[command(
        after_help = "Examples:\n  prefiq dev                     every app, from http://127.0.0.1:8080 on\n  prefiq dev --app crm           one app\n  prefiq dev --bind 0.0.0.0:3000\n\nEach app gets a dev database (.prefiq/dev/<app>.db) that follows the schema before a migration\nis written. A bad schema or a failing build is reported; the last good server keeps serving.\nAn app with a frontend (src/vite.config.ts) gets Vite's dev server too, from\nhttp://127.0.0.1:5173 on, proxying /api to the app: a schema edit reloads its screens."
    )]
    Dev(dev::DevArgs),
    /// Load an app's fixtures (core/fixtures/*.yaml) into a database, after applying its migrations.
    #[command(
        after_help = "Examples:\n  prefiq seed --app crm                                  the embedded SQLite database (.prefiq/crm.db)\n  prefiq seed --app crm --database-url postgres://localhost/crm\n\nRows whose key is already there are skipped, so seeding twice is harmless."
    )]
    Seed(SeedArgs),
    /// Make, apply and check database migrations.
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Write deployment manifests.
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  prefiq completions bash > ~/.local/share/bash-completion/completions/prefiq\n  prefiq completions zsh > ~/.zfunc/_prefiq\n  prefiq completions fish > ~/.config/fish/completions/prefiq.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Generate a TypeScript client from any OpenAPI 3.0 or 3.1 document (not only Prefiq's).
    #[command(
        name = "openapi-ts",
        after_help = "Example:\n  prefiq openapi-ts api.github.com.json --out src/github\n\nWrites types.ts, client.ts and core.ts: one fetch-only function per operation."
    )]
    OpenapiTs(OpenapiTsArgs),
}

/// `prefiq deploy`.
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Write plain Kubernetes manifests for Cortex and the apps prefiq.toml installs, from the
    /// Helm chart's values (resources/deploy/helm/prefiq/values.yaml).
    #[command(
        after_help = "Examples:\n  prefiq deploy render --tenancy rows                 print the manifests\n  prefiq deploy render --tenancy schemas --out deploy/schemas\n  prefiq deploy render --tenancy databases --values resources/deploy/helm/prefiq/values-databases.yaml --out deploy/databases\n\nApply the migration job first and wait for it: the servers do not migrate (PREFIQ_NO_MIGRATE).\nFiles are numbered in the order to apply them."
    )]
    Render(RenderArgs),
}

/// `prefiq deploy render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Where tenants' rows live.
    #[arg(long, value_enum)]
    pub tenancy: crate::deploy::Tenancy,
    /// A values file applied over the chart's (repeatable, later wins), as `helm -f` does.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Write one file per object into this folder (replacing its .yaml files). Default: print
    /// every object to standard output, separated by `---`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `prefiq openapi-ts`.
#[derive(Debug, clap::Args)]
pub struct OpenapiTsArgs {
    /// The OpenAPI document (JSON or YAML).
    pub document: PathBuf,
    /// The folder to write to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The API name in comments. Default: the file stem.
    #[arg(long)]
    pub name: Option<String>,
}

/// `prefiq seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The app whose fixtures to load.
    #[arg(long, value_name = "NAME")]
    pub app: String,
    /// The database: postgres://... or sqlite:path. Default: the app's embedded SQLite file.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The tenant the rows of tenant-scoped entities belong to. Default: the default tenant
    /// (the nil UUID), which a first Cortex start creates.
    #[arg(
        long,
        value_name = "UUID",
        default_value = "00000000-0000-0000-0000-000000000000"
    )]
    pub tenant: prefiq_runtime::deps::uuid::Uuid,
}

/// `prefiq codegen`.
#[derive(Debug, clap::Args)]
pub struct CodegenArgs {
    /// Only this app.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Change nothing; exit 1 if any generated file is stale, missing, orphaned or hand-edited.
    #[arg(long)]
    pub check: bool,
    /// Overwrite generated files even if they were edited by hand.
    #[arg(long, conflicts_with = "check")]
    pub force: bool,
    /// Keep running and regenerate whenever a schema, fixture, template or prefiq.toml changes.
    #[arg(long, conflicts_with = "check")]
    pub watch: bool,
}

/// How output looks.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: MessageFormat,
    quiet: bool,
    verbose: bool,
    color: bool,
}

impl Printer {
    fn from(cli: &Cli) -> Printer {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stderr().is_terminal();
        Printer {
            format: cli.message_format,
            quiet: cli.quiet,
            verbose: cli.verbose,
            color,
        }
    }

    /// Prints diagnostics: rendered to stderr, or JSON lines to stdout.
    pub fn diagnostics(&self, diagnostics: &[Diagnostic]) {
        for d in diagnostics {
            if self.quiet && !d.is_error() {
                continue;
            }
            match self.format {
                MessageFormat::Json => println!("{}", d.to_json()),
                MessageFormat::Human => {
                    let width = if self.color { 120 } else { 100 };
                    eprint!(
                        "{}",
                        diag::render(
                            d,
                            RenderOptions {
                                color: self.color,
                                width
                            }
                        )
                    );
                }
            }
        }
    }

    /// Prints one watch run: its diagnostics, then one line (or one JSON object).
    pub(crate) fn run(&self, run: &crate::watch::Run, what: &str) {
        self.diagnostics(&run.diagnostics);
        let app = run.app.as_deref().unwrap_or("all apps");
        let ms = |d: std::time::Duration| d.as_millis();
        if self.format == MessageFormat::Json {
            println!(
                "{}",
                serde_json::json!({
                    "event": "codegen",
                    "changed": what,
                    "app": run.app,
                    "ok": run.errors() == 0 && run.refusal.is_none() && !run.removed,
                    "errors": run.errors(),
                    "removed": run.removed,
                    "refused": run.refusal.as_ref().map(|r| r.findings.iter().map(|f| f.path().to_owned()).collect::<Vec<_>>()),
                    "written": run.report.written,
                    "deleted": run.report.deleted,
                    "scaffolded": run.report.scaffolded,
                    "unchanged": run.report.unchanged,
                    "ms": ms(run.elapsed),
                })
            );
            let _ = std::io::stdout().flush();
            return;
        }
        if let Some(refusal) = &run.refusal {
            report_findings(&refusal.findings, self);
        }
        let line = if run.removed {
            format!("{what} → {app}: its core/schema folder is gone; nothing to generate")
        } else if run.errors() > 0 {
            let n = run.errors();
            format!(
                "{what} → {app}: {n} error{}; nothing written, the last good output stays",
                if n == 1 { "" } else { "s" }
            )
        } else if let Some(refusal) = &run.refusal {
            format!(
                "{what} → {app}: nothing written. {}",
                refusal_advice(refusal)
            )
        } else {
            let mut line = format!(
                "{what} → {app}: {} written, {} unchanged",
                run.report.written.len(),
                run.report.unchanged
            );
            if !run.report.deleted.is_empty() {
                line.push_str(&format!(", {} deleted", run.report.deleted.len()));
            }
            if !run.report.scaffolded.is_empty() {
                line.push_str(&format!(", {} scaffolded", run.report.scaffolded.len()));
            }
            line.push_str(&format!(" in {} ms", ms(run.elapsed)));
            line
        };
        if run.errors() > 0 || run.refusal.is_some() {
            eprintln!("{line}");
        } else {
            self.info(&line);
        }
        if self.verbose {
            for path in &run.report.written {
                self.info(&format!("  wrote {path}"));
            }
        }
    }

    /// A progress bar (`len` steps) or spinner on stderr, drawn only for a person at a terminal.
    pub(crate) fn progress(&self, len: Option<u64>, message: &str) -> Progress {
        if self.quiet || self.format == MessageFormat::Json || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = match len {
            Some(len) => indicatif::ProgressBar::new(len).with_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:24}] {pos}/{len}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            ),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(80));
        Progress(Some(bar))
    }

    pub(crate) fn info(&self, line: &str) {
        if !self.quiet {
            if self.format == MessageFormat::Json {
                println!("{}", serde_json::json!({ "message": line }));
            } else {
                eprintln!("{line}");
            }
        }
    }
}

/// Progress on stderr (nothing when it is not a terminal); cleared when dropped.
pub(crate) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Says what is happening now.
    pub(crate) fn message(&self, message: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.to_owned());
        }
    }

    /// Runs `f` with the bar hidden, so that what `f` prints is not drawn over.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// One step done.
    pub(crate) fn step(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::from(&cli);
    if let Command::OpenapiTs(args) = &cli.command {
        return openapi_ts(args, &printer);
    }
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory as _;
        clap_complete::generate(shell, &mut Cli::command(), "prefiq", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let root = match &cli.root {
        Some(root) => root.clone(),
        None => {
            let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            match crate::load::find_root(&here) {
                Some(root) => root,
                None => {
                    eprintln!(
                        "error: no Prefiq project here: no prefiq.toml or apps/ folder in {} or above",
                        here.display()
                    );
                    return ExitCode::from(2);
                }
            }
        }
    };
    match &cli.command {
        Command::Codegen(args) => codegen(&root, args, &printer),
        Command::Seed(args) => seed(&root, args, &printer),
        Command::OpenapiTs(args) => openapi_ts(args, &printer),
        Command::Completions { .. } => ExitCode::SUCCESS,
        Command::Migrate(command) => migrate::run(&root, command, &printer),
        Command::Dev(args) => dev::run(&root, args, &printer),
        Command::Deploy(DeployCommand::Render(args)) => deploy_render(&root, args, &printer),
    }
}

fn deploy_render(root: &Path, args: &RenderArgs, printer: &Printer) -> ExitCode {
    let (project, diagnostics) =
        prefiq_codegen::load::load(root, None, &mut prefiq_codegen::load::ParseCache::default());
    if diagnostics.iter().any(Diagnostic::is_error) {
        printer.diagnostics(&diagnostics);
        eprintln!("error: fix prefiq.toml and the schemas first; nothing was rendered");
        return ExitCode::FAILURE;
    }
    let overrides: Vec<&Path> = args.values.iter().map(PathBuf::as_path).collect();
    let values = match crate::deploy::values(root, &overrides, args.tenancy) {
        Ok(values) => values,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let objects = crate::deploy::render(&values, project.config.installed());
    let yaml = |object: &serde_json::Value| serde_yaml::to_string(object).unwrap_or_default();
    let Some(out) = &args.out else {
        for (_, object) in &objects {
            print!("---\n{}", yaml(object));
        }
        return ExitCode::SUCCESS;
    };
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(out)?;
        for entry in std::fs::read_dir(out)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::remove_file(path)?;
            }
        }
        for (name, object) in &objects {
            std::fs::write(out.join(name), format!("---\n{}", yaml(object)))?;
        }
        Ok(())
    })();
    match written {
        Ok(()) => {
            printer.info(&format!(
                "prefiq deploy render: {} manifests in {}",
                objects.len(),
                out.display()
            ));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot write {}: {error}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn codegen(root: &Path, args: &CodegenArgs, printer: &Printer) -> ExitCode {
    if args.watch {
        return codegen_watch(root, args, printer);
    }
    let started = Instant::now();
    let mut session = prefiq_codegen::Session::new(root);
    // Inputs with the fingerprint their manifests record, and every file as recorded: nothing
    // to make (or to check) again.
    if !args.force {
        if let Some(files) = session.up_to_date(args.app.as_deref()) {
            let ms = started.elapsed().as_millis();
            printer.info(&if args.check {
                format!("prefiq codegen --check: {files} generated files are up to date ({ms} ms)")
            } else {
                format!(
                    "prefiq codegen: 0 written, {files} unchanged in {ms} ms (inputs unchanged)"
                )
            });
            return ExitCode::SUCCESS;
        }
    }
    let progress = printer.progress(None, "loading schemas");
    let generation = session.generate_observed(args.app.as_deref(), &|what| progress.message(what));
    drop(progress);
    if printer.verbose {
        let stages: Vec<String> = generation
            .timings
            .iter()
            .map(|(stage, time)| format!("{stage} {} ms", time.as_millis()))
            .collect();
        printer.info(&format!("  stages: {}", stages.join(", ")));
    }
    printer.diagnostics(&generation.diagnostics);
    if generation.has_errors() {
        let errors = generation
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        printer.info(&format!(
            "prefiq codegen: {errors} error{} found; no file was written",
            if errors == 1 { "" } else { "s" }
        ));
        return ExitCode::FAILURE;
    }
    let scope = Scope::of(root, args.app.as_deref());
    let elapsed = || started.elapsed().as_millis();
    let migration_findings = generation.migration_findings();
    if args.check {
        let mut findings = write::check(root, &generation.output, &scope);
        findings.extend(migration_findings);
        if findings.is_empty() {
            printer.info(&format!(
                "prefiq codegen --check: {} generated files are up to date ({} ms)",
                generation.output.files.len(),
                elapsed()
            ));
            return ExitCode::SUCCESS;
        }
        report_findings(&findings, printer);
        let fix = match &args.app {
            Some(app) => format!("prefiq codegen --app {app}"),
            None => "prefiq codegen".to_owned(),
        };
        eprintln!(
            "\n{} generated file{} out of date; run `{fix}` (or `cargo run -p prefiq -- codegen`) and commit the result",
            findings.len(),
            if findings.len() == 1 { " is" } else { "s are" }
        );
        return ExitCode::FAILURE;
    }
    for finding in &migration_findings {
        printer.info(&format!(
            "warning: {}: {}",
            finding.path(),
            finding.diff().unwrap_or_default()
        ));
    }
    match write::write(root, &generation.output, &scope, args.force) {
        Ok(report) => {
            if printer.verbose {
                for path in report.written.iter().chain(&report.scaffolded) {
                    printer.info(&format!("  wrote {path}"));
                }
                for path in &report.deleted {
                    printer.info(&format!("  deleted {path}"));
                }
            }
            let mut line = format!(
                "prefiq codegen: {} written, {} unchanged",
                report.written.len(),
                report.unchanged
            );
            if !report.deleted.is_empty() {
                line.push_str(&format!(", {} orphans deleted", report.deleted.len()));
            }
            if !report.scaffolded.is_empty() {
                line.push_str(&format!(", {} scaffolds created", report.scaffolded.len()));
            }
            line.push_str(&format!(" in {} ms", elapsed()));
            printer.info(&line);
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            report_findings(&refusal.findings, printer);
            eprintln!(
                "\nprefiq codegen: nothing was written. {}",
                refusal_advice(&refusal)
            );
            ExitCode::FAILURE
        }
    }
}

/// What to do about a refused write, by what stopped it.
fn refusal_advice(refusal: &write::Refusal) -> String {
    let not_ours = refusal
        .findings
        .iter()
        .any(|f| matches!(f, Finding::NotOurs { .. }));
    let edited = refusal
        .findings
        .iter()
        .any(|f| matches!(f, Finding::HandEdited { .. } | Finding::Orphaned { .. }));
    let mut advice = Vec::new();
    if not_ours {
        advice.push(
            "A file without the generated header stands where output goes and is never overwritten, \
             even with --force: move or rename it.",
        );
    }
    if edited {
        advice.push(
            "Generated files were edited by hand: move the edits into the schema or services/, \
             or pass --force to discard them.",
        );
    }
    advice.join(" ")
}

/// `prefiq codegen --watch`: one line per run, diagnostics in between, never exits on a bad file.
fn codegen_watch(root: &Path, args: &CodegenArgs, printer: &Printer) -> ExitCode {
    let mut watcher = match crate::watch::Watcher::new(root) {
        Ok(watcher) => watcher,
        Err(error) => {
            eprintln!("error: cannot watch {}: {error}", root.display());
            return ExitCode::FAILURE;
        }
    };
    let root = watcher.root().to_path_buf();
    let mut session = prefiq_codegen::Session::watching(&root);
    let first = crate::watch::regenerate(&mut session, args.app.as_deref(), args.force);
    printer.run(&first, "start");
    printer.info(
        "watching apps/*/core/schema, apps/*/core/fixtures, apps/*/core/validation, apps/*/core/events, templates/ and prefiq.toml (Ctrl-C stops)",
    );
    while let Some(batch) = watcher.next_batch(|p| crate::watch::codegen_input(p).is_some()) {
        let Some(apps) = crate::watch::plan(&batch, args.app.as_deref()) else {
            continue;
        };
        let what = crate::watch::describe(&batch);
        for app in apps {
            let run = crate::watch::regenerate(&mut session, app.as_deref(), args.force);
            printer.run(&run, &what);
        }
    }
    ExitCode::SUCCESS
}

fn seed(root: &Path, args: &SeedArgs, printer: &Printer) -> ExitCode {
    let started = Instant::now();
    let generation = prefiq_codegen::Session::new(root).generate(Some(&args.app));
    printer.diagnostics(&generation.diagnostics);
    if generation.has_errors() {
        return ExitCode::FAILURE;
    }
    let Some((app, run)) = generation.app(&args.app) else {
        return ExitCode::FAILURE;
    };
    let rows = &run.fixtures;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:.prefiq/{}.db", args.app));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let progress = printer.progress(None, &format!("seeding {} into {url}", args.app));
    let migrations = crate::seed::migrations(&run.migrations);
    let seeded = runtime.block_on(crate::seed::seed_with(
        &url,
        app,
        rows,
        &migrations,
        args.tenant,
    ));
    drop(progress);
    match seeded {
        Ok(report) => {
            let parts: Vec<String> = report
                .iter()
                .map(|(entity, inserted, present)| {
                    format!(
                        "{entity} {inserted}{}",
                        if *present > 0 {
                            format!(" (+{present} already there)")
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            printer.info(&format!(
                "prefiq seed: {} rows from {} fixture rows into {url}: {} in {} ms",
                report.iter().map(|r| r.1).sum::<u64>(),
                rows.len(),
                parts.join(", "),
                started.elapsed().as_millis()
            ));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: prefiq seed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn openapi_ts(args: &OpenapiTsArgs, printer: &Printer) -> ExitCode {
    let started = Instant::now();
    let path = args.document.display().to_string();
    let text = match std::fs::read_to_string(&args.document) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: cannot read {path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let name = args.name.clone().unwrap_or_else(|| {
        args.document
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "api".to_owned())
    });
    let made = match prefiq_codegen::typescript_client(&text, &path, &name) {
        Ok(made) => made,
        Err(error) => {
            printer.diagnostics(&[error]);
            return ExitCode::FAILURE;
        }
    };
    for file in &made.files {
        let target = args.out.join(&file.path);
        if let Err(error) = std::fs::create_dir_all(&args.out)
            .and_then(|()| std::fs::write(&target, &file.contents))
        {
            eprintln!("error: cannot write {}: {error}", target.display());
            return ExitCode::FAILURE;
        }
    }
    printer.info(&format!(
        "prefiq openapi-ts: {} operations, {} types from {path} into {} in {} ms ({} schemas without a TypeScript shape became `unknown`)",
        made.operations,
        made.types,
        args.out.display(),
        started.elapsed().as_millis(),
        made.degraded
    ));
    ExitCode::SUCCESS
}

fn report_findings(findings: &[Finding], printer: &Printer) {
    for finding in findings {
        if printer.format == MessageFormat::Json {
            println!(
                "{}",
                serde_json::json!({ "kind": finding.kind(), "path": finding.path(), "diff": finding.diff() })
            );
            continue;
        }
        eprintln!("{:>13}  {}", finding.kind(), finding.path());
        if let Some(diff) = finding.diff() {
            for line in diff.lines() {
                eprintln!("               {line}");
            }
        }
    }
}
