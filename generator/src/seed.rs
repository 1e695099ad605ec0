//! `prefiq seed`: apply an app's migrations to a database and insert its fixture rows, in
//! dependency order, skipping rows whose key is already there (so seeding twice is harmless).

use prefiq_codegen::fixtures::{Row, insert_order};
use prefiq_codegen::ir::{App, FieldRole, KeyGeneration, Storage, TENANT_COLUMN, Tenancy};
use prefiq_codegen::load::migrations::MigrationsFolder;
use prefiq_codegen::sql::quote;
use prefiq_runtime::Sql;
use prefiq_runtime::db::{ColumnKind, Db, Dialect, PoolOptions, SqlValue};
use prefiq_runtime::migrate::{self, Migration};

/// What a seed did, per entity: `(entity, inserted, already there)`.
pub type SeedReport = Vec<(String, u64, u64)>;

/// The runtime's migrations of an app's migrations folder.
pub fn migrations(folder: &MigrationsFolder) -> Vec<Migration> {
    folder
        .scripts
        .iter()
        .map(|script| Migration {
            version: script.version,
            name: script.name.clone().into(),
            postgres: script.postgres.clone().into(),
            sqlite: script.sqlite.clone().into(),
        })
        .collect()
}

/// How the runtime binds a value stored as `storage`.
pub fn column_kind(storage: &Storage) -> ColumnKind {
    match storage {
        Storage::Boolean => ColumnKind::Bool,
        Storage::Int32 => ColumnKind::Int32,
        Storage::Int64 => ColumnKind::Int,
        Storage::Float64 => ColumnKind::Float,
        Storage::Text => ColumnKind::Text,
        Storage::Uuid => ColumnKind::Uuid,
        Storage::Date => ColumnKind::Date,
        Storage::Timestamp => ColumnKind::DateTime,
        Storage::Numeric { .. } => ColumnKind::Decimal,
        Storage::Json => ColumnKind::Json,
    }
}

/// Seeds `url` with `rows` of `app` after applying `migrations`; rows of tenant-scoped entities
/// belong to `tenant`.
pub async fn seed_with(
    url: &str,
    app: &App,
    rows: &[Row],
    migrations: &[Migration],
    tenant: prefiq_runtime::deps::uuid::Uuid,
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
                        Some(value) => SqlValue::from_json(column_kind(&field.storage), value)
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
            if entity.tenancy == Tenancy::Tenant {
                columns.push(quote(TENANT_COLUMN));
                params.push(SqlValue::Uuid(tenant));
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
                .execute(Sql::built(sql), params)
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
            db.fetch_optional(Sql::built(sql), vec![])
                .await
                .map_err(|e| e.to_string())?;
        }
        report.push((entity.name.clone(), inserted, present));
    }
    db.close().await;
    Ok(report)
}
