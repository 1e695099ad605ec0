//! The migration runner: applies an app's embedded migrations in order, once each, recording
//! a checksum so that an applied migration edited afterwards is refused rather than ignored.
//!
//! Apps share one database under Cortex, so the ledger (`_prefiq_migrations`) is keyed by app.
//! Two processes starting at once are serialised by a PostgreSQL advisory lock or an SQLite
//! exclusive transaction, and each migration runs in its own transaction.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use sqlx::Row as _;

use crate::db::Db;

/// One migration for both dialects: embedded in an app binary, or read from a folder by a tool.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Its number, from the file name (`0001_initial.sql` is 1).
    pub version: i64,
    /// Its name, from the file name.
    pub name: Cow<'static, str>,
    /// The PostgreSQL script.
    pub postgres: Cow<'static, str>,
    /// The SQLite script.
    pub sqlite: Cow<'static, str>,
}

impl Migration {
    /// A migration embedded in a binary.
    pub const fn embedded(
        version: i64,
        name: &'static str,
        postgres: &'static str,
        sqlite: &'static str,
    ) -> Migration {
        Migration {
            version,
            name: Cow::Borrowed(name),
            postgres: Cow::Borrowed(postgres),
            sqlite: Cow::Borrowed(sqlite),
        }
    }

    /// The script for `dialect`.
    pub fn script(&self, dialect: crate::db::Dialect) -> &str {
        match dialect {
            crate::db::Dialect::Postgres => &self.postgres,
            crate::db::Dialect::Sqlite => &self.sqlite,
        }
    }
}

/// Why migrating stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// An applied migration's text changed.
    #[error(
        "migration {version:04}_{name} of app `{app}` was edited after it was applied \
         (recorded checksum {recorded}, file checksum {actual}); restore the file and put the change in a new migration"
    )]
    Edited {
        /// The app.
        app: String,
        /// The migration number.
        version: i64,
        /// The migration name.
        name: String,
        /// The checksum recorded when it was applied.
        recorded: String,
        /// The checksum of the embedded text.
        actual: String,
    },
    /// A table rebuild left rows whose foreign keys point nowhere.
    #[error(
        "migration {version:04} would leave {rows} rows with broken foreign keys; it was rolled back"
    )]
    ForeignKeys {
        /// The migration number.
        version: i64,
        /// How many rows break a foreign key.
        rows: usize,
    },
    /// The database failed.
    #[error("migration failed: {0}")]
    Database(#[from] sqlx::Error),
    /// PostgreSQL failed.
    #[error("migration failed: {0}")]
    Postgres(#[from] crate::db::DbError),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(error: tokio_postgres::Error) -> MigrateError {
        MigrateError::Postgres(crate::db::DbError::Postgres(error))
    }
}

/// What [`apply`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call.
    pub applied: Vec<i64>,
    /// Versions found already applied.
    pub skipped: Vec<i64>,
}

/// The SHA-256 of a migration script, as hex.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The marker in an SQLite script that rebuilds a table.
pub const FOREIGN_KEYS_OFF: &str = "-- prefiq:foreign-keys=off";

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS _prefiq_migrations (\
    app TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL, checksum TEXT NOT NULL, \
    applied_at TEXT NOT NULL, PRIMARY KEY (app, version))";

fn verify(app: &str, migration: &Migration, sql: &str, recorded: &str) -> Result<(), MigrateError> {
    let actual = checksum(sql);
    if actual == recorded {
        return Ok(());
    }
    Err(MigrateError::Edited {
        app: app.to_owned(),
        version: migration.version,
        name: migration.name.to_string(),
        recorded: recorded.to_owned(),
        actual,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The migrations of `app` recorded in the database: `(version, checksum, applied_at)`.
/// An empty list when the ledger does not exist yet.
pub async fn applied(db: &Db, app: &str) -> Result<Vec<(i64, String, String)>, MigrateError> {
    let sql = match db {
        Db::Postgres(..) => {
            "SELECT version, checksum, applied_at FROM _prefiq_migrations WHERE app = $1 ORDER BY version"
        }
        Db::Sqlite(_) => {
            "SELECT version, checksum, applied_at FROM _prefiq_migrations WHERE app = ?1 ORDER BY version"
        }
    };
    let exists = match db {
        Db::Postgres(..) => {
            "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = '_prefiq_migrations' AND schemaname = current_schema()"
        }
        Db::Sqlite(_) => {
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prefiq_migrations'"
        }
    };
    let database = |e: crate::db::DbError| match e {
        crate::db::DbError::Sqlx(e) => MigrateError::Database(e),
        other => MigrateError::Postgres(other),
    };
    if db
        .fetch_optional(exists, vec![])
        .await
        .map_err(database)?
        .is_none()
    {
        return Ok(Vec::new());
    }
    let rows = db
        .fetch_all(sql, vec![crate::db::SqlValue::Text(app.to_owned())])
        .await
        .map_err(database)?;
    let mut out = Vec::new();
    for row in rows {
        out.push((
            row.req::<i64>(0).map_err(database)?,
            row.req::<String>(1).map_err(database)?,
            row.req::<String>(2).map_err(database)?,
        ));
    }
    Ok(out)
}

/// The runtime's own tables (the ledger, and what [`MIGRATIONS`] makes), as an SQL list of
/// string literals: what tools that read an app's schema from a database leave out.
#[macro_export]
macro_rules! runtime_tables {
    () => {
        "'_prefiq_migrations', 'prefiq_audit', 'prefiq_jobs', 'prefiq_cron', 'prefiq_idempotency', 'prefiq_events'"
    };
}

/// The name the runtime's own migrations are recorded under.
pub const LEDGER_APP: &str = "prefiq";

/// The runtime's own migrations (the audit log, the job queue, idempotency keys, the outbox), applied
/// before any app's.
pub const MIGRATIONS: &[Migration] = &[
    Migration::embedded(
        1,
        "audit",
        include_str!("migrations/postgres/0001_audit.sql"),
        include_str!("migrations/sqlite/0001_audit.sql"),
    ),
    Migration::embedded(
        2,
        "platform_audit",
        include_str!("migrations/postgres/0002_platform_audit.sql"),
        include_str!("migrations/sqlite/0002_platform_audit.sql"),
    ),
    Migration::embedded(
        3,
        "check",
        include_str!("migrations/postgres/0003_check.sql"),
        include_str!("migrations/sqlite/0003_check.sql"),
    ),
    Migration::embedded(
        4,
        "jobs",
        include_str!("migrations/postgres/0004_jobs.sql"),
        include_str!("migrations/sqlite/0004_jobs.sql"),
    ),
    Migration::embedded(
        5,
        "idempotency",
        include_str!("migrations/postgres/0005_idempotency.sql"),
        include_str!("migrations/sqlite/0005_idempotency.sql"),
    ),
    Migration::embedded(
        6,
        "events",
        include_str!("migrations/postgres/0006_events.sql"),
        include_str!("migrations/sqlite/0006_events.sql"),
    ),
    Migration::embedded(
        7,
        "jobs_notify",
        include_str!("migrations/postgres/0007_jobs_notify.sql"),
        include_str!("migrations/sqlite/0007_jobs_notify.sql"),
    ),
    Migration::embedded(
        8,
        "jobs_claim_order",
        include_str!("migrations/postgres/0008_jobs_claim_order.sql"),
        include_str!("migrations/sqlite/0008_jobs_claim_order.sql"),
    ),
    Migration::embedded(
        9,
        "idempotency_committed",
        include_str!("migrations/postgres/0009_idempotency_committed.sql"),
        include_str!("migrations/sqlite/0009_idempotency_committed.sql"),
    ),
];

/// Applies every pending migration of `app`, in version order, after the runtime's own
/// ([`MIGRATIONS`]); then, on PostgreSQL, grants the server's role
/// ([`crate::db::APP_ROLE`]) what it may do.
pub async fn apply(
    db: &Db,
    app: &str,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrateError> {
    if app != LEDGER_APP {
        apply_one(db, LEDGER_APP, MIGRATIONS).await?;
    }
    let report = apply_one(db, app, migrations).await?;
    grant(db).await?;
    Ok(report)
}

async fn apply_one(
    db: &Db,
    app: &str,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrateError> {
    let mut ordered = migrations.to_vec();
    ordered.sort_by_key(|m| m.version);
    match db {
        Db::Postgres(..) => {
            let conn = db.pg_connection().await?;
            apply_postgres(conn.client(), app, lock_key(app), &ordered).await
        }
        Db::Sqlite(pool) => apply_sqlite(pool, app, &ordered).await,
    }
}

/// What the server's role may do, granted again after every migration run so that new tables
/// are covered: read and write the apps' tables, read and append the audit log, nothing on
/// the ledger.
const GRANTS: &str = "GRANT USAGE ON SCHEMA public TO prefiq_app; \
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO prefiq_app; \
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO prefiq_app; \
    REVOKE ALL ON _prefiq_migrations FROM prefiq_app; \
    REVOKE UPDATE, DELETE, TRUNCATE ON prefiq_audit FROM prefiq_app";

async fn grant(db: &Db) -> Result<(), MigrateError> {
    if let Db::Postgres(..) = db {
        let conn = db.pg_connection().await?;
        let client = conn.client();
        let lock = lock_key(LEDGER_APP);
        client
            .execute("SELECT pg_advisory_lock($1)", &[&lock])
            .await?;
        let granted = client.batch_execute(GRANTS).await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&lock])
            .await?;
        granted?;
    }
    Ok(())
}

/// Applies `app`'s pending migrations inside `schema` (made if missing), for a tenant whose
/// tables live in a schema of its own, and grants the server's role what it may do there. Each
/// migration commits on its own and is recorded in the schema's own ledger, so a run that
/// failed resumes where it stopped. PostgreSQL only.
pub async fn apply_in_schema(
    db: &Db,
    schema: &str,
    app: &str,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrateError> {
    if db.dialect() != crate::db::Dialect::Postgres {
        return Err(MigrateError::Database(sqlx::Error::Protocol(
            "a schema per tenant needs PostgreSQL".into(),
        )));
    }
    let mut ordered = migrations.to_vec();
    ordered.sort_by_key(|m| m.version);
    let quoted = crate::meta::quote(schema);
    let conn = db.pg_connection().await?;
    let client = conn.client();
    let result = async {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {quoted}; SET search_path TO {quoted}, public"
            ))
            .await?;
        let report =
            apply_postgres(client, app, lock_key(&format!("{schema}/{app}")), &ordered).await?;
        client
            .batch_execute(&format!(
                "GRANT USAGE ON SCHEMA {quoted} TO prefiq_app; \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {quoted} TO prefiq_app; \
                 GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quoted} TO prefiq_app; \
                 REVOKE ALL ON {quoted}._prefiq_migrations FROM prefiq_app"
            ))
            .await?;
        Ok::<_, MigrateError>(report)
    }
    .await;
    // The connection goes back to the pool as it came, or not at all.
    if client.batch_execute("RESET search_path").await.is_err() {
        let _ = deadpool::managed::Object::take(conn);
    }
    result
}

/// A stable advisory-lock key per app.
fn lock_key(app: &str) -> i64 {
    let digest = Sha256::digest(format!("prefiq-migrate:{app}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

async fn apply_postgres(
    client: &tokio_postgres::Client,
    app: &str,
    lock: i64,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&lock])
        .await?;
    let result = async {
        client.batch_execute(LEDGER).await?;
        let mut report = MigrationReport::default();
        for migration in migrations {
            let recorded: Option<String> = client
                .query_opt(
                    "SELECT checksum FROM _prefiq_migrations WHERE app = $1 AND version = $2",
                    &[&app, &migration.version],
                )
                .await?
                .map(|row| row.get(0));
            if let Some(recorded) = recorded {
                verify(app, migration, &migration.postgres, &recorded)?;
                report.skipped.push(migration.version);
                continue;
            }
            client.batch_execute("BEGIN").await?;
            let step = async {
                client.batch_execute(&migration.postgres).await?;
                client
                    .execute(
                        "INSERT INTO _prefiq_migrations (app, version, name, checksum, applied_at) VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &app,
                            &migration.version,
                            &migration.name.as_ref(),
                            &checksum(&migration.postgres),
                            &now(),
                        ],
                    )
                    .await?;
                client.batch_execute("COMMIT").await
            }
            .await;
            if let Err(error) = step {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(error.into());
            }
            tracing::info!(app, version = migration.version, name = %migration.name, "applied migration");
            report.applied.push(migration.version);
        }
        Ok::<_, MigrateError>(report)
    }
    .await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .await;
    let report = result?;
    unlock?;
    Ok(report)
}

async fn apply_sqlite(
    pool: &sqlx::SqlitePool,
    app: &str,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(LEDGER).execute(&mut *conn).await?;
    let mut report = MigrationReport::default();
    for migration in migrations {
        // A migration that rebuilds a table runs with foreign keys off (SQLite cannot change them
        // inside a transaction), and checks them all before it commits.
        let rebuilds = migration.sqlite.contains(FOREIGN_KEYS_OFF);
        if rebuilds {
            sqlx::raw_sql("PRAGMA foreign_keys = OFF")
                .execute(&mut *conn)
                .await?;
        }
        // The exclusive transaction is the lock: a second process waits here (busy_timeout),
        // then sees the ledger row and skips.
        sqlx::raw_sql("BEGIN EXCLUSIVE").execute(&mut *conn).await?;
        let step = async {
            let recorded: Option<String> =
                sqlx::query("SELECT checksum FROM _prefiq_migrations WHERE app = ?1 AND version = ?2")
                    .bind(app)
                    .bind(migration.version)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|row| row.get(0));
            if let Some(recorded) = recorded {
                verify(app, migration, &migration.sqlite, &recorded)?;
                return Ok(false);
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sqlite.clone())).execute(&mut *conn).await?;
            if rebuilds {
                let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut *conn).await?;
                if !broken.is_empty() {
                    return Err(MigrateError::ForeignKeys { version: migration.version, rows: broken.len() });
                }
            }
            sqlx::query("INSERT INTO _prefiq_migrations (app, version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)")
                .bind(app)
                .bind(migration.version)
                .bind(migration.name.as_ref())
                .bind(checksum(&migration.sqlite))
                .bind(now())
                .execute(&mut *conn)
                .await?;
            Ok::<bool, MigrateError>(true)
        }
        .await;
        let outcome = match step {
            Ok(applied) => sqlx::raw_sql("COMMIT")
                .execute(&mut *conn)
                .await
                .map(|_| applied)
                .map_err(MigrateError::from),
            Err(error) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                Err(error)
            }
        };
        if rebuilds {
            sqlx::raw_sql("PRAGMA foreign_keys = ON")
                .execute(&mut *conn)
                .await?;
        }
        match outcome {
            Ok(applied) => {
                if applied {
                    tracing::info!(
                        app,
                        version = migration.version,
                        name = %migration.name,
                        "applied migration"
                    );
                    report.applied.push(migration.version);
                } else {
                    report.skipped.push(migration.version);
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::PoolOptions;

    #[test]
    fn the_runtime_tables_are_the_ledger_and_every_table_its_migrations_make() {
        let mut made: Vec<String> = vec!["_prefiq_migrations".into()];
        for migration in MIGRATIONS {
            for dialect in [crate::db::Dialect::Postgres, crate::db::Dialect::Sqlite] {
                for line in migration.script(dialect).lines() {
                    if let Some(rest) = line.strip_prefix("CREATE TABLE \"") {
                        let name = rest.split('"').next().unwrap_or_default().to_owned();
                        if !made.contains(&name) {
                            made.push(name);
                        }
                    }
                }
            }
        }
        let listed: Vec<String> = runtime_tables!()
            .split(", ")
            .map(|t| t.trim_matches('\'').to_owned())
            .collect();
        assert_eq!(listed, made);
    }

    const FIRST: Migration = Migration::embedded(
        1,
        "initial",
        "CREATE TABLE t (id BIGINT PRIMARY KEY);",
        "CREATE TABLE t (id INTEGER PRIMARY KEY);",
    );

    #[tokio::test]
    async fn applies_once_and_refuses_an_edited_migration() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("m.db").display());
        let db = Db::connect(&url, &PoolOptions::default()).await.unwrap();

        let first = apply(&db, "demo", &[FIRST]).await.unwrap();
        assert_eq!(applied(&db, "demo").await.unwrap().len(), 1);
        assert_eq!(first.applied, vec![1]);
        let again = apply(&db, "demo", &[FIRST]).await.unwrap();
        assert_eq!(
            again,
            MigrationReport {
                applied: vec![],
                skipped: vec![1]
            }
        );

        let edited = Migration {
            sqlite: "CREATE TABLE t (id TEXT PRIMARY KEY);".into(),
            ..FIRST
        };
        let error = apply(&db, "demo", &[edited]).await.unwrap_err();
        assert!(
            matches!(error, MigrateError::Edited { version: 1, .. }),
            "{error}"
        );

        // Another app's ledger is separate.
        let other = Migration {
            sqlite: "CREATE TABLE u (id INTEGER);".into(),
            ..FIRST
        };
        assert_eq!(
            apply(&db, "other", &[other]).await.unwrap().applied,
            vec![1]
        );
    }

    #[tokio::test]
    async fn a_database_without_a_ledger_has_nothing_applied_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("m.db").display());
        let db = Db::connect(&url, &PoolOptions::default()).await.unwrap();
        assert!(applied(&db, "demo").await.unwrap().is_empty());
        // A ledger that is not ours: reading it fails instead of reporting nothing applied.
        db.execute("CREATE TABLE _prefiq_migrations (x INTEGER)", vec![])
            .await
            .unwrap();
        assert!(applied(&db, "demo").await.is_err());
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("m.db").display());
        let db = Db::connect(&url, &PoolOptions::default()).await.unwrap();
        let broken = Migration {
            sqlite: "CREATE TABLE a (id INTEGER); CREATE TABLE oops (".into(),
            ..FIRST
        };
        assert!(apply(&db, "demo", &[broken]).await.is_err());
        let tables = db
            .fetch_all("SELECT name FROM sqlite_master WHERE name = 'a'", vec![])
            .await
            .unwrap();
        assert!(
            tables.is_empty(),
            "the half-applied migration was rolled back"
        );
    }
}
