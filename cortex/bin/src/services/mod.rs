//! Cortex's hand-written rules around its generated entities.
//!
//! - Nobody locks a tenant out: every tenant keeps an active administrator, the platform keeps
//!   an active operator, and nobody deletes or deactivates the tenant they are signed in to.
//! - A tenant's administrator never acts on a platform operator's account.
//! - Roles are each tenant's own: a new tenant gets a copy of the platform's defaults, a user's
//!   roles must exist in their tenant, and `admin` keeps every permission of its tenant.
//! - A setting's value fits its key's schema, and only platform operators set the platform's.
//! - Deactivating a tenant or a user ends every credential it holds, in the same transaction.
//! - An app must be installed to be registered.
//! - A webhook's secret is made by the server when left out; a new one keeps the old one
//!   signing for a day; its failures and why it was disabled are the server's to set, and
//!   enabling it again clears them.
//! - Notifications are made by the server; their recipient changes only whether one is read.
//! - With an SMTP server, a new user is e-mailed an invitation: a one-time link to set their
//!   password (see [`crate::notifications`]).

use cortex_types::{
    AppRegistrationCreate, Notification, NotificationCreate, Role, RoleCreate, Setting,
    SettingCreate, Tenant, TenantCreate, User, UserCreate, Webhook, WebhookCreate,
};
use prefiq_runtime::auth::Scope;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::{Db, Executor, FieldError, Problem, RequestContext, SqlValue, Tx};

use crate::CortexService;
use crate::identity;

/// The Cortex service.
#[derive(Debug, Clone)]
pub struct Service {
    #[allow(dead_code)]
    db: Db,
    notifier: crate::notifications::Notifier,
}

impl Service {
    /// A service over Cortex's database, which tells people with `notifier`.
    pub fn new(db: Db, notifier: crate::notifications::Notifier) -> Self {
        Self { db, notifier }
    }
}

fn invalid(pointer: &str, detail: impl Into<String>) -> Problem {
    Problem::refused(vec![FieldError {
        pointer: pointer.to_owned(),
        detail: detail.into(),
        keyword: None,
    }])
}

fn unavailable(error: impl std::fmt::Display) -> Problem {
    Problem::unavailable(&error)
}

/// A setting's value must fit its schema; a platform setting has one value for every tenant,
/// which only a platform operator sets.
fn check_setting(ctx: &RequestContext, input: &SettingCreate) -> Result<(), Problem> {
    let key = input.key.as_ref();
    let spec = crate::settings::spec(key)
        .ok_or_else(|| invalid("/key", format!("`{key}` is not a setting")))?;
    if spec.scope == Scope::Platform {
        ctx.require_in(Scope::Platform, "cortex.setting.update")?;
        if input.for_tenant.is_some() {
            return Err(invalid(
                "/for_tenant",
                format!(
                    "`{key}` is the platform's: it has one value for every tenant, so leave for_tenant out"
                ),
            ));
        }
    }
    crate::settings::check(key, &input.value)
        .map(|_| ())
        .map_err(|why| invalid("/value", why))
}

/// The roles of `names` that `tenant` does not have.
async fn unknown_roles(
    tx: &mut Tx,
    tenant: Uuid,
    names: &[String],
) -> Result<Vec<String>, Problem> {
    let statement = tx.pick(
        "SELECT name FROM roles WHERE tenant_id = $1",
        "SELECT name FROM roles WHERE tenant_id = ?1",
    );
    let rows = tx
        .fetch_all(statement, vec![SqlValue::Uuid(tenant)])
        .await?;
    let known: Vec<String> = rows
        .iter()
        .filter_map(|r| r.req::<String>(0).ok())
        .collect();
    Ok(names
        .iter()
        .filter(|n| !known.contains(n))
        .cloned()
        .collect())
}

/// A user's roles must be roles of their tenant, and the tenants they may switch to must exist.
async fn check_user(tx: &mut Tx, input: &UserCreate) -> Result<(), Problem> {
    let unknown = unknown_roles(tx, input.tenant_id, &input.roles).await?;
    if !unknown.is_empty() {
        return Err(invalid(
            "/roles",
            format!("their tenant has no role {}", unknown.join(", ")),
        ));
    }
    for (i, tenant) in input.tenants.iter().enumerate() {
        if !tenant_exists(tx, *tenant).await? {
            return Err(invalid(&format!("/tenants/{i}"), "no such tenant"));
        }
    }
    Ok(())
}

async fn tenant_exists(tx: &mut Tx, tenant: Uuid) -> Result<bool, Problem> {
    let statement = tx.pick(
        "SELECT 1 FROM tenants WHERE id = $1",
        "SELECT 1 FROM tenants WHERE id = ?1",
    );
    Ok(tx
        .fetch_optional(statement, vec![SqlValue::Uuid(tenant)])
        .await?
        .is_some())
}

/// A platform default (a row with no tenant) is unique per `column` value, which the database's
/// unique index cannot say of NULLs.
async fn check_single_default(
    tx: &mut Tx,
    table: &'static str,
    column: &'static str,
    value: &str,
    own: Option<Uuid>,
) -> Result<(), Problem> {
    let (tenant_column, what) = match table {
        "settings" => ("for_tenant", "setting"),
        _ => ("tenant_id", "role"),
    };
    let sql = format!(
        "SELECT id FROM {table} WHERE {column} = {} AND {tenant_column} IS NULL",
        tx.dialect().placeholder(1)
    );
    let rows = tx
        .fetch_all(
            prefiq_runtime::Sql::built(sql),
            vec![SqlValue::Text(value.to_owned())],
        )
        .await?;
    let taken = rows
        .iter()
        .filter_map(|r| r.req::<Uuid>(0).ok())
        .any(|id| own != Some(id));
    if taken {
        return Err(Problem::conflict(format!(
            "the platform's default {what} `{value}` exists already; change that one"
        )));
    }
    Ok(())
}

/// Whether a user keeps their tenant manageable: active, with the `admin` role.
fn administers(active: bool, roles: &[String]) -> bool {
    active && roles.iter().any(|r| r == "admin")
}

/// Takes a transaction-scoped lock named `name` on PostgreSQL, so that concurrent demotions
/// queue and each counts what the other left (SQLite runs one write at a time).
async fn serialise(tx: &mut Tx, name: String) -> Result<(), Problem> {
    if tx.dialect() == prefiq_runtime::Dialect::Postgres {
        tx.execute(
            prefiq_runtime::Sql::new("SELECT pg_advisory_xact_lock(hashtext($1))"),
            vec![SqlValue::Text(name)],
        )
        .await?;
    }
    Ok(())
}

async fn count(
    tx: &mut Tx,
    postgres: &'static str,
    sqlite: &'static str,
    params: Vec<SqlValue>,
) -> Result<i64, Problem> {
    let statement = tx.pick(postgres, sqlite);
    Ok(tx
        .fetch_optional(statement, params)
        .await?
        .map(|r| r.req::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// Refuses to take the last active administrator from a tenant: `current` stops administering
/// it (`next` is what it becomes; none when it is deleted).
async fn keep_an_administrator(
    tx: &mut Tx,
    current: &User,
    next: Option<&UserCreate>,
) -> Result<(), Problem> {
    if !administers(current.active, &current.roles) {
        return Ok(());
    }
    let stays =
        next.is_some_and(|n| administers(n.active, &n.roles) && n.tenant_id == current.tenant_id);
    if stays {
        return Ok(());
    }
    serialise(tx, format!("prefiq.admins.{}", current.tenant_id)).await?;
    let others = count(
        tx,
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id <> $2 AND active AND roles @> '[\"admin\"]'::jsonb",
        "SELECT COUNT(*) FROM users, json_each(users.roles) WHERE users.tenant_id = ?1 AND users.id <> ?2 AND users.active AND json_each.value = 'admin'",
        vec![SqlValue::Uuid(current.tenant_id), SqlValue::Uuid(current.id)],
    )
    .await?;
    if others == 0 {
        return Err(Problem::conflict(format!(
            "{} is the last active administrator of their tenant: give another user of it the admin role first",
            current.email
        )));
    }
    Ok(())
}

/// Refuses to take the platform's last active operator away.
async fn keep_an_operator(
    tx: &mut Tx,
    current: &User,
    next: Option<&UserCreate>,
) -> Result<(), Problem> {
    if !(current.active && current.operator) {
        return Ok(());
    }
    if next.is_some_and(|n| n.active && n.operator) {
        return Ok(());
    }
    serialise(tx, "prefiq.operators".to_owned()).await?;
    let others = count(
        tx,
        "SELECT COUNT(*) FROM users WHERE id <> $1 AND active AND operator",
        "SELECT COUNT(*) FROM users WHERE id <> ?1 AND active AND operator",
        vec![SqlValue::Uuid(current.id)],
    )
    .await?;
    if others == 0 {
        return Err(Problem::conflict(format!(
            "{} is the platform's last active operator: make another user an operator first",
            current.email
        )));
    }
    Ok(())
}

/// A tenant's administrator may not change, deactivate or delete a platform operator's account.
fn leave_operators_alone(ctx: &RequestContext, current: &User) -> Result<(), Problem> {
    if current.operator {
        ctx.require_in(Scope::Platform, "cortex.user.update")?;
    }
    Ok(())
}

/// Copies the platform's default roles into `tenant`, which has none yet.
pub async fn copy_default_roles(tx: &mut Tx, tenant: Uuid) -> Result<(), Problem> {
    let statement = tx.pick(
        "SELECT name, description, permissions FROM roles WHERE tenant_id IS NULL ORDER BY name",
        "SELECT name, description, permissions FROM roles WHERE tenant_id IS NULL ORDER BY name",
    );
    let defaults = tx.fetch_all(statement, Vec::new()).await?;
    for row in defaults {
        let mut role = RoleCreate::new(row.req(0)?)
            .with_permissions(row.req_json(2)?)
            .with_tenant_id(tenant);
        role.description = row.opt(1)?;
        crate::generated::role::insert(tx, &role).await?;
    }
    Ok(())
}

impl CortexService for Service {
    async fn before_delete_user(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        current: &User,
    ) -> Result<(), Problem> {
        leave_operators_alone(ctx, current)?;
        keep_an_operator(tx, current, None).await?;
        keep_an_administrator(tx, current, None).await
    }

    async fn after_create_tenant(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        row: &Tenant,
    ) -> Result<(), Problem> {
        copy_default_roles(tx, row.id).await
    }

    async fn before_update_tenant(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        current: &Tenant,
        next: &mut TenantCreate,
    ) -> Result<(), Problem> {
        if current.active && !next.active {
            if current.id == ctx.principal.tenant {
                return Err(Problem::conflict(
                    "this is the tenant you are signed in to: switch to another tenant to deactivate it",
                ));
            }
            // Deactivated means every credential of its users ends now, with the change.
            identity::end_tenant_credentials(tx, current.id)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn before_delete_tenant(
        &self,
        ctx: &RequestContext,
        _tx: &mut Tx,
        current: &Tenant,
    ) -> Result<(), Problem> {
        if current.id == ctx.principal.tenant {
            return Err(Problem::conflict(
                "this is the tenant you are signed in to: sign in to another tenant to delete it",
            ));
        }
        Ok(())
    }

    async fn before_create_setting(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        input: &mut SettingCreate,
    ) -> Result<(), Problem> {
        check_setting(ctx, input)?;
        if input.for_tenant.is_none() {
            check_single_default(tx, "settings", "key", input.key.as_ref(), None).await?;
        }
        Ok(())
    }

    async fn before_update_setting(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        current: &Setting,
        next: &mut SettingCreate,
    ) -> Result<(), Problem> {
        check_setting(ctx, next)?;
        if next.for_tenant.is_none() {
            check_single_default(tx, "settings", "key", next.key.as_ref(), Some(current.id))
                .await?;
        }
        Ok(())
    }

    async fn before_create_role(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        input: &mut RoleCreate,
    ) -> Result<(), Problem> {
        if input.tenant_id.is_none() {
            check_single_default(tx, "roles", "name", &input.name, None).await?;
        }
        Ok(())
    }

    async fn before_update_role(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        current: &Role,
        next: &mut RoleCreate,
    ) -> Result<(), Problem> {
        if current.name == "admin" && (next.name != "admin" || next.permissions != ["*"]) {
            return Err(Problem::conflict(
                "the admin role keeps its name and every permission",
            ));
        }
        if next.tenant_id.is_none() {
            check_single_default(tx, "roles", "name", &next.name, Some(current.id)).await?;
        }
        Ok(())
    }

    async fn before_delete_role(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        current: &Role,
    ) -> Result<(), Problem> {
        if current.name == "admin" {
            return Err(Problem::conflict("the admin role cannot be deleted"));
        }
        // A platform default is only a template: deleting it changes no tenant's copy.
        let Some(tenant) = current.tenant_id else {
            return Ok(());
        };
        // Held: `roles` contains the name (as a JSON array on PostgreSQL, an element on SQLite).
        let role = match tx.dialect() {
            prefiq_runtime::Dialect::Postgres => serde_json::json!([current.name]).to_string(),
            prefiq_runtime::Dialect::Sqlite => current.name.clone(),
        };
        let held = count(
            tx,
            "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND roles @> $2::jsonb",
            "SELECT COUNT(*) FROM users, json_each(users.roles) WHERE users.tenant_id = ?1 AND json_each.value = ?2",
            vec![SqlValue::Uuid(tenant), SqlValue::Text(role)],
        )
        .await?;
        if held > 0 {
            return Err(Problem::conflict(format!(
                "{held} user(s) still have the role `{}`; take it from them first",
                current.name
            )));
        }
        Ok(())
    }

    async fn before_create_user(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        input: &mut UserCreate,
    ) -> Result<(), Problem> {
        input.email = input.email.trim().to_lowercase();
        check_user(tx, input).await
    }

    async fn after_create_user(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        row: &User,
    ) -> Result<(), Problem> {
        if !self.notifier.mails() || !row.active {
            return Ok(());
        }
        // Who invites, by name: the caller, when a person.
        let inviter = match ctx.principal.user {
            Some(id) => crate::generated::user::find(tx, &id)
                .await
                .map_err(unavailable)?
                .map(|u| u.name),
            None => None,
        };
        let invitation = crate::notifications::SendPasswordLink {
            user_id: row.id,
            purpose: crate::notifications::Purpose::Invitation,
            inviter,
        };
        prefiq_runtime::jobs::enqueue(tx, "cortex", &invitation)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn before_update_user(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        current: &User,
        next: &mut UserCreate,
    ) -> Result<(), Problem> {
        leave_operators_alone(ctx, current)?;
        next.email = next.email.trim().to_lowercase();
        check_user(tx, next).await?;
        keep_an_operator(tx, current, Some(next)).await?;
        keep_an_administrator(tx, current, Some(next)).await?;
        // Deactivated, or moved to another tenant: whatever they held ends now.
        if (current.active && !next.active) || current.tenant_id != next.tenant_id {
            identity::end_credentials(
                tx,
                current.id,
                identity::Ending {
                    keep_session: None,
                    personal_tokens: true,
                },
            )
            .await
            .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn before_create_app_registration(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        input: &mut AppRegistrationCreate,
    ) -> Result<(), Problem> {
        let installed = input.app == "cortex"
            || cortex_apps::INSTALLED
                .iter()
                .any(|a| a.catalog.name == input.app);
        if installed {
            Ok(())
        } else {
            Err(invalid(
                "/app",
                format!(
                    "`{}` is not installed: add it to [cortex] apps in prefiq.toml and run prefiq codegen",
                    input.app
                ),
            ))
        }
    }

    async fn before_create_notification(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        _input: &mut NotificationCreate,
    ) -> Result<(), Problem> {
        Err(Problem::forbidden(
            "notifications are made by the server; mark one read with PATCH {\"read\": true}",
        ))
    }

    async fn before_update_notification(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        current: &Notification,
        next: &mut NotificationCreate,
    ) -> Result<(), Problem> {
        // Only `read` is the recipient's to change.
        let read = next.read;
        *next = NotificationCreate::from(current);
        next.read = read;
        Ok(())
    }

    async fn before_create_webhook(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        input: &mut WebhookCreate,
    ) -> Result<(), Problem> {
        if input.secret.is_none() {
            input.secret = Some(crate::webhooks::new_secret());
        }
        input.previous_secret = None;
        input.previous_secret_until = None;
        input.failures = 0;
        input.disabled_reason = None;
        Ok(())
    }

    async fn before_update_webhook(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        current: &Webhook,
        next: &mut WebhookCreate,
    ) -> Result<(), Problem> {
        if next.secret.is_none() {
            // Cleared: a new secret is made, as when rotating on purpose.
            next.secret = Some(crate::webhooks::new_secret());
        }
        if next.secret != current.secret {
            next.previous_secret = current.secret.clone();
            next.previous_secret_until =
                Some(prefiq_runtime::db::now() + chrono::Duration::days(1));
        } else {
            next.previous_secret = current.previous_secret.clone();
            next.previous_secret_until = current.previous_secret_until;
        }
        if next.enabled && !current.enabled {
            next.failures = 0;
            next.disabled_reason = None;
        } else {
            next.failures = current.failures;
            next.disabled_reason = current.disabled_reason.clone();
        }
        Ok(())
    }
}
