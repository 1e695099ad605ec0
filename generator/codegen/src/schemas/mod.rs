//! JSON Schemas made from the IR: the request and response schemas of every entity and named
//! type. The same functions feed the runtime validators (`schemas.json`), the browser's
//! validators, the fixtures' check and the OpenAPI components, so what is documented is what is
//! enforced. Below the emitters: a stage between `lower` and `emit` that only describes the IR.

mod decimal_range;

use serde_json::{Map, Value, json};

use crate::ir::{App, Entity, FieldRole, Member, NamedType, NumberType, Type};

/// Where `$ref`s point.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// `#/$defs/` or `#/components/schemas/`.
    pub ref_prefix: &'static str,
}

/// Runtime validation: a 2020-12 document with `$defs`.
pub const DEFS: Style = Style {
    ref_prefix: "#/$defs/",
};
/// OpenAPI components.
pub const COMPONENTS: Style = Style {
    ref_prefix: "#/components/schemas/",
};

/// The pattern a decimal string of `precision` digits, `scale` of them after the point, must
/// match: exactly what the server accepts (an undeclared precision holds 14 + 14 digits, which an
/// exact decimal always can).
pub fn decimal_pattern(precision: Option<u32>, scale: Option<u32>, signed: bool) -> String {
    let scale = scale.unwrap_or(14);
    let whole = precision.map(|p| p.saturating_sub(scale)).unwrap_or(14);
    let integer = if whole == 0 {
        "0".to_owned()
    } else {
        format!("[0-9]{{1,{whole}}}")
    };
    let fraction = if scale == 0 {
        String::new()
    } else {
        format!("(\\.[0-9]{{1,{scale}}})?")
    };
    let sign = if signed { "-?" } else { "" };
    format!("^{sign}{integer}{fraction}$")
}

/// Whether a decimal may be negative: not when its lower bound is zero or more (the pattern then
/// leaves the sign out; other bounds a pattern cannot state, and `x-decimal` carries them).
fn signed(bounds: &NumberType) -> bool {
    let non_negative = |n: &Option<serde_json::Number>| {
        n.as_ref()
            .and_then(serde_json::Number::as_f64)
            .is_some_and(|v| v >= 0.0)
    };
    !(non_negative(&bounds.minimum) || non_negative(&bounds.exclusive_minimum))
}

/// The pattern of every string that declares none: no NUL character, which PostgreSQL cannot
/// store (the server refuses it on both databases, and the document says so).
pub const NO_NUL_PATTERN: &str = "^[^\\u0000]*$";

fn with_null(mut schema: Value, nullable: bool) -> Value {
    if !nullable {
        return schema;
    }
    match schema.get_mut("type") {
        Some(Value::String(t)) => {
            let t = t.clone();
            schema["type"] = json!([t, "null"]);
            if let Some(Value::Array(values)) = schema.get_mut("enum") {
                values.push(Value::Null);
            }
            schema
        }
        _ => json!({ "oneOf": [schema, { "type": "null" }] }),
    }
}

fn bounds(schema: &mut Map<String, Value>, bounds: &NumberType) {
    for (key, value) in [
        ("minimum", &bounds.minimum),
        ("maximum", &bounds.maximum),
        ("exclusiveMinimum", &bounds.exclusive_minimum),
        ("exclusiveMaximum", &bounds.exclusive_maximum),
        ("multipleOf", &bounds.multiple_of),
    ] {
        if let Some(n) = value {
            schema.insert(key.into(), Value::Number(n.clone()));
        }
    }
}

/// The schema of a type.
pub fn type_schema(ty: &Type, nullable: bool, style: Style) -> Value {
    let schema = match ty {
        Type::String(s) => {
            let mut o = Map::new();
            o.insert("type".into(), "string".into());
            if let Some(f) = &s.format {
                o.insert("format".into(), f.clone().into());
            }
            if let Some(n) = s.min_length {
                o.insert("minLength".into(), n.into());
            }
            if let Some(n) = s.max_length {
                o.insert("maxLength".into(), n.into());
            }
            match (&s.pattern, &s.constant) {
                (Some(p), _) => {
                    o.insert("pattern".into(), p.clone().into());
                }
                (None, None) => {
                    o.insert("pattern".into(), NO_NUL_PATTERN.into());
                }
                (None, Some(_)) => {}
            }
            if let Some(c) = &s.constant {
                o.insert("const".into(), c.clone().into());
            }
            Value::Object(o)
        }
        Type::Integer(n) => {
            let mut o = Map::new();
            o.insert("type".into(), "integer".into());
            o.insert(
                "format".into(),
                if n.bits == 32 { "int32" } else { "int64" }.into(),
            );
            bounds(&mut o, n);
            Value::Object(o)
        }
        Type::Number(n) => {
            let mut o = Map::new();
            o.insert("type".into(), "number".into());
            o.insert("format".into(), "double".into());
            bounds(&mut o, n);
            Value::Object(o)
        }
        Type::Decimal(d) => {
            let mut o = Map::new();
            if d.as_number {
                o.insert("type".into(), "number".into());
            } else {
                o.insert("type".into(), "string".into());
                let signed = signed(&d.bounds);
                // The published document states the bounds in the pattern, which every consumer
                // reads; the server's validators keep the shape's pattern and check the bounds
                // in `x-decimal`, with a message that names them.
                let bounded = style
                    .ref_prefix
                    .starts_with("#/components")
                    .then(|| {
                        decimal_range::bounded_pattern(d.precision, d.scale, signed, &d.bounds)
                    })
                    .flatten();
                let pattern =
                    bounded.unwrap_or_else(|| decimal_pattern(d.precision, d.scale, signed));
                o.insert("pattern".into(), pattern.into());
            }
            o.insert("format".into(), "decimal".into());
            let mut limits = Map::new();
            if let Some(p) = d.precision {
                limits.insert("precision".into(), p.into());
            }
            if let Some(s) = d.scale {
                limits.insert("scale".into(), s.into());
            }
            bounds(&mut limits, &d.bounds);
            if d.as_number {
                bounds(&mut o, &d.bounds);
                // A number holds only so many digits before the point, and so many after.
                if let (Some(precision), Some(scale)) = (d.precision, d.scale) {
                    let limit = Value::from(10f64.powi((precision - scale.min(precision)) as i32));
                    if d.bounds.maximum.is_none() && d.bounds.exclusive_maximum.is_none() {
                        o.insert("exclusiveMaximum".into(), limit.clone());
                    }
                    if d.bounds.minimum.is_none() && d.bounds.exclusive_minimum.is_none() {
                        o.insert(
                            "exclusiveMinimum".into(),
                            json!(-limit.as_f64().unwrap_or(0.0)),
                        );
                    }
                }
                if let (Some(scale), true) = (d.scale, style.ref_prefix.starts_with("#/components"))
                {
                    o.insert("multipleOf".into(), json!(10f64.powi(-(scale as i32))));
                }
            }
            if !limits.is_empty() {
                o.insert("x-decimal".into(), Value::Object(limits));
            }
            Value::Object(o)
        }
        Type::Boolean => json!({ "type": "boolean" }),
        Type::Uuid => json!({ "type": "string", "format": "uuid" }),
        Type::Date => json!({ "type": "string", "format": "date" }),
        Type::DateTime => json!({ "type": "string", "format": "date-time" }),
        Type::Enum { name }
        | Type::Object { name }
        | Type::Entity { name }
        | Type::Union { name } => {
            json!({ "$ref": format!("{}{name}", style.ref_prefix) })
        }
        Type::Array(a) => {
            let mut o = Map::new();
            o.insert("type".into(), "array".into());
            o.insert(
                "items".into(),
                type_schema(&a.items, a.items_nullable, style),
            );
            if let Some(n) = a.min_items {
                o.insert("minItems".into(), n.into());
            }
            if let Some(n) = a.max_items {
                o.insert("maxItems".into(), n.into());
            }
            if a.unique_items {
                o.insert("uniqueItems".into(), true.into());
            }
            Value::Object(o)
        }
        // Member names are text too: PostgreSQL's jsonb holds no NUL in them either.
        Type::Map { values } => json!({
            "type": "object",
            "propertyNames": { "pattern": NO_NUL_PATTERN },
            "additionalProperties": type_schema(values, false, style),
        }),
        Type::Any => json!({}),
    };
    if matches!(ty, Type::Any) {
        schema
    } else {
        with_null(schema, nullable)
    }
}

/// The schema of a member: its type plus its annotations.
pub fn member_schema(member: &Member, nullable: bool, style: Style) -> Value {
    let mut schema = type_schema(&member.ty, nullable, style);
    let annotate = schema.as_object().is_some_and(|o| !o.contains_key("$ref"));
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    // Annotations beside a bare `$ref` would be invalid in OpenAPI 3.0: wrap them.
    if !annotate && (member.description.is_some() || member.default.is_some() || member.deprecated)
    {
        let reference = Value::Object(object.clone());
        object.clear();
        object.insert("allOf".into(), json!([reference]));
    }
    if let Some(d) = &member.description {
        object.insert("description".into(), d.clone().into());
    }
    if let Some(d) = &member.default {
        object.insert("default".into(), d.clone());
    }
    if member.deprecated {
        object.insert("deprecated".into(), true.into());
    }
    if !member.examples.is_empty() {
        object.insert("examples".into(), Value::Array(member.examples.clone()));
    }
    schema
}

/// The schema of a named type.
pub fn named_schema(app: &App, name: &str, named: &NamedType, style: Style) -> Value {
    let mut schema = match named {
        NamedType::Struct(s) => {
            let mut properties = Map::new();
            let mut required: Vec<Value> = Vec::new();
            if let Some((tag, value)) = app.variant_tag(name) {
                properties.insert(tag.to_owned(), json!({ "type": "string", "const": value }));
                required.push(tag.into());
            }
            for m in &s.members {
                properties.insert(m.name.clone(), member_schema(m, m.nullable, style));
                if m.required {
                    required.push(m.name.clone().into());
                }
            }
            let mut o = Map::new();
            o.insert("type".into(), "object".into());
            if !required.is_empty() {
                o.insert("required".into(), Value::Array(required));
            }
            o.insert("properties".into(), Value::Object(properties));
            o.insert("additionalProperties".into(), false.into());
            Value::Object(o)
        }
        NamedType::Enum(e) => {
            json!({ "type": "string", "enum": e.values.iter().map(|v| v.value.clone()).collect::<Vec<_>>() })
        }
        NamedType::Union(u) => {
            let variants: Vec<Value> = u
                .variants
                .iter()
                .map(|v| type_schema(&v.ty, false, style))
                .collect();
            let mut o = Map::new();
            o.insert("oneOf".into(), Value::Array(variants));
            if let Some(tag) = &u.tag {
                let mapping: Map<String, Value> = u
                    .variants
                    .iter()
                    .filter_map(|v| match (&v.ty, &v.tag_value) {
                        (Type::Object { name }, Some(value)) => {
                            Some((value.clone(), format!("{}{name}", style.ref_prefix).into()))
                        }
                        _ => None,
                    })
                    .collect();
                o.insert(
                    "discriminator".into(),
                    json!({ "propertyName": tag, "mapping": mapping }),
                );
            }
            Value::Object(o)
        }
        // A derived type's schema is made from what it derives from: see `model`, `create`,
        // `patch`, `replace`, `page` and `params`.
        NamedType::Derived(_) => json!({}),
    };
    if let (Some(d), Some(o)) = (named.description(), schema.as_object_mut()) {
        o.insert("description".into(), d.into());
    }
    schema
}

fn object(
    properties: Map<String, Value>,
    required: Vec<Value>,
    closed: bool,
    description: Option<String>,
) -> Value {
    let mut o = Map::new();
    if let Some(d) = description {
        o.insert("description".into(), d.into());
    }
    o.insert("type".into(), "object".into());
    if !required.is_empty() {
        o.insert("required".into(), Value::Array(required));
    }
    o.insert("properties".into(), Value::Object(properties));
    if closed {
        o.insert("additionalProperties".into(), false.into());
    }
    Value::Object(o)
}

/// What a client reads: every field; server-set ones are `readOnly`.
pub fn model(entity: &Entity, style: Style) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in &entity.fields {
        let mut schema = member_schema(&field.member, field.is_model_nullable(), style);
        if field.role != FieldRole::Data {
            if let Some(o) = schema.as_object_mut() {
                o.insert("readOnly".into(), true.into());
            }
        }
        properties.insert(field.member.name.clone(), schema);
        if !field.is_model_optional() {
            required.push(field.member.name.clone().into());
        }
    }
    object(properties, required, false, entity.description.clone())
}

/// The key that publishes the rules of `core/validation/` a body must keep, in the runtime's
/// `schemas.json` and in the OpenAPI documents alike.
pub const RULES: &str = "x-prefiq-rules";

/// `schema` with `rules` published under [`RULES`] (unchanged when there are none). Each is
/// `{id, condition, blame, message}`: `condition` is the JSONLogic a valid body makes true. On a
/// merge patch's schema (OpenAPI only) they judge the merged result.
pub fn with_rules(mut schema: Value, rules: &[crate::ir::Rule]) -> Value {
    if let (false, Some(object)) = (rules.is_empty(), schema.as_object_mut()) {
        let published = rules
            .iter()
            .map(|rule| {
                json!({
                    "id": rule.id,
                    "condition": rule.condition,
                    "blame": rule.blame,
                    "message": rule.message,
                })
            })
            .collect();
        object.insert(RULES.into(), Value::Array(published));
    }
    schema
}

/// What a client sends to create: writable fields only; unknown members are rejected.
pub fn create(entity: &Entity, style: Style) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in entity.writable() {
        properties.insert(
            field.member.name.clone(),
            member_schema(&field.member, field.member.nullable, style),
        );
        if field.is_create_required() {
            required.push(field.member.name.clone().into());
        }
    }
    let schema = object(
        properties,
        required,
        true,
        Some(format!(
            "The fields a client sends to create {}.",
            crate::names::a(&entity.name)
        )),
    );
    with_rules(schema, &entity.rules)
}

/// A JSON merge patch (RFC 7386): any writable field; `null` removes a field (NULL, or its default).
pub fn patch(entity: &Entity, app: &App, style: Style) -> Value {
    let mut properties = Map::new();
    for field in entity.writable().filter(|f| f.role == FieldRole::Data) {
        let schema = match &field.member.ty {
            Type::Object { name } => with_null(
                partial(app, name, style, &mut Vec::new()),
                field.is_patch_removable(),
            ),
            _ => member_schema(&field.member, field.is_patch_removable(), style),
        };
        properties.insert(field.member.name.clone(), schema);
    }
    object(
        properties,
        Vec::new(),
        true,
        Some(format!(
            "A JSON merge patch (RFC 7386) of {}: members set to null are removed.",
            crate::names::a(&entity.name)
        )),
    )
}

/// An object as a merge patch carries it: merged member by member, so every member is optional
/// and `null` removes it; members the object does not have stay refused. Whether the merged
/// object keeps its required members is the stored state's question (a 409, not a 422). A type
/// that contains itself stays a free-form object below its first level.
fn partial<'a>(app: &'a App, name: &'a str, style: Style, within: &mut Vec<&'a str>) -> Value {
    let members = match app.types.get(name) {
        Some(NamedType::Struct(s)) if !within.contains(&name) => &s.members,
        _ => {
            return json!({ "type": "object", "description": "Merged into the current value (RFC 7386)." });
        }
    };
    within.push(name);
    let mut properties = Map::new();
    for m in members {
        let schema = match &m.ty {
            Type::Object { name } => with_null(partial(app, name, style, within), true),
            _ => member_schema(m, true, style),
        };
        properties.insert(m.name.clone(), schema);
    }
    within.pop();
    object(
        properties,
        Vec::new(),
        true,
        Some("Merged into the current value (RFC 7386).".into()),
    )
}

/// The stored state after a patch is merged: required fields must remain, removed ones are NULL.
pub fn replace(entity: &Entity, style: Style) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in entity.writable() {
        properties.insert(
            field.member.name.clone(),
            member_schema(&field.member, field.member.nullable, style),
        );
        if field.is_create_required() && !field.member.nullable {
            required.push(field.member.name.clone().into());
        }
    }
    with_rules(object(properties, required, true, None), &entity.rules)
}

/// One page of a list.
pub fn page(entity: &Entity, style: Style) -> Value {
    json!({
        "description": format!("One page of {}, in the requested order.", entity.plural),
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": { "type": "array", "items": { "$ref": format!("{}{}", style.ref_prefix, entity.name) } },
            "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` to get the next page; null on the last page." },
            "total": { "type": "integer", "format": "int64", "description": "Rows matching the filters, when `count=exact` was asked." }
        }
    })
}

/// The object of an operation's parameters, keyed by their names on the wire.
pub fn params(operation: &crate::ir::Operation, style: Style) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for param in &operation.params {
        properties.insert(
            param.name.clone(),
            member_schema(&param.member(), false, style),
        );
        if param.required {
            required.push(param.name.clone().into());
        }
    }
    object(properties, required, true, None)
}

/// The definition in `schemas.json` that a custom operation's body is checked against.
pub fn body_definition(operation: &crate::ir::Operation) -> String {
    format!("{}Body", operation.type_prefix)
}

/// `schemas.json`: every definition the runtime validators need.
pub fn document(app: &App) -> Value {
    let mut defs = Map::new();
    for (name, named) in app.declared_types() {
        defs.insert(name.clone(), named_schema(app, name, named, DEFS));
    }
    for operation in app.custom() {
        if let Some(name) = &operation.params_type {
            defs.insert(name.clone(), params(operation, DEFS));
        }
        if let Some(body) = &operation.body {
            defs.insert(
                body_definition(operation),
                with_rules(type_schema(&body.ty, false, DEFS), &body.rules),
            );
        }
    }
    for entity in &app.entities {
        let types = &entity.types;
        defs.insert(entity.name.clone(), model(entity, DEFS));
        if entity.read_only {
            continue;
        }
        defs.insert(types.create.clone(), create(entity, DEFS));
        defs.insert(types.patch.clone(), patch(entity, app, DEFS));
        defs.insert(types.replace.clone(), replace(entity, DEFS));
    }
    json!({ "$schema": crate::vocab::DRAFT_2020_12, "$defs": defs })
}
