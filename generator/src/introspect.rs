//! Reading a live database's tables back, to compare them with the snapshot (drift) or with
//! another database. Everything is normalised to the dialect's own spelling, so that what is
//! compared is exactly what the database holds.

use std::collections::BTreeMap;

use prefiq_codegen::migrate::sql::{literal, sql_type};
use prefiq_codegen::model::{ColumnType, Model};
use prefiq_codegen::sql::Dialect;
use prefiq_runtime::db::{Db, DbError, Dialect as RuntimeDialect, SqlValue};

/// The generator's name for the dialect of `db`.
pub fn dialect(db: &Db) -> Dialect {
    match db.dialect() {
        RuntimeDialect::Postgres => Dialect::Postgres,
        RuntimeDialect::Sqlite => Dialect::Sqlite,
    }
}

/// A column as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveColumn {
    /// Its name.
    pub name: String,
    /// Its type, as the dialect spells it.
    pub ty: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Its default expression, normalised.
    pub default: Option<String>,
    /// Part of the primary key.
    pub primary_key: bool,
}

/// An index as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveIndex {
    /// Its name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// Unique.
    pub unique: bool,
}

/// A foreign key as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveForeignKey {
    /// The referring column.
    pub column: String,
    /// The referenced table.
    pub table: String,
    /// The referenced column.
    pub target: String,
    /// The delete rule.
    pub on_delete: String,
}

/// An enum check as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveCheck {
    /// The column.
    pub column: String,
    /// The allowed values, sorted.
    pub values: Vec<String>,
}

/// A table as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveTable {
    /// Columns, by name.
    pub columns: Vec<LiveColumn>,
    /// Indexes, by name.
    pub indexes: Vec<LiveIndex>,
    /// Foreign keys.
    pub foreign_keys: Vec<LiveForeignKey>,
    /// Enum checks.
    pub checks: Vec<LiveCheck>,
}

/// Every table of a database (but the migration ledger), by name.
pub type Live = BTreeMap<String, LiveTable>;

fn normalise_default(text: &str) -> String {
    let mut text = text.trim().to_owned();
    for cast in [
        "::text",
        "::character varying",
        "::integer",
        "::bigint",
        "::numeric",
        "::boolean",
        "::date",
    ] {
        if let Some(stripped) = text.strip_suffix(cast) {
            text = stripped.to_owned();
        }
    }
    text
}

fn postgres_type(data_type: &str, precision: Option<i32>, scale: Option<i32>) -> String {
    match data_type {
        "timestamp with time zone" => "timestamptz".into(),
        "numeric" => match (precision, scale) {
            (Some(p), Some(s)) => format!("numeric({p}, {s})"),
            _ => "numeric".into(),
        },
        other => other.into(),
    }
}

fn check_values(definition: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut rest = definition;
    while let Some(start) = rest.find('\'') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('\'') else { break };
        values.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    values.sort();
    values
}

fn check_column(definition: &str) -> String {
    let inner = definition.trim_start_matches(|c: char| {
        c == '(' || c.is_whitespace() || c.is_ascii_uppercase() && c != '"'
    });
    let inner = inner.trim_start_matches(['(', ' ']);
    let name: String = inner
        .trim_start_matches('"')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    name
}

async fn strings(
    db: &Db,
    sql: &'static str,
    params: Vec<SqlValue>,
    width: usize,
) -> Result<Vec<Vec<Option<String>>>, DbError> {
    let rows = db.fetch_all(sql, params).await?;
    let mut out = Vec::new();
    for row in rows {
        let mut values = Vec::new();
        for i in 0..width {
            values.push(row.opt::<String>(i)?);
        }
        out.push(values);
    }
    Ok(out)
}

/// Reads every table of `db`.
pub async fn read(db: &Db) -> Result<Live, DbError> {
    match db.dialect() {
        RuntimeDialect::Postgres => read_postgres(db).await,
        RuntimeDialect::Sqlite => read_sqlite(db).await,
    }
}

async fn read_postgres(db: &Db) -> Result<Live, DbError> {
    let mut live = Live::new();
    let columns = strings(
        db,
        concat!(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text, c.column_default::text, \
         c.numeric_precision::text, c.numeric_scale::text \
         FROM information_schema.columns c JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name NOT IN (", prefiq_runtime::runtime_tables!(), ")"
        ),
        vec![],
        7,
    )
    .await?;
    let keys = strings(
        db,
        "SELECT t.relname::text, a.attname::text FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(ix.indkey) JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE ix.indisprimary AND n.nspname = current_schema()",
        vec![],
        2,
    )
    .await?;
    for row in columns {
        let [
            Some(table),
            Some(name),
            Some(data_type),
            Some(nullable),
            default,
            precision,
            scale,
        ] = &row[..]
        else {
            continue;
        };
        let primary_key = keys
            .iter()
            .any(|k| k[0].as_deref() == Some(table) && k[1].as_deref() == Some(name));
        let precision = precision.as_deref().and_then(|p| p.parse().ok());
        let scale = scale.as_deref().and_then(|s| s.parse().ok());
        let ty = postgres_type(
            data_type,
            if data_type == "numeric" {
                precision
            } else {
                None
            },
            scale,
        );
        let default = default
            .as_deref()
            .filter(|d| !d.starts_with("nextval("))
            .map(normalise_default);
        live.entry(table.clone())
            .or_default()
            .columns
            .push(LiveColumn {
                name: name.clone(),
                ty,
                not_null: nullable == "NO" || primary_key,
                default,
                primary_key,
            });
    }
    let indexes = strings(
        db,
        concat!(
            "SELECT t.relname::text, i.relname::text, ix.indisunique::text, \
         (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) \
          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum)::text \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = current_schema() AND NOT ix.indisprimary AND t.relname NOT IN (", prefiq_runtime::runtime_tables!(), ")"
        ),
        vec![],
        4,
    )
    .await?;
    for row in indexes {
        let [Some(table), Some(name), Some(unique), Some(columns)] = &row[..] else {
            continue;
        };
        live.entry(table.clone())
            .or_default()
            .indexes
            .push(LiveIndex {
                name: name.clone(),
                columns: columns.split(',').map(str::to_owned).collect(),
                unique: unique == "true",
            });
    }
    let keys = strings(
        db,
        concat!(
            "SELECT t.relname::text, a.attname::text, ft.relname::text, fa.attname::text, c.confdeltype::text \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class ft ON ft.oid = c.confrelid \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] \
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE c.contype = 'f' AND n.nspname = current_schema() \
         AND t.relname NOT IN (", prefiq_runtime::runtime_tables!(), ")"
        ),
        vec![],
        5,
    )
    .await?;
    for row in keys {
        let [
            Some(table),
            Some(column),
            Some(target_table),
            Some(target),
            Some(rule),
        ] = &row[..]
        else {
            continue;
        };
        let on_delete = match rule.as_str() {
            "r" => "RESTRICT",
            "c" => "CASCADE",
            "n" => "SET NULL",
            "d" => "SET DEFAULT",
            _ => "NO ACTION",
        };
        live.entry(table.clone())
            .or_default()
            .foreign_keys
            .push(LiveForeignKey {
                column: column.clone(),
                table: target_table.clone(),
                target: target.clone(),
                on_delete: on_delete.into(),
            });
    }
    let checks = strings(
        db,
        concat!(
            "SELECT t.relname::text, pg_get_constraintdef(c.oid)::text FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE c.contype = 'c' AND n.nspname = current_schema() \
         AND t.relname NOT IN (", prefiq_runtime::runtime_tables!(), ")"
        ),
        vec![],
        2,
    )
    .await?;
    for row in checks {
        let [Some(table), Some(definition)] = &row[..] else {
            continue;
        };
        live.entry(table.clone())
            .or_default()
            .checks
            .push(LiveCheck {
                column: check_column(definition.trim_start_matches("CHECK ")),
                values: check_values(definition),
            });
    }
    Ok(sorted(live))
}

async fn read_sqlite(db: &Db) -> Result<Live, DbError> {
    let mut live = Live::new();
    let tables = strings(db, concat!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN (", prefiq_runtime::runtime_tables!(), ")"
        ), vec![], 2).await?;
    for row in tables {
        let [Some(table), sql] = &row[..] else {
            continue;
        };
        let mut entry = LiveTable::default();
        let columns = strings(db, "SELECT name, type, CAST(\"notnull\" AS TEXT), dflt_value, CAST(pk AS TEXT) FROM pragma_table_info(?1)", vec![SqlValue::Text(table.clone())], 5).await?;
        for c in columns {
            let [Some(name), Some(ty), Some(not_null), default, Some(pk)] = &c[..] else {
                continue;
            };
            let primary_key = pk != "0";
            entry.columns.push(LiveColumn {
                name: name.clone(),
                ty: ty.clone(),
                not_null: not_null == "1" || primary_key,
                default: default.as_deref().map(normalise_default),
                primary_key,
            });
        }
        let indexes = strings(db, "SELECT name, CAST(\"unique\" AS TEXT) FROM pragma_index_list(?1) WHERE name NOT LIKE 'sqlite_autoindex%'", vec![SqlValue::Text(table.clone())], 2).await?;
        for index in indexes {
            let [Some(name), Some(unique)] = &index[..] else {
                continue;
            };
            let columns = strings(
                db,
                "SELECT name FROM pragma_index_info(?1) ORDER BY seqno",
                vec![SqlValue::Text(name.clone())],
                1,
            )
            .await?;
            entry.indexes.push(LiveIndex {
                name: name.clone(),
                columns: columns.into_iter().filter_map(|c| c[0].clone()).collect(),
                unique: unique == "1",
            });
        }
        let keys = strings(
            db,
            "SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list(?1)",
            vec![SqlValue::Text(table.clone())],
            4,
        )
        .await?;
        for key in keys {
            let [
                Some(target_table),
                Some(column),
                Some(target),
                Some(on_delete),
            ] = &key[..]
            else {
                continue;
            };
            entry.foreign_keys.push(LiveForeignKey {
                column: column.clone(),
                table: target_table.clone(),
                target: target.clone(),
                on_delete: on_delete.clone(),
            });
        }
        for part in sql.as_deref().unwrap_or("").split("CONSTRAINT ").skip(1) {
            if let Some(definition) = part.split_once(" CHECK ").map(|(_, d)| d) {
                let definition = definition.split("),").next().unwrap_or(definition);
                entry.checks.push(LiveCheck {
                    column: check_column(definition),
                    values: check_values(definition),
                });
            }
        }
        live.insert(table.clone(), entry);
    }
    Ok(sorted(live))
}

fn sorted(mut live: Live) -> Live {
    for table in live.values_mut() {
        table.columns.sort();
        table.indexes.sort();
        table.foreign_keys.sort();
        table.checks.sort();
    }
    live
}

/// What the snapshot says the database holds, in the dialect's spelling.
pub fn expected(model: &Model, dialect: Dialect) -> Live {
    let mut live = Live::new();
    for table in &model.tables {
        let mut entry = LiveTable::default();
        for c in &table.columns {
            let ty = match dialect {
                Dialect::Postgres => match &c.ty {
                    ColumnType::Numeric {
                        precision: Some(p),
                        scale,
                    } => format!("numeric({p}, {})", scale.unwrap_or(0)),
                    _ => sql_type(
                        &prefiq_codegen::model::Column {
                            identity: false,
                            ..c.clone()
                        },
                        dialect,
                    ),
                },
                Dialect::Sqlite => sql_type(c, dialect),
            };
            entry.columns.push(LiveColumn {
                name: c.name.clone(),
                ty,
                // A primary key is never null, whatever the dialect reports.
                not_null: !c.nullable || c.primary_key,
                default: c
                    .default
                    .as_ref()
                    .map(|d| normalise_default(&literal(&c.ty, d, dialect))),
                primary_key: c.primary_key,
            });
        }
        for index in table
            .indexes
            .iter()
            .filter(|i| !(i.gin && dialect == Dialect::Sqlite))
        {
            entry.indexes.push(LiveIndex {
                name: index.name.clone(),
                columns: index.columns.clone(),
                unique: index.unique,
            });
        }
        for key in &table.foreign_keys {
            entry.foreign_keys.push(LiveForeignKey {
                column: key.column.clone(),
                table: key.table.clone(),
                target: key.target.clone(),
                on_delete: key.on_delete.clone(),
            });
        }
        for check in &table.checks {
            let mut values = check.values.clone();
            values.sort();
            entry.checks.push(LiveCheck {
                column: check.column.clone(),
                values,
            });
        }
        live.insert(table.name.clone(), entry);
    }
    sorted(live)
}

/// Every difference between what `expected` says and what `actual` holds, in words.
pub fn compare(expected: &Live, actual: &Live) -> Vec<String> {
    let mut out = Vec::new();
    for (name, want) in expected {
        let Some(have) = actual.get(name) else {
            out.push(format!("table {name} is missing"));
            continue;
        };
        for column in &want.columns {
            match have.columns.iter().find(|c| c.name == column.name) {
                None => out.push(format!("column {name}.{} is missing", column.name)),
                Some(live) if live != column => out.push(format!(
                    "column {name}.{} differs: expected {} {}{}, found {} {}{}",
                    column.name,
                    column.ty,
                    if column.not_null { "NOT NULL" } else { "NULL" },
                    column
                        .default
                        .as_ref()
                        .map(|d| format!(" DEFAULT {d}"))
                        .unwrap_or_default(),
                    live.ty,
                    if live.not_null { "NOT NULL" } else { "NULL" },
                    live.default
                        .as_ref()
                        .map(|d| format!(" DEFAULT {d}"))
                        .unwrap_or_default()
                )),
                Some(_) => {}
            }
        }
        for column in have
            .columns
            .iter()
            .filter(|c| !want.columns.iter().any(|w| w.name == c.name))
        {
            out.push(format!(
                "column {name}.{} is not in the schema",
                column.name
            ));
        }
        for index in &want.indexes {
            if !have.indexes.contains(index) {
                out.push(format!(
                    "index {} on {name}({}) is missing or differs",
                    index.name,
                    index.columns.join(", ")
                ));
            }
        }
        for index in have
            .indexes
            .iter()
            .filter(|i| !want.indexes.iter().any(|w| w.name == i.name))
        {
            out.push(format!(
                "index {} on {name} is not in the schema",
                index.name
            ));
        }
        for key in &want.foreign_keys {
            if !have.foreign_keys.contains(key) {
                out.push(format!(
                    "foreign key {name}.{} → {}.{} ON DELETE {} is missing or differs",
                    key.column, key.table, key.target, key.on_delete
                ));
            }
        }
        for key in have
            .foreign_keys
            .iter()
            .filter(|k| !want.foreign_keys.contains(k))
        {
            out.push(format!(
                "foreign key {name}.{} → {}.{} ON DELETE {} is not in the schema",
                key.column, key.table, key.target, key.on_delete
            ));
        }
        for check in &want.checks {
            if !have.checks.contains(check) {
                out.push(format!(
                    "the check of {name}.{} (values {}) is missing or differs",
                    check.column,
                    check.values.join(", ")
                ));
            }
        }
        for check in have.checks.iter().filter(|c| !want.checks.contains(c)) {
            out.push(format!(
                "a check of {name}.{} (values {}) is not in the schema",
                check.column,
                check.values.join(", ")
            ));
        }
    }
    for name in actual.keys().filter(|n| !expected.contains_key(*n)) {
        out.push(format!("table {name} is not in the schema"));
    }
    out
}
