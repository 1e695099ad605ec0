//! Who people and clients are: passwords (argon2), the random secrets behind sessions, refresh,
//! authorization-code and personal tokens (stored as SHA-256 digests, never in the clear), the
//! principals they resolve to, the ends of those credentials, and the throttle on failed
//! sign-ins.
//!
//! Users, tenants and roles are read here as the server itself ([`read`]): on PostgreSQL,
//! row-level security keeps every other transaction to its own tenant's users.
//!
//! Nothing here logs a password, a token or a hash.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use prefiq_runtime::auth::{Credential, Principal, random_bytes};
use prefiq_runtime::db::{DbError, Row, Sql};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::{Db, Executor, SqlValue, Tx};
use sha2::{Digest as _, Sha256};

/// The prefix of personal access tokens, so that scanners and people recognise them.
pub const PERSONAL_TOKEN_PREFIX: &str = "pfq_";

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// A new random secret: 32 bytes, base64url.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

/// What is stored of a secret: its SHA-256, hex. Secrets are 256 random bits, so a fast hash
/// is enough; passwords, which are not, get argon2.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two texts in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The argon2id hash of `password`, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A password a person may choose: long enough, and not only spaces.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD || password.trim().is_empty() {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        ));
    }
    Ok(())
}

/// A user, as sign-in needs them.
#[derive(Debug, Clone)]
pub struct User {
    /// Their id.
    pub id: Uuid,
    /// Their e-mail.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Their tenant.
    pub tenant: Uuid,
    /// Their roles.
    pub roles: Vec<String>,
    /// Their teams.
    pub teams: Vec<Uuid>,
    /// Whether they may sign in.
    pub active: bool,
    /// Whether they are a platform operator.
    pub operator: bool,
    /// The other tenants a platform operator let them switch to.
    pub tenants: Vec<Uuid>,
}

impl User {
    /// Whether they may act in `tenant`: their own, one a platform operator granted them, or any
    /// for a platform operator.
    pub fn may_enter(&self, tenant: Uuid) -> bool {
        self.operator || tenant == self.tenant || self.tenants.contains(&tenant)
    }
}

const USER_COLUMNS: &str =
    "u.id, u.email, u.name, u.tenant_id, u.roles, u.teams, u.active, u.operator, u.tenants";

/// How many columns [`USER_COLUMNS`] reads.
const USER_WIDTH: usize = 9;

fn user(row: &Row) -> Result<User, DbError> {
    Ok(User {
        id: row.req(0)?,
        email: row.req(1)?,
        name: row.req(2)?,
        tenant: row.req(3)?,
        roles: row.req_json(4)?,
        teams: row.req_json(5)?,
        active: row.req(6)?,
        operator: row.req(7)?,
        tenants: row.req_json(8)?,
    })
}

pub(crate) fn sql(db: &impl Executor, postgres: &str) -> Sql {
    // Statements are written once with `$n`; SQLite takes `?n` the same way.
    let text = match db.dialect() {
        prefiq_runtime::Dialect::Postgres => postgres.to_owned(),
        prefiq_runtime::Dialect::Sqlite => postgres.replace('$', "?"),
    };
    Sql::built(text)
}

/// The server acting on its own (start-up, the command line) in the default tenant.
pub fn system() -> Arc<Principal> {
    Arc::new(Principal::system(prefiq_runtime::auth::DEFAULT_TENANT))
}

/// A transaction that reads as the server itself: what identity lookups run in, so that they
/// see every tenant's users and credentials (row-level security keeps any caller's transaction
/// to its own).
pub async fn read(db: &Db) -> Result<Tx, DbError> {
    db.begin_read(&system()).await
}

/// A transaction that writes as the server itself: what credentials are made, changed and
/// ended in.
pub async fn write(db: &Db) -> Result<Tx, DbError> {
    db.begin(&system()).await
}

/// Runs `work` in a transaction of the server's own ([`write`]) and commits it.
pub async fn as_server<T>(
    db: &Db,
    work: impl AsyncFnOnce(&mut Tx) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut tx = write(db).await?;
    let out = work(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// The user with this e-mail (compared without case), with their password hash if they have one.
pub async fn user_by_email(
    db: &mut impl Executor,
    email: &str,
) -> Result<Option<(User, Option<String>)>, DbError> {
    let statement = sql(
        db,
        &format!(
            "SELECT {USER_COLUMNS}, c.password_hash FROM users u LEFT JOIN cortex_credentials c ON c.user_id = u.id WHERE lower(u.email) = lower($1)"
        ),
    );
    let row = db
        .fetch_optional(statement, vec![SqlValue::Text(email.to_owned())])
        .await?;
    row.map(|row| Ok((user(&row)?, row.opt::<String>(USER_WIDTH)?)))
        .transpose()
}

/// The user with this id.
pub async fn user_by_id(db: &mut impl Executor, id: Uuid) -> Result<Option<User>, DbError> {
    let statement = sql(
        db,
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
    );
    let row = db
        .fetch_optional(statement, vec![SqlValue::Uuid(id)])
        .await?;
    row.as_ref().map(user).transpose()
}

/// Whether the tenant exists and is active.
pub async fn tenant_active(db: &mut impl Executor, tenant: Uuid) -> Result<bool, DbError> {
    let statement = sql(db, "SELECT active FROM tenants WHERE id = $1");
    let row = db
        .fetch_optional(statement, vec![SqlValue::Uuid(tenant)])
        .await?;
    Ok(match row {
        Some(row) => row.req::<bool>(0)?,
        None => false,
    })
}

/// The permissions `roles` grant in `tenant`: `admin` every one of the tenant, the others what
/// the tenant's own Role rows list.
pub async fn permissions(
    db: &mut impl Executor,
    tenant: Uuid,
    roles: &[String],
) -> Result<Vec<String>, DbError> {
    if roles.iter().any(|r| r == "admin") {
        return Ok(vec!["*".into()]);
    }
    let statement = sql(
        db,
        "SELECT name, permissions FROM roles WHERE tenant_id = $1",
    );
    let rows = db
        .fetch_all(statement, vec![SqlValue::Uuid(tenant)])
        .await?;
    let mut out: Vec<String> = Vec::new();
    for row in rows {
        let name: String = row.req(0)?;
        if roles.contains(&name) {
            let granted: Vec<String> = row.req_json(1)?;
            out.extend(granted);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The principal of a signed-in user acting in `tenant`, which the caller checked they may
/// enter.
pub async fn principal(
    db: &mut impl Executor,
    user: &User,
    tenant: Uuid,
    credential: Credential,
) -> Result<Principal, DbError> {
    Ok(Principal {
        subject: user.id.to_string(),
        user: Some(user.id),
        tenant,
        roles: user.roles.clone(),
        teams: user.teams.clone(),
        permissions: permissions(db, tenant, &user.roles).await?,
        credential,
        operator: user.operator,
    })
}

/// Sets `user`'s password (its hash; nothing else changes: see [`end_credentials`]).
pub async fn set_password(
    db: &mut impl Executor,
    user: Uuid,
    password: &str,
) -> Result<(), String> {
    check_new_password(password)?;
    let hash = hash_password(password)?;
    let statement = sql(
        db,
        "INSERT INTO cortex_credentials (user_id, password_hash, changed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, changed_at = excluded.changed_at",
    );
    db.execute(
        statement,
        vec![
            SqlValue::Uuid(user),
            SqlValue::Text(hash),
            SqlValue::DateTime(prefiq_runtime::db::now()),
        ],
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Which of a user's credentials end.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    /// A session to keep: the one the user changed their own password in.
    pub keep_session: Option<&'a str>,
    /// Whether their personal access tokens end too.
    pub personal_tokens: bool,
}

/// What [`ended`] keys a user's or a tenant's last end of credentials by.
pub fn ending_subject(kind: &str, id: Uuid) -> String {
    format!("{kind}:{id}")
}

/// Records that the credentials of `subject` ([`ending_subject`]) ended now: Cortex refuses
/// every access token issued before.
async fn ended(db: &mut impl Executor, subject: String) -> Result<(), DbError> {
    let statement = sql(
        db,
        "INSERT INTO cortex_credentials_ended (subject, at) VALUES ($1, $2) \
         ON CONFLICT (subject) DO UPDATE SET at = excluded.at",
    );
    db.execute(
        statement,
        vec![
            SqlValue::Text(subject),
            SqlValue::DateTime(prefiq_runtime::db::now()),
        ],
    )
    .await?;
    Ok(())
}

/// Ends `user`'s sessions, refresh tokens (whole families) and unused authorization codes at
/// once, and with `ending.personal_tokens` their personal access tokens: when their password is
/// set or reset, or they are deactivated. Cortex refuses their access tokens issued before; an
/// app alone trusts one until it expires.
pub async fn end_credentials(
    db: &mut impl Executor,
    user: Uuid,
    ending: Ending<'_>,
) -> Result<(), DbError> {
    ended(db, ending_subject("user", user)).await?;
    let now = SqlValue::DateTime(prefiq_runtime::db::now());
    let keep = ending
        .keep_session
        .map(|secret| SqlValue::Text(digest(secret)))
        .unwrap_or(SqlValue::Text(String::new()));
    let mut statements = vec![
        (
            "DELETE FROM cortex_sessions WHERE user_id = $1 AND token_hash <> $2",
            vec![SqlValue::Uuid(user), keep],
        ),
        (
            "UPDATE cortex_refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            vec![SqlValue::Uuid(user), now.clone()],
        ),
        (
            "UPDATE cortex_auth_codes SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            vec![SqlValue::Uuid(user), now.clone()],
        ),
    ];
    if ending.personal_tokens {
        statements.push((
            "UPDATE cortex_personal_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            vec![SqlValue::Uuid(user), now],
        ));
    }
    for (text, params) in statements {
        let statement = sql(db, text);
        db.execute(statement, params).await?;
    }
    Ok(())
}

/// Ends every credential used in `tenant` or held by its users, when it is deactivated: their
/// sessions, refresh tokens, unused authorization codes and personal access tokens, and those
/// others hold for acting in it.
pub async fn end_tenant_credentials(db: &mut impl Executor, tenant: Uuid) -> Result<(), DbError> {
    ended(db, ending_subject("tenant", tenant)).await?;
    let now = SqlValue::DateTime(prefiq_runtime::db::now());
    let of_tenant = "(tenant_id = $1 OR user_id IN (SELECT id FROM users WHERE tenant_id = $1))";
    for text in [
        format!("DELETE FROM cortex_sessions WHERE {of_tenant}"),
        format!(
            "UPDATE cortex_refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND {of_tenant}"
        ),
        format!("UPDATE cortex_auth_codes SET used_at = $2 WHERE used_at IS NULL AND {of_tenant}"),
        format!(
            "UPDATE cortex_personal_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND {of_tenant}"
        ),
    ] {
        let mut params = vec![SqlValue::Uuid(tenant)];
        if text.contains("$2") {
            params.push(now.clone());
        }
        let statement = sql(db, &text);
        db.execute(statement, params).await?;
    }
    Ok(())
}

/// How long a sign-in session lives.
pub const SESSION_HOURS: i64 = 12;

/// A signed-in admin UI session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user: User,
    /// The tenant they act in: their own, unless they switched.
    pub tenant: Uuid,
    /// The session's anti-forgery token, which every form carries.
    pub csrf: String,
}

/// Starts a session for `user` acting in `tenant`; the cookie's value.
pub async fn start_session(
    db: &mut impl Executor,
    user: Uuid,
    tenant: Uuid,
) -> Result<String, DbError> {
    let secret = new_secret();
    let now = prefiq_runtime::db::now();
    let statement = sql(
        db,
        "INSERT INTO cortex_sessions (token_hash, user_id, csrf, created_at, expires_at, tenant_id) VALUES ($1, $2, $3, $4, $5, $6)",
    );
    db.execute(
        statement,
        vec![
            SqlValue::Text(digest(&secret)),
            SqlValue::Uuid(user),
            SqlValue::Text(new_secret()),
            SqlValue::DateTime(now),
            SqlValue::DateTime(now + Duration::hours(SESSION_HOURS)),
            SqlValue::Uuid(tenant),
        ],
    )
    .await?;
    Ok(secret)
}

/// The live session whose cookie is `secret`, of an active user acting in an active tenant
/// they may enter.
pub async fn session(db: &mut impl Executor, secret: &str) -> Result<Option<Session>, DbError> {
    let statement = sql(
        db,
        &format!(
            "SELECT {USER_COLUMNS}, s.csrf, COALESCE(s.tenant_id, u.tenant_id), t.active \
             FROM cortex_sessions s JOIN users u ON u.id = s.user_id \
             LEFT JOIN tenants t ON t.id = COALESCE(s.tenant_id, u.tenant_id) \
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        ),
    );
    let row = db
        .fetch_optional(
            statement,
            vec![
                SqlValue::Text(digest(secret)),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let user = user(&row)?;
    let tenant: Uuid = row.req(USER_WIDTH + 1)?;
    let tenant_active: Option<bool> = row.opt(USER_WIDTH + 2)?;
    if !user.active || tenant_active != Some(true) || !user.may_enter(tenant) {
        return Ok(None);
    }
    Ok(Some(Session {
        user,
        tenant,
        csrf: row.req(USER_WIDTH)?,
    }))
}

/// Moves the session whose cookie is `secret` to `tenant`.
pub async fn move_session(
    db: &mut impl Executor,
    secret: &str,
    tenant: Uuid,
) -> Result<bool, DbError> {
    let statement = sql(
        db,
        "UPDATE cortex_sessions SET tenant_id = $2 WHERE token_hash = $1",
    );
    Ok(db
        .execute(
            statement,
            vec![SqlValue::Text(digest(secret)), SqlValue::Uuid(tenant)],
        )
        .await?
        == 1)
}

/// Ends the session whose cookie is `secret`.
pub async fn end_session(db: &mut impl Executor, secret: &str) -> Result<(), DbError> {
    let statement = sql(db, "DELETE FROM cortex_sessions WHERE token_hash = $1");
    db.execute(statement, vec![SqlValue::Text(digest(secret))])
        .await?;
    Ok(())
}

/// A personal access token, as listed (never its value).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PersonalToken {
    /// Its id.
    pub id: Uuid,
    /// What its owner called it.
    pub name: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Makes a personal access token for `user`, acting in `tenant`; its value, shown once.
pub async fn create_personal_token(
    db: &mut impl Executor,
    user: Uuid,
    tenant: Uuid,
    name: &str,
    expires_in: Option<Duration>,
) -> Result<String, DbError> {
    let token = format!("{PERSONAL_TOKEN_PREFIX}{}", new_secret());
    let now = prefiq_runtime::db::now();
    let statement = sql(
        db,
        "INSERT INTO cortex_personal_tokens (id, user_id, name, token_hash, created_at, expires_at, tenant_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    );
    db.execute(
        statement,
        vec![
            SqlValue::Uuid(Uuid::now_v7()),
            SqlValue::Uuid(user),
            SqlValue::Text(name.to_owned()),
            SqlValue::Text(digest(&token)),
            SqlValue::DateTime(now),
            expires_in
                .map(|d| SqlValue::DateTime(now + d))
                .unwrap_or(SqlValue::Null(prefiq_runtime::db::ColumnKind::DateTime)),
            SqlValue::Uuid(tenant),
        ],
    )
    .await?;
    Ok(token)
}

/// The personal tokens of `user`, newest first.
pub async fn personal_tokens(
    db: &mut impl Executor,
    user: Uuid,
) -> Result<Vec<PersonalToken>, DbError> {
    let statement = sql(
        db,
        "SELECT id, name, created_at, expires_at, last_used_at, revoked_at FROM cortex_personal_tokens WHERE user_id = $1 ORDER BY created_at DESC",
    );
    let rows = db.fetch_all(statement, vec![SqlValue::Uuid(user)]).await?;
    rows.iter()
        .map(|row| {
            Ok(PersonalToken {
                id: row.req(0)?,
                name: row.req(1)?,
                created_at: row.req(2)?,
                expires_at: row.opt(3)?,
                last_used_at: row.opt(4)?,
                revoked_at: row.opt(5)?,
            })
        })
        .collect()
}

/// Revokes `user`'s token `id`; whether there was one.
pub async fn revoke_personal_token(
    db: &mut impl Executor,
    user: Uuid,
    id: Uuid,
) -> Result<bool, DbError> {
    let statement = sql(
        db,
        "UPDATE cortex_personal_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    );
    Ok(db
        .execute(
            statement,
            vec![
                SqlValue::Uuid(id),
                SqlValue::Uuid(user),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await?
        == 1)
}

/// The active user a live personal token belongs to, and the active tenant it acts in.
pub async fn personal_token_user(
    db: &mut impl Executor,
    token: &str,
) -> Result<Option<(User, Uuid)>, DbError> {
    let now = prefiq_runtime::db::now();
    let statement = sql(
        db,
        &format!(
            "SELECT {USER_COLUMNS}, t.id, COALESCE(t.tenant_id, u.tenant_id), n.active \
             FROM cortex_personal_tokens t JOIN users u ON u.id = t.user_id \
             LEFT JOIN tenants n ON n.id = COALESCE(t.tenant_id, u.tenant_id) \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"
        ),
    );
    let row = db
        .fetch_optional(
            statement,
            vec![SqlValue::Text(digest(token)), SqlValue::DateTime(now)],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let found = user(&row)?;
    let tenant: Uuid = row.req(USER_WIDTH + 1)?;
    let tenant_active: Option<bool> = row.opt(USER_WIDTH + 2)?;
    if !found.active || tenant_active != Some(true) || !found.may_enter(tenant) {
        return Ok(None);
    }
    Ok(Some((found, tenant)))
}

/// Notes that the personal token `token` authenticated a request now.
pub async fn touch_personal_token(db: &Db, token: &str) -> Result<(), DbError> {
    as_server(db, async |tx| {
        let touch = sql(
            tx,
            "UPDATE cortex_personal_tokens SET last_used_at = $2 WHERE token_hash = $1",
        );
        tx.execute(
            touch,
            vec![
                SqlValue::Text(digest(token)),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await
    })
    .await?;
    Ok(())
}

/// Failed attempts of one account (or client) from one address that make that address wait
/// [`THROTTLE_MINUTES`] before trying that account again, unless a setting says otherwise.
pub const MAX_PAIR_FAILURES: i64 = 10;
/// Failed attempts from one address, whatever the account, that make the address wait.
pub const MAX_ADDRESS_FAILURES: i64 = 50;
/// Failed sign-ins of one account from every address together that put the account under
/// attack: then only addresses it signed in from before ([`KNOWN_ADDRESS_DAYS`]) may try it.
pub const ACCOUNT_UNDER_ATTACK: i64 = 100;
/// How long a successful sign-in makes its address known to the account.
pub const KNOWN_ADDRESS_DAYS: i64 = 30;
/// The throttle's window.
pub const THROTTLE_MINUTES: i64 = 15;

/// Why an attempt is refused before its secret is even checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttled {
    /// Too many recent failures; try again after this many seconds.
    Wait(i64),
    /// The throttle could not be read, so the attempt is refused (fail closed).
    Unavailable,
}

/// The limits of [`attempt`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures of the account from the address.
    pub pair: i64,
    /// Failures from the address.
    pub address: i64,
    /// Failures of the account from anywhere that put it under attack (`None`: never, for
    /// clients, whose secrets are random).
    pub account: Option<i64>,
}

/// An attempt, recorded (as failed until [`succeeded`] says otherwise).
#[derive(Debug, Clone, Copy)]
pub struct Attempt(Uuid);

/// Records an attempt on `account` from `address`, then refuses it if, counting it and every
/// attempt recorded before it (concurrent ones included: each is committed before it is
/// counted), the address has failed too often on the account or at all, or the account is under
/// attack and the address is not one it signed in from before. An attacker thus throttles
/// themselves: the account's owner, from elsewhere or from a known address, still gets in.
/// Fails closed when the throttle cannot be read.
pub async fn attempt(
    db: &Db,
    account: &str,
    address: &str,
    limits: Limits,
) -> Result<Attempt, Throttled> {
    let mut db = db.clone();
    let account = account.to_lowercase();
    let id = Uuid::now_v7();
    let now = prefiq_runtime::db::now();
    let insert = sql(
        &db,
        "INSERT INTO cortex_login_attempts (id, account, address, at, succeeded) VALUES ($1, $2, $3, $4, $5)",
    );
    Executor::execute(
        &mut db,
        insert,
        vec![
            SqlValue::Uuid(id),
            SqlValue::Text(account.clone()),
            SqlValue::Text(address.to_owned()),
            SqlValue::DateTime(now),
            SqlValue::Bool(false),
        ],
    )
    .await
    .map_err(|_| Throttled::Unavailable)?;
    let since = now - Duration::minutes(THROTTLE_MINUTES);
    let known_since = now - Duration::days(KNOWN_ADDRESS_DAYS);
    let count = sql(
        &db,
        "SELECT \
           (SELECT COUNT(*) FROM cortex_login_attempts WHERE account = $1 AND address = $2 AND at > $3 AND NOT succeeded), \
           (SELECT COUNT(*) FROM cortex_login_attempts WHERE address = $2 AND at > $3 AND NOT succeeded), \
           (SELECT COUNT(*) FROM cortex_login_attempts WHERE account = $1 AND at > $3 AND NOT succeeded), \
           (SELECT COUNT(*) FROM cortex_login_attempts WHERE account = $1 AND address = $2 AND at > $4 AND succeeded)",
    );
    let row = Executor::fetch_optional(
        &mut db,
        count,
        vec![
            SqlValue::Text(account),
            SqlValue::Text(address.to_owned()),
            SqlValue::DateTime(since),
            SqlValue::DateTime(known_since),
        ],
    )
    .await
    .map_err(|_| Throttled::Unavailable)?
    .ok_or(Throttled::Unavailable)?;
    let read = |i: usize| row.req::<i64>(i).map_err(|_| Throttled::Unavailable);
    let (pair, from_address, everywhere, known) = (read(0)?, read(1)?, read(2)?, read(3)?);
    let under_attack = limits.account.is_some_and(|max| everywhere > max) && known == 0;
    if pair > limits.pair || from_address > limits.address || under_attack {
        return Err(Throttled::Wait(THROTTLE_MINUTES * 60));
    }
    Ok(Attempt(id))
}

/// Marks `attempt` as having succeeded.
pub async fn succeeded(db: &Db, attempt: Attempt) -> Result<(), DbError> {
    let mut db = db.clone();
    let statement = sql(
        &db,
        "UPDATE cortex_login_attempts SET succeeded = $2 WHERE id = $1",
    );
    Executor::execute(
        &mut db,
        statement,
        vec![SqlValue::Uuid(attempt.0), SqlValue::Bool(true)],
    )
    .await?;
    Ok(())
}

/// Signs `email` in with `password` from `address`: the user, or why not. The attempt is
/// recorded and throttled before the password is checked ([`attempt`]); a wrong e-mail and a
/// wrong password take the same time and give the same answer, and so do an inactive user and
/// an inactive tenant.
pub async fn sign_in(
    db: &Db,
    email: &str,
    password: &str,
    address: &str,
    max_failures: i64,
) -> Result<User, SignInError> {
    let limits = Limits {
        pair: max_failures,
        address: MAX_ADDRESS_FAILURES,
        account: Some(ACCOUNT_UNDER_ATTACK.max(max_failures)),
    };
    let attempt = attempt(db, email, address, limits)
        .await
        .map_err(SignInError::Throttled)?;
    let unavailable = |_| SignInError::Throttled(Throttled::Unavailable);
    let mut tx = read(db).await.map_err(unavailable)?;
    let found = user_by_email(&mut tx, email).await.map_err(unavailable)?;
    // A hash to check against when there is no user, so that timing does not tell.
    static DECOY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password(&new_secret()).unwrap_or_default());
    // argon2 takes tens of milliseconds of CPU on purpose: off the async workers.
    let (hash, known) = match &found {
        Some((user, Some(hash))) => (hash.clone(), user.active),
        _ => (DECOY.clone(), false),
    };
    let tried = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&tried, &hash))
        .await
        .unwrap_or(false);
    let tenant_ok = match &found {
        Some((user, _)) if matches && known => tenant_active(&mut tx, user.tenant)
            .await
            .map_err(unavailable)?,
        _ => false,
    };
    tx.end_read();
    match found {
        Some((user, _)) if matches && known && tenant_ok => {
            succeeded(db, attempt).await.map_err(unavailable)?;
            Ok(user)
        }
        _ => Err(SignInError::Invalid),
    }
}

/// Why a sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// The e-mail or password is wrong (which, is not said), or the account is inactive.
    Invalid,
    /// Too many failures, or the throttle cannot be read.
    Throttled(Throttled),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterz", &a));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn secrets_are_random_and_stored_as_digests() {
        let a = new_secret();
        assert_ne!(a, new_secret());
        assert_eq!(a.len(), 43);
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), a);
        assert!(same(&digest(&a), &digest(&a)));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("            ").is_err());
        assert!(check_new_password("long enough password").is_ok());
    }

    #[test]
    fn a_user_enters_their_tenant_those_granted_and_operators_every_one() {
        let home = Uuid::now_v7();
        let granted = Uuid::now_v7();
        let other = Uuid::now_v7();
        let mut user = User {
            id: Uuid::now_v7(),
            email: "a@example.com".into(),
            name: "A".into(),
            tenant: home,
            roles: vec!["admin".into()],
            teams: vec![],
            active: true,
            operator: false,
            tenants: vec![granted],
        };
        assert!(user.may_enter(home));
        assert!(user.may_enter(granted));
        assert!(
            !user.may_enter(other),
            "an administrator of one tenant enters no other"
        );
        user.operator = true;
        assert!(user.may_enter(other));
    }
}
