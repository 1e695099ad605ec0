//! The audit log: one entry per create, update and delete, written by the repository in the
//! write's own transaction, so a write whose entry fails is rolled back with it and no write
//! path skips it.
//!
//! The table (`prefiq_audit`) belongs to the runtime, not to an app: [`MIGRATIONS`] makes it
//! before any app's tables. It is append-only for the server. On PostgreSQL the server's role is
//! granted `SELECT` and `INSERT` only, and row-level security keeps each tenant to its own
//! entries; on SQLite, triggers refuse updates, and deletes of entries younger than a day (the
//! shortest retention).
//!
//! Reading the log is an entity like any other: Cortex's `AuditEntry` schema describes this
//! table as `read-only` and `managed: false`, so codegen gives it list and get routes, types,
//! clients and admin pages, and no migration or write path.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::db::{DbError, Executor, SqlValue};
use crate::meta::{ColumnKind, TableMeta};

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A row was inserted.
    Create,
    /// A row was changed.
    Update,
    /// A row was deleted.
    Delete,
}

impl Action {
    /// `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// What an entry shows of a secret field's values.
pub const REDACTED: &str = "[redacted]";

/// The changed members of a row, as `{"member": {"from": old, "to": new}}`: `from` is absent
/// for a create, `to` for a delete. Only `members` (what a client may write) are compared, and
/// the values of `secret` members are replaced by [`REDACTED`].
pub fn changes(
    before: Option<&Value>,
    after: Option<&Value>,
    members: &[&str],
    secret: impl Fn(&str) -> bool,
) -> Value {
    let mut out = Map::new();
    // A member a row leaves out (an optional one without a value) is null.
    let null = Value::Null;
    for member in members {
        let old = before.map(|b| b.get(*member).unwrap_or(&null));
        let new = after.map(|a| a.get(*member).unwrap_or(&null));
        let unchanged = match (old, new) {
            (Some(a), Some(b)) => a == b,
            (None, None) => true,
            // A create or delete shows the members that hold something.
            (None, Some(v)) | (Some(v), None) => v.is_null(),
        };
        if unchanged {
            continue;
        }
        let show = |value: &Value| {
            if secret(member) {
                Value::String(REDACTED.into())
            } else {
                value.clone()
            }
        };
        let mut change = Map::new();
        if let Some(old) = old {
            change.insert("from".into(), show(old));
        }
        if let Some(new) = new {
            change.insert("to".into(), show(new));
        }
        out.insert((*member).to_owned(), Value::Object(change));
    }
    Value::Object(out)
}

/// Appends an entry for `action` on the row `key` of `table`, in the transaction of `db`, for
/// the caller that transaction was begun for, to its tenant's log.
pub async fn record(
    db: &mut impl Executor,
    table: &TableMeta,
    action: Action,
    key: &str,
    changes: Value,
) -> Result<(), DbError> {
    let tenant = db.principal().map(|p| p.tenant).ok_or_else(|| {
        DbError::Internal("a write needs a caller for its audit entry: use Db::begin".into())
    })?;
    record_in(db, tenant, table, action, key, changes).await
}

/// Appends the same entry as [`record`] to `tenant`'s log: what a platform operator did to a
/// row of another tenant is written to that tenant's log too. On PostgreSQL only a platform
/// operator's transaction may append to another tenant's log.
pub async fn record_in(
    db: &mut impl Executor,
    tenant: Uuid,
    table: &TableMeta,
    action: Action,
    key: &str,
    changes: Value,
) -> Result<(), DbError> {
    let principal = db.principal().cloned().ok_or_else(|| {
        DbError::Internal("a write needs a caller for its audit entry: use Db::begin".into())
    })?;
    let sql = db.pick(
        "INSERT INTO prefiq_audit (id, tenant_id, at, actor, actor_user, credential, app, entity, entity_id, action, changes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        "INSERT INTO prefiq_audit (id, tenant_id, at, actor, actor_user, credential, app, entity, entity_id, action, changes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    );
    let credential = serde_json::to_value(principal.credential)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    // Sent with the write it records (or the commit), never on a round trip of its own; if it
    // fails, so does the transaction.
    db.defer(
        sql,
        vec![
            SqlValue::Uuid(Uuid::now_v7()),
            SqlValue::Uuid(tenant),
            SqlValue::DateTime(crate::db::now()),
            SqlValue::Text(principal.subject.clone()),
            principal
                .user
                .map(SqlValue::Uuid)
                .unwrap_or(SqlValue::Null(ColumnKind::Uuid)),
            SqlValue::Text(credential),
            SqlValue::Text(table.app.to_owned()),
            SqlValue::Text(table.entity.to_owned()),
            SqlValue::Text(key.to_owned()),
            SqlValue::Text(action.as_str().to_owned()),
            SqlValue::Json(changes),
        ],
    )
    .await?;
    Ok(())
}

/// Deletes the entries of every tenant older than `days` days; how many. Run it with the
/// migrating (owner) connection: the server's role may not delete entries.
pub async fn prune(db: &mut impl Executor, days: u32) -> Result<u64, DbError> {
    let cutoff = crate::db::now() - chrono::Duration::days(i64::from(days.max(1)));
    let sql = db.pick(
        "DELETE FROM prefiq_audit WHERE at < $1",
        "DELETE FROM prefiq_audit WHERE at < ?1",
    );
    db.execute(sql, vec![SqlValue::DateTime(cutoff)]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_name_what_moved_and_hide_secrets() {
        let before = json!({"name": "a", "token": "s1", "n": 1, "gone": "x"});
        let after = json!({"name": "b", "token": "s2", "n": 1, "gone": null});
        let diff = changes(
            Some(&before),
            Some(&after),
            &["name", "token", "n", "gone"],
            |m| m == "token",
        );
        assert_eq!(
            diff,
            json!({
                "name": {"from": "a", "to": "b"},
                "token": {"from": REDACTED, "to": REDACTED},
                "gone": {"from": "x", "to": null}
            })
        );
        let created = changes(None, Some(&after), &["name", "gone"], |_| false);
        assert_eq!(created, json!({"name": {"to": "b"}}));
        let deleted = changes(Some(&before), None, &["name"], |_| false);
        assert_eq!(deleted, json!({"name": {"from": "a"}}));
        let filled = changes(Some(&json!({})), Some(&json!({"n": 2})), &["n"], |_| false);
        assert_eq!(
            filled,
            json!({"n": {"from": null, "to": 2}}),
            "an absent member was null"
        );
    }
}
