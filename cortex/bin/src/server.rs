//! Cortex's start-up and composition: one database for everything, every migration in
//! dependency order (the runtime's, Cortex's, its identity store's, then each installed app's),
//! the default tenant, roles and registry, the first administrator, and one router that serves
//! every app, Cortex's API, the token endpoints, the merged document, the reference and the
//! admin UI.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use prefiq_runtime::auth::{
    Auth, Authenticated, Authenticator, Credential, KeySet, Principal, SigningKey, TokenVerifier,
    Unauthenticated, bearer,
};
use prefiq_runtime::catalog::{AppCatalog, Installed};
use prefiq_runtime::db::PoolOptions;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::migrate::{self, Migration};
use prefiq_runtime::serve::Environment;
use prefiq_runtime::{Db, Executor, Problem, RequestContext, SqlValue};
use serde_json::Value;

use crate::config::{Config, TenancyMode};
use crate::identity;
use crate::oauth::{self, Tokens};
use prefiq_runtime::db::Layout;

/// The ledger name of the identity store's migrations.
pub const IDENTITY: &str = "cortex-identity";

/// The identity store's migrations.
pub const IDENTITY_MIGRATIONS: &[Migration] = &[
    Migration::embedded(
        1,
        "identity",
        include_str!("../identity/postgres/0001_identity.sql"),
        include_str!("../identity/sqlite/0001_identity.sql"),
    ),
    Migration::embedded(
        2,
        "credential_tenants",
        include_str!("../identity/postgres/0002_credential_tenants.sql"),
        include_str!("../identity/sqlite/0002_credential_tenants.sql"),
    ),
    Migration::embedded(
        3,
        "credential_security",
        include_str!("../identity/postgres/0003_credential_security.sql"),
        include_str!("../identity/sqlite/0003_credential_security.sql"),
    ),
    Migration::embedded(
        4,
        "notifications",
        include_str!("../identity/postgres/0004_notifications.sql"),
        include_str!("../identity/sqlite/0004_notifications.sql"),
    ),
];

/// The apps Cortex runs.
pub fn installed() -> &'static [Installed] {
    cortex_apps::INSTALLED
}

/// Applies every migration with the owner connection, in dependency order: the runtime's,
/// Cortex's, the identity store's, then each installed app's.
pub async fn migrate_all(owner: &Db) -> Result<(), String> {
    // With a schema per tenant, the apps' tables are made in each tenant's schema instead
    // (see [`provision`]); Cortex's own tables and the audit log stay shared.
    let apps: Vec<(&str, &[Migration])> = match owner.layout() {
        Layout::Rows => installed()
            .iter()
            .map(|a| (a.catalog.name, a.catalog.migrations))
            .collect(),
        Layout::Schemas => Vec::new(),
    };
    let steps: Vec<(&str, &[Migration])> =
        std::iter::once(("cortex", crate::generated::MIGRATIONS))
            .chain(std::iter::once((IDENTITY, IDENTITY_MIGRATIONS)))
            .chain(apps)
            .collect();
    for (app, migrations) in steps {
        let report = migrate::apply(owner, app, migrations)
            .await
            .map_err(|e| format!("{app}: {e}"))?;
        if !report.applied.is_empty() {
            tracing::info!(app, applied = ?report.applied, "database migrated");
        }
    }
    Ok(())
}

/// The owner connection (migrations, maintenance) and the request pool (as the app role).
pub async fn connect(config: &Config) -> Result<(Db, Db), String> {
    let url = config.database_url();
    let shown = prefiq_runtime::db::redact_url(&url);
    let layout = match config.tenancy {
        TenancyMode::Rows => Layout::Rows,
        TenancyMode::Schemas if url.starts_with("postgres") => Layout::Schemas,
        TenancyMode::Schemas => {
            return Err(
                "PREFIQ_TENANCY=schemas needs PostgreSQL (DATABASE_URL=postgres://...)".into(),
            );
        }
    };
    let owner = Db::connect(
        &url,
        &PoolOptions {
            max_connections: 2,
            ..PoolOptions::default()
        },
    )
    .await
    .map_err(|e| format!("cannot open {shown}: {e}"))?
    .with_layout(layout);
    if !config.no_migrate {
        migrate_all(&owner).await?;
    }
    let options = PoolOptions {
        statement_timeout: Some(Duration::from_millis(config.limits.statement_timeout)),
        ..PoolOptions::serving(config.max_connections)
    };
    // Requests log in as a role that row-level security binds, never as the migrating user.
    let db = prefiq_runtime::db::connect_server(
        &owner,
        prefiq_runtime::db::ServerLogin {
            url: &url,
            app_url: config.app_database_url.as_deref(),
            production: config.environment == Environment::Production,
        },
        &options,
    )
    .await?
    .with_layout(layout);
    Ok((owner, db))
}

/// The tenants whose schemas are migrated, with a schema per tenant.
#[derive(Clone, Default)]
pub struct Provisioned(Arc<tokio::sync::Mutex<std::collections::HashSet<Uuid>>>);

/// With a schema per tenant, makes `tenant`'s schema and applies every installed app's pending
/// migrations to it (once per process; a failed run resumes where it stopped).
pub async fn provision(owner: &Db, provisioned: &Provisioned, tenant: Uuid) -> Result<(), String> {
    if owner.layout() != Layout::Schemas {
        return Ok(());
    }
    let mut done = provisioned.0.lock().await;
    if done.contains(&tenant) {
        return Ok(());
    }
    let schema = prefiq_runtime::db::tenant_schema(tenant);
    for app in installed() {
        let report =
            migrate::apply_in_schema(owner, &schema, app.catalog.name, app.catalog.migrations)
                .await
                .map_err(|e| {
                    format!("tenant {tenant} ({schema}), app {}: {e}", app.catalog.name)
                })?;
        if !report.applied.is_empty() {
            tracing::info!(%tenant, app = app.catalog.name, applied = ?report.applied, "tenant schema migrated");
        }
    }
    done.insert(tenant);
    Ok(())
}

/// Every tenant's id.
pub async fn tenants(db: &Db) -> Result<Vec<Uuid>, String> {
    let rows = db
        .fetch_all("SELECT id FROM tenants", vec![])
        .await
        .map_err(|e| e.to_string())?;
    rows.iter()
        .map(|r| r.req::<Uuid>(0).map_err(|e| e.to_string()))
        .collect()
}

/// The key tokens are signed with: `PREFIQ_SIGNING_KEY`, or outside production a key kept in
/// `.prefiq/cortex-signing.key` (made on first start, readable by the owner only).
pub fn signing_key(config: &Config) -> Result<SigningKey, String> {
    if let Some(text) = &config.signing_key {
        return SigningKey::parse(text).map_err(|e| format!("PREFIQ_SIGNING_KEY: {e}"));
    }
    if config.environment == Environment::Production {
        return Err("production mode (PREFIQ_ENV=production) needs PREFIQ_SIGNING_KEY; make one with `cortex key generate`".into());
    }
    let path = std::path::Path::new(".prefiq/cortex-signing.key");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(_) => {
            let text = SigningKey::generate_text(&format!(
                "dev-{}",
                &Uuid::now_v7().simple().to_string()[..8]
            ));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            write_private(path, &text)?;
            tracing::warn!(
                "no PREFIQ_SIGNING_KEY: made a development key in {}; production needs PREFIQ_SIGNING_KEY",
                path.display()
            );
            text
        }
    };
    SigningKey::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Who a request to Cortex is: an access token Cortex signed, or a personal access token.
/// (Admin UI sessions authenticate only the admin pages, never the API, so that no cookie can
/// make an API call on someone's behalf.)
pub struct CortexAuth {
    db: Db,
    verifier: TokenVerifier,
}

impl Authenticator for CortexAuth {
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> Authenticated<'a> {
        Box::pin(async move {
            let token = bearer(&parts.headers)?.ok_or(Unauthenticated::Missing)?;
            let unchecked = |_| Unauthenticated::Invalid("it cannot be checked right now".into());
            if token.starts_with(identity::PERSONAL_TOKEN_PREFIX) {
                let mut tx = identity::read(&self.db).await.map_err(unchecked)?;
                let (user, tenant) = identity::personal_token_user(&mut tx, token)
                    .await
                    .map_err(unchecked)?
                    .ok_or_else(|| {
                        Unauthenticated::Invalid(
                            "the personal access token is unknown, expired or revoked, or its user or tenant is deactivated".into(),
                        )
                    })?;
                let principal =
                    identity::principal(&mut tx, &user, tenant, Credential::PersonalToken)
                        .await
                        .map_err(unchecked)?;
                tx.end_read();
                identity::touch_personal_token(&self.db, token)
                    .await
                    .map_err(unchecked)?;
                return Ok(principal);
            }
            let claims = self.verifier.verify(token)?;
            // A signature proves who issued the token, not that its tenant and user may still
            // act: Cortex checks them on every request (an app alone trusts the token until it
            // expires, a few minutes).
            let mut tx = identity::read(&self.db).await.map_err(unchecked)?;
            let still = still_valid(&mut tx, &claims).await.map_err(unchecked)?;
            tx.end_read();
            if let Some(why) = still {
                return Err(Unauthenticated::Invalid(why.into()));
            }
            Ok(claims.principal())
        })
    }
}

/// Why an access token Cortex signed no longer holds, if it does not: its tenant is gone or
/// deactivated, its user is gone or deactivated, or either's credentials ended after it was
/// issued (a deactivation, a password set).
async fn still_valid(
    tx: &mut prefiq_runtime::Tx,
    claims: &prefiq_runtime::auth::Claims,
) -> Result<Option<&'static str>, prefiq_runtime::db::DbError> {
    let user: Option<Uuid> = (claims.kind == "user")
        .then(|| claims.sub.parse().ok())
        .flatten();
    let statement = tx.pick(
        "SELECT t.active, u.active, eu.at, et.at FROM tenants t \
         LEFT JOIN users u ON u.id = $2 \
         LEFT JOIN cortex_credentials_ended eu ON eu.subject = $3 \
         LEFT JOIN cortex_credentials_ended et ON et.subject = $4 \
         WHERE t.id = $1",
        "SELECT t.active, u.active, eu.at, et.at FROM tenants t \
         LEFT JOIN users u ON u.id = ?2 \
         LEFT JOIN cortex_credentials_ended eu ON eu.subject = ?3 \
         LEFT JOIN cortex_credentials_ended et ON et.subject = ?4 \
         WHERE t.id = ?1",
    );
    let row = tx
        .fetch_optional(
            statement,
            vec![
                SqlValue::Uuid(claims.tid),
                user.map(SqlValue::Uuid)
                    .unwrap_or(SqlValue::Null(prefiq_runtime::db::ColumnKind::Uuid)),
                SqlValue::Text(identity::ending_subject("user", user.unwrap_or_default())),
                SqlValue::Text(identity::ending_subject("tenant", claims.tid)),
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Some("its tenant no longer exists"));
    };
    if !row.req::<bool>(0)? {
        return Ok(Some("its tenant is deactivated"));
    }
    let issued = claims.issued_at_micros();
    let ended_since = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.is_some_and(|at| at.timestamp_micros() > issued)
    };
    if ended_since(row.opt(3)?) {
        return Ok(Some("its tenant's credentials ended after it was issued"));
    }
    if user.is_none() {
        return Ok(None);
    }
    let active: Option<bool> = row.opt(1)?;
    if active != Some(true) {
        return Ok(Some("its user is deactivated or gone"));
    }
    if ended_since(row.opt(2)?) {
        return Ok(Some(
            "its user's credentials ended after it was issued (a password set, a deactivation)",
        ));
    }
    Ok(None)
}

#[derive(Clone)]
struct Gate {
    db: Db,
    owner: Db,
    provisioned: Provisioned,
    auth: Auth,
    apps: Arc<Vec<String>>,
}

/// Answers 404 for an app its registration disables, or the caller's tenant turned off; the
/// caller is authenticated here once, for the handler too.
async fn gate(State(gate): State<Gate>, request: Request<Body>, next: Next) -> Response {
    let app = request
        .uri()
        .path()
        .strip_prefix("/api/")
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    let Some(app) = app.filter(|a| gate.apps.contains(a)) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let principal = match parts.extensions.get::<Arc<Principal>>() {
        Some(p) => Some(p.clone()),
        None => match gate.auth.0.authenticate(&parts).await {
            Ok(p) => {
                let p = Arc::new(p);
                parts.extensions.insert(p.clone());
                Some(p)
            }
            Err(_) => None,
        },
    };
    if let Some(principal) = principal {
        let row = async {
            let mut tx = identity::read(&gate.db).await?;
            let statement = tx.pick(
                "SELECT (SELECT disabled_apps FROM tenants WHERE id = $1), (SELECT enabled FROM app_registrations WHERE app = $2)",
                "SELECT (SELECT disabled_apps FROM tenants WHERE id = ?1), (SELECT enabled FROM app_registrations WHERE app = ?2)",
            );
            let row = tx
                .fetch_optional(
                    statement,
                    vec![
                        SqlValue::Uuid(principal.tenant),
                        SqlValue::Text(app.clone()),
                    ],
                )
                .await;
            tx.end_read();
            row
        }
        .await;
        let off = match row {
            Ok(Some(row)) => {
                let disabled: Vec<String> = row.opt_json(0).ok().flatten().unwrap_or_default();
                let enabled: bool = row.opt(1).ok().flatten().unwrap_or(true);
                !enabled || disabled.contains(&app)
            }
            Ok(None) => false,
            Err(error) => return Problem::unavailable(&error).into_response(),
        };
        if off {
            return Problem::not_found("no route matches this URL").into_response();
        }
        if let Err(error) = provision(&gate.owner, &gate.provisioned, principal.tenant).await {
            tracing::error!(%error, "cannot prepare the tenant's schema");
            return Problem::unavailable(&"the tenant's tables cannot be prepared; try again")
                .into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Makes sure the default tenant, the built-in roles, the registry and (with `first_admin`)
/// the first administrator exist; returns the one-time password it made, if it made one.
pub async fn bootstrap(
    db: &Db,
    owner: &Db,
    config: &Config,
    first_admin: bool,
) -> Result<Option<(String, String)>, String> {
    let system = identity::system();
    let mut tx = db.begin(&system).await.map_err(|e| e.to_string())?;
    ensure_default_tenant(&mut tx).await?;
    let catalogs: Vec<&'static AppCatalog> = std::iter::once(&crate::generated::CATALOG)
        .chain(installed().iter().map(|a| a.catalog))
        .collect();
    ensure_default_roles(&mut tx, &catalogs).await?;
    register_apps(&mut tx, owner, &catalogs).await?;
    let users = ensure_operators(&mut tx).await?;
    let made = if users == 0 && first_admin {
        make_first_admin(&mut tx, config).await?
    } else {
        None
    };
    register_frontends(&mut tx).await?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(made)
}

/// The text of a database error, as bootstrap reports it.
fn problem(error: prefiq_runtime::db::DbError) -> String {
    error.to_string()
}

/// The default tenant.
async fn ensure_default_tenant(tx: &mut prefiq_runtime::Tx) -> Result<(), String> {
    use crate::generated::tenant;
    if tenant::find(tx, &prefiq_runtime::auth::DEFAULT_TENANT)
        .await
        .map_err(problem)?
        .is_none()
    {
        let sql = tx.pick(
            "INSERT INTO tenants (id, name, slug, active, disabled_apps, created_at, updated_at, version) VALUES ($1, 'Default', 'default', true, '[]'::jsonb, $2, $2, 1)",
            "INSERT INTO tenants (id, name, slug, active, disabled_apps, created_at, updated_at, version) VALUES (?1, 'Default', 'default', 1, '[]', ?2, ?2, 1)",
        );
        tx.execute(
            sql,
            vec![
                SqlValue::Uuid(prefiq_runtime::auth::DEFAULT_TENANT),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await
        .map_err(problem)?;
    }
    Ok(())
}

/// The platform's default roles (no tenant): `admin` has every permission of its tenant; the
/// others start with what the schemas grant them. Each tenant works with its own copy: every
/// tenant without roles (a new one, or one made before roles were per tenant) gets a copy of
/// the defaults.
async fn ensure_default_roles(
    tx: &mut prefiq_runtime::Tx,
    catalogs: &[&'static AppCatalog],
) -> Result<(), String> {
    use crate::generated::role;
    let every_role = role_rows(tx).await?;
    let mut defaults = BTreeMap::new();
    for existing in every_role.iter().filter(|r| r.tenant_id.is_none()) {
        defaults.insert(existing.name.clone(), existing.clone());
    }
    let mut wanted: Vec<String> = vec![
        "admin".into(),
        "member".into(),
        "viewer".into(),
        "manager".into(),
    ];
    for catalog in catalogs {
        for permission in catalog.permissions {
            wanted.extend(permission.roles.iter().map(|r| (*r).to_owned()));
        }
    }
    wanted.sort();
    wanted.dedup();
    for name in &wanted {
        if !defaults.contains_key(name) {
            let input = cortex_types::RoleCreate::new(name.clone())
                .with_permissions(if name == "admin" {
                    vec!["*".into()]
                } else {
                    vec![]
                })
                .with_description(match name.as_str() {
                    "admin" => "Every permission of its tenant (never the platform's).".to_owned(),
                    "member" => "Works with the apps' data.".to_owned(),
                    "viewer" => "Reads the apps' data.".to_owned(),
                    "manager" => "A member who also sees every row of owned entities.".to_owned(),
                    _ => format!("Granted by the apps' schemas: {name}."),
                });
            let made = role::insert(tx, &input).await.map_err(problem)?;
            defaults.insert(name.clone(), made);
        }
    }
    let with_roles: std::collections::BTreeSet<Uuid> =
        every_role.iter().filter_map(|r| r.tenant_id).collect();
    let every_tenant = tx
        .fetch_all(prefiq_runtime::Sql::new("SELECT id FROM tenants"), vec![])
        .await
        .map_err(problem)?;
    for row in every_tenant {
        let tenant: Uuid = row.req(0).map_err(problem)?;
        if !with_roles.contains(&tenant) {
            crate::services::copy_default_roles(tx, tenant)
                .await
                .map_err(|p| p.detail.unwrap_or_default())?;
        }
    }
    Ok(())
}

/// The registry of installed apps; an app seen for the first time adds its default grants to
/// the platform's roles and to every tenant's copy of them.
async fn register_apps(
    tx: &mut prefiq_runtime::Tx,
    owner: &Db,
    catalogs: &[&'static AppCatalog],
) -> Result<(), String> {
    use crate::generated::{app_registration, role};
    let registered = app_registration_rows(tx).await?;
    for catalog in catalogs {
        let applied: Vec<i64> = migrate::applied(owner, catalog.name)
            .await
            .map(|rows| rows.into_iter().map(|r| r.0).collect())
            .unwrap_or_default();
        match registered.iter().find(|r| r.app == catalog.name) {
            Some(existing) => {
                if existing.app_version != catalog.version || existing.migrations != applied {
                    let mut next = cortex_types::AppRegistrationCreate::from(existing);
                    next.app_version = catalog.version.to_owned();
                    next.migrations = applied;
                    app_registration::update(tx, existing, &next)
                        .await
                        .map_err(problem)?;
                }
            }
            None => {
                let input = cortex_types::AppRegistrationCreate::new(
                    catalog.name.to_owned(),
                    catalog.version.to_owned(),
                )
                .with_migrations(applied)
                .with_description(format!(
                    "{} entities, {} permissions",
                    catalog.entities.len(),
                    catalog.permissions.len()
                ));
                app_registration::insert(tx, &input)
                    .await
                    .map_err(problem)?;
                let roles = role_rows(tx).await?;
                for current in &roles {
                    if current.name == "admin" {
                        continue;
                    }
                    let granted: Vec<&str> = catalog
                        .permissions
                        .iter()
                        .filter(|p| p.roles.contains(&current.name.as_str()))
                        .filter(|p| !current.permissions.iter().any(|q| q == p.name))
                        .map(|p| p.name)
                        .collect();
                    if granted.is_empty() {
                        continue;
                    }
                    let mut next = cortex_types::RoleCreate::from(current);
                    next.permissions
                        .extend(granted.iter().map(|p| (*p).to_owned()));
                    role::update(tx, current, &next).await.map_err(problem)?;
                }
            }
        }
    }
    Ok(())
}

/// The platform's operators: the first administrator made at installation. A database made
/// before operators existed makes its default tenant's administrators operators once. Returns
/// how many users there are.
async fn ensure_operators(tx: &mut prefiq_runtime::Tx) -> Result<i64, String> {
    let users = count(tx, "SELECT COUNT(*) FROM users").await?;
    let operators = count(tx, "SELECT COUNT(*) FROM users WHERE operator AND active").await?;
    if users > 0 && operators == 0 {
        let promoted = tx
            .execute(
                tx.pick(
                    "UPDATE users SET operator = true WHERE tenant_id = $1 AND active AND roles @> '[\"admin\"]'::jsonb",
                    "UPDATE users SET operator = 1 WHERE tenant_id = ?1 AND active AND EXISTS (SELECT 1 FROM json_each(users.roles) WHERE json_each.value = 'admin')",
                ),
                vec![SqlValue::Uuid(prefiq_runtime::auth::DEFAULT_TENANT)],
            )
            .await
            .map_err(problem)?;
        tracing::warn!(
            promoted,
            "no platform operator: the default tenant's administrators are its operators now"
        );
    }
    Ok(users)
}

/// The first administrator, a platform operator of the default tenant, with the configured
/// password, or an invitation e-mailed to PREFIQ_ADMIN_EMAIL where Cortex has an SMTP server,
/// or a one-time password (returned with the e-mail address to sign in with).
async fn make_first_admin(
    tx: &mut prefiq_runtime::Tx,
    config: &Config,
) -> Result<Option<(String, String)>, String> {
    let email = config
        .admin_email
        .clone()
        .unwrap_or_else(|| "admin@localhost".into());
    let invited = config.admin_password.is_none()
        && config.admin_email.is_some()
        && config.notifier()?.mails();
    let (password, generated) = match &config.admin_password {
        Some(password) => (password.clone(), false),
        None => (identity::new_secret()[..20].to_owned(), true),
    };
    identity::check_new_password(&password).map_err(|e| format!("PREFIQ_ADMIN_PASSWORD: {e}"))?;
    let input = cortex_types::UserCreate::new(
        email.clone(),
        "Administrator".into(),
        prefiq_runtime::auth::DEFAULT_TENANT,
    )
    .with_roles(vec!["admin".into()])
    .with_operator(true);
    let admin = crate::generated::user::insert(tx, &input)
        .await
        .map_err(problem)?;
    if invited {
        let invitation = crate::notifications::SendPasswordLink {
            user_id: admin.id,
            purpose: crate::notifications::Purpose::Invitation,
            inviter: None,
        };
        prefiq_runtime::jobs::enqueue(tx, "cortex", &invitation)
            .await
            .map_err(problem)?;
        tracing::info!(email = %email, "the first administrator is e-mailed an invitation to set a password");
        return Ok(None);
    }
    identity::set_password(tx, admin.id, &password).await?;
    Ok(generated.then_some((email, password)))
}

/// Each app's frontend is a public client (PKCE) that may only be sent back to its own page on
/// this server: the redirect URI is a path, so a code never leaves the origin that issued it.
async fn register_frontends(tx: &mut prefiq_runtime::Tx) -> Result<(), String> {
    for name in frontends() {
        let sql = tx.pick(
            "INSERT INTO cortex_clients (client_id, name, secret_hash, redirect_uris, tenant_id, roles, created_at) VALUES ($1, $2, NULL, $3, $4, '[]'::jsonb, $5) ON CONFLICT (client_id) DO NOTHING",
            "INSERT INTO cortex_clients (client_id, name, secret_hash, redirect_uris, tenant_id, roles, created_at) VALUES (?1, ?2, NULL, ?3, ?4, '[]', ?5) ON CONFLICT (client_id) DO NOTHING",
        );
        tx.execute(
            sql,
            vec![
                SqlValue::Text(frontend_client(name)),
                SqlValue::Text(format!("The {name} frontend")),
                SqlValue::Json(serde_json::json!([format!("/apps/{name}/")])),
                SqlValue::Uuid(prefiq_runtime::auth::DEFAULT_TENANT),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await
        .map_err(problem)?;
    }
    Ok(())
}

async fn count(tx: &mut prefiq_runtime::Tx, sql: &'static str) -> Result<i64, String> {
    tx.fetch_optional(prefiq_runtime::Sql::new(sql), vec![])
        .await
        .map_err(|e| e.to_string())?
        .map(|r| r.req::<i64>(0))
        .transpose()
        .map_err(|e| e.to_string())
        .map(Option::unwrap_or_default)
}

/// Every role: the platform's defaults and every tenant's (the server reads them all).
async fn role_rows(tx: &mut prefiq_runtime::Tx) -> Result<Vec<cortex_types::Role>, String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut pairs = vec![("limit".to_owned(), "1000".to_owned())];
        pairs.extend(cursor.take().map(|c| ("cursor".to_owned(), c)));
        let query = prefiq_runtime::list::ListQuery::parse(&crate::generated::role::TABLE, &pairs)
            .map_err(|p| p.detail.unwrap_or_default())?;
        let page = prefiq_runtime::crud::list::<crate::generated::role::RoleResource>(tx, query)
            .await
            .map_err(|e| e.to_string())?;
        out.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

async fn app_registration_rows(
    tx: &mut prefiq_runtime::Tx,
) -> Result<Vec<cortex_types::AppRegistration>, String> {
    let query = prefiq_runtime::list::ListQuery::parse(
        &crate::generated::app_registration::TABLE,
        &[("limit".into(), "1000".into())],
    )
    .map_err(|p| p.detail.unwrap_or_default())?;
    let page = prefiq_runtime::crud::list::<
        crate::generated::app_registration::AppRegistrationResource,
    >(tx, query)
    .await
    .map_err(|e| e.to_string())?;
    Ok(page.items)
}

/// Who the caller is, and what they may do: its tenant's permissions, and whether it is a
/// platform operator.
async fn me(ctx: RequestContext) -> axum::Json<Value> {
    let p = &ctx.principal;
    axum::Json(serde_json::json!({
        "subject": p.subject,
        "user": p.user,
        "tenant": p.tenant,
        "roles": p.roles,
        "teams": p.teams,
        "permissions": p.permissions,
        "operator": p.operator,
    }))
}

async fn settings_schema(_ctx: RequestContext) -> axum::Json<Value> {
    axum::Json(crate::settings::catalog())
}

/// Everything the server needs, once started.
pub struct Started {
    /// The router, with the shared middleware.
    pub router: Router,
    /// The request pool.
    pub db: Db,
    /// The owner connection.
    pub owner: Db,
}

/// What a deployment's migration job runs: every migration, the roles and default tenant, and,
/// with a schema per tenant, every tenant's schema; then it closes the connections.
pub async fn migrate(config: &Config) -> Result<(), String> {
    let (owner, db) = connect(config).await?;
    bootstrap(&db, &owner, config, false).await?;
    if owner.layout() == Layout::Schemas {
        let provisioned = Provisioned::default();
        for tenant in tenants(&owner).await? {
            provision(&owner, &provisioned, tenant).await?;
        }
    }
    db.close().await;
    owner.close().await;
    Ok(())
}

/// Connects, migrates, bootstraps and builds the router.
pub async fn start(config: &Config) -> Result<Started, String> {
    let key = signing_key(config)?;
    // Checked before anything is opened, so a wrong setting changes nothing.
    config.public_url()?;
    if config.webhook_allow_private && config.environment == Environment::Production {
        return Err(
            "PREFIQ_WEBHOOK_ALLOW_PRIVATE lets webhooks reach private addresses: not in production"
                .into(),
        );
    }
    let (owner, db) = connect(config).await?;
    if let Some((email, password)) = bootstrap(&db, &owner, config, true).await? {
        // Shown once, on the terminal that started the first run (never logged).
        eprintln!(
            "\n  Cortex made the first administrator:\n    e-mail:   {email}\n    password: {password}\n  Sign in at /login and change it. It is not shown again.\n"
        );
    }
    // With a schema per tenant, every tenant's schema is brought up to date now, so that a
    // failure shows at start-up (a later start resumes where it stopped).
    let provisioned = Provisioned::default();
    if owner.layout() == Layout::Schemas && !config.no_migrate {
        for tenant in tenants(&owner).await? {
            provision(&owner, &provisioned, tenant).await?;
        }
    }
    let router = build(config, key, db.clone(), owner.clone(), provisioned)?;
    Ok(Started { router, db, owner })
}

/// Whether the database answers `SELECT 1` within two seconds, as the migrating user: the
/// probe of a worker process (`cortex probe --database`).
pub async fn probe_database(config: &Config) -> Result<(), String> {
    let url = config.database_url();
    let shown = prefiq_runtime::db::redact_url(&url);
    let answered = tokio::time::timeout(Duration::from_secs(2), async {
        let db = Db::connect(
            &url,
            &PoolOptions {
                max_connections: 1,
                ..PoolOptions::default()
            },
        )
        .await?;
        let answer = db.fetch_optional("SELECT 1", vec![]).await;
        db.close().await;
        answer
    })
    .await;
    match answered {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(format!("{shown} did not answer: {error}")),
        Err(_) => Err(format!("{shown} did not answer within two seconds")),
    }
}

/// The router over `db` (and `owner`, to prepare tenants' schemas), tokens signed with `key`.
pub fn build(
    config: &Config,
    key: SigningKey,
    db: Db,
    owner: Db,
    provisioned: Provisioned,
) -> Result<Router, String> {
    let production = config.environment == Environment::Production;
    let keys = KeySet {
        keys: vec![key.public().clone()],
    };
    let verifier = TokenVerifier::new(&keys, &config.public_url()?.1, oauth::ISSUER)?;
    let auth = Auth(Arc::new(CortexAuth {
        db: db.clone(),
        verifier,
    }));
    let (public_url, issuer) = config.public_url()?;
    let tokens = Arc::new(Tokens {
        db: db.clone(),
        key,
        keys,
        production,
        public_url,
        issuer,
    });
    // Every API route: Cortex's generated ones and hand-written ones, then each app's.
    let notifier = config.notifier()?;
    let service = crate::services::Service::new(db.clone(), notifier.clone());
    let mut api = crate::generated::routes(service, db.clone()).map_err(|e| e.to_string())?;
    api = api.merge(
        Router::new()
            .route("/api/cortex/me", get(me))
            .route("/api/cortex/settings/schema", get(settings_schema))
            .with_state(db.clone())
            .merge(crate::notifications::api(db.clone()))
            .merge(crate::webhooks::api(db.clone())),
    );
    let mut documents = BTreeMap::new();
    documents.insert(
        "cortex".to_owned(),
        serde_json::from_str(crate::generated::OPENAPI).unwrap_or(Value::Null),
    );
    let mut app_documents = Vec::new();
    let mut names = Vec::new();
    for app in installed() {
        let routes = (app.router)(db.clone()).map_err(|e| format!("{}: {e}", app.catalog.name))?;
        api = api.merge(routes);
        documents.insert(
            app.catalog.name.to_owned(),
            serde_json::from_str(app.catalog.openapi).unwrap_or(Value::Null),
        );
        app_documents.push((app.catalog.name, app.catalog.openapi));
        names.push(app.catalog.name.to_owned());
    }
    let gate_state = Gate {
        db: db.clone(),
        owner,
        provisioned,
        auth: auth.clone(),
        apps: Arc::new(names),
    };
    let api = api.layer(axum::middleware::from_fn_with_state(gate_state, gate));
    let merged = Arc::new(crate::docs::merged(
        crate::generated::OPENAPI,
        &app_documents,
    ));
    let reference = {
        use askama::Template as _;
        crate::docs::page(&merged)
            .render()
            .map_err(|e| e.to_string())?
    };
    let admin = Arc::new(crate::admin::Admin {
        api: api.clone(),
        db: db.clone(),
        catalogs: std::iter::once(&crate::generated::CATALOG)
            .chain(installed().iter().map(|a| a.catalog))
            .collect(),
        documents,
        tokens: tokens.clone(),
        production,
        tokens_css: crate::admin::TOKENS_CSS,
        notifier,
    });
    let document = merged.clone();
    let router = Router::new()
        .merge(api)
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json((*document).clone()) }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let page = reference.clone();
                async move { Html(page) }
            }),
        )
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .merge(oauth::routes(tokens))
        .merge(crate::admin::routes(admin))
        .merge(app_frontends(config)?);
    let router =
        prefiq_runtime::serve::with_limits(router, db, config.body_limit, auth, config.limits)
            .layer(axum::middleware::from_fn(crate::admin::security_headers));
    Ok(router)
}

/// The built frontend of each installed app found in the UI folder, at `/apps/<app>/`.
fn app_frontends(config: &Config) -> Result<Router, String> {
    let mut router = Router::new();
    let Some(dir) = &config.ui_dir else {
        return Ok(router);
    };
    for name in frontends() {
        let bundle = dir.join(name);
        if bundle.join("index.html").is_file() {
            router = router.merge(prefiq_runtime::serve::ui_routes(
                &format!("/apps/{name}"),
                &bundle,
            )?);
            tracing::info!(app = name, dir = %bundle.display(), "serving the app's frontend at /apps/{name}/");
        } else {
            tracing::warn!(app = name, dir = %bundle.display(), "no built frontend (index.html) for the app");
        }
    }
    Ok(router)
}

/// The apps whose frontends Cortex may serve: its own (`cortex/src`) and each installed app's.
fn frontends() -> impl Iterator<Item = &'static str> {
    std::iter::once(crate::generated::CATALOG.name)
        .chain(installed().iter().map(|a| a.catalog.name))
}

/// The client id of an installed app's frontend, served by Cortex at `/apps/<app>/`.
pub fn frontend_client(app: &str) -> String {
    format!("ui-{app}")
}

/// Deletes what has expired: audit entries past their retention, old sessions, codes and
/// sign-in attempts. Runs with the owner connection (the app role may not delete audit
/// entries).
pub async fn maintain(owner: &Db, db: &Db) {
    let days = crate::settings::integer(
        db,
        prefiq_runtime::auth::DEFAULT_TENANT,
        "audit.retention-days",
    )
    .await;
    let owner = owner.clone();
    match prefiq_runtime::audit::prune(&mut owner.clone(), days.clamp(1, 36500) as u32).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(entries = n, days, "pruned the audit log"),
        Err(error) => tracing::warn!(%error, "cannot prune the audit log"),
    }
    let now = prefiq_runtime::db::now();
    for sql in [
        (
            "DELETE FROM cortex_sessions WHERE expires_at < $1",
            "DELETE FROM cortex_sessions WHERE expires_at < ?1",
        ),
        (
            "DELETE FROM cortex_auth_codes WHERE expires_at < $1",
            "DELETE FROM cortex_auth_codes WHERE expires_at < ?1",
        ),
    ] {
        let statement = owner.pick(sql.0, sql.1);
        let _ = owner
            .execute(statement, vec![SqlValue::DateTime(now)])
            .await;
    }
    // Failures matter for the throttle's window, successes for as long as they make an address
    // known to its account.
    let day = now - chrono::Duration::days(1);
    let known = now - chrono::Duration::days(identity::KNOWN_ADDRESS_DAYS);
    let statement = owner.pick(
        "DELETE FROM cortex_login_attempts WHERE (NOT succeeded AND at < $1) OR at < $2",
        "DELETE FROM cortex_login_attempts WHERE (NOT succeeded AND at < ?1) OR at < ?2",
    );
    let _ = owner
        .execute(
            statement,
            vec![SqlValue::DateTime(day), SqlValue::DateTime(known)],
        )
        .await;
}

/// The job handlers, schedules and subscribers of Cortex (its own, its webhook deliveries
/// and the runtime's) and of every installed app, by app.
pub fn registries(work: &Work) -> Vec<(&'static str, prefiq_runtime::jobs::Registry)> {
    let own = (
        "cortex",
        (crate::generated::CATALOG.jobs)()
            .merge(crate::webhooks::jobs(work.webhooks))
            .merge(crate::notifications::jobs(work.notifier.clone()))
            .with_runtime_jobs(),
    );
    let apps = installed()
        .iter()
        .map(|app| (app.catalog.name, (app.catalog.jobs)()));
    std::iter::once(own).chain(apps).collect()
}

/// What a process's workers run with.
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// How many jobs of each app run at once (none when 0).
    pub workers: usize,
    /// Seconds of a claimed job's lease.
    pub lease: u64,
    /// How webhooks are delivered.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// How notifications go out.
    pub notifier: crate::notifications::Notifier,
}

/// Starts the workers of every installed app's jobs, and of Cortex's own (its webhook
/// deliveries among them) and the runtime's, and one dispatcher of every app's events (to
/// subscribers and webhooks), until `stopping` says so.
pub fn start_workers(
    work: Work,
    db: &Db,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let registries = registries(&work);
    // One dispatcher for every app's events: a subscriber may be in another app than the
    // publisher.
    let routes = registries
        .iter()
        .flat_map(|(app, registry)| prefiq_runtime::serve::event_routes(app, registry))
        .collect();
    let mut running: Vec<_> = registries
        .into_iter()
        .filter_map(|(app, registry)| {
            prefiq_runtime::serve::spawn_workers(
                app,
                db,
                registry,
                (work.workers, work.lease),
                prefiq_runtime::serve::stopped(stopping.clone()),
            )
        })
        .collect();
    if !running.is_empty() {
        let dispatcher = prefiq_runtime::events::Dispatcher::new(db.clone(), None, routes)
            .fanning_out(Arc::new(crate::webhooks::Webhooks));
        running.push(tokio::spawn(
            dispatcher.run(prefiq_runtime::serve::stopped(stopping.clone())),
        ));
    }
    running
}

/// Runs the jobs of every installed app (and Cortex's own) until SIGINT or SIGTERM, serving
/// nothing: `cortex worker`.
pub async fn work(config: &Config) -> Result<(), String> {
    let started = start(config).await?;
    let stopping = prefiq_runtime::serve::shutdown_broadcast();
    let config = Config {
        workers: config.workers.max(1),
        ..config.clone()
    };
    let workers = start_workers(config.work()?, &started.db, &stopping);
    println!("cortex: running jobs");
    for worker in workers {
        let _ = worker.await;
    }
    started.db.close().await;
    started.owner.close().await;
    Ok(())
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(config: &Config) -> Result<(), String> {
    let started = start(config).await?;
    let stopping = prefiq_runtime::serve::shutdown_broadcast();
    let workers = start_workers(config.work()?, &started.db, &stopping);
    let maintenance = {
        let (owner, db) = (started.owner.clone(), started.db.clone());
        tokio::spawn(async move {
            loop {
                maintain(&owner, &db).await;
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            }
        })
    };
    prefiq_runtime::serve::raise_open_files_limit();
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let shutdown = prefiq_runtime::serve::stopped(stopping);
    println!("listening on http://{address}");
    let apps: Vec<&str> = installed().iter().map(|a| a.catalog.name).collect();
    tracing::info!(apps = ?apps, "cortex serves /admin, /docs, /openapi.json and /api/<app>/");
    prefiq_runtime::serve::serve_connections(listener, started.router, config.limits, shutdown)
        .await
        .map_err(|e| e.to_string())?;
    for worker in workers {
        let _ = worker.await;
    }
    maintenance.abort();
    started.db.close().await;
    started.owner.close().await;
    Ok(())
}
