//! Migrations by diff. Each app's `bin/migrations/` holds numbered SQL files per dialect, the
//! database model they produce (`snapshot.json`) and a sum file over all of them. `prefiq migrate
//! diff <name>` compares the schema's model with the snapshot and writes the next migration;
//! `prefiq codegen --check` fails while the schema has changes no migration covers, or when a
//! migration was edited.

pub mod diff;
pub mod sql;

use sha2::{Digest as _, Sha256};

use crate::diag::Diagnostic;
use crate::ir::App;
use crate::load::migrations::{MigrationsFolder, SnapshotFile, file_name, folder};
use crate::model::{self, Model};
use crate::sql::Dialect;
use crate::templates::Templates;

/// The SHA-256 of a text, in hex.
pub fn checksum(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sum file over the migration files and the snapshot.
fn sum_of(files: &[(String, String)]) -> String {
    let mut lines: Vec<String> = files
        .iter()
        .map(|(path, text)| format!("{path} sha256:{}", checksum(text)))
        .collect();
    lines.sort();
    let total = checksum(&lines.join("\n"));
    format!(
        "# Checksums of the migrations of this folder, kept by prefiq migrate diff.\n# Edit the schema and make a new migration; never edit an applied one.\nh1:{total}\n{}\n",
        lines.join("\n")
    )
}

/// Problems with the sum file of `app`'s `migrations`: missing, or not matching the files (an
/// edited migration).
pub fn verify(app: &str, migrations: &MigrationsFolder) -> Option<String> {
    let files = migrations.covered();
    if files.is_empty() {
        return None;
    }
    let path = format!("{}/migrations.sum", folder(app));
    let Some(recorded) = &migrations.sum else {
        return Some(format!("{path} is missing"));
    };
    let expected = sum_of(&files);
    if *recorded == expected {
        return None;
    }
    let recorded_lines: Vec<&str> = recorded
        .lines()
        .filter(|l| l.contains(" sha256:"))
        .collect();
    let changed: Vec<String> = expected
        .lines()
        .filter(|l| l.contains(" sha256:") && !recorded_lines.contains(l))
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    Some(format!(
        "{path} does not match the migrations: {} changed since the sum was made (an applied migration must never be edited)",
        if changed.is_empty() {
            "a file was removed".to_owned()
        } else {
            changed.join(", ")
        }
    ))
}

/// A migration about to be written.
#[derive(Debug)]
pub struct NewMigration {
    /// Its number.
    pub version: i64,
    /// Its name.
    pub name: String,
    /// `(path relative to the project root, contents)`: both scripts, the snapshot, the sum.
    pub files: Vec<(String, String)>,
    /// What it does.
    pub plan: diff::Plan,
}

/// Makes the next migration of `app` after `migrations`: the difference between its snapshot
/// and its schema. `None` when there is no difference. Destructive steps are refused unless
/// allowed.
pub fn next(
    app: &App,
    migrations: &MigrationsFolder,
    name: &str,
    allow_destructive: bool,
    templates: &Templates,
) -> Result<Option<NewMigration>, Vec<Diagnostic>> {
    build(app, migrations, name, allow_destructive, templates)
}

/// The first migration of an app that has none: every table, and the snapshot and sum.
pub fn initial(app: &App, templates: &Templates) -> Result<Vec<(String, String)>, Diagnostic> {
    match build(
        app,
        &MigrationsFolder::default(),
        "initial",
        false,
        templates,
    ) {
        Ok(Some(migration)) => Ok(migration.files),
        Ok(None) => Ok(Vec::new()),
        Err(mut errors) => Err(errors.remove(0)),
    }
}

/// The next migration after `existing`.
fn build(
    app: &App,
    existing: &MigrationsFolder,
    name: &str,
    allow_destructive: bool,
    templates: &Templates,
) -> Result<Option<NewMigration>, Vec<Diagnostic>> {
    let old = existing.model().cloned().unwrap_or_else(Model::empty);
    let new = model::of(app);
    let plan = diff::diff(&old, &new);
    if plan.is_empty() && existing.snapshot.is_some() {
        return Ok(None);
    }
    let mut errors: Vec<Diagnostic> = plan
        .impossible
        .iter()
        .map(|p| {
            Diagnostic::error(
                "prefiq::migrate::impossible",
                format!("app `{}`: this schema change {p}", app.name),
            )
            .with_help("no migration can do this in place")
        })
        .collect();
    if !plan.destructive.is_empty() && !allow_destructive {
        for step in &plan.destructive {
            errors.push(
                Diagnostic::error("prefiq::migrate::destructive", format!("app `{}`: the migration {step}", app.name))
                    .with_help("if this is intended, run again with --allow-destructive (it is recorded in the migration); to rename instead, declare `x-prefiq: {renamed-from: old}`"),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || name.is_empty()
    {
        return Err(vec![
            Diagnostic::error(
                "prefiq::migrate::name",
                format!("`{name}` cannot name a migration"),
            )
            .with_help("use lower-case letters, digits and `_`, as in `add_vat_number`"),
        ]);
    }
    let version = existing.scripts.last().map(|s| s.version + 1).unwrap_or(1);
    let dir = folder(&app.name);
    let mut files = Vec::new();
    for dialect in Dialect::ALL {
        let script = sql::script(&plan, dialect);
        let text = templates
            .render(
                "migration.sql.jinja",
                serde_json::json!({
                    "app": app.name,
                    "version": format!("{version:04}"),
                    "name": name,
                    "dialect": match dialect { Dialect::Postgres => "PostgreSQL", Dialect::Sqlite => "SQLite" },
                    "foreign_keys_off": script.foreign_keys_off && dialect == Dialect::Sqlite,
                    "destructive": plan.destructive,
                    "warnings": if dialect == Dialect::Postgres && existing.snapshot.is_some() { plan.warnings.clone() } else { vec![] },
                    "steps": script.steps,
                }),
            )
            .map_err(|e| vec![e])?;
        files.push((
            format!("{dir}/{}/{}", dialect.name(), file_name(version, name)),
            text,
        ));
    }
    let snapshot = SnapshotFile {
        note:
            "The database model after the last migration, kept by prefiq migrate diff. Do not edit."
                .into(),
        model: diff::carry_identities(&plan, &new),
    };
    files.push((
        format!("{dir}/snapshot.json"),
        crate::output::pretty_json(&serde_json::to_value(&snapshot).unwrap_or_default()),
    ));
    // The sum covers the existing scripts and the new files.
    let mut all: Vec<(String, String)> = existing
        .covered()
        .into_iter()
        .filter(|(path, _)| path != "snapshot.json")
        .collect();
    for (path, text) in &files {
        all.push((
            path.trim_start_matches(&format!("{dir}/")).to_owned(),
            text.clone(),
        ));
    }
    files.push((format!("{dir}/migrations.sum"), sum_of(&all)));
    Ok(Some(NewMigration {
        version,
        name: name.to_owned(),
        files,
        plan,
    }))
}

/// Whether the schema has changes no migration in `migrations` covers yet.
pub fn uncovered(app: &App, migrations: &MigrationsFolder) -> Option<String> {
    let snapshot = migrations.model()?;
    let plan = diff::diff(snapshot, &model::of(app));
    if plan.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    what.extend(plan.created.iter().map(|t| format!("new table {}", t.name)));
    what.extend(
        plan.dropped
            .iter()
            .map(|t| format!("table {} removed", t.name)),
    );
    what.extend(
        plan.altered
            .iter()
            .map(|t| format!("table {} changed", t.new.name)),
    );
    Some(what.join(", "))
}
