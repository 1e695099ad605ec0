//! Migrations by diff. Each app's `bin/migrations/` holds numbered SQL files per dialect, the
//! database model they produce (`snapshot.json`) and a sum file over all of them. `prefiq migrate
//! diff <name>` compares the schema's model with the snapshot and writes the next migration;
//! `prefiq codegen --check` fails while the schema has changes no migration covers, or when a
//! migration was edited.

pub mod diff;
pub mod introspect;
pub mod model;
pub mod sql;

use std::path::Path;

use prefiq_runtime::migrate::checksum;
use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::emit::sql::Dialect;
use crate::emit::templates::Templates;
use crate::ir::App;
use model::Model;

/// The folder of an app's migrations, relative to the project root.
pub fn folder(app: &str) -> String {
    format!("apps/{app}/bin/migrations")
}

/// `snapshot.json` on disk.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotFile {
    #[serde(rename = "x-prefiq")]
    note: String,
    model: Model,
}

/// What an app's migrations folder holds.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// `(version, name)` of each migration, in order.
    pub migrations: Vec<(i64, String)>,
    /// The model after the last migration.
    pub snapshot: Option<Model>,
}

/// Reads an app's migrations folder (missing folder: nothing yet).
pub fn read(root: &Path, app: &str) -> Result<Existing, String> {
    let dir = root.join(folder(app));
    let mut existing = Existing::default();
    if let Ok(entries) = std::fs::read_dir(dir.join("postgres")) {
        for entry in entries.filter_map(Result::ok) {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".sql") else {
                continue;
            };
            let (number, name) = stem.split_once('_').unwrap_or((stem, ""));
            let version = number.parse().map_err(|_| {
                format!(
                    "{}/postgres/{file}: a migration file starts with its number",
                    folder(app)
                )
            })?;
            existing.migrations.push((version, name.to_owned()));
        }
    }
    existing.migrations.sort();
    if let Ok(text) = std::fs::read_to_string(dir.join("snapshot.json")) {
        let file: SnapshotFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}/snapshot.json is not a Prefiq snapshot: {e}",
                folder(app)
            )
        })?;
        existing.snapshot = Some(file.model);
    }
    Ok(existing)
}

fn file_name(version: i64, name: &str) -> String {
    format!("{version:04}_{name}.sql")
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

/// Every file the sum covers, relative to the migrations folder, with its text.
fn covered(root: &Path, app: &str) -> Vec<(String, String)> {
    let dir = root.join(folder(app));
    let mut files = Vec::new();
    for dialect in Dialect::ALL {
        if let Ok(entries) = std::fs::read_dir(dir.join(dialect.name())) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    files.push((format!("{}/{name}", dialect.name()), text));
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("snapshot.json")) {
        files.push(("snapshot.json".to_owned(), text));
    }
    files.sort();
    files
}

/// Problems with the sum file: missing, or not matching the files (an edited migration).
pub fn verify(root: &Path, app: &str) -> Option<String> {
    let files = covered(root, app);
    if files.is_empty() {
        return None;
    }
    let path = format!("{}/migrations.sum", folder(app));
    let Ok(recorded) = std::fs::read_to_string(root.join(&path)) else {
        return Some(format!("{path} is missing"));
    };
    let expected = sum_of(&files);
    if recorded == expected {
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

/// Makes the next migration of `app`: the difference between its snapshot and its schema.
/// `None` when there is no difference. Destructive steps are refused unless allowed.
pub fn next(
    root: &Path,
    app: &App,
    name: &str,
    allow_destructive: bool,
    templates: &Templates,
) -> Result<Option<NewMigration>, Vec<Diagnostic>> {
    let existing =
        read(root, &app.name).map_err(|e| vec![Diagnostic::error("prefiq::migrate::read", e)])?;
    let files: Vec<(String, String)> = covered(root, &app.name)
        .into_iter()
        .filter(|(p, _)| p != "snapshot.json")
        .collect();
    build(app, &existing, files, name, allow_destructive, templates)
}

/// The first migration of an app that has none: every table, and the snapshot and sum.
pub fn initial(app: &App, templates: &Templates) -> Result<Vec<(String, String)>, Diagnostic> {
    match build(
        app,
        &Existing::default(),
        Vec::new(),
        "initial",
        false,
        templates,
    ) {
        Ok(Some(migration)) => Ok(migration.files),
        Ok(None) => Ok(Vec::new()),
        Err(mut errors) => Err(errors.remove(0)),
    }
}

/// The next migration after `existing` (whose files are `files`, relative to the folder).
fn build(
    app: &App,
    existing: &Existing,
    previous: Vec<(String, String)>,
    name: &str,
    allow_destructive: bool,
    templates: &Templates,
) -> Result<Option<NewMigration>, Vec<Diagnostic>> {
    let old = existing.snapshot.clone().unwrap_or_else(Model::empty);
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
    let version = existing.migrations.last().map(|(v, _)| v + 1).unwrap_or(1);
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
        crate::emit::pretty_json(&serde_json::to_value(&snapshot).unwrap_or_default()),
    ));
    // The sum covers the existing files and the new ones.
    let mut all = previous;
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

/// Whether the schema has changes no migration covers yet.
pub fn uncovered(root: &Path, app: &App) -> Option<String> {
    let existing = read(root, &app.name).ok()?;
    let snapshot = existing.snapshot?;
    let plan = diff::diff(&snapshot, &model::of(app));
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
