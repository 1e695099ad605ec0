//! SQL names shared by the emitters and the migration diff: dialects, quoting and the names of
//! constraints. Migrations themselves are made by [`crate::migrate`].

use crate::ir::{Entity, Field};

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// Both, in output order.
    pub const ALL: [Dialect; 2] = [Dialect::Postgres, Dialect::Sqlite];

    /// The folder name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The `n`th placeholder.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }
}

/// Quotes an identifier; every identifier is quoted, so reserved words work.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The name of a field's foreign key constraint.
pub fn foreign_key_name(entity: &Entity, field: &Field) -> String {
    crate::lower::index_name(&entity.table, std::slice::from_ref(&field.column), "fkey")
}

/// The name of an enum field's check constraint.
pub fn check_name(entity: &Entity, field: &Field) -> String {
    crate::lower::index_name(&entity.table, std::slice::from_ref(&field.column), "check")
}
