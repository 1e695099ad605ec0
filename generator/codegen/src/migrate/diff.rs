//! The difference between two database models: what a migration must do, which of it loses
//! data, and which of it locks or rewrites large PostgreSQL tables.
//!
//! Tables and columns are matched by declared identity (`x-prefiq.id`), then by name, then by
//! `renamed-from`. A column that disappears is dropped, never guessed to be a rename: renames
//! are declared, and drops need `--allow-destructive`.

use crate::model::{Column, ColumnType, Model, Table};

/// A column of the new table and the old column it takes its values from, if any.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// The column as it will be.
    pub new: Column,
    /// The column it was, for columns that exist already.
    pub old: Option<Column>,
}

impl ColumnPlan {
    /// Whether the column changes type, nullability or default (beyond a rename).
    pub fn alters(&self) -> bool {
        self.old.as_ref().is_some_and(|old| {
            old.ty != self.new.ty
                || old.nullable != self.new.nullable
                || old.default != self.new.default
        })
    }

    /// Whether the column is renamed.
    pub fn renamed(&self) -> bool {
        self.old
            .as_ref()
            .is_some_and(|old| old.name != self.new.name)
    }
}

/// What happens to one table that exists before and after.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// The table before.
    pub old: Table,
    /// The table after.
    pub new: Table,
    /// Every column of the new table.
    pub columns: Vec<ColumnPlan>,
    /// Columns that go away.
    pub dropped: Vec<Column>,
}

impl TablePlan {
    /// Whether anything changes.
    pub fn changes(&self) -> bool {
        self.old.name != self.new.name
            || !self.dropped.is_empty()
            || self.columns.iter().any(|c| {
                c.old.is_none() || c.alters() || c.renamed() || !c.new.renamed_values.is_empty()
            })
            || self.old.indexes != self.new.indexes
            || self.old.foreign_keys != self.new.foreign_keys
            || self.old.checks != self.new.checks
            || self.old.tenant != self.new.tenant
            || self.old.tenant_member != self.new.tenant_member
            || self.old.platform_writes != self.new.platform_writes
    }
}

/// A migration, dialect-independent.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// New tables, in dependency order.
    pub created: Vec<Table>,
    /// Tables that go away.
    pub dropped: Vec<Table>,
    /// Tables that change.
    pub altered: Vec<TablePlan>,
    /// What data each destructive step would lose.
    pub destructive: Vec<String>,
    /// Steps that lock or rewrite a large PostgreSQL table.
    pub warnings: Vec<String>,
    /// Changes no migration can make (they are errors).
    pub impossible: Vec<String>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.dropped.is_empty() && self.altered.is_empty()
    }
}

/// The index of the first item that `id` matches.
fn find<T>(items: &[T], id: impl Fn(&T) -> bool) -> Option<usize> {
    items.iter().position(id)
}

/// Whether changing `from` to `to` keeps every value.
pub fn widens(from: &ColumnType, to: &ColumnType) -> bool {
    use ColumnType::*;
    match (from, to) {
        (a, b) if a == b => true,
        (Int32, Int64) | (Int32, Float64) | (Date, Timestamp) => true,
        (
            Int32 | Int64,
            Numeric {
                precision: None, ..
            },
        ) => true,
        (
            Int32,
            Numeric {
                precision: Some(p),
                scale,
            },
        ) => p.saturating_sub(scale.unwrap_or(0)) >= 10,
        (
            Int64,
            Numeric {
                precision: Some(p),
                scale,
            },
        ) => p.saturating_sub(scale.unwrap_or(0)) >= 19,
        (
            Numeric {
                precision: p1,
                scale: s1,
            },
            Numeric {
                precision: p2,
                scale: s2,
            },
        ) => {
            let (s1, s2) = (s1.unwrap_or(0), s2.unwrap_or(0));
            s2 >= s1
                && match (p1, p2) {
                    (_, None) => true,
                    (Some(p1), Some(p2)) => p2 - s2 >= p1 - s1,
                    (None, Some(_)) => false,
                }
        }
        (Uuid | Int32 | Int64 | Float64 | Numeric { .. } | Boolean | Date | Timestamp, Text) => {
            true
        }
        _ => false,
    }
}

fn type_name(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Numeric {
            precision: Some(p),
            scale,
        } => format!("numeric({p}, {})", scale.unwrap_or(0)),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "numeric".to_owned()),
    }
}

/// Matches the columns of a table.
fn plan_table(old: &Table, new: &Table, plan: &mut Plan) -> TablePlan {
    let (columns, remaining) = match_columns(old, new);
    let table = &new.name;
    for column in &columns {
        judge_column(table, column, plan);
    }
    judge_removed_values(old, new, &columns, plan);
    for column in &remaining {
        plan.destructive.push(format!(
            "drops the column {}.{} and its value in every row",
            old.name, column.name
        ));
    }
    for index in &new.indexes {
        if !old.indexes.iter().any(|i| i.name == index.name) {
            plan.warnings.push(format!(
                "creating the index {} blocks writes to {table} while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY \
                 before deploying",
                index.name
            ));
        }
    }
    for key in &new.foreign_keys {
        if !old.foreign_keys.contains(key) {
            plan.warnings.push(format!(
                "adding the foreign key {} checks every row of {table} under a lock",
                key.name
            ));
        }
    }
    TablePlan {
        old: old.clone(),
        new: new.clone(),
        columns,
        dropped: remaining,
    }
}

/// Pairs each column of `new` with the column of `old` it continues (by id when one is
/// declared, then by field, then by `renamed-from`); the old columns left over are dropped.
fn match_columns(old: &Table, new: &Table) -> (Vec<ColumnPlan>, Vec<Column>) {
    let mut remaining: Vec<Column> = old.columns.clone();
    let mut columns = Vec::new();
    for column in &new.columns {
        let matched = if column.declared_id {
            find(&remaining, |c| c.id == column.id)
        } else {
            None
        }
        .or_else(|| find(&remaining, |c| c.field == column.field))
        .or_else(|| {
            column
                .renamed_from
                .as_ref()
                .and_then(|from| find(&remaining, |c| &c.field == from))
        });
        let old_column = matched.map(|i| remaining.remove(i));
        let mut new_column = column.clone();
        if let Some(old_column) = &old_column {
            new_column.id = old_column.id.clone(); // identity survives renames
            // A value rename is pending only while the old value is allowed and the new one is not.
            let before = old
                .checks
                .iter()
                .find(|k| k.column == old_column.name)
                .map(|k| k.values.clone())
                .unwrap_or_default();
            let after = new
                .checks
                .iter()
                .find(|k| k.column == column.name)
                .map(|k| k.values.clone())
                .unwrap_or_default();
            new_column.renamed_values.retain(|(from, to)| {
                before.contains(from)
                    && !before.contains(to)
                    && after.contains(to)
                    && !after.contains(from)
            });
        } else {
            new_column.renamed_values.clear();
        }
        columns.push(ColumnPlan {
            new: new_column,
            old: old_column,
        });
    }
    (columns, remaining)
}

/// What changing one column risks: a required column with nothing to fill it, a changed key,
/// a type that narrows or rewrites the table, a column made NOT NULL.
fn judge_column(table: &str, c: &ColumnPlan, plan: &mut Plan) {
    let Some(old_column) = &c.old else {
        if !c.new.nullable
            && c.new.default.is_none()
            && c.new.backfill.is_none()
            && !c.new.primary_key
        {
            plan.destructive.push(format!(
                "adds the required column {table}.{} with no default or backfill: the migration fails if the table has rows \
                 (give the field a `default`, or `x-prefiq: {{backfill: ...}}`)",
                c.new.name
            ));
        }
        return;
    };
    if old_column.primary_key != c.new.primary_key || old_column.identity != c.new.identity {
        plan.impossible.push(format!(
            "changes the primary key of {table}: move the data to a new entity instead"
        ));
    }
    if old_column.ty != c.new.ty {
        if widens(&old_column.ty, &c.new.ty) {
            plan.warnings.push(format!(
                "changing {table}.{} to {} rewrites the whole table and locks it meanwhile",
                c.new.name,
                type_name(&c.new.ty)
            ));
        } else {
            plan.destructive.push(format!(
                "narrows {table}.{} from {} to {}: values that do not fit make the migration fail, or are cut",
                c.new.name,
                type_name(&old_column.ty),
                type_name(&c.new.ty)
            ));
        }
    }
    if old_column.nullable && !c.new.nullable {
        if c.new.default.is_none() && c.new.backfill.is_none() {
            plan.destructive.push(format!(
                "makes {table}.{} required with no default or backfill: the migration fails if any row holds NULL \
                 (give the field a `default`, or `x-prefiq: {{backfill: ...}}`)",
                c.new.name
            ));
        }
        plan.warnings.push(format!(
            "making {table}.{} NOT NULL scans the whole table under an exclusive lock",
            c.new.name
        ));
    }
}

/// The enum values a column loses (not renamed): the rows holding them lose them.
fn judge_removed_values(old: &Table, new: &Table, columns: &[ColumnPlan], plan: &mut Plan) {
    let table = &new.name;
    for check in &old.checks {
        let Some(column) = columns
            .iter()
            .find(|c| c.old.as_ref().is_some_and(|o| o.name == check.column))
        else {
            continue;
        };
        let Some(now) = new.checks.iter().find(|k| k.column == column.new.name) else {
            continue;
        };
        let renamed: Vec<&String> = column
            .new
            .renamed_values
            .iter()
            .map(|(from, _)| from)
            .collect();
        let removed: Vec<&String> = check
            .values
            .iter()
            .filter(|v| !now.values.contains(v) && !renamed.contains(v))
            .collect();
        if !removed.is_empty() {
            let fate = match (&column.new.default, column.new.nullable) {
                (Some(default), _) => format!("they get the default {default}"),
                (None, true) => "they become NULL".to_owned(),
                (None, false) => "the migration fails if any row holds them".to_owned(),
            };
            plan.destructive.push(format!(
                "removes the values {} of {table}.{}: rows holding them lose them ({fate})",
                removed
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                column.new.name
            ));
        }
    }
}

/// The plan that takes a database from `old` to `new`.
pub fn diff(old: &Model, new: &Model) -> Plan {
    let mut plan = Plan::default();
    let mut remaining: Vec<Table> = old.tables.clone();
    for table in &new.tables {
        let matched = if table.declared_id {
            find(&remaining, |t| t.id == table.id)
        } else {
            None
        }
        .or_else(|| find(&remaining, |t| t.entity == table.entity))
        .or_else(|| {
            table
                .renamed_from
                .as_ref()
                .and_then(|from| find(&remaining, |t| &t.entity == from))
        });
        match matched.map(|i| remaining.remove(i)) {
            Some(previous) => {
                let mut next = table.clone();
                next.id = previous.id.clone();
                let table_plan = plan_table(&previous, &next, &mut plan);
                if table_plan.changes() {
                    plan.altered.push(table_plan);
                }
            }
            None => plan.created.push(table.clone()),
        }
    }
    for table in remaining {
        plan.destructive.push(format!(
            "drops the table {} (entity {}) and every row in it",
            table.name, table.entity
        ));
        plan.dropped.push(table);
    }
    plan
}

/// The model after `plan` runs on `new`'s behalf: `new`, with identities carried over.
pub fn carry_identities(plan: &Plan, new: &Model) -> Model {
    let mut model = new.clone();
    for table in &mut model.tables {
        if let Some(altered) = plan.altered.iter().find(|p| p.new.name == table.name) {
            table.id = altered.new.id.clone();
            for column in &mut table.columns {
                if let Some(c) = altered.columns.iter().find(|c| c.new.name == column.name) {
                    column.id = c.new.id.clone();
                }
            }
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Check, FORMAT};

    fn column(name: &str, ty: ColumnType, nullable: bool) -> Column {
        Column {
            id: name.into(),
            name: name.into(),
            field: name.into(),
            ty,
            nullable,
            default: None,
            primary_key: name == "id",
            identity: false,
            renamed_from: None,
            declared_id: false,
            backfill: None,
            renamed_values: vec![],
        }
    }

    fn table(columns: Vec<Column>) -> Model {
        Model {
            format: FORMAT,
            tables: vec![Table {
                tenant: false,
                tenant_member: None,
                platform_writes: false,
                id: "Deal".into(),
                name: "deals".into(),
                entity: "Deal".into(),
                description: None,
                columns,
                indexes: vec![],
                foreign_keys: vec![],
                checks: vec![],
                renamed_from: None,
                declared_id: false,
            }],
        }
    }

    #[test]
    fn a_declared_rename_keeps_the_column() {
        let old = table(vec![
            column("id", ColumnType::Uuid, false),
            column("title", ColumnType::Text, false),
        ]);
        let mut renamed = column("name", ColumnType::Text, false);
        renamed.renamed_from = Some("title".into());
        let new = table(vec![column("id", ColumnType::Uuid, false), renamed]);
        let plan = diff(&old, &new);
        assert!(plan.destructive.is_empty(), "{:?}", plan.destructive);
        let column = &plan.altered[0].columns[1];
        assert!(column.renamed() && !column.alters());
        assert_eq!(column.new.id, "title", "the identity survives the rename");
    }

    #[test]
    fn an_undeclared_rename_is_a_drop_that_needs_the_flag() {
        let old = table(vec![
            column("id", ColumnType::Uuid, false),
            column("title", ColumnType::Text, true),
        ]);
        let new = table(vec![
            column("id", ColumnType::Uuid, false),
            column("name", ColumnType::Text, true),
        ]);
        let plan = diff(&old, &new);
        assert_eq!(plan.altered[0].dropped.len(), 1);
        assert!(
            plan.destructive
                .iter()
                .any(|d| d.contains("drops the column deals.title")),
            "{:?}",
            plan.destructive
        );
    }

    #[test]
    fn widening_is_safe_and_narrowing_is_not() {
        assert!(widens(&ColumnType::Int32, &ColumnType::Int64));
        assert!(widens(
            &ColumnType::Numeric {
                precision: Some(10),
                scale: Some(2)
            },
            &ColumnType::Numeric {
                precision: Some(14),
                scale: Some(2)
            }
        ));
        assert!(!widens(
            &ColumnType::Numeric {
                precision: Some(14),
                scale: Some(2)
            },
            &ColumnType::Numeric {
                precision: Some(10),
                scale: Some(2)
            }
        ));
        assert!(!widens(&ColumnType::Int64, &ColumnType::Int32));
        assert!(!widens(&ColumnType::Text, &ColumnType::Uuid));
    }

    #[test]
    fn removing_enum_values_is_destructive_and_renaming_them_is_not() {
        let mut old = table(vec![
            column("id", ColumnType::Uuid, false),
            column("stage", ColumnType::Text, false),
        ]);
        old.tables[0].checks = vec![Check {
            name: "c".into(),
            column: "stage".into(),
            values: vec!["a".into(), "b".into()],
        }];
        let mut new = old.clone();
        new.tables[0].checks[0].values = vec!["a".into(), "c".into()];
        assert!(
            diff(&old, &new)
                .destructive
                .iter()
                .any(|d| d.contains("`b`"))
        );
        new.tables[0].columns[1].renamed_values = vec![("b".into(), "c".into())];
        assert!(diff(&old, &new).destructive.is_empty());
    }
}
