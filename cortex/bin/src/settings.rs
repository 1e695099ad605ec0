//! Typed settings: each key has a JSON Schema its values are checked against, a global default
//! (a `Setting` row without a tenant, or the built-in value), and per-tenant overrides.

use prefiq_runtime::auth::Scope;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::{Db, Executor, SqlValue};
use serde_json::{Value, json};

/// One setting.
#[derive(Debug)]
pub struct Spec {
    /// Its key, as in the `Setting` entity's enum.
    pub key: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The JSON Schema of its value.
    pub schema: fn() -> Value,
    /// The value when no row sets it, as JSON text.
    pub default: &'static str,
    /// Who sets it: a tenant's administrator may set a [`Scope::Tenant`] setting for their own
    /// tenant; a [`Scope::Platform`] one applies to every tenant and only platform operators set it.
    pub scope: Scope,
}

/// Every setting Cortex reads.
pub const SETTINGS: &[Spec] = &[
    Spec {
        key: "audit.retention-days",
        description: "Audit entries older than this are deleted (daily).",
        schema: || json!({"type": "integer", "minimum": 1, "maximum": 36500}),
        default: "365",
        scope: Scope::Platform,
    },
    Spec {
        key: "session.idle-minutes",
        description: "Reserved: admin UI sessions end after this long without use.",
        schema: || json!({"type": "integer", "minimum": 5, "maximum": 1440}),
        default: "720",
        scope: Scope::Tenant,
    },
    Spec {
        key: "tokens.access-minutes",
        description: "How long an access token is valid.",
        schema: || json!({"type": "integer", "minimum": 1, "maximum": 60}),
        default: "10",
        scope: Scope::Tenant,
    },
    Spec {
        key: "tokens.refresh-days",
        description: "How long a refresh token is valid.",
        schema: || json!({"type": "integer", "minimum": 1, "maximum": 90}),
        default: "30",
        scope: Scope::Tenant,
    },
    Spec {
        key: "login.max-failures",
        description: "Failed sign-ins of one account from one address within 15 minutes before that address waits 15 minutes to try the account again (other addresses are not held back).",
        schema: || json!({"type": "integer", "minimum": 3, "maximum": 100}),
        default: "10",
        scope: Scope::Platform,
    },
    Spec {
        key: "branding.name",
        description: "The name the admin UI shows.",
        schema: || json!({"type": "string", "minLength": 1, "maxLength": 60}),
        default: "\"Cortex\"",
        scope: Scope::Tenant,
    },
];

/// The spec of `key`.
pub fn spec(key: &str) -> Option<&'static Spec> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Checks `text` (JSON) against `key`'s schema; the problem in words.
pub fn check(key: &str, text: &str) -> Result<Value, String> {
    let spec = spec(key).ok_or_else(|| format!("`{key}` is not a setting"))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the value is not JSON: {e}"))?;
    let schema = (spec.schema)();
    match jsonschema_check(&schema, &value) {
        Some(problem) => Err(format!("`{key}`: {problem} (its schema: {schema})")),
        None => Ok(value),
    }
}

/// The first way `value` breaks `schema`, for the few keywords settings use.
fn jsonschema_check(schema: &Value, value: &Value) -> Option<String> {
    match schema["type"].as_str() {
        Some("integer") => {
            let Some(n) = value.as_i64() else {
                return Some("must be a whole number".into());
            };
            if schema["minimum"].as_i64().is_some_and(|min| n < min) {
                return Some(format!("must be at least {}", schema["minimum"]));
            }
            if schema["maximum"].as_i64().is_some_and(|max| n > max) {
                return Some(format!("must be at most {}", schema["maximum"]));
            }
            None
        }
        Some("string") => {
            let Some(s) = value.as_str() else {
                return Some("must be a string".into());
            };
            let length = s.chars().count() as u64;
            if schema["minLength"].as_u64().is_some_and(|min| length < min) {
                return Some(format!(
                    "must have at least {} characters",
                    schema["minLength"]
                ));
            }
            if schema["maxLength"].as_u64().is_some_and(|max| length > max) {
                return Some(format!(
                    "must have at most {} characters",
                    schema["maxLength"]
                ));
            }
            None
        }
        _ => None,
    }
}

/// The value of `key` for `tenant`: its own row, else the global row, else the default.
pub async fn get(db: &mut impl Executor, tenant: Uuid, key: &str) -> Value {
    let statement = db.pick(
        "SELECT value, for_tenant FROM settings WHERE key = $1 AND (for_tenant = $2 OR for_tenant IS NULL)",
        "SELECT value, for_tenant FROM settings WHERE key = ?1 AND (for_tenant = ?2 OR for_tenant IS NULL)",
    );
    let rows = db
        .fetch_all(
            statement,
            vec![SqlValue::Text(key.to_owned()), SqlValue::Uuid(tenant)],
        )
        .await
        .unwrap_or_default();
    let mut global = None;
    for row in &rows {
        let value: Option<String> = row.opt(0).ok().flatten();
        let owner: Option<Uuid> = row.opt(1).ok().flatten();
        match (owner, value) {
            (Some(_), Some(value)) => {
                if let Ok(v) = serde_json::from_str(&value) {
                    return v;
                }
            }
            (None, Some(value)) => global = serde_json::from_str(&value).ok(),
            _ => {}
        }
    }
    global.unwrap_or_else(|| {
        spec(key)
            .and_then(|s| serde_json::from_str(s.default).ok())
            .unwrap_or(Value::Null)
    })
}

/// An integer setting of `tenant`, read as the server itself (any tenant's settings, whatever
/// tenant a caller acts in).
pub async fn integer(db: &Db, tenant: Uuid, key: &str) -> i64 {
    let value = match crate::identity::read(db).await {
        Ok(mut tx) => {
            let value = get(&mut tx, tenant, key).await;
            tx.end_read();
            value
        }
        Err(_) => Value::Null,
    };
    value
        .as_i64()
        .unwrap_or_else(|| spec(key).and_then(|s| s.default.parse().ok()).unwrap_or(0))
}

/// Every setting's description, default and schema.
pub fn catalog() -> Value {
    Value::Array(
        SETTINGS
            .iter()
            .map(|s| {
                json!({
                    "key": s.key,
                    "description": s.description,
                    "default": serde_json::from_str::<Value>(s.default).unwrap_or(Value::Null),
                    "scope": s.scope,
                    "schema": (s.schema)(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_schema() {
        assert_eq!(check("audit.retention-days", "30").unwrap(), json!(30));
        assert!(check("audit.retention-days", "0").is_err());
        assert!(check("audit.retention-days", "\"30\"").is_err());
        assert!(check("audit.retention-days", "thirty").is_err());
        assert!(check("branding.name", "\"Acme\"").is_ok());
        assert!(check("branding.name", "\"\"").is_err());
        assert!(check("no.such", "1").is_err());
        for spec in SETTINGS {
            assert!(
                check(spec.key, spec.default).is_ok(),
                "{} default",
                spec.key
            );
        }
    }
}
