//! The generated CRUD routes of an entity, written once. Generated code describes each entity
//! with a [`Resource`] (its table, statements, row reader and parameter binders) and wires its
//! service's hooks with [`Hooks`]; the repository functions and handlers here do the rest.
//!
//! Every handler authenticates its caller and checks the operation's permission (401, then 403)
//! before it touches the database. Every handler that writes opens one transaction for the
//! hooks and the write and commits only when all of them succeeded. Updates and deletes read
//! the row locked for the transaction, so no concurrent update is lost.
//!
//! The repository functions are what handlers and services alike write through, so every rule
//! holds for both: each row written is checked against the entity's schema; each statement of a
//! tenant-scoped table is limited to the transaction's tenant, which also stamps the rows it
//! inserts (never the request body); references must name rows of the same tenant; rows that
//! belong to their owner are seen only by the owner or by callers granted every row; and each
//! write appends its audit entry in the same transaction.

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::audit::Action;
use crate::auth::{Principal, Scope};
use crate::db::Dialect;
use crate::db::{Db, DbError, Deferred, Executor, Row, Sql, SqlValue, ToSql, Tx};
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
    /// `SELECT` a row by key (and tenant).
    pub select: [String; 2],
    /// `SELECT` a row by key (and tenant), locked until the transaction ends.
    pub select_for_update: [String; 2],
    /// `UPDATE ... WHERE key = ? AND version = ? (AND tenant = ?) RETURNING` every column: the
    /// parameters are the [`Written::Always`] columns in column order, then the key, the version
    /// and the tenant.
    pub update: [String; 2],
    /// `DELETE ... WHERE key = ? AND version = ? (AND tenant = ?)`.
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
        // The tenant condition, bound last.
        let tenant = |d: Dialect, n: usize| match table.tenant {
            Some(index) => format!(" AND {} = {}", columns[index], d.placeholder(n)),
            None => String::new(),
        };
        let select = |d: Dialect| {
            format!(
                "SELECT {returning} FROM {name} WHERE {key} = {}{}",
                d.placeholder(1),
                tenant(d, 2)
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
                    "UPDATE {name} SET {}, {version} = {version} + 1 WHERE {key} = {} AND {version} = {}{} RETURNING {returning}",
                    sets.join(", "),
                    d.placeholder(n + 1),
                    d.placeholder(n + 2),
                    tenant(d, n + 3)
                )
            }),
            delete: per_dialect(&|d| {
                format!(
                    "DELETE FROM {name} WHERE {key} = {} AND {version} = {}{}",
                    d.placeholder(1),
                    d.placeholder(2),
                    tenant(d, 3)
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
/// and delete on its items, served with `state`.
pub fn routes<R: Writable, S: Hooks<R>>(
    router: axum::Router<AppState<S>>,
    state: &AppState<S>,
) -> axum::Router<AppState<S>> {
    use axum::routing::get;
    let handlers: Arc<dyn EntityHandlers> = Arc::new(Handled::<R, S>::new(state));
    router
        .route(
            R::COLLECTION,
            get(list_any).post(create_any).with_state(handlers.clone()),
        )
        .route(
            &format!("{}/{{id}}", R::COLLECTION),
            get(get_any)
                .patch(update_any)
                .delete(delete_any)
                .with_state(handlers),
        )
}

/// Adds the two routes of a `read-only` `R` to `router`: list on `R::COLLECTION` and get on
/// its items. Nothing else answers there but 405.
pub fn read_routes<R: Resource, S: Send + Sync + 'static>(
    router: axum::Router<AppState<S>>,
    state: &AppState<S>,
) -> axum::Router<AppState<S>> {
    use axum::routing::get;
    let handlers: Arc<dyn EntityHandlers> = Arc::new(ReadOnly::<R, S>::new(state));
    router
        .route(R::COLLECTION, get(list_any).with_state(handlers.clone()))
        .route(
            &format!("{}/{{id}}", R::COLLECTION),
            get(get_any).with_state(handlers),
        )
}

/// A response on its way.
type Reply<'a> = std::pin::Pin<Box<dyn Future<Output = axum::response::Response> + Send + 'a>>;

/// The five handlers of one entity, behind a trait object. axum sees only the five functions
/// below (`list_any`, …), which are not generic: its routing machinery is compiled once, here,
/// instead of once per entity in every app's crate, which `prefiq dev` rebuilds on every save.
trait EntityHandlers: Send + Sync + 'static {
    fn list(&self, ctx: RequestContext, pairs: QueryPairs) -> Reply<'_>;
    fn create(&self, ctx: RequestContext, body: JsonBody) -> Reply<'_>;
    fn get(&self, ctx: RequestContext, key: PathKey) -> Reply<'_>;
    fn update(
        &self,
        ctx: RequestContext,
        key: PathKey,
        precondition: IfMatch,
        patch: JsonBody,
    ) -> Reply<'_>;
    fn delete(&self, ctx: RequestContext, key: PathKey, precondition: IfMatch) -> Reply<'_>;
}

type Shared = State<Arc<dyn EntityHandlers>>;

async fn list_any(
    State(entity): Shared,
    ctx: RequestContext,
    pairs: QueryPairs,
) -> axum::response::Response {
    entity.list(ctx, pairs).await
}

async fn create_any(
    State(entity): Shared,
    ctx: RequestContext,
    body: JsonBody,
) -> axum::response::Response {
    entity.create(ctx, body).await
}

async fn get_any(
    State(entity): Shared,
    ctx: RequestContext,
    key: PathKey,
) -> axum::response::Response {
    entity.get(ctx, key).await
}

async fn update_any(
    State(entity): Shared,
    ctx: RequestContext,
    key: PathKey,
    precondition: IfMatch,
    patch: JsonBody,
) -> axum::response::Response {
    entity.update(ctx, key, precondition, patch).await
}

async fn delete_any(
    State(entity): Shared,
    ctx: RequestContext,
    key: PathKey,
    precondition: IfMatch,
) -> axum::response::Response {
    entity.delete(ctx, key, precondition).await
}

/// The handlers of a writable entity `R` with the app's state.
struct Handled<R, S> {
    state: AppState<S>,
    resource: std::marker::PhantomData<fn() -> R>,
}

impl<R, S> Handled<R, S> {
    fn new(state: &AppState<S>) -> Self {
        Handled {
            state: state.clone(),
            resource: std::marker::PhantomData,
        }
    }
}

impl<R: Resource, S: Send + Sync + 'static> Handled<R, S> {
    /// `GET` on the collection, which every entity has.
    fn list_reply(&self, ctx: RequestContext, pairs: QueryPairs) -> Reply<'_> {
        use axum::response::IntoResponse;
        Box::pin(async move {
            list_handler::<R, S>(State(self.state.clone()), ctx, pairs)
                .await
                .into_response()
        })
    }

    /// `GET` on an item, which every entity has.
    fn get_reply(&self, ctx: RequestContext, key: PathKey) -> Reply<'_> {
        use axum::response::IntoResponse;
        Box::pin(async move {
            get_handler::<R, S>(State(self.state.clone()), ctx, key)
                .await
                .into_response()
        })
    }
}

impl<R: Writable, S: Hooks<R>> EntityHandlers for Handled<R, S> {
    fn list(&self, ctx: RequestContext, pairs: QueryPairs) -> Reply<'_> {
        self.list_reply(ctx, pairs)
    }

    fn create(&self, ctx: RequestContext, body: JsonBody) -> Reply<'_> {
        use axum::response::IntoResponse;
        Box::pin(async move {
            create_handler::<R, S>(State(self.state.clone()), ctx, body)
                .await
                .into_response()
        })
    }

    fn get(&self, ctx: RequestContext, key: PathKey) -> Reply<'_> {
        self.get_reply(ctx, key)
    }

    fn update(
        &self,
        ctx: RequestContext,
        key: PathKey,
        precondition: IfMatch,
        patch: JsonBody,
    ) -> Reply<'_> {
        use axum::response::IntoResponse;
        Box::pin(async move {
            update_handler::<R, S>(State(self.state.clone()), ctx, key, precondition, patch)
                .await
                .into_response()
        })
    }

    fn delete(&self, ctx: RequestContext, key: PathKey, precondition: IfMatch) -> Reply<'_> {
        use axum::response::IntoResponse;
        Box::pin(async move {
            delete_handler::<R, S>(State(self.state.clone()), ctx, key, precondition)
                .await
                .into_response()
        })
    }
}

/// The handlers of a `read-only` entity `R`: only list and get are routed.
struct ReadOnly<R, S>(Handled<R, S>);

impl<R, S> ReadOnly<R, S> {
    fn new(state: &AppState<S>) -> Self {
        ReadOnly(Handled::new(state))
    }
}

impl<R: Resource, S: Send + Sync + 'static> EntityHandlers for ReadOnly<R, S> {
    fn list(&self, ctx: RequestContext, pairs: QueryPairs) -> Reply<'_> {
        self.0.list_reply(ctx, pairs)
    }

    fn get(&self, ctx: RequestContext, key: PathKey) -> Reply<'_> {
        self.0.get_reply(ctx, key)
    }

    fn create(&self, _: RequestContext, _: JsonBody) -> Reply<'_> {
        not_offered()
    }

    fn update(&self, _: RequestContext, _: PathKey, _: IfMatch, _: JsonBody) -> Reply<'_> {
        not_offered()
    }

    fn delete(&self, _: RequestContext, _: PathKey, _: IfMatch) -> Reply<'_> {
        not_offered()
    }
}

/// What a write to a read-only entity answers, were one routed: 405, as [`offered`] says
/// when a hand-written route reaches a handler for an action the entity does not offer.
fn not_offered() -> Reply<'static> {
    use axum::response::IntoResponse;
    Box::pin(std::future::ready(not_offered_problem().into_response()))
}

/// The permissions of an entity's routes, from the IR: `<app>.<entity>.<action>`.
#[derive(Debug)]
pub struct Access {
    /// To list and get rows. `None`, here and below, for an action the entity does not offer.
    pub read: Option<&'static str>,
    /// To create one.
    pub create: Option<&'static str>,
    /// To change one.
    pub update: Option<&'static str>,
    /// To delete one.
    pub delete: Option<&'static str>,
    /// To see and change every row of a table whose rows belong to their owner, not only one's
    /// own (`<app>.<entity>.all-rows`); `None` for a table whose rows have no owner.
    pub all_rows: Option<&'static str>,
    /// Whose business creating, changing and deleting rows is: [`Scope::Platform`] for a
    /// shared entity only platform operators write.
    pub writes: Scope,
}

/// What the server stamps on a row it writes: the time, and the caller's tenant and user.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// The time of the write.
    pub now: DateTime<Utc>,
    /// The tenant the row belongs to.
    pub tenant: Uuid,
    /// The user who writes it (none for a service client or the server itself).
    pub user: Option<Uuid>,
}

/// What generated code says about an entity.
pub trait Resource: Send + Sync + 'static {
    /// What a client reads.
    type Model: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The primary key.
    type Key: FromStr + ToSql + Display + Send + Sync + 'static;
    /// The table.
    const TABLE: &'static TableMeta;
    /// The permissions of its routes.
    const ACCESS: &'static Access;
    /// The statements, made once from `TABLE`.
    fn statements() -> &'static Statements;
    /// The collection's path, as in `/api/crm/deals`.
    const COLLECTION: &'static str;
    /// Reads a row in `TABLE.columns` order.
    fn read(row: &Row) -> Result<Self::Model, DbError>;
    /// The key of a row, as it appears in its URL.
    fn key(model: &Self::Model) -> String;
    /// The version of a row: its `ETag`.
    fn version(model: &Self::Model) -> i64;
}

/// What generated code says about an entity the API writes (every entity but a `read-only`
/// one): only these have create, update and delete routes and repository functions.
pub trait Writable: Resource {
    /// What a client sends to create one, and what a merged patch becomes.
    type Create: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The members a client may send.
    const WRITABLE: &'static [&'static str];
    /// The parameters of `SQL.insert`.
    fn insert_params(input: &Self::Create, stamp: &Stamp) -> Vec<SqlValue>;
    /// The parameters of `SQL.update` before the key and the version.
    fn update_params(input: &Self::Create, stamp: &Stamp) -> Vec<SqlValue>;
    /// The entity's validators.
    fn validators() -> Result<&'static EntityValidators, &'static SchemaError>;
}

/// The service hooks around an entity's writes, each run in the write's transaction.
pub trait Hooks<R: Writable>: Send + Sync + 'static {
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

fn validators<R: Writable>() -> Result<&'static EntityValidators, DbError> {
    R::validators().map_err(|error| DbError::Internal(error.to_string()))
}

fn problem<R: Resource>(error: DbError) -> Problem {
    error.into_problem(R::TABLE)
}

fn missing<R: Resource>(key: &R::Key) -> Problem {
    Problem::not_found(format!("no {} has the id `{key}`", R::TABLE.entity))
}

/// The stamp of a write through `db`: its caller's tenant and user. A transaction begun for no
/// caller may not touch tenant data.
fn stamp<R: Resource>(db: &impl Executor) -> Result<Stamp, DbError> {
    let principal = db.principal().ok_or_else(|| {
        DbError::Internal(format!(
            "{} rows are read and written for a caller: begin the transaction with Db::begin",
            R::TABLE.entity
        ))
    })?;
    Ok(Stamp {
        now: crate::db::now(),
        tenant: principal.tenant,
        user: principal.user,
    })
}

/// The tenant parameter of a statement of `R`'s table, if it is tenant-scoped.
fn tenant_param<R: Resource>(stamp: &Stamp) -> Option<SqlValue> {
    R::TABLE.tenant.map(|_| SqlValue::Uuid(stamp.tenant))
}

/// Whether the caller of `db` may see `row`: not a row of another tenant in a shared table whose
/// rows name their tenant (unless a platform operator), and not another user's in a table whose
/// rows belong to their owner (unless granted every row).
fn visible<R: Resource>(db: &impl Executor, row: &Row) -> Result<bool, DbError> {
    let Some(principal) = db.principal() else {
        return Ok(false);
    };
    if let Some(member) = R::TABLE.tenant_member {
        let tenant: Option<Uuid> = row.opt(member)?;
        if !principal.operator && tenant.is_some_and(|t| t != principal.tenant) {
            return Ok(false);
        }
    }
    let Some(owner) = R::TABLE.owner else {
        return Ok(true);
    };
    if R::ACCESS.all_rows.is_some_and(|all| principal.allows(all)) {
        return Ok(true);
    }
    let owned_by: Option<Uuid> = row.opt(owner)?;
    Ok(owned_by.is_some() && owned_by == principal.user)
}

/// Refuses a row whose references name rows of another tenant (or none): the database's
/// foreign key cannot see tenants, so a forged id would otherwise link across them.
async fn check_references<R: Resource>(
    db: &mut impl Executor,
    stamp: &Stamp,
    row: &serde_json::Value,
    before: Option<&serde_json::Value>,
) -> Result<(), DbError> {
    for fk in R::TABLE.foreign_keys.iter().filter(|fk| fk.tenant) {
        let Some((_, column)) = R::TABLE
            .columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.column == fk.column)
        else {
            continue;
        };
        let value = row.get(column.field).unwrap_or(&serde_json::Value::Null);
        if value.is_null() || before.and_then(|b| b.get(column.field)) == Some(value) {
            continue;
        }
        let Some(key) = SqlValue::from_json(column.kind, value) else {
            continue;
        };
        let sql = format!(
            "SELECT 1 FROM {} WHERE {} = {} AND \"tenant_id\" = {}",
            crate::meta::quote(fk.table),
            crate::meta::quote(fk.target),
            db.dialect().placeholder(1),
            db.dialect().placeholder(2)
        );
        if db.dialect() == Dialect::Postgres {
            // Checked in the database, in the flight of the write it guards: a miss fails the
            // transaction with the column's name (`DbError::into_problem` words it).
            let guard = format!("SELECT prefiq_check(EXISTS ({sql}), $3)");
            db.defer(
                Sql::built(guard),
                vec![
                    key,
                    SqlValue::Uuid(stamp.tenant),
                    SqlValue::Text(fk.column.to_owned()),
                ],
            )
            .await?;
            continue;
        }
        let found = db
            .fetch_optional(Sql::built(sql), vec![key, SqlValue::Uuid(stamp.tenant)])
            .await?;
        if found.is_none() {
            // The same answer as the database's foreign key gives: a row of another tenant is
            // no row at all.
            let problem = Problem::conflict(format!(
                "`{}` must name an existing {}, and a row that others refer to cannot be deleted",
                column.field, fk.entity
            ))
            .with_errors(vec![crate::problem::FieldError {
                pointer: format!("/{}", column.field),
                detail: format!("no such {}, or it is still referenced", fk.entity),
                keyword: Some("references".into()),
            }]);
            return Err(DbError::Refused(Box::new(problem)));
        }
    }
    Ok(())
}

/// Gives every decimal its column's scale (`1.1` → `1.10`), so both databases store and return
/// the same canonical text. `columns` are the columns `params` bind, in order.
fn canonical<'a>(
    columns: impl Iterator<Item = &'a crate::meta::ColumnMeta>,
    params: &mut [SqlValue],
) {
    for (column, param) in columns.zip(params.iter_mut()) {
        if let (Some(scale), SqlValue::Decimal(value)) = (column.scale, &mut *param) {
            value.rescale(scale);
        }
    }
}

fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, DbError> {
    serde_json::to_value(value).map_err(|e| DbError::Internal(e.to_string()))
}

/// The tenant a row of a shared table names (`x-prefiq.tenant-member`), from its JSON: `None` for
/// a table without one or a row of the platform (null).
fn member_tenant<R: Resource>(row: &serde_json::Value) -> Option<Uuid> {
    let column = &R::TABLE.columns[R::TABLE.tenant_member?];
    row.get(column.field)?.as_str()?.parse().ok()
}

/// Whether [`check_member`] has anything to check for `principal`'s writes to `R`: a shared
/// table whose rows name their tenant, written by someone who is not a platform operator.
fn member_checked<R: Resource>(principal: &Principal) -> bool {
    !principal.operator && R::TABLE.tenant_member.is_some()
}

/// Refuses a write by a caller who is not a platform operator to a row of a shared table that
/// is not its own tenant's, before (`before`) or after (`after`) the write.
fn check_member<R: Resource>(
    principal: &Principal,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), DbError> {
    if !member_checked::<R>(principal) {
        return Ok(());
    }
    let own = |row: Option<&serde_json::Value>| {
        row.is_none_or(|row| member_tenant::<R>(row) == Some(principal.tenant))
    };
    if own(before) && own(after) {
        return Ok(());
    }
    let field = R::TABLE.columns[R::TABLE.tenant_member.unwrap_or_default()].field;
    Err(DbError::Refused(Box::new(
        Problem::forbidden(format!(
            "a {} of another tenant, or of the platform, is a platform operator's to write: yours may only name your own tenant in `{field}`",
            R::TABLE.entity
        ))
        .with_errors(vec![crate::problem::FieldError {
            pointer: format!("/{field}"),
            detail: "must be your own tenant".into(),
            keyword: Some("scope".into()),
        }]),
    )))
}

/// The 403 when a caller who is not a platform operator changes a member only platform
/// operators set (`x-prefiq: {scope: platform}`): `wanted` is what the write would store,
/// `kept` what the member holds without the caller's say (its default, or its current value).
fn check_platform_members<R: Resource>(
    principal: &Principal,
    wanted: &serde_json::Value,
    kept: &serde_json::Value,
) -> Result<(), Problem> {
    if principal.operator {
        return Ok(());
    }
    let null = serde_json::Value::Null;
    let changed: Vec<crate::problem::FieldError> = R::TABLE
        .columns
        .iter()
        .filter(|c| c.platform)
        .filter(|c| wanted.get(c.field).unwrap_or(&null) != kept.get(c.field).unwrap_or(&null))
        .map(|c| crate::problem::FieldError {
            pointer: format!("/{}", c.field),
            detail: "only a platform operator may set this".into(),
            keyword: Some("scope".into()),
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Problem::forbidden(format!(
        "only a platform operator may set {} of a {}",
        changed
            .iter()
            .map(|e| format!("`{}`", e.pointer.trim_start_matches('/')))
            .collect::<Vec<_>>()
            .join(", "),
        R::TABLE.entity
    ))
    .with_errors(changed))
}

async fn audit<R: Writable>(
    db: &mut impl Executor,
    action: Action,
    key: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), DbError> {
    let secret = |member: &str| {
        R::TABLE
            .columns
            .iter()
            .any(|c| c.field == member && c.secret)
    };
    let changes = crate::audit::changes(before, after, R::WRITABLE, secret);
    // A platform operator's write to a row of another tenant (a shared table whose rows name
    // their tenant) is written to that tenant's log as well, so the tenant sees what was done
    // to it.
    let caller = db.principal().map(|p| p.tenant);
    let mut tenants: Vec<Uuid> = [before, after]
        .into_iter()
        .flatten()
        .filter_map(member_tenant::<R>)
        .filter(|t| Some(*t) != caller)
        .collect();
    tenants.sort();
    tenants.dedup();
    for tenant in &tenants {
        crate::audit::record_in(db, *tenant, R::TABLE, action, key, changes.clone()).await?;
    }
    crate::audit::record(db, R::TABLE, action, key, changes).await?;
    publish::<R>(db, action, key, before, after, tenants.first().copied()).await
}

/// Publishes the entity's event of `action` (`<app>.<entity>.created`, `.updated`,
/// `.deleted`) in the write's transaction, with the row before and after it, its secret members
/// left out; under the tenant the row names when that is not the caller's.
async fn publish<R: Writable>(
    db: &mut impl Executor,
    action: Action,
    key: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
    tenant: Option<Uuid>,
) -> Result<(), DbError> {
    let shown = |row: &serde_json::Value| {
        let mut row = row.clone();
        if let Some(members) = row.as_object_mut() {
            for column in R::TABLE.columns.iter().filter(|c| c.secret) {
                members.remove(column.field);
            }
        }
        row
    };
    let mut data = serde_json::Map::new();
    data.insert("id".into(), serde_json::Value::String(key.to_owned()));
    if let Some(before) = before {
        data.insert("before".into(), shown(before));
    }
    if let Some(after) = after {
        data.insert("after".into(), shown(after));
    }
    let verb = match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
    };
    let event_type = crate::events::entity_event_type(R::TABLE.app, R::TABLE.entity, verb);
    crate::events::publish_raw(
        db,
        R::TABLE.app,
        tenant,
        &event_type,
        Some(key),
        serde_json::Value::Object(data),
    )
    .await
    .map(drop)
}

/// A row being written: the row it will be (what the hooks after the write see), and, when it
/// is not read back yet, the way to what the database returns once the transaction commits.
pub struct Writing<R: Resource> {
    /// The row as written.
    pub row: R::Model,
    returned: Option<Deferred>,
}

impl<R: Resource> Writing<R> {
    /// The row as the database returned it, once its flight came back (after the commit); the
    /// row as written when it was read back at once.
    pub fn returned(self, db: &mut impl Executor) -> Result<R::Model, DbError> {
        let Some(deferred) = self.returned else {
            return Ok(self.row);
        };
        let rows = db
            .answer(deferred)
            .ok_or_else(|| DbError::Internal("a write was sent but not answered".into()))?;
        let row = rows
            .first()
            .ok_or_else(|| DbError::Internal("a write returned no row".into()))?;
        R::read(row)
    }
}

/// What a write stores, as JSON: turned into JSON once, and read by the stored-row check, the
/// tenant checks and the reference checks.
struct Stored {
    value: serde_json::Value,
    /// Whether `value` is known to pass the stored-row check already (the handler checked
    /// exactly this JSON, and no hook changed it).
    checked: bool,
}

impl Stored {
    /// `input`, not checked yet.
    fn of(input: &impl Serialize) -> Result<Stored, DbError> {
        Ok(Stored {
            value: json(input)?,
            checked: false,
        })
    }

    /// Its JSON, once the stored-row check passed: whoever built the row (a handler, a hook, a
    /// service), a row that breaks its schema or its rules is never stored.
    fn checked(self, validators: &EntityValidators) -> Result<serde_json::Value, DbError> {
        if !self.checked {
            validators.replace.check_stored(&self.value)?;
        }
        Ok(self.value)
    }
}

/// The row `params` (bound to `columns`, in order) make, over `base`: none when some column
/// gets its value from the database alone (an identity key), whose row can only be read back.
fn predict<'a, R: Resource>(
    columns: impl Iterator<Item = &'a crate::meta::ColumnMeta>,
    params: &[SqlValue],
    mut base: serde_json::Map<String, serde_json::Value>,
) -> Option<R::Model> {
    if R::TABLE.columns.iter().any(|c| c.written == Written::Never) {
        return None;
    }
    for (column, param) in columns.zip(params) {
        if !column.field.is_empty() {
            base.insert(column.field.to_owned(), param.to_json());
        }
    }
    serde_json::from_value(serde_json::Value::Object(base)).ok()
}

/// Inserts a row for the transaction's caller, after checking it against the schema, and
/// appends its audit entry.
pub async fn insert<R: Writable>(
    db: &mut impl Executor,
    input: &R::Create,
) -> Result<R::Model, DbError> {
    let (sql, params) = prepare_insert::<R>(db, input, Stored::of(input)?).await?;
    let row = R::read(&db.fetch_one(sql, params).await?)?;
    audit::<R>(db, Action::Create, &R::key(&row), None, Some(&json(&row)?)).await?;
    Ok(row)
}

/// Inserts like [`insert`], without waiting for the row: on PostgreSQL the insert and its audit
/// entry go with the commit, and the row the statement will write is known before (when no
/// column gets its value from the database alone). A generated create takes one round trip.
pub async fn insert_later<R: Writable>(
    db: &mut impl Executor,
    input: &R::Create,
) -> Result<Writing<R>, DbError> {
    let (sql, params) = prepare_insert::<R>(db, input, Stored::of(input)?).await?;
    let written = R::TABLE
        .columns
        .iter()
        .filter(|c| c.written != Written::Never);
    let predicted = match db.dialect() {
        Dialect::Postgres => predict::<R>(written, &params, serde_json::Map::new()),
        Dialect::Sqlite => None,
    };
    let Some(row) = predicted else {
        let row = R::read(&db.fetch_one(sql, params).await?)?;
        audit::<R>(db, Action::Create, &R::key(&row), None, Some(&json(&row)?)).await?;
        return Ok(Writing {
            row,
            returned: None,
        });
    };
    let returned = db.defer(sql, params).await?;
    audit::<R>(db, Action::Create, &R::key(&row), None, Some(&json(&row)?)).await?;
    Ok(Writing {
        row,
        returned: Some(returned),
    })
}

/// Checks an insert (the schema, the tenant, the references) and makes its statement.
async fn prepare_insert<R: Writable>(
    db: &mut impl Executor,
    input: &R::Create,
    written: Stored,
) -> Result<(Sql, Vec<SqlValue>), DbError> {
    let written = written.checked(validators::<R>()?)?;
    let stamp = stamp::<R>(db)?;
    if let Some(principal) = db.principal() {
        check_member::<R>(principal, None, Some(&written))?;
    }
    check_references::<R>(db, &stamp, &written, None).await?;
    let mut params = R::insert_params(input, &stamp);
    canonical(
        R::TABLE
            .columns
            .iter()
            .filter(|c| c.written != Written::Never),
        &mut params,
    );
    let sql = db.pick(&R::statements().insert[0], &R::statements().insert[1]);
    Ok((sql, params))
}

async fn select<R: Resource>(
    db: &mut impl Executor,
    key: &R::Key,
    statement: &'static [String; 2],
) -> Result<Option<R::Model>, DbError> {
    let stamp = stamp::<R>(db)?;
    let mut params = vec![key.to_sql()];
    params.extend(tenant_param::<R>(&stamp));
    let sql = db.pick(&statement[0], &statement[1]);
    match db.fetch_optional(sql, params).await? {
        Some(row) if visible::<R>(db, &row)? => R::read(&row).map(Some),
        _ => Ok(None),
    }
}

/// Finds a row of the caller's tenant by key.
pub async fn find<R: Resource>(
    db: &mut impl Executor,
    key: &R::Key,
) -> Result<Option<R::Model>, DbError> {
    select::<R>(db, key, &R::statements().select).await
}

/// Finds a row of the caller's tenant by key and keeps anyone else from changing it until the
/// transaction ends.
pub async fn find_for_update<R: Resource>(
    db: &mut impl Executor,
    key: &R::Key,
) -> Result<Option<R::Model>, DbError> {
    select::<R>(db, key, &R::statements().select_for_update).await
}

/// Writes `input` over the row if it is still at `version`, after checking it against the
/// schema, and appends the audit entry; `None` if the row moved on or is gone. `current` is
/// the row as the caller read it.
pub async fn update<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
    input: &R::Create,
) -> Result<Option<R::Model>, DbError> {
    let (sql, params, before) =
        prepare_update::<R>(db, current, json(current)?, input, Stored::of(input)?).await?;
    let Some(row) = db.fetch_optional(sql, params).await? else {
        return Ok(None);
    };
    let row = R::read(&row)?;
    audit::<R>(
        db,
        Action::Update,
        &R::key(&row),
        Some(&before),
        Some(&json(&row)?),
    )
    .await?;
    Ok(Some(row))
}

/// Updates like [`update`], without waiting for the row, for a `current` row locked for the
/// transaction ([`find_for_update`]), which nobody else can move on: on PostgreSQL the update
/// and its audit entry go with the commit, and the row it writes is known before.
pub async fn update_later<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
    input: &R::Create,
) -> Result<Writing<R>, DbError> {
    update_written::<R>(db, current, json(current)?, input, Stored::of(input)?).await
}

/// [`update_later`] with the current row and the input already turned into JSON.
async fn update_written<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
    before: serde_json::Value,
    input: &R::Create,
    written: Stored,
) -> Result<Writing<R>, DbError> {
    let (sql, params, before) = prepare_update::<R>(db, current, before, input, written).await?;
    let predicted = match (db.dialect(), before.as_object()) {
        (Dialect::Postgres, Some(base)) => {
            let mut base = base.clone();
            let version = R::TABLE.columns[R::TABLE.version].field;
            base.insert(version.to_owned(), (R::version(current) + 1).into());
            let always = R::TABLE
                .columns
                .iter()
                .filter(|c| c.written == Written::Always);
            predict::<R>(always, &params, base)
        }
        _ => None,
    };
    let Some(row) = predicted else {
        let row = db
            .fetch_optional(sql, params)
            .await?
            .ok_or_else(|| DbError::Refused(Box::new(crate::patch::contended())))?;
        let row = R::read(&row)?;
        audit::<R>(
            db,
            Action::Update,
            &R::key(&row),
            Some(&before),
            Some(&json(&row)?),
        )
        .await?;
        return Ok(Writing {
            row,
            returned: None,
        });
    };
    let returned = db.defer(sql, params).await?;
    audit::<R>(
        db,
        Action::Update,
        &R::key(&row),
        Some(&before),
        Some(&json(&row)?),
    )
    .await?;
    Ok(Writing {
        row,
        returned: Some(returned),
    })
}

/// Checks an update (the schema, the tenant, the members only operators set, the references)
/// and makes its statement; with the row before (`current` as JSON).
async fn prepare_update<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
    before: serde_json::Value,
    input: &R::Create,
    written: Stored,
) -> Result<(Sql, Vec<SqlValue>, serde_json::Value), DbError> {
    let written = written.checked(validators::<R>()?)?;
    let stamp = stamp::<R>(db)?;
    if let Some(principal) = db.principal() {
        check_member::<R>(principal, Some(&before), Some(&written))?;
        check_platform_members::<R>(principal, &written, &before)
            .map_err(|p| DbError::Refused(Box::new(p)))?;
    }
    check_references::<R>(db, &stamp, &written, Some(&before)).await?;
    let key: R::Key = R::key(current)
        .parse()
        .map_err(|_| DbError::Internal("a row's key does not parse".into()))?;
    let mut params = R::update_params(input, &stamp);
    canonical(
        R::TABLE
            .columns
            .iter()
            .filter(|c| c.written == Written::Always),
        &mut params,
    );
    params.push(key.to_sql());
    params.push(SqlValue::Int(R::version(current)));
    params.extend(tenant_param::<R>(&stamp));
    let sql = db.pick(&R::statements().update[0], &R::statements().update[1]);
    Ok((sql, params, before))
}

/// Deletes the row if it is still at `current`'s version, and appends the audit entry;
/// whether it did.
pub async fn delete<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
) -> Result<bool, DbError> {
    let (sql, params) = prepare_delete::<R>(db, current).await?;
    if db.execute(sql, params).await? != 1 {
        return Ok(false);
    }
    audit_delete::<R>(db, current).await?;
    Ok(true)
}

/// Deletes like [`delete`] a `current` row locked for the transaction ([`find_for_update`]),
/// without waiting: on PostgreSQL the delete and its audit entry go with the commit (the rows
/// that refer to it are still looked up first).
pub async fn delete_later<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
) -> Result<(), DbError> {
    let (sql, params) = prepare_delete::<R>(db, current).await?;
    db.defer(sql, params).await?;
    audit_delete::<R>(db, current).await
}

/// Checks a deletion of `current` (the tenant), does what the rows that refer to it need, and
/// makes its statement.
async fn prepare_delete<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
) -> Result<(Sql, Vec<SqlValue>), DbError> {
    let stamp = stamp::<R>(db)?;
    if let Some(principal) = db.principal() {
        check_member::<R>(principal, Some(&json(current)?), None)?;
    }
    let key: R::Key = R::key(current)
        .parse()
        .map_err(|_| DbError::Internal("a row's key does not parse".into()))?;
    remove_referrers(db, R::TABLE, key.to_sql(), &stamp).await?;
    let mut params = vec![key.to_sql(), SqlValue::Int(R::version(current))];
    params.extend(tenant_param::<R>(&stamp));
    let sql = db.pick(&R::statements().delete[0], &R::statements().delete[1]);
    Ok((sql, params))
}

async fn audit_delete<R: Writable>(
    db: &mut impl Executor,
    current: &R::Model,
) -> Result<(), DbError> {
    let before = json(current)?;
    audit::<R>(db, Action::Delete, &R::key(current), Some(&before), None).await
}

/// Does for the rows that refer to the row `key` of `table` what their `on-delete` says, before
/// that row is deleted: `set-null` clears the reference and moves the referrer's version and
/// `updated_at`; `cascade` deletes the referrer, after doing the same for the rows that refer to
/// it, and appends an audit entry for each row it deletes. The database's own clauses stay as a
/// backstop; after this they find nothing left to do.
async fn remove_referrers(
    db: &mut impl Executor,
    table: &'static TableMeta,
    key: SqlValue,
    stamp: &Stamp,
) -> Result<(), DbError> {
    use crate::meta::OnDelete;
    // Depth first, without recursion: the rows whose referrers are still to be seen, and the
    // rows to delete, deepest last in discovery order (so deleted first).
    let mut pending = vec![(table, key)];
    let mut doomed: Vec<(&'static crate::meta::ReferrerMeta, Row)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while let Some((table, key)) = pending.pop() {
        for referrer in table.referrers {
            let d = db.dialect();
            let mut values = vec![key.clone()];
            let mut filter = format!("{} = {}", quote(referrer.column), d.placeholder(1));
            if referrer.tenant {
                values.push(SqlValue::Uuid(stamp.tenant));
                filter.push_str(&format!(
                    " AND \"tenant_id\" = {}",
                    d.placeholder(values.len())
                ));
            }
            match referrer.on_delete {
                OnDelete::SetNull => {
                    let mut sets = vec![
                        format!("{} = NULL", quote(referrer.column)),
                        format!("{v} = {v} + 1", v = quote(referrer.version)),
                    ];
                    if let Some(updated) = referrer.updated_at {
                        values.push(SqlValue::DateTime(stamp.now));
                        sets.push(format!(
                            "{} = {}",
                            quote(updated),
                            d.placeholder(values.len())
                        ));
                    }
                    let sql = format!(
                        "UPDATE {} SET {} WHERE {filter}",
                        quote(referrer.table),
                        sets.join(", ")
                    );
                    // Its answer is not needed: it goes with the next flight.
                    db.defer(Sql::built(sql), values).await?;
                }
                OnDelete::Cascade => {
                    let meta = referrer.meta;
                    let columns: Vec<String> =
                        meta.columns.iter().map(|c| quote(c.column)).collect();
                    let sql = format!(
                        "SELECT {} FROM {} WHERE {filter}",
                        columns.join(", "),
                        quote(referrer.table)
                    );
                    for row in db.fetch_all(Sql::built(sql), values).await? {
                        let child = row_value(meta, &row, meta.primary_key)?;
                        if seen.insert((meta.table, child.to_string())) {
                            pending.push((
                                meta,
                                SqlValue::from_json(meta.columns[meta.primary_key].kind, &child)
                                    .ok_or_else(|| {
                                        DbError::Internal("a row's key does not bind".into())
                                    })?,
                            ));
                            doomed.push((referrer, row));
                        }
                    }
                }
            }
        }
    }
    for (referrer, row) in doomed.into_iter().rev() {
        let meta = referrer.meta;
        let before = row_json(meta, &row)?;
        let child = row_value(meta, &row, meta.primary_key)?;
        let d = db.dialect();
        let mut values = vec![
            SqlValue::from_json(meta.columns[meta.primary_key].kind, &child)
                .ok_or_else(|| DbError::Internal("a row's key does not bind".into()))?,
        ];
        let mut sql = format!(
            "DELETE FROM {} WHERE {} = {}",
            quote(meta.table),
            quote(meta.columns[meta.primary_key].column),
            d.placeholder(1)
        );
        if referrer.tenant {
            values.push(SqlValue::Uuid(stamp.tenant));
            sql.push_str(&format!(
                " AND \"tenant_id\" = {}",
                d.placeholder(values.len())
            ));
        }
        if db.execute(Sql::built(sql), values).await? == 0 {
            continue;
        }
        let secret = |member: &str| meta.columns.iter().any(|c| c.field == member && c.secret);
        let changes = crate::audit::changes(Some(&before), None, referrer.writable, secret);
        let key = match &child {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        crate::audit::record(db, meta, Action::Delete, &key, changes).await?;
    }
    Ok(())
}

/// The value of column `index` of a row selected with every column of `meta`, as JSON.
fn row_value(meta: &TableMeta, row: &Row, index: usize) -> Result<serde_json::Value, DbError> {
    use crate::meta::ColumnKind;
    use serde_json::Value;
    fn json<T: Serialize>(value: Option<T>) -> Value {
        value.map_or(Value::Null, |v| {
            serde_json::to_value(v).unwrap_or(Value::Null)
        })
    }
    Ok(match meta.columns[index].kind {
        ColumnKind::Bool => json(row.opt::<bool>(index)?),
        ColumnKind::Int32 => json(row.opt::<i32>(index)?),
        ColumnKind::Int => json(row.opt::<i64>(index)?),
        ColumnKind::Float => json(row.opt::<f64>(index)?),
        ColumnKind::Text => json(row.opt::<String>(index)?),
        ColumnKind::Uuid => json(row.opt::<Uuid>(index)?),
        ColumnKind::Date => json(row.opt::<chrono::NaiveDate>(index)?),
        ColumnKind::DateTime => json(row.opt::<DateTime<Utc>>(index)?),
        ColumnKind::Decimal => json(
            row.opt::<rust_decimal::Decimal>(index)?
                .map(|d| d.to_string()),
        ),
        ColumnKind::Json => row.opt_json::<Value>(index)?.unwrap_or(Value::Null),
    })
}

/// A row selected with every column of `meta`, as the JSON object of its members.
fn row_json(meta: &TableMeta, row: &Row) -> Result<serde_json::Value, DbError> {
    let mut object = serde_json::Map::new();
    for (index, column) in meta.columns.iter().enumerate() {
        object.insert(column.field.to_owned(), row_value(meta, row, index)?);
    }
    Ok(serde_json::Value::Object(object))
}

/// A page of the rows of the caller's tenant (and, where rows belong to their owner, of the
/// caller's own rows unless granted every row) that `query` selects.
pub async fn list<R: Resource>(
    db: &mut impl Executor,
    mut query: ListQuery,
) -> Result<Page<R::Model>, DbError> {
    let stamp = stamp::<R>(db)?;
    if let Some(tenant) = R::TABLE.tenant {
        query.restrict(tenant, SqlValue::Uuid(stamp.tenant));
    }
    if let Some(member) = R::TABLE.tenant_member {
        if !db.principal().is_some_and(|p| p.operator) {
            query.restrict_or_null(member, SqlValue::Uuid(stamp.tenant));
        }
    }
    if let Some(owner) = R::TABLE.owner {
        let everyone = db
            .principal()
            .zip(R::ACCESS.all_rows)
            .is_some_and(|(p, all)| p.allows(all));
        if !everyone {
            // No user, no rows: `nil` is nobody's id.
            query.restrict(owner, SqlValue::Uuid(stamp.user.unwrap_or(Uuid::nil())));
        }
    }
    query.run(db, R::TABLE, R::read).await
}

/// A create body of a shared table whose rows name their tenant, with the caller's tenant in
/// that member when it left the member out (or null) and is not a platform operator: a tenant
/// writes only its own rows, so that is the only row it can mean.
fn own_tenant<R: Resource>(
    principal: &Principal,
    mut body: serde_json::Value,
) -> serde_json::Value {
    let Some(member) = R::TABLE.tenant_member else {
        return body;
    };
    if principal.operator {
        return body;
    }
    let field = R::TABLE.columns[member].field;
    if let Some(object) = body.as_object_mut() {
        if object.get(field).is_none_or(serde_json::Value::is_null) {
            object.insert(field.to_owned(), principal.tenant.to_string().into());
        }
    }
    body
}

fn key<R: Resource>(raw: &str) -> Result<R::Key, Problem> {
    crate::http::parse_key(raw, R::TABLE.entity)
}

/// The permission of an action, or a 405 for one the entity does not offer: its route does not
/// exist, so only a hand-written route to the handler reaches this, and it is refused.
fn offered(permission: Option<&'static str>) -> Result<&'static str, Problem> {
    permission.ok_or_else(not_offered_problem)
}

fn not_offered_problem() -> Problem {
    Problem::method_not_allowed().with_detail("this entity does not offer this action")
}

/// `GET` on the collection.
pub async fn list_handler<R: Resource, S: Send + Sync + 'static>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Page<R::Model>>, Problem> {
    ctx.require(offered(R::ACCESS.read)?)?;
    let query = ListQuery::parse(R::TABLE, &pairs)?;
    let mut tx = state.db.begin_read(&ctx.principal).await?;
    let page = list::<R>(&mut tx, query).await.map_err(problem::<R>)?;
    tx.end_read();
    Ok(Json(page))
}

/// `POST` on the collection: the hooks and the insert share one transaction.
pub async fn create_handler<R: Writable, S: Hooks<R>>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    JsonBody(body): JsonBody,
) -> Result<Created<R::Model>, Problem> {
    ctx.require_in(R::ACCESS.writes, offered(R::ACCESS.create)?)?;
    validators::<R>()
        .map_err(Problem::from)?
        .create
        .check(&body)?;
    let mut body = own_tenant::<R>(&ctx.principal, body);
    let mut input: R::Create = crate::validate::decode_kept(&mut body)?;
    // A row of another tenant is refused before the service sees it.
    if member_checked::<R>(&ctx.principal) {
        let written = json(&input).map_err(problem::<R>)?;
        check_member::<R>(&ctx.principal, None, Some(&written)).map_err(problem::<R>)?;
    }
    if !ctx.principal.operator && R::TABLE.columns.iter().any(|c| c.platform) {
        // What the row would hold had the caller left the operators' members out.
        let mut unset = body;
        if let Some(object) = unset.as_object_mut() {
            for column in R::TABLE.columns.iter().filter(|c| c.platform) {
                object.remove(column.field);
            }
        }
        let kept: R::Create = crate::validate::decode(unset)?;
        check_platform_members::<R>(
            &ctx.principal,
            &json(&input).map_err(problem::<R>)?,
            &json(&kept).map_err(problem::<R>)?,
        )?;
    }
    let mut tx = state.db.begin(&ctx.principal).await?;
    state
        .service
        .before_create(&ctx, &mut tx, &mut input)
        .await?;
    // The insert and its audit entry go with the commit: one round trip when the hooks send
    // nothing of their own.
    let writing = insert_later::<R>(&mut tx, &input)
        .await
        .map_err(problem::<R>)?;
    state
        .service
        .after_create(&ctx, &mut tx, &writing.row)
        .await?;
    tx.commit_keeping().await.map_err(problem::<R>)?;
    let row = writing.returned(&mut tx).map_err(problem::<R>)?;
    Ok(Created {
        location: format!("{}/{}", R::COLLECTION, R::key(&row)),
        version: R::version(&row),
        body: row,
    })
}

/// `GET` on an item.
pub async fn get_handler<R: Resource, S: Send + Sync + 'static>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    PathKey(raw): PathKey,
) -> Result<Tagged<R::Model>, Problem> {
    ctx.require(offered(R::ACCESS.read)?)?;
    let key = key::<R>(&raw)?;
    let mut tx = state.db.begin_read(&ctx.principal).await?;
    let row = find::<R>(&mut tx, &key)
        .await
        .map_err(problem::<R>)?
        .ok_or_else(|| missing::<R>(&key))?;
    tx.end_read();
    Ok(Tagged {
        version: R::version(&row),
        body: row,
    })
}

/// The row `key`, locked for the transaction, if the caller may change it, and the row as JSON:
/// a 404 when it sees no such row, a 403 when it may read it but not write it (the platform's
/// row of a shared table, which PostgreSQL's row-level security does not even lock for it), on
/// both databases.
async fn writable_row<R: Writable>(
    tx: &mut Tx,
    principal: &Principal,
    key: &R::Key,
) -> Result<(R::Model, serde_json::Value), Problem> {
    let locked = find_for_update::<R>(tx, key).await.map_err(problem::<R>)?;
    let row = match locked {
        Some(row) => row,
        None if R::TABLE.tenant_member.is_some() => {
            let readable = find::<R>(tx, key).await.map_err(problem::<R>)?;
            readable.ok_or_else(|| missing::<R>(key))?
        }
        None => return Err(missing::<R>(key)),
    };
    let before = json(&row).map_err(problem::<R>)?;
    check_member::<R>(principal, Some(&before), None).map_err(problem::<R>)?;
    Ok((row, before))
}

/// `PATCH` on an item: a JSON merge patch, applied to the row locked for the transaction.
pub async fn update_handler<R: Writable, S: Hooks<R>>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    PathKey(raw): PathKey,
    precondition: IfMatch,
    JsonBody(patch): JsonBody,
) -> Result<Tagged<R::Model>, Problem> {
    ctx.require_in(R::ACCESS.writes, offered(R::ACCESS.update)?)?;
    let validators = validators::<R>().map_err(Problem::from)?;
    validators.patch.check(&patch)?;
    let key = key::<R>(&raw)?;
    let mut tx = state.db.begin(&ctx.principal).await?;
    // A row the caller may read but not write (the platform's, in a shared table) is refused
    // even when the patch would change nothing.
    let (current, before) = writable_row::<R>(&mut tx, &ctx.principal, &key).await?;
    let unchanged = crate::patch::writable_part(before.clone(), R::WRITABLE);
    let mut merged = unchanged.clone();
    crate::patch::merge_patch(&mut merged, &patch);
    crate::validate::integral(&mut merged);
    // The patch itself was checked first: a body the schema refuses is a 422 whatever the
    // precondition (RFC 9110 §13.2.1). Then the precondition, and only then what the patch
    // makes of the current row: a valid patch whose result would break the schema conflicts
    // with the stored state, a 409 (RFC 5789 §2.2).
    precondition.check(R::version(&current))?;
    validators
        .replace
        .check_schema(&merged)
        .map_err(Problem::refused)?;
    // The rules of core/validation judge what the client asked for, the merged result: a
    // broken one is the client's to fix, a 422 like any other field error.
    validators.replace.check_rules(&merged)?;
    // Moving a row to another tenant, or setting what only platform operators set, is refused
    // before the service sees it.
    check_member::<R>(&ctx.principal, None, Some(&merged)).map_err(problem::<R>)?;
    check_platform_members::<R>(&ctx.principal, &merged, &unchanged)?;
    let mut input: R::Create = crate::validate::decode_kept(&mut merged)?;
    state
        .service
        .before_update(&ctx, &mut tx, &current, &mut input)
        .await?;
    let written = json(&input).map_err(problem::<R>)?;
    // A patch that changes nothing writes nothing: the version and `updated_at` stay.
    if written == unchanged {
        tx.commit().await.map_err(problem::<R>)?;
        return Ok(Tagged {
            version: R::version(&current),
            body: current,
        });
    }
    // The row is locked: the update and its audit entry go with the commit. What the hook left
    // as the patch made it was checked above.
    let checked = written == merged;
    let written = Stored {
        value: written,
        checked,
    };
    let writing = update_written::<R>(&mut tx, &current, before, &input, written)
        .await
        .map_err(problem::<R>)?;
    state
        .service
        .after_update(&ctx, &mut tx, &writing.row)
        .await?;
    tx.commit_keeping().await.map_err(problem::<R>)?;
    let row = writing.returned(&mut tx).map_err(problem::<R>)?;
    Ok(Tagged {
        version: R::version(&row),
        body: row,
    })
}

/// `DELETE` on an item.
pub async fn delete_handler<R: Writable, S: Hooks<R>>(
    State(state): State<AppState<S>>,
    ctx: RequestContext,
    PathKey(raw): PathKey,
    precondition: IfMatch,
) -> Result<NoContent, Problem> {
    ctx.require_in(R::ACCESS.writes, offered(R::ACCESS.delete)?)?;
    let key = key::<R>(&raw)?;
    let mut tx = state.db.begin(&ctx.principal).await?;
    let (current, _) = writable_row::<R>(&mut tx, &ctx.principal, &key).await?;
    precondition.check(R::version(&current))?;
    state.service.before_delete(&ctx, &mut tx, &current).await?;
    // The row is locked: the delete and its audit entry go with the commit.
    delete_later::<R>(&mut tx, &current)
        .await
        .map_err(problem::<R>)?;
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
        static COLUMNS: [ColumnMeta; 6] = [
            ColumnMeta::new("id", "id", ColumnKind::Int).database(),
            ColumnMeta::new("name", "name", ColumnKind::Text),
            ColumnMeta::new("order", "order", ColumnKind::Int),
            ColumnMeta::new("created_at", "created_at", ColumnKind::DateTime).on_insert(),
            ColumnMeta::new("version", "version", ColumnKind::Int).on_insert(),
            ColumnMeta::new("", "tenant_id", ColumnKind::Uuid).on_insert(),
        ];
        static TABLE: TableMeta = TableMeta {
            entity: "Thing",
            table: "things",
            columns: &COLUMNS,
            primary_key: 0,
            version: 4,
            uniques: &[],
            foreign_keys: &[],
            app: "lab",
            tenant: Some(5),
            tenant_member: None,
            owner: None,
            referrers: &[],
        };
        let sql = Statements::of(&TABLE);
        let all = r#""id", "name", "order", "created_at", "version", "tenant_id""#;
        assert_eq!(
            sql.insert[0],
            format!(
                r#"INSERT INTO "things" ("name", "order", "created_at", "version", "tenant_id") VALUES ($1, $2, $3, $4, $5) RETURNING {all}"#
            )
        );
        assert_eq!(
            sql.update[1],
            format!(
                r#"UPDATE "things" SET "name" = ?1, "order" = ?2, "version" = "version" + 1 WHERE "id" = ?3 AND "version" = ?4 AND "tenant_id" = ?5 RETURNING {all}"#
            )
        );
        assert_eq!(
            sql.select_for_update[0],
            format!(
                r#"SELECT {all} FROM "things" WHERE "id" = $1 AND "tenant_id" = $2 FOR UPDATE"#
            )
        );
        assert_eq!(
            sql.select_for_update[1],
            format!(r#"SELECT {all} FROM "things" WHERE "id" = ?1 AND "tenant_id" = ?2"#)
        );
        assert_eq!(
            sql.delete[1],
            r#"DELETE FROM "things" WHERE "id" = ?1 AND "version" = ?2 AND "tenant_id" = ?3"#
        );
    }
}
