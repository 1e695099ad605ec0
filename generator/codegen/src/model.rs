//! The database model of an app: tables, columns, indexes, foreign keys and checks, in logical
//! types that each dialect renders its own way. It is derived from the IR, committed as
//! `migrations/snapshot.json` after every migration, and read back from a live database to find drift.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ir::{
    App, Entity, Field, FieldRole, KeyGeneration, OnDelete, Scope, Storage, TENANT_COLUMN, Tenancy,
    Type,
};

/// The format version of `snapshot.json`.
pub const FORMAT: u32 = 1;

/// A column type, independent of dialect: the IR's [`Storage`], as `snapshot.json` records it.
pub use crate::ir::Storage as ColumnType;

/// A column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// A stable identity: `x-prefiq.id`, or the field name when the column was made.
    pub id: String,
    /// The column name.
    pub name: String,
    /// The JSON field it stores.
    pub field: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether it may hold NULL.
    pub nullable: bool,
    /// Its default, as a JSON value (rendered per dialect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Whether it is the primary key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary_key: bool,
    /// Whether the database numbers it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identity: bool,
    /// The previous field name, for a rename (from the schema; not stored).
    #[serde(skip)]
    pub renamed_from: Option<String>,
    /// Whether the schema declared `id` (so that it, not the name, matches).
    #[serde(skip)]
    pub declared_id: bool,
    /// The value that fills existing rows when the column becomes required (not stored).
    #[serde(skip)]
    pub backfill: Option<Value>,
    /// Enum values renamed, old → new (not stored).
    #[serde(skip)]
    pub renamed_values: Vec<(String, String)>,
}

/// An index or unique constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Its name.
    pub name: String,
    /// Its columns.
    pub columns: Vec<String>,
    /// Unique.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    /// A PostgreSQL GIN index over a JSON array (none in SQLite).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gin: bool,
}

/// A foreign key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// Its name.
    pub name: String,
    /// The referring column.
    pub column: String,
    /// The referenced table.
    pub table: String,
    /// The referenced column.
    pub target: String,
    /// `RESTRICT`, `CASCADE`, `SET NULL` or `NO ACTION`.
    pub on_delete: String,
}

/// A check that a column holds one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Its name.
    pub name: String,
    /// The column.
    pub column: String,
    /// The allowed values.
    pub values: Vec<String>,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// A stable identity: `x-prefiq.id`, or the entity name when the table was made.
    pub id: String,
    /// The table name.
    pub name: String,
    /// The entity it stores.
    pub entity: String,
    /// Its description, for comments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Columns in schema order.
    pub columns: Vec<Column>,
    /// Indexes and unique constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Index>,
    /// Foreign keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKey>,
    /// Enum checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Whether each row belongs to a tenant: a `tenant_id` column (the last one) and, on
    /// PostgreSQL, row-level security that keeps the server's role to the tenant of its
    /// transaction.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tenant: bool,
    /// For a shared table whose rows each belong to a tenant: the column naming it. On
    /// PostgreSQL, row-level security keeps the server's role to its transaction's tenant's rows
    /// (and, for reading, the platform's, where it is null) unless the transaction is a platform
    /// operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_member: Option<String>,
    /// For a shared table only platform operators write: on PostgreSQL, row-level security
    /// refuses the server's role every write outside a platform operator's transaction.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub platform_writes: bool,
    /// The previous entity name, for a rename (not stored).
    #[serde(skip)]
    pub renamed_from: Option<String>,
    /// Whether the schema declared `id`.
    #[serde(skip)]
    pub declared_id: bool,
}

impl Table {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The database model of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// `FORMAT`.
    pub format: u32,
    /// Tables in dependency order (referenced tables first).
    pub tables: Vec<Table>,
}

impl Model {
    /// No tables.
    pub fn empty() -> Model {
        Model {
            format: FORMAT,
            tables: Vec::new(),
        }
    }

    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

fn on_delete(action: OnDelete) -> &'static str {
    match action {
        OnDelete::Restrict => "RESTRICT",
        OnDelete::Cascade => "CASCADE",
        OnDelete::SetNull => "SET NULL",
        OnDelete::NoAction => "NO ACTION",
    }
}

fn column(field: &Field, primary_key: bool) -> Column {
    Column {
        id: field
            .stable_id
            .clone()
            .unwrap_or_else(|| field.member.name.clone()),
        name: field.column.clone(),
        field: field.member.name.clone(),
        ty: field.storage.clone(),
        nullable: field.is_nullable_column(),
        default: if field.role == FieldRole::Version {
            Some(Value::from(1))
        } else {
            field.member.default.clone().filter(|d| !d.is_null())
        },
        primary_key,
        identity: field.role == FieldRole::PrimaryKey(KeyGeneration::Identity),
        renamed_from: field.renamed_from.clone(),
        declared_id: field.stable_id.is_some(),
        backfill: field.backfill.clone(),
        renamed_values: field.renamed_values.clone(),
    }
}

fn table(app: &App, entity: &Entity) -> Table {
    let tables: std::collections::BTreeMap<&str, &Entity> =
        app.entities.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut columns: Vec<Column> = entity
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| column(f, i == entity.primary_key))
        .collect();
    let tenant = entity.tenancy == Tenancy::Tenant;
    if tenant {
        columns.push(Column {
            id: TENANT_COLUMN.to_owned(),
            name: TENANT_COLUMN.to_owned(),
            field: String::new(),
            ty: Storage::Uuid,
            nullable: false,
            default: None,
            primary_key: false,
            identity: false,
            renamed_from: None,
            declared_id: false,
            // Rows written before the table had tenants belong to the default tenant.
            backfill: Some(Value::from(uuid_nil())),
            renamed_values: Vec::new(),
        });
    }
    let indexes = entity
        .indexes
        .iter()
        .map(|i| Index {
            name: i.name.clone(),
            columns: i.columns.clone(),
            unique: i.unique,
            gin: i.json,
        })
        .collect();
    let foreign_keys = entity
        .fields
        .iter()
        .filter_map(|f| {
            let reference = f.references.as_ref()?;
            let target = tables.get(reference.entity.as_str())?;
            Some(ForeignKey {
                name: reference.constraint.clone(),
                column: f.column.clone(),
                table: target.table.clone(),
                target: target.key().column.clone(),
                on_delete: on_delete(reference.on_delete).to_owned(),
            })
        })
        .collect();
    let checks = entity
        .fields
        .iter()
        .filter_map(|f| {
            let Type::Enum { name } = &f.member.ty else {
                return None;
            };
            Some(Check {
                name: f.check.clone()?,
                column: f.column.clone(),
                values: app
                    .enum_type(name)?
                    .values
                    .iter()
                    .map(|v| v.value.clone())
                    .collect(),
            })
        })
        .collect();
    Table {
        id: entity
            .stable_id
            .clone()
            .unwrap_or_else(|| entity.name.clone()),
        name: entity.table.clone(),
        entity: entity.name.clone(),
        description: entity
            .description
            .as_ref()
            .map(|d| d.lines().next().unwrap_or_default().to_owned()),
        columns,
        indexes,
        foreign_keys,
        checks,
        tenant,
        tenant_member: entity
            .tenant_member
            .map(|i| entity.fields[i].column.clone()),
        platform_writes: entity.tenancy == Tenancy::Global
            && entity.scope == Scope::Platform
            && !entity.read_only,
        renamed_from: entity.renamed_from.clone(),
        declared_id: entity.stable_id.is_some(),
    }
}

/// The default tenant's id, as text.
fn uuid_nil() -> &'static str {
    "00000000-0000-0000-0000-000000000000"
}

/// The database model the app's schemas describe, tables in dependency order.
pub fn of(app: &App) -> Model {
    let mut done: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let mut tables = Vec::new();
    while done.len() < app.entities.len() {
        let ready = app.entities.iter().find(|e| {
            !done.contains(e.name.as_str())
                && e.fields
                    .iter()
                    .filter_map(|f| f.references.as_ref())
                    .all(|r| r.entity == e.name || done.contains(r.entity.as_str()))
        });
        let Some(next) = ready.or_else(|| {
            app.entities
                .iter()
                .find(|e| !done.contains(e.name.as_str()))
        }) else {
            break;
        };
        done.insert(&next.name);
        // An unmanaged entity's table is made elsewhere: no migration touches it.
        if next.managed {
            tables.push(table(app, next));
        }
    }
    Model {
        format: FORMAT,
        tables,
    }
}
