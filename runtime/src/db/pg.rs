//! PostgreSQL through tokio-postgres: a pool of connections that each remember the context
//! (tenant, user, platform, schema) their session last set, and sessions that send their
//! statements pipelined, so that a request waits for the database as few times as it can.
//!
//! A [`Session`] is one checkout of a connection for one caller. Nothing is sent when it starts:
//! `BEGIN` (for a transaction, or when the context changes), the statement that sets the
//! caller's context (only when the connection's differs), every statement deferred so far and
//! the statement whose answer is awaited go in one flight, and a commit sends what is left with
//! `COMMIT` in one more. A read that is one statement is one round trip; a create whose hooks do
//! no database work is one.
//!
//! What the server's state is, is never guessed. A session knows whether its transaction is open
//! from the answer to its `BEGIN`; one dropped while a flight was on its way (a client that hung
//! up, a panic) gives its connection back only after `ROLLBACK`, or not at all when it cannot
//! tell, so no request ever starts inside another's transaction.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::str::FromStr as _;
use std::time::Duration;

use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use futures_util::TryStreamExt as _;
use rust_decimal::Decimal;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use super::{ColumnKind, DbError, PoolOptions, SqlValue};

/// How long a connection may sit idle before it is tested when taken out of the pool.
const RETEST_IDLE_AFTER: Duration = Duration::from_secs(30);

/// What a session sets for the row-level security policies and the tables it sees: as
/// `prefiq.tenant_id`, `prefiq.user_id`, `prefiq.platform` and `search_path`, for the whole
/// session (`set_config(…, false)`), so that the next caller of the same tenant sets nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Context {
    /// The tenant (none: no tenant's rows at all).
    pub tenant: Option<Uuid>,
    /// The user.
    pub user: Option<Uuid>,
    /// Whether the caller is a platform operator.
    pub platform: bool,
    /// The `search_path`, with a schema per tenant; none where it is never changed.
    pub schema: Option<String>,
}

impl Context {
    /// No caller: no tenant, no user, not the platform.
    pub(crate) fn none(schema: Option<String>) -> Context {
        Context {
            tenant: None,
            user: None,
            platform: false,
            schema,
        }
    }

    /// The statement that sets it.
    fn statement(&self) -> (Cow<'static, str>, Vec<SqlValue>) {
        let text = |v: Option<String>| SqlValue::Text(v.unwrap_or_default());
        let mut params = vec![
            text(self.tenant.map(|t| t.to_string())),
            text(self.user.map(|u| u.to_string())),
            text(self.platform.then(|| "on".to_owned())),
        ];
        let sql = match &self.schema {
            Some(schema) => {
                params.push(SqlValue::Text(schema.clone()));
                "SELECT set_config('prefiq.tenant_id', $1, false), set_config('prefiq.user_id', $2, false), \
                 set_config('prefiq.platform', $3, false), set_config('search_path', $4, false)"
            }
            None => {
                "SELECT set_config('prefiq.tenant_id', $1, false), set_config('prefiq.user_id', $2, false), \
                 set_config('prefiq.platform', $3, false)"
            }
        };
        (Cow::Borrowed(sql), params)
    }
}

/// One pooled connection.
pub struct Conn {
    client: tokio_postgres::Client,
    /// What its session last set; none when unknown.
    context: Option<Context>,
    /// The statements it has prepared, by schema path, text and parameter types: the server
    /// parses and plans each once per connection, and a request sends only its values.
    prepared: std::collections::HashMap<StatementKey, tokio_postgres::Statement>,
}

/// What a prepared statement is kept under: the `search_path` it was prepared for (with a
/// schema per tenant), its text and its parameters' types.
type StatementKey = (Option<String>, Cow<'static, str>, Vec<Type>);

/// How many statements a connection keeps prepared before it starts over.
const PREPARED_PER_CONNECTION: usize = 512;

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// The client, for what a session does not cover (migrations, their locks).
    pub(crate) fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Forgets what its session set (after statements that may have changed it).
    pub(crate) fn forget_context(&mut self) {
        self.context = None;
    }
}

/// Makes and checks connections.
pub struct Manager {
    config: tokio_postgres::Config,
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Conn, tokio_postgres::Error> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        // The connection's own task: it moves the messages, and reports what the server says
        // on the side.
        tokio::spawn(async move {
            loop {
                match futures_util::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    // Warnings are what this layer exists to prevent ("there is already a
                    // transaction in progress"); notices (a migration's "already exists,
                    // skipping") are routine.
                    Some(Ok(AsyncMessage::Notice(notice))) if notice.severity() == "WARNING" => {
                        tracing::warn!(
                            code = notice.code().code(),
                            message = notice.message(),
                            "PostgreSQL warning"
                        );
                    }
                    Some(Ok(AsyncMessage::Notice(notice))) => {
                        tracing::debug!(
                            code = notice.code().code(),
                            message = notice.message(),
                            "PostgreSQL notice"
                        );
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::debug!(%error, "a PostgreSQL connection ended");
                        break;
                    }
                    None => break,
                }
            }
        });
        Ok(Conn {
            client,
            context: Some(Context::none(None)),
            prepared: std::collections::HashMap::new(),
        })
    }

    async fn recycle(
        &self,
        conn: &mut Conn,
        metrics: &Metrics,
    ) -> RecycleResult<tokio_postgres::Error> {
        if conn.client.is_closed() {
            return Err(RecycleError::message("the connection is closed"));
        }
        // A connection idle long enough to have been dropped by a firewall or the server is
        // asked once; any other is taken as it is (a round trip saved on every request).
        if metrics.last_used() > RETEST_IDLE_AFTER {
            conn.client.check_connection().await?;
        }
        Ok(())
    }
}

/// A pool of PostgreSQL connections.
#[derive(Clone)]
pub struct Pool {
    pool: managed::Pool<Manager>,
}

impl Pool {
    /// Listens on `channel` over a connection of its own (outside the pool, as the pool's
    /// role): each notification's payload arrives on the receiver, until it is dropped or the
    /// connection is lost (the receiver then ends).
    pub(crate) async fn listen(
        &self,
        channel: &str,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<String>, DbError> {
        let (client, mut connection) = self
            .pool
            .manager()
            .config
            .connect(NoTls)
            .await
            .map_err(DbError::Postgres)?;
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        // The connection's task moves the messages; it keeps the client once it listens.
        let (keep, mut kept) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
        tokio::spawn(async move {
            let mut client = None;
            loop {
                tokio::select! {
                    given = &mut kept, if client.is_none() => match given {
                        Ok(given) => client = Some(given),
                        Err(_) => return,
                    },
                    message = futures_util::future::poll_fn(|cx| connection.poll_message(cx)) => {
                        match message {
                            Some(Ok(AsyncMessage::Notification(note))) => {
                                if sender.send(note.payload().to_owned()).is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => return,
                        }
                    }
                }
            }
        });
        let listening = format!("LISTEN \"{}\"", channel.replace('"', ""));
        client
            .batch_execute(&listening)
            .await
            .map_err(DbError::Postgres)?;
        let _ = keep.send(client);
        Ok(receiver)
    }

    /// How many connections it holds open, idle, and at most.
    pub(crate) fn usage(&self) -> super::PoolUsage {
        let status = self.pool.status();
        super::PoolUsage {
            open: status.size,
            idle: status.available,
            max: status.max_size,
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.pool.status())
            .finish()
    }
}

impl Pool {
    /// A pool for `url` (`postgres://…`), logging in as `options.login` when set, with the
    /// statement timeout given at start-up (no round trip per connection for it).
    pub(crate) async fn connect(url: &str, options: &PoolOptions) -> Result<Pool, DbError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(DbError::Postgres)?;
        if let Some(role) = options.login {
            config.user(role);
        }
        if let Some(timeout) = options.statement_timeout {
            config.options(format!("-c statement_timeout={}", timeout.as_millis()));
        }
        config.application_name("prefiq");
        let pool = managed::Pool::builder(Manager { config })
            .max_size(options.max_connections.max(1) as usize)
            // The connection used last goes out first: its statements are prepared and its
            // context is likely the next caller's; the others may idle long enough to be tested.
            .queue_mode(managed::QueueMode::Lifo)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.acquire_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Pool(e.to_string()))?;
        // Connect once now, so that a wrong URL or password fails at start-up.
        drop(pool.get().await.map_err(pool_error)?);
        Ok(Pool { pool })
    }

    /// A connection, as it is.
    pub(crate) async fn get(&self) -> Result<Object<Manager>, DbError> {
        // An idle connection is taken at once; only a caller that must wait arms the timer of
        // the wait timeout (a timer per request costs more than the rest of taking one).
        let at_once = managed::Timeouts {
            wait: Some(Duration::ZERO),
            ..self.pool.timeouts()
        };
        match self.pool.timeout_get(&at_once).await {
            Err(managed::PoolError::Timeout(managed::TimeoutType::Wait)) => {
                self.pool.get().await.map_err(pool_error)
            }
            taken => taken.map_err(pool_error),
        }
    }

    /// A session for a caller with `context`: in a transaction or not.
    pub(crate) async fn session(
        &self,
        context: Context,
        transaction: bool,
    ) -> Result<Session, DbError> {
        Ok(Session {
            conn: Some(self.get().await?),
            context,
            transaction,
            state: State::Idle,
            aborted: false,
            context_uncommitted: false,
            pending: Vec::new(),
            results: Vec::new(),
        })
    }

    /// Closes every connection.
    pub(crate) fn close(&self) {
        self.pool.close();
    }
}

fn pool_error(error: managed::PoolError<tokio_postgres::Error>) -> DbError {
    match error {
        managed::PoolError::Backend(error) => DbError::Postgres(error),
        other => DbError::Pool(other.to_string()),
    }
}

/// What the server's side of a session is, as far as its answers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No transaction open.
    Idle,
    /// Its transaction is open (maybe failed: the server then refuses all but its end).
    Open,
    /// A flight was on its way when the session was dropped: nobody knows.
    Unknown,
}

/// A statement waiting for the next flight, and whether its answer is kept for the caller.
struct Pending {
    sql: Cow<'static, str>,
    params: Vec<SqlValue>,
    ticket: Option<usize>,
}

/// The answer to one statement: its rows and how many rows it touched.
pub(crate) type Answer = (Vec<tokio_postgres::Row>, u64);

/// One caller's use of a connection: its statements, pipelined.
pub(crate) struct Session {
    conn: Option<Object<Manager>>,
    context: Context,
    transaction: bool,
    state: State,
    /// Whether a statement of the open transaction failed (the server then refuses the rest).
    aborted: bool,
    /// Whether the open transaction set the context (the connection holds it once it commits).
    context_uncommitted: bool,
    pending: Vec<Pending>,
    /// The answers of deferred statements whose answers the caller wants, by ticket.
    results: Vec<Option<Answer>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("transaction", &self.transaction)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Whether a statement is one the session itself sends (its answer is checked, not returned).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Context,
    Begin,
    Deferred(Option<usize>),
    Asked,
    End,
}

impl Session {
    /// Queues a statement for the next flight; with `keep`, its answer is kept for
    /// [`Session::answer`] under the ticket returned.
    pub(crate) fn defer(
        &mut self,
        sql: Cow<'static, str>,
        params: Vec<SqlValue>,
        keep: bool,
    ) -> Option<usize> {
        let ticket = keep.then(|| {
            self.results.push(None);
            self.results.len() - 1
        });
        self.pending.push(Pending {
            sql,
            params,
            ticket,
        });
        ticket
    }

    /// The kept answer of a deferred statement, once its flight came back.
    pub(crate) fn answer(&mut self, ticket: usize) -> Option<Answer> {
        self.results.get_mut(ticket).and_then(Option::take)
    }

    /// Sends what is queued with `sql` and returns `sql`'s answer.
    pub(crate) async fn query(
        &mut self,
        sql: Cow<'static, str>,
        params: Vec<SqlValue>,
    ) -> Result<Answer, DbError> {
        let mut answers = self.fly(Some((sql, params)), false).await?;
        Ok(answers.pop().unwrap_or_default())
    }

    /// Sends what is queued and `COMMIT` (for a transaction), in one flight.
    pub(crate) async fn commit(&mut self) -> Result<(), DbError> {
        self.fly(None, true).await.map(|_| ())
    }

    /// Ends the transaction without keeping anything of it; what is queued is dropped.
    pub(crate) async fn rollback(&mut self) -> Result<(), DbError> {
        self.pending.clear();
        if self.state != State::Open {
            return Ok(());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        self.state = State::Unknown;
        conn.client
            .batch_execute("ROLLBACK")
            .await
            .map_err(DbError::Postgres)?;
        self.state = State::Idle;
        self.aborted = false;
        self.context_uncommitted = false;
        Ok(())
    }

    /// One flight, in this order: `BEGIN` (for a transaction not begun yet, or when the context
    /// changes), the statement that sets the context (when the connection's differs), what is
    /// queued, then `asked`, and `COMMIT` (with `end`, or to close a transaction begun only for
    /// the context). The answer to `asked`, or nothing; the first error of any statement
    /// otherwise.
    ///
    /// The context is set inside a transaction, so that when it fails nothing after it runs
    /// with the connection's old one; and the connection is trusted to hold it only once that
    /// transaction committed (a rollback undoes `set_config`). When a statement of a
    /// transaction fails, the server refuses the rest and turns `COMMIT` into `ROLLBACK`: the
    /// session remembers it, and a later commit is an error, never a silent rollback.
    async fn fly(
        &mut self,
        asked: Option<(Cow<'static, str>, Vec<SqlValue>)>,
        end: bool,
    ) -> Result<Vec<Answer>, DbError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| DbError::Pool("the session's connection is gone".into()))?;
        if end && self.aborted {
            return Err(DbError::Internal(
                "the transaction failed earlier and cannot commit".into(),
            ));
        }
        let sends_something = !self.pending.is_empty() || asked.is_some();
        let sets_context = sends_something && conn.context.as_ref() != Some(&self.context);
        let begins =
            sends_something && self.state == State::Idle && (self.transaction || sets_context);
        let commits = if self.transaction {
            end && (self.state == State::Open || begins)
        } else {
            begins
        };
        let mut flight: Vec<(Cow<'static, str>, Vec<SqlValue>, Role)> = Vec::new();
        if begins {
            flight.push((Cow::Borrowed("BEGIN"), Vec::new(), Role::Begin));
        }
        if sets_context {
            let (sql, params) = self.context.statement();
            flight.push((sql, params, Role::Context));
            // Unknown until the transaction that sets it commits.
            conn.context = None;
        }
        for pending in self.pending.drain(..) {
            flight.push((pending.sql, pending.params, Role::Deferred(pending.ticket)));
        }
        if let Some((sql, params)) = asked {
            flight.push((sql, params, Role::Asked));
        }
        if commits {
            flight.push((Cow::Borrowed("COMMIT"), Vec::new(), Role::End));
        }
        if flight.is_empty() {
            return Ok(Vec::new());
        }
        // Until the answers are in, nobody knows what the server did.
        let before = self.state;
        self.state = State::Unknown;
        let statements = match prepare(conn, &self.context.schema, &flight).await {
            Ok(statements) => statements,
            Err(error) => {
                // Nothing of the flight was sent. A statement the server cannot prepare inside a
                // transaction fails that transaction.
                self.state = before;
                if before == State::Open {
                    self.aborted = true;
                }
                return Err(DbError::Postgres(error));
            }
        };
        let client = &conn.client;
        let answers = futures_util::future::join_all(flight.iter().zip(&statements).map(
            |((_, params, _), statement)| async move {
                let values = params.iter().map(|p| p as &(dyn ToSql + Sync));
                let stream = client.query_raw(statement, values).await?;
                futures_util::pin_mut!(stream);
                let mut rows = Vec::new();
                while let Some(row) = stream.try_next().await? {
                    rows.push(row);
                }
                Ok::<Answer, tokio_postgres::Error>((rows, stream.rows_affected().unwrap_or(0)))
            },
        ))
        .await;
        let mut first_error = None;
        let mut state = if begins { State::Open } else { State::Idle };
        if self.transaction && !begins {
            // Statements inside a transaction begun before.
            state = State::Open;
        }
        let mut asked_answer = None;
        let mut context_set = false;
        let mut committed = false;
        for ((_, _, role), answer) in flight.into_iter().zip(answers) {
            match (role, answer) {
                (Role::Begin, Ok(_)) => state = State::Open,
                (Role::Context, Ok(_)) => context_set = true,
                (Role::Deferred(Some(ticket)), Ok(answer)) => self.results[ticket] = Some(answer),
                (Role::Deferred(None), Ok(_)) => {}
                (Role::Asked, Ok(answer)) => asked_answer = Some(answer),
                // The transaction is over: committed, or (after an error) rolled back.
                (Role::End, Ok(_)) => {
                    state = State::Idle;
                    committed = first_error.is_none() && !self.aborted;
                }
                (Role::End, Err(error)) => {
                    // A failed COMMIT (a deferred constraint) ends the transaction too; a
                    // broken connection leaves nothing to tell.
                    state = if conn.client.is_closed() {
                        State::Unknown
                    } else {
                        State::Idle
                    };
                    first_error.get_or_insert(error);
                }
                (_, Err(error)) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if conn.client.is_closed() {
            state = State::Unknown;
        }
        if context_set {
            self.context_uncommitted = true;
        }
        if committed && self.context_uncommitted {
            conn.context = Some(self.context.clone());
        }
        if state == State::Idle {
            // A new transaction, if any, starts clean.
            self.aborted = false;
            self.context_uncommitted = false;
        } else if first_error.is_some() {
            self.aborted = true;
        }
        self.state = state;
        match first_error {
            Some(error) => Err(DbError::Postgres(error)),
            None => Ok(asked_answer.into_iter().collect()),
        }
    }
}

/// The prepared statement of each statement of `flight`, preparing (in one more flight) those
/// the connection has not prepared yet for `schema`.
async fn prepare(
    conn: &mut Conn,
    schema: &Option<String>,
    flight: &[(Cow<'static, str>, Vec<SqlValue>, Role)],
) -> Result<Vec<tokio_postgres::Statement>, tokio_postgres::Error> {
    let keys: Vec<StatementKey> = flight
        .iter()
        .map(|(sql, params, _)| {
            (
                schema.clone(),
                sql.clone(),
                params.iter().map(SqlValue::pg_type).collect(),
            )
        })
        .collect();
    let mut missing: Vec<&StatementKey> = Vec::new();
    for key in &keys {
        if !conn.prepared.contains_key(key) && !missing.contains(&key) {
            missing.push(key);
        }
    }
    if !missing.is_empty() {
        if conn.prepared.len() + missing.len() > PREPARED_PER_CONNECTION {
            conn.prepared.clear();
        }
        let client = &conn.client;
        let prepared = futures_util::future::join_all(
            missing
                .iter()
                .map(|(_, sql, types)| client.prepare_typed(sql, types)),
        )
        .await;
        for (key, statement) in missing.into_iter().zip(prepared) {
            conn.prepared.insert(key.clone(), statement?);
        }
    }
    Ok(keys.iter().map(|key| conn.prepared[key].clone()).collect())
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match self.state {
            State::Idle => drop(conn),
            // A transaction left open (an error, an early return, a request that ended before
            // committing): its connection goes back to the pool only once it is rolled back.
            State::Open => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        if conn.client.batch_execute("ROLLBACK").await.is_err() {
                            let _ = Object::take(conn);
                        }
                    });
                }
                Err(_) => {
                    let _ = Object::take(conn);
                }
            },
            // A flight was cut off half-way (a client hung up, a panic): the server may be in a
            // transaction or not. The connection is closed rather than guessed about.
            State::Unknown => {
                let _ = Object::take(conn);
            }
        }
    }
}

impl SqlValue {
    /// The PostgreSQL type it is sent as.
    fn pg_type(&self) -> Type {
        match self {
            SqlValue::Null(kind) => pg_type_of(*kind),
            SqlValue::Bool(_) => Type::BOOL,
            SqlValue::Int32(_) => Type::INT4,
            SqlValue::Int(_) => Type::INT8,
            SqlValue::Float(_) => Type::FLOAT8,
            SqlValue::Text(_) => Type::TEXT,
            SqlValue::Uuid(_) => Type::UUID,
            SqlValue::Date(_) => Type::DATE,
            SqlValue::DateTime(_) => Type::TIMESTAMPTZ,
            SqlValue::Decimal(_) => Type::NUMERIC,
            SqlValue::Json(_) => Type::JSONB,
        }
    }
}

fn pg_type_of(kind: ColumnKind) -> Type {
    match kind {
        ColumnKind::Bool => Type::BOOL,
        ColumnKind::Int32 => Type::INT4,
        ColumnKind::Int => Type::INT8,
        ColumnKind::Float => Type::FLOAT8,
        ColumnKind::Text => Type::TEXT,
        ColumnKind::Uuid => Type::UUID,
        ColumnKind::Date => Type::DATE,
        ColumnKind::DateTime => Type::TIMESTAMPTZ,
        ColumnKind::Decimal => Type::NUMERIC,
        ColumnKind::Json => Type::JSONB,
    }
}

impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            SqlValue::Null(_) => Ok(IsNull::Yes),
            SqlValue::Bool(v) => v.to_sql(ty, out),
            SqlValue::Int32(v) => v.to_sql(ty, out),
            SqlValue::Int(v) => v.to_sql(ty, out),
            SqlValue::Float(v) => v.to_sql(ty, out),
            SqlValue::Text(v) => v.to_sql(ty, out),
            SqlValue::Uuid(v) => v.to_sql(ty, out),
            SqlValue::Date(v) => v.to_sql(ty, out),
            SqlValue::DateTime(v) => v.to_sql(ty, out),
            SqlValue::Decimal(v) => v.to_sql(ty, out),
            SqlValue::Json(v) => v.to_sql(ty, out),
        }
    }

    // Each value is sent as the type `pg_type` names for it.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            SqlValue::Null(_) => Ok(IsNull::Yes),
            SqlValue::Bool(v) => v.to_sql_checked(ty, out),
            SqlValue::Int32(v) => v.to_sql_checked(ty, out),
            SqlValue::Int(v) => v.to_sql_checked(ty, out),
            SqlValue::Float(v) => v.to_sql_checked(ty, out),
            SqlValue::Text(v) => v.to_sql_checked(ty, out),
            SqlValue::Uuid(v) => v.to_sql_checked(ty, out),
            SqlValue::Date(v) => v.to_sql_checked(ty, out),
            SqlValue::DateTime(v) => v.to_sql_checked(ty, out),
            SqlValue::Decimal(v) => v.to_sql_checked(ty, out),
            SqlValue::Json(v) => v.to_sql_checked(ty, out),
        }
    }
}

/// Reads column `index` of a row, `None` for NULL.
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
) -> Result<Option<T>, DbError> {
    row.try_get::<usize, Option<T>>(index)
        .map_err(DbError::Postgres)
}

// The Rust types rows are read into, each from its PostgreSQL type.
const _: fn() = || {
    fn readable<T: for<'a> tokio_postgres::types::FromSql<'a>>() {}
    readable::<bool>();
    readable::<i32>();
    readable::<i64>();
    readable::<f64>();
    readable::<String>();
    readable::<Uuid>();
    readable::<NaiveDate>();
    readable::<DateTime<Utc>>();
    readable::<Decimal>();
    readable::<serde_json::Value>();
};
