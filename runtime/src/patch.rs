//! JSON merge patch (RFC 7386), the semantics of every generated `PATCH` route.

use serde::Serialize;
use serde_json::Value;

use crate::problem::Problem;

/// How often an update re-reads a row that someone else changed meanwhile (without `If-Match`).
/// Every round of a race has a winner, so this many concurrent writers of one row all succeed.
pub const ATTEMPTS: u32 = 32;

/// Waits a little before retry `attempt`, with jitter so that racing writers spread out.
pub async fn backoff(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos() % 997))
        .unwrap_or(0);
    let micros = 200 * u64::from(attempt.min(10)) + jitter;
    tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
}

/// The 409 after [`ATTEMPTS`] lost races.
pub fn contended() -> Problem {
    Problem::conflict("the resource kept changing while this request was applied; retry it")
}

/// The members of `model` a client may write, as the base a merge patch applies to.
pub fn writable_members(model: &impl Serialize, writable: &[&str]) -> Result<Value, Problem> {
    let mut value = serde_json::to_value(model).map_err(|e| Problem::internal(&e))?;
    if let Value::Object(members) = &mut value {
        members.retain(|name, _| writable.contains(&name.as_str()));
    }
    Ok(value)
}

/// Applies `patch` to `target`: members set to `null` are removed, objects merge recursively,
/// anything else replaces the target member.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(object) = target else {
        return;
    };
    for (name, value) in members {
        if value.is_null() {
            object.remove(name);
        } else {
            merge_patch(object.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_the_examples_of_rfc_7386() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }
}
