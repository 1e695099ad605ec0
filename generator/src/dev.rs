//! The dev database of `prefiq dev`: it follows the schema even before a migration is written.
//!
//! Each app gets its own database (by default `.prefiq/dev/<app>.db`). Before a server starts,
//! the committed migrations are applied, then, if the schema has moved on, a *draft*: the diff
//! that `prefiq migrate diff` would write now, applied but never written to the migrations
//! folder. When the draft changes again (or becomes a committed migration with other text), the
//! database no longer matches its ledger; an SQLite dev database is then rebuilt and re-seeded
//! from the app's fixtures, while a PostgreSQL one is left alone with an explanation, because
//! dropping a server database is not a dev tool's call.

use std::path::{Path, PathBuf};

use prefiq_codegen::AppRun;
use prefiq_codegen::ir::App;
use prefiq_runtime::db::{Db, PoolOptions};
use prefiq_runtime::migrate::{self, Migration};

/// What [`prepare`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The draft migration applied on top of the committed ones, as `NNNN_draft`.
    pub draft: Option<String>,
    /// The database was (re)created, so the fixtures were loaded.
    pub seeded: Option<u64>,
    /// An outdated draft forced a rebuild of the SQLite file.
    pub rebuilt: bool,
}

/// The default dev database of `app` under `root`.
pub fn default_url(root: &Path, app: &str) -> String {
    format!(
        "sqlite:{}",
        root.join(".prefiq/dev").join(format!("{app}.db")).display()
    )
}

fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Brings the dev database at `url` up to the schema of `app`: committed migrations, then a draft
/// of what is not migrated yet. Loads the fixtures into a new database.
pub async fn prepare(app: &App, run: &AppRun, url: &str) -> Result<Prepared, String> {
    let mut prepared = Prepared::default();
    let rows = &run.fixtures;
    let mut wanted = crate::seed::migrations(&run.migrations);
    match prefiq_codegen::migrate::next(app, &run.migrations, "draft", true, &run.templates) {
        Ok(None) => {}
        Ok(Some(draft)) => {
            let script = |dialect: &str| {
                draft
                    .files
                    .iter()
                    .find(|(path, _)| path.contains(&format!("/{dialect}/")))
                    .map(|(_, text)| text.clone())
                    .unwrap_or_default()
            };
            prepared.draft = Some(format!("{:04}_draft", draft.version));
            wanted.push(Migration {
                version: draft.version,
                name: "draft".into(),
                postgres: script("postgres").into(),
                sqlite: script("sqlite").into(),
            });
        }
        Err(errors) => {
            return Err(errors
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; "));
        }
    }
    if let Some(file) = sqlite_file(url) {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
    }
    let connect = || async {
        Db::connect(url, &PoolOptions::default())
            .await
            .map_err(|e| format!("cannot open {url}: {e}"))
    };
    let mut db = connect().await?;
    let applied = migrate::applied(&db, &app.name)
        .await
        .map_err(|e| e.to_string())?;
    let outdated = applied.iter().any(|(version, checksum, _)| {
        wanted
            .iter()
            .find(|m| m.version == *version)
            .is_none_or(|m| migrate::checksum(m.script(db.dialect())) != *checksum)
    });
    let mut fresh = applied.is_empty();
    if outdated {
        let Some(file) = sqlite_file(url) else {
            return Err(format!(
                "{url} holds a draft migration of `{}` that no longer matches the schema; \
                 drop its tables (or point --database-url at a new database) and save again",
                app.name
            ));
        };
        db.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
        db = connect().await?;
        prepared.rebuilt = true;
        fresh = true;
    }
    migrate::apply(&db, &app.name, &wanted)
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    if fresh && !rows.is_empty() {
        let report = crate::seed::seed_with(
            url,
            app,
            rows,
            &wanted,
            prefiq_runtime::auth::DEFAULT_TENANT,
        )
        .await?;
        prepared.seeded = Some(report.iter().map(|r| r.1).sum());
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:/tmp/x/crm.db"),
            Some(PathBuf::from("/tmp/x/crm.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://rel/crm.db?mode=rwc"),
            Some(PathBuf::from("rel/crm.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/test"), None);
    }
}
