//! The generated CRUD routes of an entity, written once. Generated code describes each entity
//! with a [`Resource`] (its table, statements, row reader and parameter binders) and wires its
//! service's hooks with [`Hooks`]; the repository functions and handlers here do the rest.
//!
//! Every handler that writes opens one transaction for the hooks and the write and commits only
//! when all of them succeeded. Updates and deletes read the row locked for the transaction, so no
//! concurrent update is lost. Every insert and update checks the row against the entity's schema
//! first, whoever built it.

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::Dialect;
use crate::db::{Db, DbError, Executor, Row, SqlValue, ToSql, Tx};
use crate::http::{
    Created, IfMatch, JsonBody, NoContent, PathKey, QueryPairs, RequestContext, Tagged,
};
use crate::list::{ListQuery, Page};
use crate::meta::{TableMeta, Written, quote};
use crate::problem::Problem;
use crate::validate::{SchemaError, Validator};

/// An entity's statements, each as `[postgres, sqlite]`, made once from its [`TableMeta`]:
/// every identifier comes from the schema, every value is a bound parameter.
#[derive(Debug)]
pub struct Statements {
    /// `INSERT ... RETURNING` every column: the parameters are the columns not
    /// [`Written::Never`], in column order.
    pub insert: [String; 2],
    /// `SELECT` a row by key.
    pub select: [String; 2],
    /// `SELECT` a row by key, locked until the transaction ends.
    pub select_for_update: [String; 2],
    /// `UPDATE ... WHERE key = ? AND version = ? RETURNING` every column: the parameters are the
    /// [`Written::Always`] columns in column order, then the key and the version.
    pub update: [String; 2],
    /// `DELETE ... WHERE key = ? AND version = ?`.
    pub delete: [String; 2],
}

impl Statements {
    /// The statements of `table`.
    pub fn of(table: &TableMeta) -> Statements {
        let name = quote(table.table);
        let columns: Vec<String> = table.columns.iter().map(|c| quote(c.column)).collect();
        let returning = columns.join(", ");
        let key = &columns[table.primary_key];
        let version = &columns[table.version];
        let per_dialect =
            |make: &dyn Fn(Dialect) -> String| [make(Dialect::Postgres), make(Dialect::Sqlite)];
        let select = |d: Dialect| {
            format!(
                "SELECT {returning} FROM {name} WHERE {key} = {}",
                d.placeholder(1)
            )
        };
        Statements {
            insert: per_dialect(&|d| {
                let inserted: Vec<&String> = table
                    .columns
                    .iter()
                    .zip(&columns)
                    .filter(|(c, _)| c.written != Written::Never)
                    .map(|(_, q)| q)
                    .collect();
                let values: Vec<String> = (1..=inserted.len()).map(|n| d.placeholder(n)).collect();
                let names: Vec<&str> = inserted.iter().map(|q| q.as_str()).collect();
                format!(
                    "INSERT INTO {name} ({}) VALUES ({}) RETURNING {returning}",
                    names.join(", "),
                    values.join(", ")
                )
            }),
            select: per_dialect(&select),
            // SQLite has no row locks: a writing transaction holds the write lock from its start.
            select_for_update: per_dialect(&|d| match d {
                Dialect::Postgres => format!("{} FOR UPDATE", select(d)),
                Dialect::Sqlite => select(d),
            }),
            update: per_dialect(&|d| {
                let sets: Vec<String> = table
                    .columns
                    .iter()
                    .zip(&columns)
                    .filter(|(c, _)| c.written == Written::Always)
                    .enumerate()
                    .map(|(i, (_, q))| format!("{q} = {}", d.placeholder(i + 1)))
                    .collect();
                let n = sets.len();
                format!(
                    "UPDATE {name} SET {}, {version} = {version} + 1 WHERE {key} = {} AND {version} = {} RETURNING {returning}",
                    sets.join(", "),
                    d.placeholder(n + 1),
                    d.placeholder(n + 2)
                )
            }),
            delete: per_dialect(&|d| {
                format!(
                    "DELETE FROM {name} WHERE {key} = {} AND {version} = {}",
                    d.placeholder(1),
                    d.placeholder(2)
                )
            }),
        }
    }
}

/// The validators of an entity's bodies and rows.
#[derive(Debug)]
pub struct EntityValidators {
    /// What a client sends to create one.
    pub create: Validator,
    /// A merge patch.
    pub patch: Validator,
    /// The stored state: every row written is checked against it.
    pub replace: Validator,
}

impl EntityValidators {
    /// Compiles the definitions `create`, `patch` and `replace` of `document`; `read_only`
    /// names the members a client may not send.
    pub fn new(
        document: &serde_json::Value,
        [create, patch, replace]: [&str; 3],
        read_only: &'static [&'static str],
    ) -> Result<EntityValidators, SchemaError> {
        Ok(EntityValidators {
            create: Validator::new(document, create, read_only)?,
            patch: Validator::new(document, patch, read_only)?,
            replace: Validator::new(document, replace, read_only)?,
        })
    }
}

/// Adds the five routes of `R` to `router`: list and create on `R::COLLECTION`, get, update
/// and delete on its items.
pub fn routes<R: Resource, S: Hooks<R>>(
    router: axum::Router<AppState<S>>,
) -> axum::Router<AppState<S>> {
    use axum::routing::get;
    router
        .route(
            R::COLLECTION,
            get(list_handler::<R, S>).post(create_handler::<R, S>),
        )
        .route(
            &format!("{}/{{id}}", R::COLLECTION),
            get(get_handler::<R, S>)
                .patch(update_handler::<R, S>)
                .delete(delete_handler::<R, S>),
        )
}

/// What generated code says about an entity.
pub trait Resource: Send + Sync + 'static {
    /// What a client reads.
    type Model: Serialize + Send + Sync + 'static;
    /// What a client sends to create one, and what a merged patch becomes.
    type Create: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The primary key.
    type Key: FromStr + ToSql + Display + Send + Sync + 'static;
    /// The table.
    const TABLE: &'static TableMeta;
    /// The statements, made once from `TABLE`.
    fn statements() -> &'static Statements;
    /// The collection's path, as in `/api/crm/deals`.
    const COLLECTION: &'static str;
    /// The members a client may send.
    const WRITABLE: &'static [&'static str];
    /// Reads a row in `TABLE.columns` order.
    fn read(row: &Row) -> Result<Self::Model, DbError>;
    /// The parameters of `SQL.insert`.
    fn insert_params(input: &Self::Create, now: DateTime<Utc>) -> Vec<SqlValue>;
    /// The parameters of `SQL.update` before the key and the version.
    fn update_params(input: &Self::Create, now: DateTime<Utc>) -> Vec<SqlValue>;
    /// The key of a row, as it appears in its URL.
    fn key(model: &Self::Model) -> String;
    /// The version of a row: its `ETag`.
    fn version(model: &Self::Model) -> i64;
    /// The entity's validators.
    fn validators() -> Result<&'static EntityValidators, &'static SchemaError>;
}

/// The service hooks around an entity's writes, each run in the write's transaction.
pub trait Hooks<R: Resource>: Send + Sync + 'static {
    /// Before an insert: change `input`, or refuse with a problem.
    fn before_create(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        input: &mut R::Create,
    ) -> impl Future<Output = Result<(), Problem>> + Send;
    /// After an insert.
    fn after_create(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        row: &R::Model,
    ) -> impl Future<Output = Result<(), Problem>> + Send;
    /// Before an update: `next` is the merged state.
    fn before_update(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        current: &R::Model,
        next: &mut R::Create,
    ) -> impl Future<Output = Result<(), Problem>> + Send;
    /// After an update.
    fn after_update(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        row: &R::Model,
    ) -> impl Future<Output = Result<(), Problem>> + Send;
    /// Before a delete.
    fn before_delete(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        current: &R::Model,
    ) -> impl Future<Output = Result<(), Problem>> + Send;
    /// After a delete.
    fn after_delete(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        row: &R::Model,
    ) -> impl Future<Output = Result<(), Problem>> + Send;
}

/// What every generated handler receives: the app's service and database.
#[derive(Debug)]
pub struct AppState<S> {
    /// The app's service (its hooks and custom operations).
    pub service: Arc<S>,
    /// The database.
    pub db: Db,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            db: self.db.clone(),
        }
    }
}

fn validators<R: Resource>() -> Result<&'static EntityValidators, DbError> {
    R::validators().map_err(|error| DbError::Internal(error.to_string()))
}

fn problem<R: Resource>(error: DbError) -> Problem {
    error.into_problem(R::TABLE)
}

fn missing<R: Resource>(key: &R::Key) -> Problem {
    Problem::not_found(format!("no {} has the id `{key}`", R::TABLE.entity))
}

/// Inserts a row, after checking it against the schema.
pub async fn insert<R: Resource>(
    db: &mut impl Executor,
    input: &R::Create,
) -> Result<R::Model, DbError> {
    validators::<R>()?.replace.check_row(input)?;
    let params = R::insert_params(input, crate::db::now());
    let sql = db.pick(&R::statements().insert[0], &R::statements().insert[1]);
    R::read(&db.fetch_one(sql, params).await?)
}

/// Finds a row by key.
pub async fn find<R: Resource>(
    db: &mut impl Executor,
    key: &R::Key,
) -> Result<Option<R::Model>, DbError> {
    let sql = db.pick(&R::statements().select[0], &R::statements().select[1]);
    let row = db.fetch_optional(sql, vec![key.to_sql()]).await?;
    row.as_ref().map(R::read).transpose()
}

/// Finds a row by key and keeps anyone else from changing it until the transaction ends.
pub async fn find_for_update<R: Resource>(
    db: &mut impl Executor,
    key: &R::Key,
) -> Result<Option<R::Model>, DbError> {
    let sql = db.pick(
        &R::statements().select_for_update[0],
        &R::statements().select_for_update[1],
    );
    let row = db.fetch_optional(sql, vec![key.to_sql()]).await?;
    row.as_ref().map(R::read).transpose()
}

/// Writes `input` over the row if it is still at `version`, after checking it against the
/// schema; `None` if the row moved on or is gone.
pub async fn update<R: Resource>(
    db: &mut impl Executor,
    key: &R::Key,
    version: i64,
    input: &R::Create,
) -> Result<Option<R::Model>, DbError> {
    validators::<R>()?.replace.check_row(input)?;
    let mut params = R::update_params(input, crate::db::now());
    params.push(key.to_sql());
    params.push(SqlValue::Int(version));
    let sql = db.pick(&R::statements().update[0], &R::statements().update[1]);
    let row = db.fetch_optional(sql, params).await?;
    row.as_ref().map(R::read).transpose()
}

/// Deletes the row if it is still at `version`; whether it did.
pub async fn delete<R: Resource>(
    db: &mut impl Executor,
    key: &R::Key,
    version: i64,
) -> Result<bool, DbError> {
    let sql = db.pick(&R::statements().delete[0], &R::statements().delete[1]);
    let params = vec![key.to_sql(), SqlValue::Int(version)];
    Ok(db.execute(sql, params).await? == 1)
}

fn key<R: Resource>(raw: &str) -> Result<R::Key, Problem> {
    crate::http::parse_key(raw, R::TABLE.entity)
}

/// `GET` on the collection.
pub async fn list_handler<R: Resource, S: Send + Sync + 'static>(
    State(state): State<AppState<S>>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Page<R::Model>>, Problem> {
    let query = ListQuery::parse(R::TABLE, &pairs)?;
    let page = query
        .run(&mut state.db.clone(), R::TABLE, R::read)
        .await
        .map_err(problem::<R>)?;
    Ok(Json(page))
}

/// `POST` on the collection: the hooks and the insert share one transaction.
pub async fn create_handler<R: Resource, S: Hooks<R>>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    JsonBody(body): JsonBody,
) -> Result<Created<R::Model>, Problem> {
    validators::<R>()
        .map_err(Problem::from)?
        .create
        .check(&body)?;
    let mut input: R::Create = crate::validate::decode(body)?;
    let mut tx = state.db.begin().await?;
    state
        .service
        .before_create(&ctx, &mut tx, &mut input)
        .await?;
    let row = insert::<R>(&mut tx, &input).await.map_err(problem::<R>)?;
    state.service.after_create(&ctx, &mut tx, &row).await?;
    tx.commit().await.map_err(problem::<R>)?;
    Ok(Created {
        location: format!("{}/{}", R::COLLECTION, R::key(&row)),
        version: R::version(&row),
        body: row,
    })
}

/// `GET` on an item.
pub async fn get_handler<R: Resource, S: Send + Sync + 'static>(
    State(state): State<AppState<S>>,
    PathKey(raw): PathKey,
) -> Result<Tagged<R::Model>, Problem> {
    let key = key::<R>(&raw)?;
    let row = find::<R>(&mut state.db.clone(), &key)
        .await
        .map_err(problem::<R>)?
        .ok_or_else(|| missing::<R>(&key))?;
    Ok(Tagged {
        version: R::version(&row),
        body: row,
    })
}

/// `PATCH` on an item: a JSON merge patch, applied to the row locked for the transaction.
pub async fn update_handler<R: Resource, S: Hooks<R>>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    PathKey(raw): PathKey,
    precondition: IfMatch,
    JsonBody(patch): JsonBody,
) -> Result<Tagged<R::Model>, Problem> {
    let validators = validators::<R>().map_err(Problem::from)?;
    validators.patch.check(&patch)?;
    let key = key::<R>(&raw)?;
    let mut tx = state.db.begin().await?;
    let current = find_for_update::<R>(&mut tx, &key)
        .await
        .map_err(problem::<R>)?
        .ok_or_else(|| missing::<R>(&key))?;
    precondition.check(R::version(&current))?;
    let mut merged = crate::patch::writable_members(&current, R::WRITABLE)?;
    crate::patch::merge_patch(&mut merged, &patch);
    validators.replace.check(&merged)?;
    let mut input: R::Create = crate::validate::decode(merged)?;
    state
        .service
        .before_update(&ctx, &mut tx, &current, &mut input)
        .await?;
    let row = update::<R>(&mut tx, &key, R::version(&current), &input)
        .await
        .map_err(problem::<R>)?
        .ok_or_else(crate::patch::contended)?;
    state.service.after_update(&ctx, &mut tx, &row).await?;
    tx.commit().await.map_err(problem::<R>)?;
    Ok(Tagged {
        version: R::version(&row),
        body: row,
    })
}

/// `DELETE` on an item.
pub async fn delete_handler<R: Resource, S: Hooks<R>>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    PathKey(raw): PathKey,
    precondition: IfMatch,
) -> Result<NoContent, Problem> {
    let key = key::<R>(&raw)?;
    let mut tx = state.db.begin().await?;
    let current = find_for_update::<R>(&mut tx, &key)
        .await
        .map_err(problem::<R>)?
        .ok_or_else(|| missing::<R>(&key))?;
    precondition.check(R::version(&current))?;
    state.service.before_delete(&ctx, &mut tx, &current).await?;
    if !delete::<R>(&mut tx, &key, R::version(&current))
        .await
        .map_err(problem::<R>)?
    {
        return Err(crate::patch::contended());
    }
    state.service.after_delete(&ctx, &mut tx, &current).await?;
    tx.commit().await.map_err(problem::<R>)?;
    Ok(NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{ColumnKind, ColumnMeta};

    #[test]
    fn statements_bind_the_columns_each_write_sets_in_column_order() {
        static COLUMNS: [ColumnMeta; 5] = [
            ColumnMeta::new("id", "id", ColumnKind::Int).database(),
            ColumnMeta::new("name", "name", ColumnKind::Text),
            ColumnMeta::new("order", "order", ColumnKind::Int),
            ColumnMeta::new("created_at", "created_at", ColumnKind::DateTime).on_insert(),
            ColumnMeta::new("version", "version", ColumnKind::Int).on_insert(),
        ];
        static TABLE: TableMeta = TableMeta {
            entity: "Thing",
            table: "things",
            columns: &COLUMNS,
            primary_key: 0,
            version: 4,
            uniques: &[],
            foreign_keys: &[],
        };
        let sql = Statements::of(&TABLE);
        let all = r#""id", "name", "order", "created_at", "version""#;
        assert_eq!(
            sql.insert[0],
            format!(
                r#"INSERT INTO "things" ("name", "order", "created_at", "version") VALUES ($1, $2, $3, $4) RETURNING {all}"#
            )
        );
        assert_eq!(
            sql.update[1],
            format!(
                r#"UPDATE "things" SET "name" = ?1, "order" = ?2, "version" = "version" + 1 WHERE "id" = ?3 AND "version" = ?4 RETURNING {all}"#
            )
        );
        assert_eq!(
            sql.select_for_update[0],
            format!(r#"SELECT {all} FROM "things" WHERE "id" = $1 FOR UPDATE"#)
        );
        assert_eq!(
            sql.select_for_update[1],
            format!(r#"SELECT {all} FROM "things" WHERE "id" = ?1"#)
        );
        assert_eq!(
            sql.delete[1],
            r#"DELETE FROM "things" WHERE "id" = ?1 AND "version" = ?2"#
        );
    }
}
