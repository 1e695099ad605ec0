//! `prefiq migrate`: make the next migration, apply migrations, and compare a live database with
//! the schema.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use prefiq_runtime::db::{Db, PoolOptions};

use prefiq_codegen::Session;
use prefiq_codegen::load::{AppInput, ParseCache};

use super::Printer;

/// The `migrate` subcommands.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Write the next migration (both dialects) from the difference between schema and snapshot.
    #[command(
        after_help = "Examples:\n  prefiq migrate diff add_vat_number\n  prefiq migrate diff drop_fax --app crm --allow-destructive\n\nDestructive steps (dropping tables or columns, narrowing types, removing enum values) are refused\nunless --allow-destructive is given; the migration then records what it loses. To rename a field or\nan entity, declare `x-prefiq: {renamed-from: old_name}` (or a stable `x-prefiq: {id: ...}`)."
    )]
    Diff {
        /// The migration's name, as in `add_vat_number`.
        name: String,
        /// Only this app.
        #[arg(long, value_name = "NAME")]
        app: Option<String>,
        /// Allow steps that lose data; they are listed in the migration file.
        #[arg(long)]
        allow_destructive: bool,
    },
    /// Apply pending migrations to a database.
    #[command(
        after_help = "Examples:\n  prefiq migrate apply                                   each app's SQLite file (.prefiq/<app>.db)\n  prefiq migrate apply --app crm --database-url postgres://localhost/crm\n\nEach migration runs in its own transaction; two processes applying at once are serialised.\nAn applied migration whose file changed since is refused."
    )]
    Apply(DatabaseArgs),
    /// Show applied and pending migrations of each app.
    #[command(
        after_help = "Example:\n  prefiq migrate status --database-url postgres://localhost/crm"
    )]
    Status(DatabaseArgs),
    /// Compare a live database's tables, columns, indexes and constraints with the snapshot.
    #[command(
        after_help = "Example:\n  prefiq migrate drift --app crm --database-url postgres://localhost/crm\n\nExits 1 when the database differs from what the migrations describe (a hand-made change)."
    )]
    Drift(DatabaseArgs),
}

/// Which database, and which apps.
#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// Only this app.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// postgres://... or sqlite:path. Default: each app's embedded SQLite file (.prefiq/<app>.db).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

/// Runs a `migrate` subcommand.
pub(super) fn run(root: &Path, command: &MigrateCommand, printer: &Printer) -> ExitCode {
    match command {
        MigrateCommand::Diff {
            name,
            app,
            allow_destructive,
        } => diff(root, name, app.as_deref(), *allow_destructive, printer),
        MigrateCommand::Apply(args) => with_databases(root, args, printer, apply),
        MigrateCommand::Status(args) => with_databases(root, args, printer, status),
        MigrateCommand::Drift(args) => with_databases(root, args, printer, drift),
    }
}

fn diff(root: &Path, name: &str, only: Option<&str>, allow: bool, printer: &Printer) -> ExitCode {
    let mut session = Session::new(root);
    let generation = session.generate(only);
    printer.diagnostics(&generation.diagnostics);
    if generation.has_errors() {
        return ExitCode::FAILURE;
    }
    let Some(ir) = &generation.ir else {
        return ExitCode::FAILURE;
    };
    let mut made = 0;
    for app in &ir.apps {
        let Some(run) = generation.apps.get(&app.name) else {
            continue;
        };
        match prefiq_codegen::migrate::next(app, &run.migrations, name, allow, &run.templates) {
            Ok(None) => printer.info(&format!(
                "app `{}`: the schema matches the last migration; nothing to do",
                app.name
            )),
            Ok(Some(migration)) => {
                for (path, contents) in &migration.files {
                    if let Err(error) =
                        prefiq_codegen::write::write_file(&root.join(path), contents)
                    {
                        eprintln!("error: cannot write {path}: {error}");
                        return ExitCode::FAILURE;
                    }
                }
                made += 1;
                printer.info(&format!(
                    "app `{}`: wrote migration {:04}_{} for PostgreSQL and SQLite in {}",
                    app.name,
                    migration.version,
                    migration.name,
                    prefiq_codegen::load::migrations::folder(&app.name)
                ));
                for step in &migration.plan.destructive {
                    printer.info(&format!("  destructive (allowed): {step}"));
                }
                for warning in &migration.plan.warnings {
                    printer.info(&format!("  on a large PostgreSQL table: {warning}"));
                }
            }
            Err(errors) => {
                printer.diagnostics(&errors);
                printer.info("prefiq migrate diff: no migration was written");
                return ExitCode::FAILURE;
            }
        }
    }
    if made > 0 {
        // The app binaries embed their migrations: regenerate so they include the new one.
        let generation = session.generate(only);
        let scope = prefiq_codegen::write::Scope::of(root, only);
        if prefiq_codegen::write::write(root, &generation.output, &scope, false).is_err() {
            printer.info("the migration is written, but `prefiq codegen` must run to embed it");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

type Action = for<'a> fn(
    &'a AppInput,
    &'a Db,
    &'a Printer,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>>;

fn with_databases(root: &Path, args: &DatabaseArgs, printer: &Printer, action: Action) -> ExitCode {
    let (project, diagnostics) =
        prefiq_codegen::load::load(root, args.app.as_deref(), &mut ParseCache::default());
    if diagnostics.iter().any(|d| d.is_error()) {
        printer.diagnostics(&diagnostics);
        return ExitCode::FAILURE;
    }
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let mut ok = true;
    let progress = printer.progress(Some(project.apps.len() as u64), "migrations");
    for app in &project.apps {
        progress.message(&format!("app `{}`", app.name));
        let url = args
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:.prefiq/{}.db", app.name));
        let db = match runtime.block_on(Db::connect(
            &url,
            &PoolOptions {
                max_connections: 2,
                ..PoolOptions::default()
            },
        )) {
            Ok(db) => db,
            Err(error) => {
                eprintln!("error: cannot open {url}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let done = progress.suspend(|| runtime.block_on(action(app, &db, printer)));
        runtime.block_on(db.close());
        progress.step();
        ok &= done;
    }
    drop(progress);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn apply<'a>(
    input: &'a AppInput,
    db: &'a Db,
    printer: &'a Printer,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
    Box::pin(async move {
        let app = input.name.as_str();
        let migrations = crate::seed::migrations(&input.migrations);
        match prefiq_runtime::migrate::apply(db, app, &migrations).await {
            Ok(report) => {
                printer.info(&format!(
                    "app `{app}`: applied {:?}, already applied {:?}",
                    report.applied, report.skipped
                ));
                true
            }
            Err(error) => {
                eprintln!("error: app `{app}`: {error}");
                false
            }
        }
    })
}

fn status<'a>(
    input: &'a AppInput,
    db: &'a Db,
    printer: &'a Printer,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
    Box::pin(async move {
        let app = input.name.as_str();
        let migrations = crate::seed::migrations(&input.migrations);
        let applied = match prefiq_runtime::migrate::applied(db, app).await {
            Ok(applied) => applied,
            Err(error) => {
                eprintln!("error: app `{app}`: cannot read the migration ledger: {error}");
                return false;
            }
        };
        let mut ok = true;
        for m in &migrations {
            let sql = m.script(db.dialect());
            let line = match applied.iter().find(|(v, _, _)| *v == m.version) {
                Some((_, checksum, at)) if *checksum == prefiq_runtime::migrate::checksum(sql) => {
                    format!("applied  {:04}_{} ({at})", m.version, m.name)
                }
                Some(_) => {
                    ok = false;
                    format!(
                        "EDITED   {:04}_{}: the file changed after it was applied",
                        m.version, m.name
                    )
                }
                None => format!("pending  {:04}_{}", m.version, m.name),
            };
            printer.info(&format!("app `{app}`: {line}"));
        }
        for (version, _, _) in applied
            .iter()
            .filter(|(v, _, _)| !migrations.iter().any(|m| m.version == *v))
        {
            printer.info(&format!(
                "app `{app}`: unknown  {version:04}: applied to the database, but not in this build"
            ));
        }
        ok
    })
}

fn drift<'a>(
    input: &'a AppInput,
    db: &'a Db,
    printer: &'a Printer,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + 'a>> {
    Box::pin(async move {
        let app = input.name.as_str();
        let Some(snapshot) = input.migrations.model() else {
            eprintln!("error: app `{app}` has no migrations yet; run `prefiq codegen`");
            return false;
        };
        let dialect = crate::introspect::dialect(db);
        let live = match crate::introspect::read(db).await {
            Ok(live) => live,
            Err(error) => {
                eprintln!("error: cannot read the database: {error}");
                return false;
            }
        };
        let expected = crate::introspect::expected(snapshot, dialect);
        // Tables of other apps sharing the database are not this app's drift.
        let live: crate::introspect::Live = live
            .into_iter()
            .filter(|(name, _)| expected.contains_key(name) || !name.contains("__"))
            .collect();
        let mut differences = crate::introspect::compare(&expected, &live);
        differences.retain(|d| {
            !(d.starts_with("table ") && d.ends_with("is not in the schema")) || expected.is_empty()
        });
        if differences.is_empty() {
            printer.info(&format!(
                "app `{app}`: the database matches the snapshot ({} tables)",
                expected.len()
            ));
            return true;
        }
        for difference in &differences {
            println!("app `{app}`: {difference}");
        }
        printer.info(&format!(
            "app `{app}`: {} differences between the database and the migrations",
            differences.len()
        ));
        false
    })
}
