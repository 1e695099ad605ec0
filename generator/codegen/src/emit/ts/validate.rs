//! `src/services/validate.ts`: the request validators, the server's JSON Schema definitions as data.

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::App;
use crate::names::pascal;
use crate::templates::Templates;

use super::RUNTIME;

/// Keywords that only annotate: the browser's validators do without them.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "readOnly",
    "writeOnly",
    "deprecated",
    "discriminator",
    "x-prefiq-generated",
];

/// `schema` without its annotations, at every level (members named like one are kept).
fn without_annotations(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let schemas = |value: &Value| match value {
        Value::Array(items) => Value::Array(items.iter().map(without_annotations).collect()),
        other => without_annotations(other),
    };
    map.iter()
        .filter(|(key, _)| !ANNOTATIONS.contains(&key.as_str()))
        .map(|(key, value)| {
            let value = match key.as_str() {
                "properties" | "$defs" | "patternProperties" => Value::Object(
                    value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, schema)| (name.clone(), without_annotations(schema)))
                        .collect(),
                ),
                "items"
                | "additionalProperties"
                | "not"
                | "allOf"
                | "anyOf"
                | "oneOf"
                | "prefixItems" => schemas(value),
                _ => value.clone(),
            };
            (key.clone(), value)
        })
        .collect()
}

/// `src/services/validate.ts`: the app's definitions as data, and a validator per body the
/// server checks, giving the server's pointers and messages. `schemas` is the app's document.
pub(super) fn validators(
    app: &App,
    schemas: &Value,
    templates: &Templates,
) -> Result<String, Diagnostic> {
    let defs = without_annotations(&schemas["$defs"]);
    let mut validators = Vec::new();
    for entity in app.entities.iter().filter(|e| !e.read_only) {
        let read_only: Vec<&str> = entity
            .fields
            .iter()
            .filter(|f| !f.is_writable())
            .map(|f| f.member.name.as_str())
            .collect();
        let read_only = serde_json::to_string(&read_only).unwrap_or_default();
        let types = &entity.types;
        for (suffix, definition, doc) in [
            ("Create", &types.create, "the body of a create"),
            (
                "Patch",
                &types.replace,
                "the merged result of a patch (the current row's writable members, patched)",
            ),
            ("PatchBody", &types.patch, "the body of a patch itself"),
        ] {
            validators.push(serde_json::json!({
                "name": format!("{}{suffix}", entity.name),
                "doc": format!("{doc} of {} `{}`", crate::names::article(&entity.name), entity.name),
                "definition": definition,
                "read_only": read_only,
            }));
        }
    }
    for operation in app.custom().filter(|o| o.body.is_some()) {
        validators.push(serde_json::json!({
            "name": format!("{}Body", pascal(&operation.id)),
            "doc": format!("the body of `{}`", operation.id),
            "definition": crate::schemas::body_definition(operation),
            "read_only": "[]",
        }));
    }
    templates.render(
        "ts/validate.ts.jinja",
        serde_json::json!({
            "app": app.name,
            "library": RUNTIME,
            "defs": defs.to_string(),
            "validators": validators,
        }),
    )
}
