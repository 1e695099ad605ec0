//! Who people and clients are: passwords (argon2), the random secrets behind sessions, refresh,
//! authorization-code and personal tokens (stored as SHA-256 digests, never in the clear), the
//! principals they resolve to, and the throttle on failed sign-ins.
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
use prefiq_runtime::{Db, Executor, SqlValue};
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
}

const USER_COLUMNS: &str = "u.id, u.email, u.name, u.tenant_id, u.roles, u.teams, u.active";

fn user(row: &Row) -> Result<User, DbError> {
    Ok(User {
        id: row.req(0)?,
        email: row.req(1)?,
        name: row.req(2)?,
        tenant: row.req(3)?,
        roles: row.req_json(4)?,
        teams: row.req_json(5)?,
        active: row.req(6)?,
    })
}

fn sql(db: &impl Executor, postgres: &str) -> Sql {
    // Statements are written once with `$n`; SQLite takes `?n` the same way.
    let text = match db.dialect() {
        prefiq_runtime::Dialect::Postgres => postgres.to_owned(),
        prefiq_runtime::Dialect::Sqlite => postgres.replace('$', "?"),
    };
    Sql::built(text)
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
    row.map(|row| Ok((user(&row)?, row.opt::<String>(7)?)))
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

/// The permissions `roles` grant: `admin` every one, the others what their Role rows list.
pub async fn permissions(db: &mut impl Executor, roles: &[String]) -> Result<Vec<String>, DbError> {
    if roles.iter().any(|r| r == "admin") {
        return Ok(vec!["*".into()]);
    }
    let rows = db
        .fetch_all(sql(db, "SELECT name, permissions FROM roles"), vec![])
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

/// The principal of a signed-in user.
pub async fn principal(
    db: &mut impl Executor,
    user: &User,
    credential: Credential,
) -> Result<Principal, DbError> {
    Ok(Principal {
        subject: user.id.to_string(),
        user: Some(user.id),
        tenant: user.tenant,
        roles: user.roles.clone(),
        teams: user.teams.clone(),
        permissions: permissions(db, &user.roles).await?,
        credential,
    })
}

/// The server acting on its own (start-up, the command line) in the default tenant.
pub fn system() -> Arc<Principal> {
    Arc::new(Principal::system(prefiq_runtime::auth::DEFAULT_TENANT))
}

/// Sets `user`'s password.
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

/// How long a sign-in session lives.
pub const SESSION_HOURS: i64 = 12;

/// A signed-in admin UI session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user: User,
    /// The session's anti-forgery token, which every form carries.
    pub csrf: String,
}

/// Starts a session for `user`; the cookie's value.
pub async fn start_session(db: &mut impl Executor, user: Uuid) -> Result<String, DbError> {
    let secret = new_secret();
    let now = prefiq_runtime::db::now();
    let statement = sql(
        db,
        "INSERT INTO cortex_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    );
    db.execute(
        statement,
        vec![
            SqlValue::Text(digest(&secret)),
            SqlValue::Uuid(user),
            SqlValue::Text(new_secret()),
            SqlValue::DateTime(now),
            SqlValue::DateTime(now + Duration::hours(SESSION_HOURS)),
        ],
    )
    .await?;
    Ok(secret)
}

/// The live session whose cookie is `secret`, of an active user.
pub async fn session(db: &mut impl Executor, secret: &str) -> Result<Option<Session>, DbError> {
    let statement = sql(
        db,
        &format!(
            "SELECT {USER_COLUMNS}, s.csrf FROM cortex_sessions s JOIN users u ON u.id = s.user_id \
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
    if !user.active {
        return Ok(None);
    }
    Ok(Some(Session {
        user,
        csrf: row.req(7)?,
    }))
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

/// Makes a personal access token for `user`; its value, shown once.
pub async fn create_personal_token(
    db: &mut impl Executor,
    user: Uuid,
    name: &str,
    expires_in: Option<Duration>,
) -> Result<String, DbError> {
    let token = format!("{PERSONAL_TOKEN_PREFIX}{}", new_secret());
    let now = prefiq_runtime::db::now();
    let statement = sql(
        db,
        "INSERT INTO cortex_personal_tokens (id, user_id, name, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
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

/// The active user a live personal token belongs to.
pub async fn personal_token_user(
    db: &mut impl Executor,
    token: &str,
) -> Result<Option<User>, DbError> {
    let now = prefiq_runtime::db::now();
    let statement = sql(
        db,
        &format!(
            "SELECT {USER_COLUMNS}, t.id FROM cortex_personal_tokens t JOIN users u ON u.id = t.user_id \
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
    let id: Uuid = row.req(7)?;
    let touch = sql(
        db,
        "UPDATE cortex_personal_tokens SET last_used_at = $2 WHERE id = $1",
    );
    db.execute(touch, vec![SqlValue::Uuid(id), SqlValue::DateTime(now)])
        .await?;
    Ok(found.active.then_some(found))
}

/// Failed sign-ins that lock an account for [`THROTTLE_MINUTES`].
pub const MAX_ACCOUNT_FAILURES: i64 = 10;
/// Failed sign-ins that lock an address for [`THROTTLE_MINUTES`].
pub const MAX_ADDRESS_FAILURES: i64 = 50;
/// The throttle's window.
pub const THROTTLE_MINUTES: i64 = 15;

/// Why a sign-in is refused before its password is even checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttled {
    /// Too many recent failures; try again after this many seconds.
    Wait(i64),
    /// The throttle could not be read, so the attempt is refused (fail closed).
    Unavailable,
}

/// Refuses an attempt on `account` from `address` after too many recent failures of either,
/// and fails closed when it cannot tell.
pub async fn throttle(
    db: &Db,
    account: &str,
    address: &str,
    max_failures: i64,
) -> Result<(), Throttled> {
    let since = prefiq_runtime::db::now() - Duration::minutes(THROTTLE_MINUTES);
    let count = |column: &'static str, value: String| {
        let db = db.clone();
        async move {
            let mut db = db;
            let statement = sql(
                &db,
                &format!(
                    "SELECT COUNT(*) FROM cortex_login_attempts WHERE {column} = $1 AND at > $2 AND succeeded = $3"
                ),
            );
            let row = Executor::fetch_optional(
                &mut db,
                statement,
                vec![
                    SqlValue::Text(value),
                    SqlValue::DateTime(since),
                    SqlValue::Bool(false),
                ],
            )
            .await
            .map_err(|_| Throttled::Unavailable)?;
            row.map(|r| r.req::<i64>(0).map_err(|_| Throttled::Unavailable))
                .unwrap_or(Ok(0))
        }
    };
    let account_failures = count("account", account.to_lowercase()).await?;
    let address_failures = count("address", address.to_owned()).await?;
    if account_failures >= max_failures || address_failures >= MAX_ADDRESS_FAILURES {
        return Err(Throttled::Wait(THROTTLE_MINUTES * 60));
    }
    Ok(())
}

/// Records a sign-in attempt.
pub async fn record_attempt(
    db: &Db,
    account: &str,
    address: &str,
    succeeded: bool,
) -> Result<(), DbError> {
    let mut db = db.clone();
    let statement = sql(
        &db,
        "INSERT INTO cortex_login_attempts (id, account, address, at, succeeded) VALUES ($1, $2, $3, $4, $5)",
    );
    Executor::execute(
        &mut db,
        statement,
        vec![
            SqlValue::Uuid(Uuid::now_v7()),
            SqlValue::Text(account.to_lowercase()),
            SqlValue::Text(address.to_owned()),
            SqlValue::DateTime(prefiq_runtime::db::now()),
            SqlValue::Bool(succeeded),
        ],
    )
    .await?;
    Ok(())
}

/// Signs `email` in with `password` from `address`: the user, or why not. Every attempt is
/// recorded; too many failures lock the account or the address for a while. A wrong e-mail and
/// a wrong password take the same time and give the same answer.
pub async fn sign_in(
    db: &Db,
    email: &str,
    password: &str,
    address: &str,
    max_failures: i64,
) -> Result<User, SignInError> {
    throttle(db, email, address, max_failures)
        .await
        .map_err(SignInError::Throttled)?;
    let found = user_by_email(&mut db.clone(), email)
        .await
        .map_err(|_| SignInError::Throttled(Throttled::Unavailable))?;
    // A hash to check against when there is no user, so that timing does not tell.
    static DECOY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_password(&new_secret()).unwrap_or_default());
    // argon2 takes tens of milliseconds of CPU on purpose: off the async workers.
    let (hash, known) = match &found {
        Some((user, Some(hash))) => (hash.clone(), user.active),
        _ => (DECOY.clone(), false),
    };
    let attempt = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&attempt, &hash))
        .await
        .unwrap_or(false);
    let ok = matches && known;
    let tenant_ok = match &found {
        Some((user, _)) if ok => tenant_active(&mut db.clone(), user.tenant)
            .await
            .map_err(|_| SignInError::Throttled(Throttled::Unavailable))?,
        _ => false,
    };
    let succeeded = ok && tenant_ok;
    record_attempt(db, email, address, succeeded)
        .await
        .map_err(|_| SignInError::Throttled(Throttled::Unavailable))?;
    match found {
        Some((user, _)) if succeeded => Ok(user),
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
}
