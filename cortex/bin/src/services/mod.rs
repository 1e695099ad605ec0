//! Cortex's hand-written rules around its generated entities: the `admin` role keeps every
//! permission and cannot be deleted, every tenant keeps an active administrator and nobody deletes
//! the tenant they are signed in to (nobody locks a tenant out), a setting's value must fit its
//! key's schema, an app must be installed to be registered, and a user's roles must exist.

use cortex_types::{
    AppRegistrationCreate, Role, RoleCreate, Setting, SettingCreate, Tenant, User, UserCreate,
};
use prefiq_runtime::{Db, Executor, FieldError, Problem, RequestContext, SqlValue, Tx};

use crate::CortexService;

/// The Cortex service.
#[derive(Debug, Clone)]
pub struct Service {
    #[allow(dead_code)]
    db: Db,
}

impl Service {
    /// A service over Cortex's database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn invalid(pointer: &str, detail: impl Into<String>) -> Problem {
    Problem::refused(vec![FieldError {
        pointer: pointer.to_owned(),
        detail: detail.into(),
        keyword: None,
    }])
}

fn check_setting(input: &SettingCreate) -> Result<(), Problem> {
    crate::settings::check(input.key.as_ref(), &input.value)
        .map(|_| ())
        .map_err(|why| invalid("/value", why))
}

/// The roles of `names` that do not exist.
async fn unknown_roles(tx: &mut Tx, names: &[String]) -> Result<Vec<String>, Problem> {
    let rows = tx
        .fetch_all(prefiq_runtime::Sql::new("SELECT name FROM roles"), vec![])
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

async fn check_roles(tx: &mut Tx, input: &UserCreate) -> Result<(), Problem> {
    let unknown = unknown_roles(tx, &input.roles).await?;
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            "/roles",
            format!("no such role: {}", unknown.join(", ")),
        ))
    }
}

/// A global setting (no tenant) is unique per key, which the database's unique index cannot
/// say of NULLs.
async fn check_single_default(
    tx: &mut Tx,
    input: &SettingCreate,
    own: Option<&Setting>,
) -> Result<(), Problem> {
    if input.for_tenant.is_some() {
        return Ok(());
    }
    let statement = tx.pick(
        "SELECT id FROM settings WHERE key = $1 AND for_tenant IS NULL",
        "SELECT id FROM settings WHERE key = ?1 AND for_tenant IS NULL",
    );
    let rows = tx
        .fetch_all(statement, vec![SqlValue::Text(input.key.to_string())])
        .await?;
    let taken = rows
        .iter()
        .filter_map(|r| r.req::<prefiq_runtime::deps::uuid::Uuid>(0).ok())
        .any(|id| own.is_none_or(|o| o.id != id));
    if taken {
        return Err(Problem::conflict(format!(
            "the global default of `{}` exists already; change that one",
            input.key
        )));
    }
    Ok(())
}

/// Whether a user keeps their tenant manageable: active, with the `admin` role.
fn administers(active: bool, roles: &[String]) -> bool {
    active && roles.iter().any(|r| r == "admin")
}

/// Refuses to take the last active administrator from a tenant: `current` stops administering
/// it (`next` is what it becomes; none when it is deleted). Concurrent demotions in one tenant
/// queue on a lock of that tenant's administrators (PostgreSQL; SQLite runs one write at a
/// time), so two of them cannot each count on the other.
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
    let tenant = SqlValue::Uuid(current.tenant_id);
    if tx.dialect() == prefiq_runtime::Dialect::Postgres {
        tx.execute(
            prefiq_runtime::Sql::new(
                "SELECT pg_advisory_xact_lock(hashtext('prefiq.admins.' || $1::text))",
            ),
            vec![tenant.clone()],
        )
        .await?;
    }
    let statement = tx.pick(
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id <> $2 AND active AND roles @> '[\"admin\"]'::jsonb",
        "SELECT COUNT(*) FROM users, json_each(users.roles) WHERE users.tenant_id = ?1 AND users.id <> ?2 AND users.active AND json_each.value = 'admin'",
    );
    let others: i64 = tx
        .fetch_optional(statement, vec![tenant, SqlValue::Uuid(current.id)])
        .await?
        .map(|r| r.req::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    if others == 0 {
        return Err(Problem::conflict(format!(
            "{} is the last active administrator of their tenant: give another user of it the admin role first",
            current.email
        )));
    }
    Ok(())
}

impl CortexService for Service {
    async fn before_delete_user(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        current: &User,
    ) -> Result<(), Problem> {
        keep_an_administrator(tx, current, None).await
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
        _ctx: &RequestContext,
        tx: &mut Tx,
        input: &mut SettingCreate,
    ) -> Result<(), Problem> {
        check_setting(input)?;
        check_single_default(tx, input, None).await
    }

    async fn before_update_setting(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        current: &Setting,
        next: &mut SettingCreate,
    ) -> Result<(), Problem> {
        check_setting(next)?;
        check_single_default(tx, next, Some(current)).await
    }

    async fn before_update_role(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        current: &Role,
        next: &mut RoleCreate,
    ) -> Result<(), Problem> {
        if current.name == "admin" && (next.name != "admin" || next.permissions != ["*"]) {
            return Err(Problem::conflict(
                "the admin role keeps its name and every permission",
            ));
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
        let statement = tx.pick(
            "SELECT COUNT(*) FROM users WHERE roles @> $1::jsonb",
            "SELECT COUNT(*) FROM users, json_each(users.roles) WHERE json_each.value = ?1",
        );
        let value = match tx.dialect() {
            prefiq_runtime::Dialect::Postgres => {
                SqlValue::Text(serde_json::json!([current.name]).to_string())
            }
            prefiq_runtime::Dialect::Sqlite => SqlValue::Text(current.name.clone()),
        };
        let users: i64 = tx
            .fetch_optional(statement, vec![value])
            .await?
            .map(|r| r.req::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        if users > 0 {
            return Err(Problem::conflict(format!(
                "{users} user(s) still have the role `{}`; take it from them first",
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
        check_roles(tx, input).await
    }

    async fn before_update_user(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        current: &User,
        next: &mut UserCreate,
    ) -> Result<(), Problem> {
        next.email = next.email.trim().to_lowercase();
        check_roles(tx, next).await?;
        keep_an_administrator(tx, current, Some(next)).await
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
}
