//! An app's migrations folder, read once per run: `bin/migrations/{postgres,sqlite}/NNNN_name.sql`,
//! `snapshot.json` and `migrations.sum`. Everything that needs the migrations (the sum check,
//! `migrate diff`, the dev database, `seed`, `migrate apply`) takes them from here, so there is
//! one parser and one file-name rule.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::Model;
use crate::sql::Dialect;

/// The folder of an app's migrations, relative to the project root.
pub fn folder(app: &str) -> String {
    format!("{}/bin/migrations", crate::ir::app_root(app))
}

/// `snapshot.json` on disk.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotFile {
    #[serde(rename = "x-prefiq")]
    pub(crate) note: String,
    pub(crate) model: Model,
}

/// One migration: the same version and name in both dialects' folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationScript {
    /// Its number.
    pub version: i64,
    /// Its name, as in `add_vat_number`.
    pub name: String,
    /// The PostgreSQL script.
    pub postgres: String,
    /// The SQLite script.
    pub sqlite: String,
}

impl MigrationScript {
    /// Its file name in each dialect's folder: `0002_add_vat_number.sql`.
    pub fn file_name(&self) -> String {
        file_name(self.version, &self.name)
    }

    /// The script for `dialect`.
    pub fn script(&self, dialect: Dialect) -> &str {
        match dialect {
            Dialect::Postgres => &self.postgres,
            Dialect::Sqlite => &self.sqlite,
        }
    }
}

/// The file name of migration `version` called `name`.
pub fn file_name(version: i64, name: &str) -> String {
    format!("{version:04}_{name}.sql")
}

/// What an app's migrations folder holds.
#[derive(Debug, Clone, Default)]
pub struct MigrationsFolder {
    /// The migrations, by version.
    pub scripts: Vec<MigrationScript>,
    /// The text of `snapshot.json` and the model it records: the database after the last migration.
    pub snapshot: Option<(String, Model)>,
    /// The text of `migrations.sum`.
    pub sum: Option<String>,
}

impl MigrationsFolder {
    /// `(version, name)` of each migration, in order.
    pub fn versions(&self) -> Vec<(i64, String)> {
        self.scripts
            .iter()
            .map(|s| (s.version, s.name.clone()))
            .collect()
    }

    /// The snapshot's model.
    pub fn model(&self) -> Option<&Model> {
        self.snapshot.as_ref().map(|(_, model)| model)
    }

    /// Every file the sum covers, relative to the migrations folder, with its text, sorted.
    pub fn covered(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        for script in &self.scripts {
            for dialect in Dialect::ALL {
                files.push((
                    format!("{}/{}", dialect.name(), script.file_name()),
                    script.script(dialect).to_owned(),
                ));
            }
        }
        if let Some((text, _)) = &self.snapshot {
            files.push(("snapshot.json".to_owned(), text.clone()));
        }
        files.sort();
        files
    }
}

impl MigrationsFolder {
    /// The folder `files` (paths relative to the project root) make, for files a run is about
    /// to write; `None` if they do not make a valid one.
    pub fn from_files(app: &str, files: &[(String, String)]) -> Option<MigrationsFolder> {
        let prefix = format!("{}/", folder(app));
        let text = |name: &str| {
            files
                .iter()
                .find(|(path, _)| path.strip_prefix(&prefix) == Some(name))
                .map(|(_, text)| text.clone())
        };
        let mut out = MigrationsFolder::default();
        let mut scripts: std::collections::BTreeMap<(i64, String), [Option<String>; 2]> =
            std::collections::BTreeMap::new();
        for (path, contents) in files {
            let relative = path.strip_prefix(&prefix)?;
            for (slot, dialect) in Dialect::ALL.into_iter().enumerate() {
                if let Some(file) = relative.strip_prefix(&format!("{}/", dialect.name())) {
                    let key = parse_name(file)?.ok()?;
                    scripts.entry(key).or_default()[slot] = Some(contents.clone());
                }
            }
        }
        for ((version, name), [postgres, sqlite]) in scripts {
            out.scripts.push(MigrationScript {
                version,
                name,
                postgres: postgres?,
                sqlite: sqlite?,
            });
        }
        if let Some(snapshot) = text("snapshot.json") {
            let file: SnapshotFile = serde_json::from_str(&snapshot).ok()?;
            out.snapshot = Some((snapshot, file.model));
        }
        out.sum = text("migrations.sum");
        Some(out)
    }
}

/// `(version, name)` of a file name like `0002_add_vat_number.sql`.
fn parse_name(file: &str) -> Option<Result<(i64, String), ()>> {
    let stem = file.strip_suffix(".sql")?;
    let (number, name) = stem.split_once('_').unwrap_or((stem, ""));
    Some(match number.parse() {
        Ok(version) if !name.is_empty() => Ok((version, name.to_owned())),
        _ => Err(()),
    })
}

/// Reads the migrations folder of `app` under `root`; a missing folder holds nothing yet.
/// Problems (an unreadable file, a misnamed one, a script without its twin, a broken snapshot)
/// are returned as messages.
pub fn read(root: &Path, app: &str) -> Result<MigrationsFolder, Vec<String>> {
    let dir = root.join(folder(app));
    let mut problems = Vec::new();
    let mut found: std::collections::BTreeMap<(i64, String), [Option<String>; 2]> =
        std::collections::BTreeMap::new();
    for (slot, dialect) in Dialect::ALL.into_iter().enumerate() {
        let Ok(entries) = std::fs::read_dir(dir.join(dialect.name())) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let file = entry.file_name().to_string_lossy().into_owned();
            let shown = format!("{}/{}/{file}", folder(app), dialect.name());
            match parse_name(&file) {
                None => {}
                Some(Err(())) => problems.push(format!(
                    "{shown}: a migration file is named `NNNN_name.sql`, starting with its number"
                )),
                Some(Ok(key)) => match std::fs::read_to_string(entry.path()) {
                    Ok(text) => found.entry(key).or_default()[slot] = Some(text),
                    Err(error) => problems.push(format!("cannot read {shown}: {error}")),
                },
            }
        }
    }
    let mut scripts = Vec::new();
    for ((version, name), [postgres, sqlite]) in found {
        match (postgres, sqlite) {
            (Some(postgres), Some(sqlite)) => scripts.push(MigrationScript {
                version,
                name,
                postgres,
                sqlite,
            }),
            (postgres, _) => {
                let (has, lacks) = if postgres.is_some() {
                    ("postgres", "sqlite")
                } else {
                    ("sqlite", "postgres")
                };
                problems.push(format!(
                    "{}/{has}/{} has no twin in {lacks}/: every migration is written for both dialects",
                    folder(app),
                    file_name(version, &name)
                ));
            }
        }
    }
    let mut out = MigrationsFolder {
        scripts,
        ..MigrationsFolder::default()
    };
    if let Ok(text) = std::fs::read_to_string(dir.join("snapshot.json")) {
        match serde_json::from_str::<SnapshotFile>(&text) {
            Ok(file) => out.snapshot = Some((text, file.model)),
            Err(error) => problems.push(format!(
                "{}/snapshot.json is not a Prefiq snapshot: {error}",
                folder(app)
            )),
        }
    }
    out.sum = std::fs::read_to_string(dir.join("migrations.sum")).ok();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
