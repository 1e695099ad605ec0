//! Database access for generated repositories: one pool type over PostgreSQL and SQLite,
//! typed parameters, typed row access, and the mapping of constraint errors to problems.
//!
//! Generated code carries its SQL per dialect as `&'static str`; the only SQL built at run time
//! is the list query, assembled in [`crate::list`] from identifiers that the schema declared.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::Datelike as _;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
};
use sqlx::{AssertSqlSafe, Row as _, Sqlite};

pub mod pg;
use uuid::Uuid;

use crate::auth::Principal;
pub use crate::meta::ColumnKind;
use crate::meta::TableMeta;
use crate::problem::{FieldError, Problem};
use std::sync::Arc;

/// Which SQL dialect a [`Db`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL, for production.
    Postgres,
    /// SQLite, the embedded default.
    Sqlite,
}

impl Dialect {
    /// The dialect's folder name under `migrations/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// The placeholder for the `n`th (1-based) bound parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }
}

/// A connection pool to the app's database.
#[derive(Debug, Clone)]
pub enum Db {
    /// A PostgreSQL pool, and where tenants' rows live.
    Postgres(pg::Pool, Layout),
    /// An SQLite pool.
    Sqlite(sqlx::SqlitePool),
}

/// What a pool holds ([`Db::pool_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open.
    pub open: usize,
    /// Of those, the idle ones.
    pub idle: usize,
    /// The most it opens.
    pub max: usize,
}

/// A bound SQL parameter. Nulls keep their kind so PostgreSQL sees a typed parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// A typed `NULL`.
    Null(ColumnKind),
    /// A boolean.
    Bool(bool),
    /// A 32-bit integer.
    Int32(i32),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
    /// A UUID.
    Uuid(Uuid),
    /// A calendar date.
    Date(NaiveDate),
    /// An instant in UTC.
    DateTime(DateTime<Utc>),
    /// An exact decimal.
    Decimal(Decimal),
    /// A JSON document.
    Json(serde_json::Value),
}

/// A Rust value that binds as one SQL parameter.
pub trait ToSql {
    /// The kind of column this value is stored in.
    const KIND: ColumnKind;
    /// The parameter.
    fn to_sql(&self) -> SqlValue;
}

macro_rules! to_sql {
    ($ty:ty, $kind:ident, |$v:ident| $make:expr) => {
        impl ToSql for $ty {
            const KIND: ColumnKind = ColumnKind::$kind;
            fn to_sql(&self) -> SqlValue {
                let $v = self;
                $make
            }
        }
    };
}

to_sql!(bool, Bool, |v| SqlValue::Bool(*v));
to_sql!(i32, Int32, |v| SqlValue::Int32(*v));
to_sql!(i64, Int, |v| SqlValue::Int(*v));
to_sql!(f64, Float, |v| SqlValue::Float(*v));
to_sql!(String, Text, |v| SqlValue::Text(v.clone()));
to_sql!(Uuid, Uuid, |v| SqlValue::Uuid(*v));
to_sql!(NaiveDate, Date, |v| SqlValue::Date(*v));
to_sql!(DateTime<Utc>, DateTime, |v| SqlValue::DateTime(*v));
to_sql!(Decimal, Decimal, |v| SqlValue::Decimal(*v));

impl<T: ToSql> ToSql for Option<T> {
    const KIND: ColumnKind = T::KIND;
    fn to_sql(&self) -> SqlValue {
        match self {
            Some(value) => value.to_sql(),
            None => SqlValue::Null(T::KIND),
        }
    }
}

impl SqlValue {
    /// The value as a row's JSON holds it (dates and instants as text, decimals as text).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            SqlValue::Null(_) => Value::Null,
            SqlValue::Bool(v) => Value::Bool(*v),
            SqlValue::Int32(v) => Value::from(*v),
            SqlValue::Int(v) => Value::from(*v),
            SqlValue::Float(v) => Value::from(*v),
            SqlValue::Text(v) => Value::String(v.clone()),
            SqlValue::Uuid(v) => Value::String(v.hyphenated().to_string()),
            SqlValue::Date(v) => Value::String(v.format("%Y-%m-%d").to_string()),
            SqlValue::DateTime(v) => Value::String(v.to_rfc3339_opts(SecondsFormat::Micros, true)),
            SqlValue::Decimal(v) => Value::String(v.to_string()),
            SqlValue::Json(v) => v.clone(),
        }
    }

    /// A value stored as a JSON column (nested objects, arrays, unions).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> SqlValue {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::Null) => SqlValue::Null(ColumnKind::Json),
            Ok(json) => SqlValue::Json(json),
            // Serialising a generated model type cannot fail (no maps with non-string keys).
            Err(_) => SqlValue::Null(ColumnKind::Json),
        }
    }

    /// An enum value, stored as its schema string.
    pub fn text<T: AsRef<str> + ?Sized>(value: Option<&T>) -> SqlValue {
        match value {
            Some(value) => SqlValue::Text(value.as_ref().to_owned()),
            None => SqlValue::Null(ColumnKind::Text),
        }
    }
}

impl SqlValue {
    /// Parses text (a query parameter, a cursor member) into a parameter for a column of `kind`.
    pub fn parse(kind: ColumnKind, text: &str) -> Result<SqlValue, String> {
        let fail = |what: &str| format!("`{}` is not {what}", text.escape_debug());
        if text.contains('\0') {
            return Err("a value may not contain the NUL character (U+0000)".into());
        }
        Ok(match kind {
            ColumnKind::Bool => match text {
                "true" => SqlValue::Bool(true),
                "false" => SqlValue::Bool(false),
                _ => return Err(fail("`true` or `false`")),
            },
            ColumnKind::Int32 => {
                SqlValue::Int32(text.parse().map_err(|_| fail("a 32-bit integer"))?)
            }
            ColumnKind::Int => SqlValue::Int(text.parse().map_err(|_| fail("an integer"))?),
            ColumnKind::Float => {
                let value: f64 = text.parse().map_err(|_| fail("a number"))?;
                if !value.is_finite() {
                    return Err(fail("a finite number"));
                }
                SqlValue::Float(value)
            }
            ColumnKind::Decimal => {
                SqlValue::Decimal(Decimal::from_str(text).map_err(|_| fail("a decimal number"))?)
            }
            ColumnKind::Text | ColumnKind::Json => SqlValue::Text(text.to_owned()),
            ColumnKind::Uuid => SqlValue::Uuid(Uuid::parse_str(text).map_err(|_| fail("a UUID"))?),
            ColumnKind::Date => SqlValue::Date(
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .filter(|d| (1..=9999).contains(&d.year()) && text.len() == 10)
                    .ok_or_else(|| fail("a date from 0001-01-01 to 9999-12-31 (YYYY-MM-DD)"))?,
            ),
            ColumnKind::DateTime => SqlValue::DateTime(
                // RFC 3339 allows `t` and `z` for `T` and `Z`.
                DateTime::parse_from_rfc3339(&text.to_ascii_uppercase())
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
                    .filter(|t| (1..=9999).contains(&t.year()))
                    .ok_or_else(|| fail("an RFC 3339 date-time from year 0001 to 9999"))?,
            ),
        })
    }

    /// A JSON value as a parameter for a column of `kind`; JSON columns take it whole.
    pub fn from_json(kind: ColumnKind, value: &serde_json::Value) -> Option<SqlValue> {
        use serde_json::Value;
        match (kind, value) {
            (_, Value::Null) => Some(SqlValue::Null(kind)),
            (ColumnKind::Json, value) => Some(SqlValue::Json(value.clone())),
            (_, Value::String(text)) => SqlValue::parse(kind, text).ok(),
            (ColumnKind::Bool, Value::Bool(b)) => Some(SqlValue::Bool(*b)),
            (_, Value::Number(n)) => SqlValue::parse(kind, &n.to_string()).ok(),
            _ => None,
        }
    }
}

/// One result row.
pub enum Row {
    /// A PostgreSQL row.
    Postgres(tokio_postgres::Row),
    /// An SQLite row.
    Sqlite(SqliteRow),
}

/// A Rust value that can be read from a column in either dialect.
pub trait FromColumn: Sized {
    /// Reads the column of a PostgreSQL row.
    fn from_pg(row: &tokio_postgres::Row, index: usize) -> Result<Option<Self>, DbError>;
    /// Reads the column of an SQLite row.
    fn from_sqlite(row: &SqliteRow, index: usize) -> Result<Option<Self>, sqlx::Error>;
}

fn decode_error(index: usize, message: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: message.to_string().into(),
    }
}

macro_rules! from_column_native {
    ($ty:ty) => {
        impl FromColumn for $ty {
            fn from_pg(row: &tokio_postgres::Row, index: usize) -> Result<Option<Self>, DbError> {
                pg::get(row, index)
            }
            fn from_sqlite(row: &SqliteRow, index: usize) -> Result<Option<Self>, sqlx::Error> {
                row.try_get(index)
            }
        }
    };
}

from_column_native!(bool);
from_column_native!(i32);
from_column_native!(i64);
from_column_native!(f64);
from_column_native!(String);

macro_rules! from_column_text_in_sqlite {
    ($ty:ty, $parse:expr) => {
        impl FromColumn for $ty {
            fn from_pg(row: &tokio_postgres::Row, index: usize) -> Result<Option<Self>, DbError> {
                pg::get(row, index)
            }
            fn from_sqlite(row: &SqliteRow, index: usize) -> Result<Option<Self>, sqlx::Error> {
                let text: Option<String> = row.try_get(index)?;
                text.map(|text| $parse(&text).map_err(|e| decode_error(index, e)))
                    .transpose()
            }
        }
    };
}

from_column_text_in_sqlite!(Uuid, Uuid::parse_str);
from_column_text_in_sqlite!(NaiveDate, |s: &str| NaiveDate::parse_from_str(
    s, "%Y-%m-%d"
));
from_column_text_in_sqlite!(DateTime<Utc>, |s: &str| DateTime::parse_from_rfc3339(s)
    .map(|t| t.with_timezone(&Utc)));
from_column_text_in_sqlite!(Decimal, Decimal::from_str);

/// A column holding a JSON document, read into `T`.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromColumn for Json<T> {
    fn from_pg(row: &tokio_postgres::Row, index: usize) -> Result<Option<Self>, DbError> {
        let value: Option<serde_json::Value> = pg::get(row, index)?;
        value
            .map(|v| {
                serde_json::from_value(v)
                    .map(Json)
                    .map_err(|e| DbError::Sqlx(decode_error(index, e)))
            })
            .transpose()
    }
    fn from_sqlite(row: &SqliteRow, index: usize) -> Result<Option<Self>, sqlx::Error> {
        let text: Option<String> = row.try_get(index)?;
        text.map(|t| {
            serde_json::from_str(&t)
                .map(Json)
                .map_err(|e| decode_error(index, e))
        })
        .transpose()
    }
}

impl Row {
    /// Reads a nullable column.
    pub fn opt<T: FromColumn>(&self, index: usize) -> Result<Option<T>, DbError> {
        match self {
            Row::Postgres(row) => T::from_pg(row, index),
            Row::Sqlite(row) => T::from_sqlite(row, index).map_err(DbError::Sqlx),
        }
    }

    /// Reads a `NOT NULL` column.
    pub fn req<T: FromColumn>(&self, index: usize) -> Result<T, DbError> {
        self.opt(index)?
            .ok_or_else(|| DbError::Sqlx(decode_error(index, "unexpected NULL")))
    }

    /// Reads a nullable JSON column into `T`.
    pub fn opt_json<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>, DbError> {
        Ok(self.opt::<Json<T>>(index)?.map(|json| json.0))
    }

    /// Reads a `NOT NULL` JSON column into `T`.
    pub fn req_json<T: DeserializeOwned>(&self, index: usize) -> Result<T, DbError> {
        Ok(self.req::<Json<T>>(index)?.0)
    }

    /// Reads a nullable text column holding an enum value.
    pub fn opt_enum<T: FromStr>(&self, index: usize) -> Result<Option<T>, DbError> {
        self.opt::<String>(index)?
            .map(|text| {
                text.parse().map_err(|_| {
                    DbError::Sqlx(decode_error(index, format!("unknown value `{text}`")))
                })
            })
            .transpose()
    }

    /// Reads a `NOT NULL` text column holding an enum value.
    pub fn req_enum<T: FromStr>(&self, index: usize) -> Result<T, DbError> {
        self.opt_enum(index)?
            .ok_or_else(|| DbError::Sqlx(decode_error(index, "unexpected NULL")))
    }
}

/// The current instant, truncated to microseconds: the precision both dialects store, so a row
/// reads back exactly as it was written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The format of instants stored in SQLite: UTC, microseconds, fixed width, so text order is time order.
/// A leap second (`23:59:60`) is stored as the instant after it, as PostgreSQL stores it, so
/// both databases keep and return the same value.
pub fn sqlite_datetime(value: &DateTime<Utc>) -> String {
    use chrono::Timelike as _;
    let value = match value.nanosecond().checked_sub(1_000_000_000) {
        Some(nanos) => value
            .with_nanosecond(nanos)
            .map_or(*value, |t| t + chrono::Duration::seconds(1)),
        None => *value,
    };
    value.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The `prefiq_decimal` collation: decimal texts in numeric order (`1.10` equals `1.1`); text
/// that is not a decimal sorts after every decimal, by its bytes.
pub fn compare_decimals(a: &str, b: &str) -> std::cmp::Ordering {
    match (Decimal::from_str(a), Decimal::from_str(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Where the rows of tenant-scoped tables live on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// In shared tables, each row with its `tenant_id` (filtered twice: by the queries and by
    /// row-level security).
    #[default]
    Rows,
    /// In a schema of each tenant's own ([`tenant_schema`]), which every transaction puts first
    /// on its `search_path`; the shared tables (the audit log, Cortex's) stay in `public`. The
    /// rows keep their `tenant_id` and its policies, so isolation holds twice here too.
    Schemas,
}

/// The schema of `tenant`'s tables when each tenant has its own.
pub fn tenant_schema(tenant: Uuid) -> String {
    format!("tenant_{}", tenant.simple())
}

/// A database failure, before it is turned into a [`Problem`].
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The driver failed (SQLite).
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// PostgreSQL, or the connection to it, failed.
    #[error(transparent)]
    Postgres(tokio_postgres::Error),
    /// No PostgreSQL connection could be had (the pool is closed or exhausted for too long).
    #[error("no database connection: {0}")]
    Pool(String),
    /// The `DATABASE_URL` names no supported database.
    #[error("unsupported DATABASE_URL `{0}`: use postgres://... or sqlite:...")]
    UnsupportedUrl(String),
    /// Something that is not the database's fault failed (a schema that does not compile).
    #[error("{0}")]
    Internal(String),
    /// The write was refused before it reached the database, with this problem (a reference
    /// to a row of another tenant, say).
    #[error("{}", .0.detail.clone().unwrap_or_default())]
    Refused(Box<Problem>),
    /// A row about to be written breaks its schema, so it was not written.
    #[error("the row breaks its schema: {}", .0.iter().map(|e| format!("{} {}", e.pointer, e.detail)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

impl DbError {
    /// The problem a client sees: 409 for a row that would break its schema (the request was
    /// valid, so what refuses it is the state or a service's rule; see [`Problem::refused`]) and
    /// for unique and foreign-key violations, 503 when the database is unreachable, 500 (logged, details
    /// withheld) otherwise.
    pub fn into_problem(self, meta: &TableMeta) -> Problem {
        let failure = match &self {
            DbError::Invalid(errors) => return Problem::refused(errors.clone()),
            DbError::Refused(problem) => return (**problem).clone(),
            DbError::Pool(_) => return Problem::unavailable(&self),
            DbError::Sqlx(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => return Problem::unavailable(&self),
            DbError::Postgres(error) if error.is_closed() || error.as_db_error().is_none() => {
                return if error.is_closed()
                    || std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>())
                {
                    Problem::unavailable(&self)
                } else {
                    Problem::internal(&self)
                };
            }
            other => match Failure::of(other) {
                Some(failure) => failure,
                None => return Problem::internal(&self),
            },
        };
        match failure.kind {
            FailureKind::Unique => {
                let columns = unique_columns(meta, failure.constraint, failure.message);
                let errors = columns
                    .iter()
                    .map(|column| FieldError {
                        pointer: format!("/{}", meta.field_of(column)),
                        detail: "is already taken: another row has this value".into(),
                        keyword: Some("unique".into()),
                    })
                    .collect();
                Problem::conflict(format!(
                    "a {} with the same {} already exists",
                    meta.entity,
                    columns
                        .iter()
                        .map(|c| meta.field_of(c))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ))
                .with_errors(errors)
            }
            FailureKind::ForeignKey | FailureKind::Reference => {
                let fk = match failure.kind {
                    // A reference the repository checked names its column.
                    FailureKind::Reference => meta
                        .foreign_keys
                        .iter()
                        .find(|fk| fk.column == failure.message),
                    _ => failure
                        .constraint
                        .and_then(|name| meta.foreign_keys.iter().find(|fk| fk.constraint == name)),
                }
                .map(|fk| (fk.column, fk.entity));
                match fk {
                    Some((column, target)) => Problem::conflict(format!(
                        "`{}` must name an existing {target}, and a row that others refer to cannot be deleted",
                        meta.field_of(column)
                    ))
                    .with_errors(vec![FieldError {
                        pointer: format!("/{}", meta.field_of(column)),
                        detail: format!("no such {target}, or it is still referenced"),
                        keyword: Some("references".into()),
                    }]),
                    None => Problem::conflict(format!(
                        "this change would break a reference of a {}: every referenced row must be an existing one, \
                         and a row that others still refer to cannot be deleted",
                        meta.entity
                    )),
                }
            }
            // The statement ran past the statement timeout (`query_canceled`).
            FailureKind::Timeout => Problem::unavailable(&"the database took too long to answer"),
            // Two transactions wanted the same rows at once and the database gave up on this
            // one (a deadlock, a serialization failure, a lock it could not take): nothing of
            // it was written, and the same request sent again can succeed.
            FailureKind::Contention => Problem::conflict(format!(
                "another request changed the same {} data at the same moment, so nothing of this \
                 one was saved; send it again",
                meta.entity
            )),
            // Row-level security refused the row (`insufficient_privilege`): it is not the
            // caller's tenant's. Generated statements never get here; a service's may.
            FailureKind::Forbidden => Problem::forbidden(format!(
                "this {} belongs to another tenant, or your database role may not change it",
                meta.entity
            )),
            FailureKind::NotNullOrCheck => Problem::unprocessable(vec![FieldError {
                pointer: String::new(),
                detail: format!("the database rejected the row: {}", failure.message),
                keyword: None,
            }]),
            FailureKind::Other => Problem::internal(&self),
        }
    }

    /// The SQLSTATE of a database error (PostgreSQL's five characters, or SQLite's extended
    /// result code), if it is one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            DbError::Postgres(error) => error.code().map(|c| c.code().to_owned()),
            DbError::Sqlx(sqlx::Error::Database(error)) => error.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

/// What a database error means to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    Unique,
    ForeignKey,
    /// A reference the repository checked in the database (`prefiq_check`): its message is the
    /// column.
    Reference,
    Timeout,
    /// A deadlock, a serialization failure or a busy lock: retrying can succeed.
    Contention,
    Forbidden,
    NotNullOrCheck,
    Other,
}

/// A database error, the same from either driver.
struct Failure<'a> {
    kind: FailureKind,
    constraint: Option<&'a str>,
    message: &'a str,
}

/// The SQLSTATE of a reference `prefiq_check` refused (the runtime's own code).
pub(crate) const REFERENCE_REFUSED: &str = "PQ001";

impl<'a> Failure<'a> {
    fn of(error: &'a DbError) -> Option<Failure<'a>> {
        match error {
            DbError::Postgres(error) => {
                let db = error.as_db_error()?;
                let kind = match db.code().code() {
                    "23505" => FailureKind::Unique,
                    "23503" => FailureKind::ForeignKey,
                    REFERENCE_REFUSED => FailureKind::Reference,
                    "57014" => FailureKind::Timeout,
                    // serialization_failure, deadlock_detected, lock_not_available
                    "40001" | "40P01" | "55P03" => FailureKind::Contention,
                    "42501" => FailureKind::Forbidden,
                    "23502" | "23514" => FailureKind::NotNullOrCheck,
                    _ => FailureKind::Other,
                };
                Some(Failure {
                    kind,
                    constraint: db.constraint(),
                    message: db.message(),
                })
            }
            DbError::Sqlx(sqlx::Error::Database(db)) => {
                let kind = match kind_of(db.as_ref()) {
                    sqlx::error::ErrorKind::UniqueViolation => FailureKind::Unique,
                    sqlx::error::ErrorKind::ForeignKeyViolation => FailureKind::ForeignKey,
                    sqlx::error::ErrorKind::NotNullViolation
                    | sqlx::error::ErrorKind::CheckViolation => FailureKind::NotNullOrCheck,
                    _ if sqlite_busy(db.as_ref()) => FailureKind::Contention,
                    _ => FailureKind::Other,
                };
                Some(Failure {
                    kind,
                    constraint: db.constraint(),
                    message: db.message(),
                })
            }
            _ => None,
        }
    }
}

impl From<DbError> for Problem {
    /// The problem of a failure that concerns no table in particular (beginning or committing
    /// a transaction): 422 for a row that breaks its schema, 409 for a constraint, 503 when
    /// the database is unreachable, 500 otherwise.
    fn from(error: DbError) -> Problem {
        static NO_TABLE: TableMeta = TableMeta {
            entity: "row",
            table: "",
            columns: &[],
            primary_key: 0,
            version: 0,
            uniques: &[],
            foreign_keys: &[],
            app: "",
            tenant: None,
            tenant_member: None,
            owner: None,
            referrers: &[],
        };
        error.into_problem(&NO_TABLE)
    }
}

/// The kind of a database error. SQLite reports an `ON DELETE RESTRICT` violation as
/// `SQLITE_CONSTRAINT_TRIGGER` (1811), which sqlx does not classify; it is a foreign-key violation.
fn kind_of(error: &dyn sqlx::error::DatabaseError) -> sqlx::error::ErrorKind {
    match error.kind() {
        sqlx::error::ErrorKind::Other
            if error.code().as_deref() == Some("1811")
                && error.message().starts_with("FOREIGN KEY constraint failed") =>
        {
            sqlx::error::ErrorKind::ForeignKeyViolation
        }
        kind => kind,
    }
}

/// Whether SQLite refused the statement because another connection holds the lock it needs
/// (`SQLITE_BUSY` or `SQLITE_LOCKED`, with any extended code, such as the `SQLITE_BUSY_SNAPSHOT`
/// of a transaction whose snapshot another writer has moved past).
fn sqlite_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    const SQLITE_BUSY: u32 = 5;
    const SQLITE_LOCKED: u32 = 6;
    error
        .code()
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

fn unique_columns(meta: &TableMeta, constraint: Option<&str>, message: &str) -> Vec<String> {
    let columns: Vec<String> = if let Some((_, columns)) =
        constraint.and_then(|name| meta.uniques.iter().find(|u| u.0 == name))
    {
        columns.iter().map(|c| (*c).to_owned()).collect()
    } else {
        // SQLite names no constraint: "UNIQUE constraint failed: companies.name, companies.domain".
        message
            .split_once("failed:")
            .map(|(_, list)| {
                list.split(',')
                    .filter_map(|part| part.trim().split_once('.').map(|(_, c)| c.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    // A unique constraint of a tenant-scoped table leads with `tenant_id`, which no client sends.
    columns
        .into_iter()
        .filter(|c| !meta.field_of(c).is_empty())
        .collect()
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

fn bind_sqlite(query: SqliteQuery<'_>, value: SqlValue) -> SqliteQuery<'_> {
    match value {
        SqlValue::Null(ColumnKind::Bool | ColumnKind::Int32 | ColumnKind::Int) => {
            query.bind(None::<i64>)
        }
        SqlValue::Null(ColumnKind::Float) => query.bind(None::<f64>),
        SqlValue::Null(_) => query.bind(None::<String>),
        SqlValue::Bool(v) => query.bind(v),
        SqlValue::Int32(v) => query.bind(v),
        SqlValue::Int(v) => query.bind(v),
        SqlValue::Float(v) => query.bind(v),
        SqlValue::Text(v) => query.bind(v),
        SqlValue::Uuid(v) => query.bind(v.hyphenated().to_string()),
        SqlValue::Date(v) => query.bind(v.format("%Y-%m-%d").to_string()),
        SqlValue::DateTime(v) => query.bind(sqlite_datetime(&v)),
        SqlValue::Decimal(v) => query.bind(v.to_string()),
        SqlValue::Json(v) => query.bind(v.to_string()),
    }
}

/// Pool settings read from the environment.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// The most connections to open.
    pub max_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
    /// On PostgreSQL, the role every connection logs in as instead of the URL's user: a server
    /// runs its requests as [`APP_ROLE`], which owns nothing and is no superuser, so row-level
    /// security binds it and nothing in a session can step out of it (there is no `SET ROLE`
    /// back to a superuser the session started as).
    pub login: Option<&'static str>,
    /// On PostgreSQL, how long one statement may run before the database cancels it.
    pub statement_timeout: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            login: None,
            statement_timeout: None,
        }
    }
}

impl PoolOptions {
    /// The options of a server's request pool: connections log in as [`APP_ROLE`].
    pub fn serving(max_connections: u32) -> PoolOptions {
        PoolOptions {
            max_connections,
            login: Some(APP_ROLE),
            ..PoolOptions::default()
        }
    }
}

/// The PostgreSQL role requests run as. Migrations create it and grant it reading and writing
/// of the apps' tables, only reading and appending of the audit log, and nothing on the
/// migration ledger; row-level security policies apply to it. A deployment lets it log in
/// (`ALTER ROLE prefiq_app LOGIN PASSWORD '…'`) and gives the server its URL
/// (`PREFIQ_APP_DATABASE_URL`); see [`connect_server`].
pub const APP_ROLE: &str = "prefiq_app";

/// Where a server's request pool logs in on PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct ServerLogin<'a> {
    /// The migrating (owner) connection's URL: `DATABASE_URL`.
    pub url: &'a str,
    /// The request pool's own URL (`PREFIQ_APP_DATABASE_URL`), as a role that cannot leave
    /// row-level security. Required in production on PostgreSQL.
    pub app_url: Option<&'a str>,
    /// Production: no URL is made up for the request pool.
    pub production: bool,
}

/// Opens a server's request pool. On PostgreSQL its connections log in as a role that row-level
/// security binds: `login.app_url`, or outside production the URL's server and database as
/// [`APP_ROLE`] (which `owner`, the migrating connection, is asked to let log in). Either way
/// the pool is refused when its role could step out of row-level security: a superuser, a role
/// with `BYPASSRLS`, a member of one, or a member of a table's owner. SQLite has no roles: the
/// pool opens `login.url`.
pub async fn connect_server(
    owner: &Db,
    login: ServerLogin<'_>,
    options: &PoolOptions,
) -> Result<Db, String> {
    let shown = |url: &str| redact_url(url);
    if owner.dialect() == Dialect::Sqlite {
        let options = PoolOptions {
            login: None,
            ..options.clone()
        };
        return Db::connect(login.url, &options)
            .await
            .map_err(|e| format!("cannot open {}: {e}", shown(login.url)));
    }
    let db = match login.app_url {
        Some(app_url) => {
            let options = PoolOptions {
                login: None,
                ..options.clone()
            };
            Db::connect(app_url, &options).await.map_err(|e| {
                format!(
                    "cannot open PREFIQ_APP_DATABASE_URL ({}): {e}",
                    shown(app_url)
                )
            })?
        }
        None if login.production => {
            return Err(format!(
                "production mode needs PREFIQ_APP_DATABASE_URL on PostgreSQL: the URL of a role that cannot leave row-level security, such as `{APP_ROLE}` (ALTER ROLE {APP_ROLE} LOGIN PASSWORD '…')"
            ));
        }
        None => {
            // A developer's database: let the server's role log in, as the owner may (once:
            // servers starting together would otherwise update the role at the same time).
            let can_log_in = || async {
                owner
                    .fetch_optional(
                        "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'prefiq_app'",
                        Vec::new(),
                    )
                    .await
                    .ok()
                    .flatten()
                    .and_then(|row| row.req::<bool>(0).ok())
                    .unwrap_or(false)
            };
            let mut allowed = Ok(0);
            if !can_log_in().await {
                allowed = owner
                    .execute("ALTER ROLE prefiq_app LOGIN", Vec::new())
                    .await;
                if allowed.is_err() && can_log_in().await {
                    allowed = Ok(0);
                }
            }
            if let Err(error) = allowed {
                return Err(format!(
                    "cannot let `{APP_ROLE}` log in ({error}): set PREFIQ_APP_DATABASE_URL to the URL of a role that cannot leave row-level security"
                ));
            }
            let options = PoolOptions {
                login: Some(APP_ROLE),
                ..options.clone()
            };
            Db::connect(login.url, &options).await.map_err(|e| {
                format!(
                    "cannot open {} as `{APP_ROLE}` ({e}): let it log in there, or set PREFIQ_APP_DATABASE_URL",
                    shown(login.url)
                )
            })?
        }
    };
    if let Some(escape) = db
        .escape_from_row_security()
        .await
        .map_err(|e| e.to_string())?
    {
        db.close().await;
        return Err(format!(
            "the request pool's database role could leave row-level security ({escape}): log in as a role that is no superuser, has no BYPASSRLS and owns no table, such as `{APP_ROLE}`"
        ));
    }
    Ok(db)
}

/// An SQL statement for an [`Executor`]: text written in the code ([`Sql::new`], or picked per
/// dialect with [`Executor::pick`]), or text built at run time from identifiers the schema
/// declared ([`Sql::built`]). Request data never goes into it: values are bound parameters.
#[derive(Debug, Clone)]
pub struct Sql(Cow<'static, str>);

impl Sql {
    /// A statement written in the code.
    pub fn new(text: &'static str) -> Sql {
        Sql(Cow::Borrowed(text))
    }

    /// A statement assembled at run time from identifiers the schema declared.
    pub fn built(text: String) -> Sql {
        Sql(Cow::Owned(text))
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An SQLite query of it.
    fn sqlite(self) -> sqlx::query::Query<'static, Sqlite, SqliteArguments> {
        match self.0 {
            Cow::Borrowed(text) => sqlx::query(text),
            Cow::Owned(text) => sqlx::query(AssertSqlSafe(text)),
        }
    }
}

impl From<&'static str> for Sql {
    fn from(text: &'static str) -> Sql {
        Sql::new(text)
    }
}

/// A statement run later, and the way to its answer: see [`Executor::defer`].
pub struct Deferred(DeferredAt);

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            DeferredAt::Pg(ticket) => write!(f, "Deferred(ticket {ticket})"),
            DeferredAt::Ran(rows) => write!(f, "Deferred(ran, {} rows)", rows.len()),
        }
    }
}

enum DeferredAt {
    /// Kept by the PostgreSQL session under this ticket, once its flight came back.
    Pg(usize),
    /// It ran at once (SQLite, or outside a transaction): its rows.
    Ran(Vec<Row>),
}

/// What runs statements: the pool itself (each statement on its own) or a [`Tx`]. Generated
/// repository functions take one, so the same call works in a handler's transaction, in a
/// service's, or outside any.
pub trait Executor: Send {
    /// The dialect statements must be written in.
    fn dialect(&self) -> Dialect;

    /// Whom the statements run for: the caller a transaction was begun for. Generated
    /// repositories scope every statement of tenant data to its tenant, and refuse without one.
    fn principal(&self) -> Option<&Arc<Principal>> {
        None
    }

    /// Picks the statement written for this executor's dialect.
    fn pick(&self, postgres: &'static str, sqlite: &'static str) -> Sql {
        Sql::new(match self.dialect() {
            Dialect::Postgres => postgres,
            Dialect::Sqlite => sqlite,
        })
    }

    /// Runs a statement and returns at most one row.
    fn fetch_optional(
        &mut self,
        sql: Sql,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<Option<Row>, DbError>> + Send {
        let rows = self.fetch_all(sql, params);
        async move { Ok(rows.await?.into_iter().next()) }
    }

    /// Runs a statement and returns every row.
    fn fetch_all(
        &mut self,
        sql: Sql,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send;

    /// Runs a statement and returns how many rows it touched.
    fn execute(
        &mut self,
        sql: Sql,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<u64, DbError>> + Send;

    /// Runs a statement that returns exactly one row (`INSERT ... RETURNING`).
    fn fetch_one(
        &mut self,
        sql: Sql,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<Row, DbError>> + Send {
        let row = self.fetch_optional(sql, params);
        async move { row.await?.ok_or(DbError::Sqlx(sqlx::Error::RowNotFound)) }
    }

    /// Runs a statement whose answer the caller does not need yet: in a PostgreSQL session it
    /// is sent with the next statement, or with `COMMIT`, in the same round trip; elsewhere it
    /// runs now. If it fails, so does what it is sent with (the next statement, or the commit,
    /// returns its error). Its rows are for [`Executor::answer`].
    fn defer(
        &mut self,
        sql: Sql,
        params: Vec<SqlValue>,
    ) -> impl Future<Output = Result<Deferred, DbError>> + Send {
        let rows = self.fetch_all(sql, params);
        async move { Ok(Deferred(DeferredAt::Ran(rows.await?))) }
    }

    /// The rows of a deferred statement, once it ran: after the statement or the commit it was
    /// sent with, on PostgreSQL.
    fn answer(&mut self, deferred: Deferred) -> Option<Vec<Row>> {
        match deferred.0 {
            DeferredAt::Ran(rows) => Some(rows),
            DeferredAt::Pg(_) => None,
        }
    }
}

/// A database transaction, begun for a caller (or for the server itself). It commits only when
/// asked to; dropped (by an error, an early return or a panic), it rolls back, so an operation
/// either fully happens or not at all.
///
/// On PostgreSQL nothing is sent until a statement's answer is needed: the caller's context,
/// `BEGIN` and every deferred statement go with it, and `COMMIT` with what is left.
#[derive(Debug)]
pub struct Tx {
    inner: TxInner,
    principal: Option<Arc<Principal>>,
    /// Begun to write ([`Db::begin`]), not only to read.
    writes: bool,
}

enum TxInner {
    /// Boxed: a session holds its pending flight and is much larger than a SQLite
    /// transaction.
    Postgres(Box<pg::Session>),
    /// The transaction; none once committed.
    Sqlite(Option<sqlx::Transaction<'static, Sqlite>>),
}

impl std::fmt::Debug for TxInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxInner::Postgres(session) => session.fmt(f),
            TxInner::Sqlite(tx) => f
                .debug_struct("Sqlite")
                .field("open", &tx.is_some())
                .finish(),
        }
    }
}

impl Tx {
    /// Makes every change of the transaction permanent: on PostgreSQL what is deferred and
    /// `COMMIT` go in one round trip, and a deferred statement's error is the commit's.
    pub async fn commit(mut self) -> Result<(), DbError> {
        self.commit_keeping().await
    }

    /// Commits like [`Tx::commit`], keeping the transaction for the answers of its deferred
    /// statements ([`Executor::answer`]).
    pub async fn commit_keeping(&mut self) -> Result<(), DbError> {
        // Under an `Idempotency-Key`, the key records that its request wrote, in the write's
        // own transaction (sent with the commit on PostgreSQL: no round trip more).
        if self.writes
            && let Some(held) = crate::idempotency::held()
        {
            let (sql, params) = held.committed(self.dialect());
            self.defer(sql, params).await?;
        }
        match &mut self.inner {
            TxInner::Postgres(session) => session.commit().await,
            TxInner::Sqlite(tx) => match tx.take() {
                Some(tx) => Ok(tx.commit().await?),
                None => Ok(()),
            },
        }
    }

    /// Ends a transaction that only read. On PostgreSQL a read session has no transaction to
    /// end; elsewhere the rollback happens when it is dropped.
    pub fn end_read(self) {
        drop(self);
    }

    /// Undoes every change of the transaction.
    pub async fn rollback(self) -> Result<(), DbError> {
        match self.inner {
            TxInner::Postgres(mut session) => session.rollback().await?,
            TxInner::Sqlite(Some(tx)) => tx.rollback().await?,
            TxInner::Sqlite(None) => {}
        }
        Ok(())
    }

    /// The tenant the transaction's statements are scoped to.
    pub fn tenant(&self) -> Option<Uuid> {
        self.principal.as_ref().map(|p| p.tenant)
    }
}

/// The transaction of an SQLite `Tx`, unless it was committed.
fn open<'a>(
    tx: &'a mut Option<sqlx::Transaction<'static, Sqlite>>,
) -> Result<&'a mut sqlx::Transaction<'static, Sqlite>, DbError> {
    tx.as_mut()
        .ok_or_else(|| DbError::Internal("the transaction was committed already".into()))
}

impl Executor for Tx {
    fn dialect(&self) -> Dialect {
        match self.inner {
            TxInner::Postgres(_) => Dialect::Postgres,
            TxInner::Sqlite(_) => Dialect::Sqlite,
        }
    }

    fn principal(&self) -> Option<&Arc<Principal>> {
        self.principal.as_ref()
    }

    async fn fetch_all(&mut self, sql: Sql, params: Vec<SqlValue>) -> Result<Vec<Row>, DbError> {
        Ok(match &mut self.inner {
            TxInner::Postgres(session) => {
                let (rows, _) = session.query(sql.0, params).await?;
                rows.into_iter().map(Row::Postgres).collect()
            }
            TxInner::Sqlite(tx) => {
                let query = params.into_iter().fold(sql.sqlite(), bind_sqlite);
                let rows = query.fetch_all(&mut **open(tx)?).await?;
                rows.into_iter().map(Row::Sqlite).collect()
            }
        })
    }

    async fn execute(&mut self, sql: Sql, params: Vec<SqlValue>) -> Result<u64, DbError> {
        Ok(match &mut self.inner {
            TxInner::Postgres(session) => session.query(sql.0, params).await?.1,
            TxInner::Sqlite(tx) => {
                let query = params.into_iter().fold(sql.sqlite(), bind_sqlite);
                query.execute(&mut **open(tx)?).await?.rows_affected()
            }
        })
    }

    async fn defer(&mut self, sql: Sql, params: Vec<SqlValue>) -> Result<Deferred, DbError> {
        match &mut self.inner {
            TxInner::Postgres(session) => {
                let ticket = session.defer(sql.0, params, true).unwrap_or_default();
                Ok(Deferred(DeferredAt::Pg(ticket)))
            }
            TxInner::Sqlite(_) => Ok(Deferred(DeferredAt::Ran(
                self.fetch_all(sql, params).await?,
            ))),
        }
    }

    fn answer(&mut self, deferred: Deferred) -> Option<Vec<Row>> {
        match (&mut self.inner, deferred.0) {
            (TxInner::Postgres(session), DeferredAt::Pg(ticket)) => session
                .answer(ticket)
                .map(|(rows, _)| rows.into_iter().map(Row::Postgres).collect()),
            (_, DeferredAt::Ran(rows)) => Some(rows),
            _ => None,
        }
    }
}

impl Executor for Db {
    fn dialect(&self) -> Dialect {
        Db::dialect(self)
    }

    async fn fetch_all(&mut self, sql: Sql, params: Vec<SqlValue>) -> Result<Vec<Row>, DbError> {
        Db::fetch_all(self, sql, params).await
    }

    async fn execute(&mut self, sql: Sql, params: Vec<SqlValue>) -> Result<u64, DbError> {
        Db::execute(self, sql, params).await
    }
}

impl Db {
    /// Begins a transaction for `principal`'s operation that writes. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`), so that two writers queue instead of one failing when it
    /// upgrades a read lock; on PostgreSQL, rows are locked as they are read for update, and
    /// nothing is sent before the first statement.
    pub async fn begin(&self, principal: &Arc<Principal>) -> Result<Tx, DbError> {
        self.begin_with(principal, true).await
    }

    /// Begins a transaction for `principal`'s operation that only reads. On PostgreSQL it is a
    /// session without a transaction: each statement sees the committed rows of the moment it
    /// runs, so a one-statement read is one round trip.
    pub async fn begin_read(&self, principal: &Arc<Principal>) -> Result<Tx, DbError> {
        self.begin_with(principal, false).await
    }

    /// The context a session of `principal` (or none) sets on its connection.
    fn context(&self, principal: Option<&Principal>) -> pg::Context {
        let schema = match self.layout() {
            Layout::Rows => None,
            Layout::Schemas => Some(match principal {
                // The tenant's own tables first; the shared ones in public.
                Some(p) => format!("\"{}\", public", tenant_schema(p.tenant)),
                None => "public".to_owned(),
            }),
        };
        match principal {
            Some(p) => pg::Context {
                tenant: Some(p.tenant),
                user: p.user,
                platform: p.operator,
                schema,
            },
            None => pg::Context::none(schema),
        }
    }

    async fn begin_with(&self, principal: &Arc<Principal>, writes: bool) -> Result<Tx, DbError> {
        let inner = match self {
            // The caller's tenant, user and platform right, for the row-level security policies,
            // set on the connection's session when it last served someone else.
            Db::Postgres(pool, _) => TxInner::Postgres(Box::new(
                pool.session(self.context(Some(principal)), writes).await?,
            )),
            Db::Sqlite(pool) if writes => {
                TxInner::Sqlite(Some(pool.begin_with("BEGIN IMMEDIATE").await?))
            }
            Db::Sqlite(pool) => TxInner::Sqlite(Some(pool.begin().await?)),
        };
        Ok(Tx {
            inner,
            principal: Some(principal.clone()),
            writes,
        })
    }

    /// Connects to `url`: `postgres://...` or `sqlite:path` (the file and its folder are created).
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Db, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Db::Postgres(
                pg::Pool::connect(url, options).await?,
                Layout::Rows,
            ));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            if !path.is_empty() && path != ":memory:" {
                if let Some(parent) = Path::new(path)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
                }
            }
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                // `like` filters are case-sensitive in both dialects; `ilike` is the insensitive one,
                // a Unicode-aware regular expression (`REGEXP`) here.
                .pragma("case_sensitive_like", "ON")
                .with_regexp()
                // Decimals are exact text: they compare and sort as decimals, never as REAL.
                .collation("prefiq_decimal", compare_decimals);
            // Two processes opening a new database at once race to switch it to WAL, and the
            // loser is told the database is locked (before any busy timeout applies): retry.
            let mut attempt = 0;
            loop {
                let opened = SqlitePoolOptions::new()
                    // The database is a file this process opened: nothing drops the connection.
                    .test_before_acquire(false)
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect.clone())
                    .await;
                match opened {
                    Ok(pool) => return Ok(Db::Sqlite(pool)),
                    Err(sqlx::Error::Database(e))
                        if e.code().as_deref() == Some("5") && attempt < 50 =>
                    {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(20 * attempt.min(10))).await;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Err(DbError::UnsupportedUrl(url.to_owned()))
    }

    /// On PostgreSQL, how this pool's role could step out of row-level security, if it could:
    /// it is (or is a member of) a superuser or a role with `BYPASSRLS`, or of the owner of a
    /// table with row-level security (an owner may turn it off). `None` on SQLite.
    pub async fn escape_from_row_security(&self) -> Result<Option<String>, DbError> {
        if self.dialect() == Dialect::Sqlite {
            return Ok(None);
        }
        let row = self
            .fetch_optional(
                    "SELECT (SELECT string_agg(r.rolname, ', ') FROM pg_roles r \
                       WHERE (r.rolsuper OR r.rolbypassrls) AND pg_has_role(current_user, r.oid, 'MEMBER')), \
                     (SELECT string_agg(DISTINCT c.relname, ', ') FROM pg_class c \
                       WHERE c.relrowsecurity AND pg_has_role(current_user, c.relowner, 'MEMBER'))",
                Vec::new(),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let privileged: Option<String> = row.opt(0)?;
        let owned: Option<String> = row.opt(1)?;
        Ok(match (privileged, owned) {
            (Some(roles), _) => Some(format!("it has the rights of {roles}")),
            (None, Some(tables)) => Some(format!("it owns {tables}")),
            (None, None) => None,
        })
    }

    /// On PostgreSQL, the payloads of the notifications on `channel` (`LISTEN`), over a
    /// connection of their own; `None` on SQLite, which has no notifications.
    pub async fn listen(
        &self,
        channel: &str,
    ) -> Option<Result<tokio::sync::mpsc::UnboundedReceiver<String>, DbError>> {
        match self {
            Db::Postgres(pool, _) => Some(pool.listen(channel).await),
            Db::Sqlite(_) => None,
        }
    }

    /// How many connections the pool holds open, how many of them are idle, and the most it
    /// opens.
    pub fn pool_usage(&self) -> PoolUsage {
        match self {
            Db::Postgres(pool, _) => pool.usage(),
            Db::Sqlite(pool) => PoolUsage {
                open: pool.size() as usize,
                idle: pool.num_idle(),
                max: pool.options().get_max_connections() as usize,
            },
        }
    }

    /// The dialect of this pool.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Postgres(..) => Dialect::Postgres,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// The same pool, with tenants' rows in `layout` (PostgreSQL only; SQLite keeps rows).
    pub fn with_layout(self, layout: Layout) -> Db {
        match self {
            Db::Postgres(pool, _) => Db::Postgres(pool, layout),
            other => other,
        }
    }

    /// Where tenants' rows live.
    pub fn layout(&self) -> Layout {
        match self {
            Db::Postgres(_, layout) => *layout,
            Db::Sqlite(_) => Layout::Rows,
        }
    }

    /// Picks the statement written for this pool's dialect.
    pub fn pick(&self, postgres: &'static str, sqlite: &'static str) -> &'static str {
        match self {
            Db::Postgres(..) => postgres,
            Db::Sqlite(_) => sqlite,
        }
    }

    /// A session of no caller: no tenant's rows, on PostgreSQL.
    async fn no_one(&self, pool: &pg::Pool) -> Result<pg::Session, DbError> {
        pool.session(self.context(None), false).await
    }

    /// Runs a statement on its own (no caller: no tenant's rows on PostgreSQL) and returns at
    /// most one row.
    pub async fn fetch_optional(
        &self,
        sql: impl Into<Sql>,
        params: Vec<SqlValue>,
    ) -> Result<Option<Row>, DbError> {
        Ok(self.fetch_all(sql, params).await?.into_iter().next())
    }

    /// Runs a statement on its own and returns exactly one row.
    pub async fn fetch_one(
        &self,
        sql: impl Into<Sql>,
        params: Vec<SqlValue>,
    ) -> Result<Row, DbError> {
        self.fetch_optional(sql, params)
            .await?
            .ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
    }

    /// Runs a statement on its own and returns every row.
    pub async fn fetch_all(
        &self,
        sql: impl Into<Sql>,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Row>, DbError> {
        let sql = sql.into();
        match self {
            Db::Postgres(pool, _) => {
                let (rows, _) = self.no_one(pool).await?.query(sql.0, params).await?;
                Ok(rows.into_iter().map(Row::Postgres).collect())
            }
            Db::Sqlite(pool) => {
                let query = params.into_iter().fold(sql.sqlite(), bind_sqlite);
                Ok(query
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(Row::Sqlite)
                    .collect())
            }
        }
    }

    /// Runs a statement on its own and returns how many rows it touched.
    pub async fn execute(
        &self,
        sql: impl Into<Sql>,
        params: Vec<SqlValue>,
    ) -> Result<u64, DbError> {
        let sql = sql.into();
        match self {
            Db::Postgres(pool, _) => Ok(self.no_one(pool).await?.query(sql.0, params).await?.1),
            Db::Sqlite(pool) => {
                let query = params.into_iter().fold(sql.sqlite(), bind_sqlite);
                Ok(query.execute(pool).await?.rows_affected())
            }
        }
    }

    /// A PostgreSQL connection as it is, for what takes the connection itself (migrations and
    /// their advisory locks). It keeps no caller's context: it says so to the pool when used.
    pub(crate) async fn pg_connection(
        &self,
    ) -> Result<deadpool::managed::Object<pg::Manager>, DbError> {
        match self {
            Db::Postgres(pool, _) => {
                let mut conn = pool.get().await?;
                conn.forget_context();
                Ok(conn)
            }
            Db::Sqlite(_) => Err(DbError::Internal("not a PostgreSQL database".into())),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Db::Postgres(pool, _) => pool.close(),
            Db::Sqlite(pool) => pool.close().await,
        }
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
