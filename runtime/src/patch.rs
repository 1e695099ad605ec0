//! JSON merge patch (RFC 7386), the semantics of every generated `PATCH` route.

use serde::Serialize;
use serde_json::Value;

use crate::problem::Problem;

/// The 409 when a row changed under a write that held it: a lock that did not hold, which a
/// retry resolves.
pub fn contended() -> Problem {
    Problem::conflict("the resource changed while this request was applied; retry it")
}

/// The members of `model` a client may write, as the base a merge patch applies to.
pub fn writable_members(model: &impl Serialize, writable: &[&str]) -> Result<Value, Problem> {
    let value = serde_json::to_value(model).map_err(|e| Problem::internal(&e))?;
    Ok(writable_part(value, writable))
}

/// The members of `row` (a row as JSON) a client may write.
pub fn writable_part(mut row: Value, writable: &[&str]) -> Value {
    if let Value::Object(members) = &mut row {
        members.retain(|name, _| writable.contains(&name.as_str()));
    }
    row
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
