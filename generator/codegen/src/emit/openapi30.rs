//! The OpenAPI 3.0.3 rendition of an app's 3.1 document, for tools that stop at 3.0
//! (progenitor reads it). The conversion is mechanical. That the result is a 3.0 document is
//! checked where it is read: the client crate's build script parses it with `openapiv3`, and the
//! tests parse every app's rendition with it and with openapi-spec-validator.
//!
//! Beyond the version differences (`nullable`, boolean exclusive bounds, `example`), the rendition
//! follows what 3.0 client generators need: every body is `application/json` (merge patches and
//! problems included, as servers accept and send compatible JSON) and every error has the one
//! `Problem` schema.

use serde_json::{Map, Value, json};

fn is_null_schema(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
}

/// Converts one schema (and everything inside it) from 2020-12 to the OpenAPI 3.0 dialect.
fn schema(value: &Value) -> Value {
    let Value::Object(object) = value else {
        return value.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            // OpenAPI 3.0's dialect has no `propertyNames`: the 3.1 document keeps it.
            "$schema" | "$id" | "$comment" | "propertyNames" => {}
            "type" => match value {
                Value::Array(types) => {
                    let concrete: Vec<&Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .collect();
                    if let Some(first) = concrete.first() {
                        out.insert("type".into(), (*first).clone());
                    }
                    if concrete.len() < types.len() {
                        out.insert("nullable".into(), true.into());
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "const" => {
                out.insert("enum".into(), json!([value]));
            }
            "examples" => {
                if let Some(first) = value.as_array().and_then(|a| a.first()) {
                    out.insert("example".into(), first.clone());
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" if value.is_number() => {
                let bound = if key == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                out.insert(bound.into(), value.clone());
                out.insert(key.clone(), true.into());
            }
            "oneOf" | "anyOf" => {
                let list = value.as_array().cloned().unwrap_or_default();
                let others: Vec<&Value> = list.iter().filter(|v| !is_null_schema(v)).collect();
                if others.len() == 1 && others.len() < list.len() {
                    // `oneOf: [X, {type: null}]` is `X` with `nullable: true`.
                    let inner = schema(others[0]);
                    if inner.get("$ref").is_some() {
                        out.insert("allOf".into(), json!([inner]));
                    } else if let Value::Object(inner) = inner {
                        out.extend(inner);
                    }
                    out.insert("nullable".into(), true.into());
                } else {
                    out.insert(
                        key.clone(),
                        Value::Array(
                            list.iter()
                                .filter(|v| !is_null_schema(v))
                                .map(schema)
                                .collect(),
                        ),
                    );
                    if others.len() < list.len() {
                        out.insert("nullable".into(), true.into());
                    }
                }
            }
            "properties" | "$defs" => {
                let members: Map<String, Value> = value
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), schema(v))).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(members));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(key.clone(), schema(value));
            }
            "allOf" => {
                out.insert(
                    key.clone(),
                    Value::Array(
                        value
                            .as_array()
                            .map(|a| a.iter().map(schema).collect())
                            .unwrap_or_default(),
                    ),
                );
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    // 3.0 ignores whatever sits beside a `$ref` (an `x-prefiq-rules` at a body's use site):
    // `allOf: [$ref]` keeps it.
    if out.len() > 1 {
        if let Some(reference) = out.remove("$ref") {
            out.insert("allOf".into(), json!([{ "$ref": reference }]));
        }
    }
    // A nullable enum lists null among its values in 3.0.3.
    if out.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            if !values.contains(&Value::Null) {
                values.push(Value::Null);
            }
        }
    }
    Value::Object(out)
}

/// Rewrites every `content` map: one `application/json` entry, with its schema converted.
fn content(value: &Value) -> Value {
    let Some(media) = value.as_object() else {
        return value.clone();
    };
    let Some((_, first)) = media.iter().next() else {
        return value.clone();
    };
    let mut entry = first.as_object().cloned().unwrap_or_default();
    if let Some(s) = entry.get("schema") {
        let converted = schema(s);
        // One error type per operation: the validation problem is a problem.
        let converted = if converted.get("$ref").and_then(Value::as_str)
            == Some("#/components/schemas/ValidationProblem")
        {
            json!({ "$ref": "#/components/schemas/Problem" })
        } else {
            converted
        };
        entry.insert("schema".into(), converted);
    }
    json!({ "application/json": entry })
}

fn parameters(list: &Value) -> Value {
    Value::Array(
        list.as_array()
            .map(|params| {
                params
                    .iter()
                    .map(|p| {
                        let mut p = p.clone();
                        if let Some(s) = p.get("schema").cloned() {
                            p["schema"] = schema(&s);
                        }
                        p
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn operation(op: &Value) -> Value {
    let mut op = op.clone();
    if let Some(list) = op.get("parameters").cloned() {
        op["parameters"] = parameters(&list);
    }
    if let Some(body) = op
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .cloned()
    {
        op["requestBody"]["content"] = content(&body);
    }
    if let Some(Value::Object(responses)) = op.get_mut("responses") {
        for response in responses.values_mut() {
            if let Some(c) = response.get("content").cloned() {
                response["content"] = content(&c);
            }
        }
    }
    op
}

/// Drops the no-NUL pattern of plain strings: 3.0 tools (progenitor) would make every such
/// string a newtype; the 3.1 document keeps it.
fn without_nul_patterns(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("pattern").and_then(Value::as_str) == Some(crate::schemas::NO_NUL_PATTERN)
            {
                object.remove("pattern");
            }
            object.values_mut().for_each(without_nul_patterns);
        }
        Value::Array(items) => items.iter_mut().for_each(without_nul_patterns),
        _ => {}
    }
}

/// The 3.0.3 rendition of a 3.1 document made by [`super::openapi::document`].
pub(super) fn document(doc: Value) -> Value {
    let mut out = doc;
    without_nul_patterns(&mut out);
    out["openapi"] = "3.0.3".into();
    if let Some(Value::Object(paths)) = out.get_mut("paths") {
        for item in paths.values_mut() {
            if let Some(Value::Object(methods)) = Some(item) {
                for (key, value) in methods.iter_mut() {
                    if key == "parameters" {
                        *value = parameters(value);
                    } else {
                        *value = operation(value);
                    }
                }
            }
        }
    }
    if let Some(components) = out.get_mut("components").and_then(Value::as_object_mut) {
        if let Some(Value::Object(schemas)) = components.get_mut("schemas") {
            schemas.remove("ValidationProblem");
            for value in schemas.values_mut() {
                *value = schema(value);
            }
        }
        if let Some(Value::Object(params)) = components.get_mut("parameters") {
            for value in params.values_mut() {
                if let Some(s) = value.get("schema").cloned() {
                    value["schema"] = schema(&s);
                }
            }
        }
        if let Some(Value::Object(responses)) = components.get_mut("responses") {
            for value in responses.values_mut() {
                if let Some(c) = value.get("content").cloned() {
                    value["content"] = content(&c);
                }
            }
        }
        if let Some(Value::Object(headers)) = components.get_mut("headers") {
            for value in headers.values_mut() {
                if let Some(s) = value.get("schema").cloned() {
                    value["schema"] = schema(&s);
                }
            }
        }
    }
    // `nullable` needs a `type` beside it in 3.0: give `allOf: [$ref]` the type of its target.
    let types: Map<String, Value> = out
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| {
            schemas
                .iter()
                .map(|(name, s)| {
                    (
                        format!("#/components/schemas/{name}"),
                        s.get("type").cloned().unwrap_or_else(|| "object".into()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    type_nullable_refs(&mut out, &types);
    out
}

fn type_nullable_refs(value: &mut Value, types: &Map<String, Value>) {
    match value {
        Value::Object(object) => {
            if object.get("nullable") == Some(&Value::Bool(true)) && !object.contains_key("type") {
                let target = object
                    .get("allOf")
                    .and_then(|a| a.get(0))
                    .and_then(|r| r.get("$ref"))
                    .and_then(Value::as_str)
                    .and_then(|r| types.get(r))
                    .cloned();
                object.insert("type".into(), target.unwrap_or_else(|| "object".into()));
            }
            for child in object.values_mut() {
                type_nullable_refs(child, types);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| type_nullable_refs(item, types)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_differences_are_rewritten() {
        let converted = schema(&json!({
            "type": "object",
            "properties": {
                "a": { "type": ["string", "null"], "examples": ["x"] },
                "b": { "oneOf": [{ "$ref": "#/components/schemas/B" }, { "type": "null" }] },
                "c": { "type": "number", "exclusiveMinimum": 0 },
                "d": { "const": "fixed" },
                "e": { "type": ["string", "null"], "enum": ["x", null] }
            }
        }));
        let p = &converted["properties"];
        assert_eq!(
            p["a"],
            json!({ "type": "string", "nullable": true, "example": "x" })
        );
        assert_eq!(
            p["b"],
            json!({ "allOf": [{ "$ref": "#/components/schemas/B" }], "nullable": true })
        );
        assert_eq!(
            p["c"],
            json!({ "type": "number", "minimum": 0, "exclusiveMinimum": true })
        );
        assert_eq!(p["d"], json!({ "enum": ["fixed"] }));
        assert_eq!(
            p["e"],
            json!({ "type": "string", "nullable": true, "enum": ["x", null] })
        );
    }
}
