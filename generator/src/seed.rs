//! `prefiq seed`: apply an app's migrations to a database and insert its fixture rows, in
//! dependency order, skipping rows whose key is already there (so seeding twice is harmless).

use std::path::Path;

use prefiq_runtime::db::{Db, Dialect, PoolOptions, SqlValue};
use prefiq_runtime::deps::sqlx::AssertSqlSafe;
use prefiq_runtime::migrate::{self, Migration};

use crate::emit::sql::quote;
use crate::fixtures::{Row, column_kind, insert_order};
use crate::ir::{App, FieldRole, KeyGeneration};

/// What a seed did, per entity: `(entity, inserted, already there)`.
pub type SeedReport = Vec<(String, u64, u64)>;

/// Reads the migrations of `app` from `apps/<app>/bin/migrations/`. The strings live for the rest
/// of this short process, as the runner wants `'static` text (it is made for embedded migrations).
pub fn migrations(root: &Path, app: &str) -> Result<Vec<Migration>, String> {
    let dir = root.join("apps").join(app).join("bin/migrations");
    let mut found = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir.join("postgres"))
        .map_err(|e| {
            format!(
                "cannot read {}: {e} (run `prefiq codegen` first)",
                dir.join("postgres").display()
            )
        })?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    for file in names {
        let stem = file.trim_end_matches(".sql");
        let (number, name) = stem.split_once('_').unwrap_or((stem, stem));
        let version: i64 = number
            .parse()
            .map_err(|_| format!("migration file `{file}` does not start with a number"))?;
        let read = |dialect: &str| {
            std::fs::read_to_string(dir.join(dialect).join(&file))
                .map_err(|e| format!("cannot read {dialect}/{file}: {e}"))
        };
        found.push(Migration {
            version,
            name: Box::leak(name.to_owned().into_boxed_str()),
            postgres: Box::leak(read("postgres")?.into_boxed_str()),
            sqlite: Box::leak(read("sqlite")?.into_boxed_str()),
        });
    }
    Ok(found)
}

/// Seeds `url` with `rows` of `app`.
pub async fn seed(root: &Path, app: &App, rows: &[Row], url: &str) -> Result<SeedReport, String> {
    seed_with(url, app, rows, &migrations(root, &app.name)?).await
}

/// Seeds `url` with `rows` of `app` after applying `migrations`.
pub async fn seed_with(
    url: &str,
    app: &App,
    rows: &[Row],
    migrations: &[Migration],
) -> Result<SeedReport, String> {
    let db = Db::connect(url, &PoolOptions::default())
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    migrate::apply(&db, &app.name, migrations)
        .await
        .map_err(|e| e.to_string())?;
    let mut report = Vec::new();
    let now = prefiq_runtime::db::now();
    for entity in insert_order(app) {
        let (mut inserted, mut present) = (0, 0);
        for row in rows.iter().filter(|r| r.entity == entity.name) {
            let mut columns = Vec::new();
            let mut params = Vec::new();
            for field in &entity.fields {
                let value = match field.role {
                    FieldRole::CreatedAt | FieldRole::UpdatedAt => SqlValue::DateTime(now),
                    FieldRole::Version => SqlValue::Int(1),
                    _ => match row.value.get(&field.member.name) {
                        Some(value) => SqlValue::from_json(column_kind(&field.member.ty), value)
                            .ok_or_else(|| {
                                format!(
                                    "{} {}: `{}` does not fit its column",
                                    entity.name, row.pointer, field.member.name
                                )
                            })?,
                        None if field.role == FieldRole::PrimaryKey(KeyGeneration::Uuid) => {
                            SqlValue::Uuid(prefiq_runtime::deps::uuid::Uuid::now_v7())
                        }
                        // Absent: the column default (or NULL) applies.
                        None => continue,
                    },
                };
                columns.push(quote(&field.column));
                params.push(value);
            }
            let placeholders: Vec<String> = (1..=params.len())
                .map(|n| db.dialect().placeholder(n))
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                quote(&entity.table),
                columns.join(", "),
                placeholders.join(", ")
            );
            let count = db
                .execute(AssertSqlSafe(sql), params)
                .await
                .map_err(|e| format!("{} {}: {e}", entity.name, row.pointer))?;
            if count == 1 {
                inserted += 1
            } else {
                present += 1
            }
        }
        // Rows with explicit identity keys do not advance PostgreSQL's sequence; move it past them.
        if db.dialect() == Dialect::Postgres
            && entity.key().role == FieldRole::PrimaryKey(KeyGeneration::Identity)
            && inserted > 0
        {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{key}'), (SELECT MAX({key_q}) FROM {table_q}))",
                table = entity.table.replace('\'', "''"),
                key = entity.key().column.replace('\'', "''"),
                key_q = quote(&entity.key().column),
                table_q = quote(&entity.table),
            );
            db.fetch_optional(AssertSqlSafe(sql), vec![])
                .await
                .map_err(|e| e.to_string())?;
        }
        report.push((entity.name.clone(), inserted, present));
    }
    db.close().await;
    Ok(report)
}
