//! Create and edit forms made from an entity's schema (its OpenAPI components): an input per
//! member, its type from the JSON type and format, selects for enums and references, and the
//! way back from submitted text to a JSON body.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::Method;
use prefiq_runtime::Principal;
use prefiq_runtime::catalog::EntityInfo;
use prefiq_runtime::meta::TableMeta;
use serde_json::{Map, Value};

use super::Admin;

/// How a member is edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// An `<input>` of this type (`text`, `email`, `url`, `date`, `datetime-local`).
    Input(&'static str),
    /// A number; whole when `integer`.
    Number {
        /// Whole numbers only.
        integer: bool,
    },
    /// A checkbox.
    Check,
    /// A select of fixed values (an enum, or the rows a reference may name).
    Select,
    /// A list of texts, one per line.
    Lines,
    /// JSON text (objects, nested lists).
    Json,
}

/// One input of a form.
#[derive(Debug, Clone)]
pub(super) struct Field {
    /// The member.
    pub name: String,
    /// A label for it.
    pub label: String,
    /// How it is edited.
    pub kind: Kind,
    /// Whether a value is required.
    pub required: bool,
    /// Whether it may be emptied (null).
    pub nullable: bool,
    /// Its description.
    pub help: String,
    /// The value as text.
    pub value: String,
    /// For checkboxes.
    pub checked: bool,
    /// For selects: `(value, label, selected)`.
    pub options: Vec<(String, String, bool)>,
    /// The problem with the value sent.
    pub error: Option<String>,
    /// `min`, `max`, `step`, `maxlength`, `pattern` attributes, as `(name, value)`.
    pub attributes: Vec<(&'static str, String)>,
}

impl Field {
    /// The `<input type>`.
    pub(super) fn input_type(&self) -> &'static str {
        match &self.kind {
            Kind::Input(t) => t,
            Kind::Number { .. } => "number",
            Kind::Check => "checkbox",
            _ => "text",
        }
    }

    /// Whether it is a checkbox.
    pub(super) fn is_check(&self) -> bool {
        self.kind == Kind::Check
    }

    /// Whether it is a select.
    pub(super) fn is_select(&self) -> bool {
        self.kind == Kind::Select
    }

    /// Whether it is a text area.
    pub(super) fn is_area(&self) -> bool {
        matches!(self.kind, Kind::Lines | Kind::Json)
    }
}

/// The schema behind `allOf: [$ref]` and `oneOf: [$ref, null]`, and whether null is allowed.
fn unwrap(admin: &Admin, app: &str, schema: &Value) -> (Value, bool) {
    if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
        let (inner, nullable) = unwrap(admin, app, only);
        let mut merged = inner;
        if let (Some(target), Some(extra)) = (merged.as_object_mut(), schema.as_object()) {
            for (k, v) in extra {
                if k != "allOf" {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
        return (merged, nullable);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let nullable = options.iter().any(|o| o["type"] == "null");
        if let Some(first) = options.iter().find(|o| o["type"] != "null") {
            let (inner, _) = unwrap(admin, app, first);
            return (inner, nullable);
        }
    }
    if schema.get("$ref").is_some() {
        return unwrap(admin, app, &admin.resolve(app, schema));
    }
    let nullable = schema["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    (schema.clone(), nullable)
}

fn main_type(schema: &Value) -> String {
    match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string")
            .to_owned(),
        _ => {
            if schema.get("enum").is_some() {
                "string".into()
            } else {
                "object".into()
            }
        }
    }
}

/// A label from a member name: `company_id` → `Company`, `due_at` → `Due at`.
pub(super) fn label(name: &str) -> String {
    words(name.strip_suffix("_id").unwrap_or(name))
}

/// The label of a field of `table`: a reference, or the owner, is named after what it points at
/// (`company_id` is "Company"); any other field by all its words (`entity_id` is "Entity id").
pub(super) fn field_label(table: &TableMeta, name: &str) -> String {
    let column = table
        .columns
        .iter()
        .enumerate()
        .find(|(_, c)| c.field == name);
    let points = column.is_some_and(|(index, c)| {
        table.owner == Some(index) || table.foreign_keys.iter().any(|fk| fk.column == c.column)
    });
    if points { label(name) } else { words(name) }
}

/// `due_at` as "Due at".
fn words(name: &str) -> String {
    let text = name.replace('_', " ");
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// How a row is named in a select: its first name-like member.
pub(super) fn row_label(row: &Value) -> String {
    for key in [
        "name", "title", "email", "subject", "code", "slug", "label", "key", "app",
    ] {
        if let Some(text) = row[key].as_str() {
            return text.to_owned();
        }
    }
    if let (Some(first), Some(last)) = (row["first_name"].as_str(), row["last_name"].as_str()) {
        return format!("{first} {last}");
    }
    row["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| row["id"].to_string())
}

/// The text of a value in an input.
fn text_of(value: &Value, kind: &Kind) -> String {
    match (value, kind) {
        (Value::Null, _) => String::new(),
        (Value::String(s), Kind::Input("datetime-local")) => {
            // RFC 3339 → the browser's local format (UTC, to the second).
            s.get(..19).unwrap_or(s).to_owned()
        }
        (Value::String(s), _) => s.clone(),
        (Value::Array(items), Kind::Lines) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join("\n"),
        (other, Kind::Json) => serde_json::to_string_pretty(other).unwrap_or_default(),
        (other, _) => other.to_string(),
    }
}

/// The form of `entity` of `app`, filled with `values` (a row, or what was sent).
pub(super) async fn fields(
    admin: &Admin,
    principal: &Arc<Principal>,
    app: &str,
    entity: &EntityInfo,
    values: &Value,
) -> Vec<Field> {
    let schema = admin.schema(app, entity.schemas[1]);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut out = Vec::new();
    let Some(properties) = schema["properties"].as_object() else {
        return out;
    };
    for (name, property) in properties {
        // A member only platform operators set is not offered to anyone else.
        let platform = entity
            .table
            .columns
            .iter()
            .any(|c| c.field == name && c.platform);
        if platform && !principal.operator {
            continue;
        }
        let (resolved, nullable) = unwrap(admin, app, property);
        let ty = main_type(&resolved);
        let format = resolved["format"].as_str().unwrap_or_default();
        let reference = entity
            .table
            .foreign_keys
            .iter()
            .find(|fk| entity.table.field_of(fk.column) == name)
            .map(|fk| fk.entity);
        let kind = if reference.is_some() || resolved.get("enum").is_some() {
            Kind::Select
        } else {
            match (ty.as_str(), format) {
                ("boolean", _) => Kind::Check,
                ("integer", _) => Kind::Number { integer: true },
                ("number", _) => Kind::Number { integer: false },
                ("string", "date") => Kind::Input("date"),
                ("string", "date-time") => Kind::Input("datetime-local"),
                ("string", "email") => Kind::Input("email"),
                ("string", "uri") => Kind::Input("url"),
                ("string", _) => Kind::Input("text"),
                ("array", _)
                    if resolved["items"]["type"] == "string"
                        || resolved["items"].get("$ref").is_some() =>
                {
                    Kind::Lines
                }
                _ => Kind::Json,
            }
        };
        let value = values.get(name).cloned().unwrap_or_else(|| {
            // A new form shows the schema's default.
            property
                .get("default")
                .or_else(|| resolved.get("default"))
                .cloned()
                .unwrap_or(Value::Null)
        });
        let mut options = Vec::new();
        if let Some(values) = resolved["enum"].as_array() {
            for v in values.iter().filter_map(Value::as_str) {
                options.push((v.to_owned(), v.to_owned(), value.as_str() == Some(v)));
            }
        }
        if let Some(target) = reference {
            // The rows it may name (the first 200, as the caller may see them).
            let target_info = admin
                .catalog(app)
                .and_then(|c| c.entities.iter().find(|e| e.name == target));
            if let Some(target_info) = target_info {
                let reply = admin
                    .call(
                        principal,
                        Method::GET,
                        &format!("{}?limit=200", target_info.collection),
                        None,
                        None,
                    )
                    .await;
                for row in reply.body["items"].as_array().into_iter().flatten() {
                    let id = row["id"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| row["id"].to_string());
                    let selected = value.as_str() == Some(id.as_str());
                    options.push((id, row_label(row), selected));
                }
            }
            if let Some(current) = value.as_str() {
                if !options.iter().any(|o| o.0 == current) {
                    options.push((current.to_owned(), current.to_owned(), true));
                }
            }
        }
        let mut attributes = Vec::new();
        for (keyword, attribute) in [
            ("minimum", "min"),
            ("maximum", "max"),
            ("maxLength", "maxlength"),
            ("minLength", "minlength"),
        ] {
            if let Some(v) = resolved.get(keyword).filter(|v| v.is_number()) {
                attributes.push((attribute, v.to_string()));
            }
        }
        if kind == (Kind::Number { integer: false }) {
            attributes.push(("step", "any".into()));
        }
        if format == "decimal" {
            attributes.push(("inputmode", "decimal".into()));
        }
        out.push(Field {
            label: field_label(entity.table, name),
            required: required.contains(&name.as_str()) && property.get("default").is_none(),
            nullable,
            help: property["description"]
                .as_str()
                .or(resolved["description"].as_str())
                .unwrap_or_default()
                .to_owned(),
            checked: value.as_bool().unwrap_or(false),
            value: text_of(&value, &kind),
            name: name.clone(),
            kind,
            options,
            error: None,
            attributes,
        });
    }
    out
}

/// The JSON body a submitted form means, and the members whose text does not parse.
pub(super) fn body(
    fields: &[Field],
    form: &BTreeMap<String, Vec<String>>,
    editing: bool,
) -> (Value, BTreeMap<String, String>) {
    let mut body = Map::new();
    let mut errors = BTreeMap::new();
    for field in fields {
        let sent = form
            .get(&field.name)
            .and_then(|v| v.last())
            .map(String::as_str);
        let text = sent.unwrap_or_default().trim();
        let value = match &field.kind {
            Kind::Check => Some(Value::Bool(sent.is_some())),
            _ if text.is_empty() => {
                if editing && field.nullable {
                    Some(Value::Null)
                } else if editing && field.kind == Kind::Lines {
                    Some(Value::Array(Vec::new()))
                } else {
                    None
                }
            }
            Kind::Number { integer: true } => match text.parse::<i64>() {
                Ok(n) => Some(Value::from(n)),
                Err(_) => {
                    errors.insert(field.name.clone(), "enter a whole number".into());
                    None
                }
            },
            Kind::Number { integer: false } => match text.parse::<f64>() {
                Ok(n) => serde_json::Number::from_f64(n).map(Value::Number),
                Err(_) => {
                    errors.insert(field.name.clone(), "enter a number".into());
                    None
                }
            },
            Kind::Lines => Some(Value::Array(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_owned()))
                    .collect(),
            )),
            Kind::Json => match serde_json::from_str(text) {
                Ok(v) => Some(v),
                Err(e) => {
                    errors.insert(field.name.clone(), format!("this is not JSON: {e}"));
                    None
                }
            },
            Kind::Input("datetime-local") => {
                // The browser sends local time without a zone; it is read as UTC.
                let with_seconds = if text.len() == 16 {
                    format!("{text}:00")
                } else {
                    text.to_owned()
                };
                Some(Value::String(format!("{with_seconds}Z")))
            }
            _ => Some(Value::String(text.to_owned())),
        };
        if let Some(value) = value {
            body.insert(field.name.clone(), value);
        }
    }
    (Value::Object(body), errors)
}

/// Puts the submitted text back into the fields and the errors next to them: `errors` from the
/// form itself, and the problem's `errors`, each with a JSON pointer to its member.
pub(super) fn annotate(
    fields: &mut [Field],
    form: &BTreeMap<String, Vec<String>>,
    local: &BTreeMap<String, String>,
    problem: &Value,
) -> Vec<String> {
    let mut general = Vec::new();
    for field in fields.iter_mut() {
        let sent = form.get(&field.name).and_then(|v| v.last());
        match field.kind {
            Kind::Check => field.checked = sent.is_some(),
            _ => field.value = sent.cloned().unwrap_or_default(),
        }
        for option in &mut field.options {
            option.2 = sent.is_some_and(|s| *s == option.0);
        }
        field.error = local.get(&field.name).cloned();
    }
    for error in problem["errors"].as_array().into_iter().flatten() {
        let pointer = error["pointer"].as_str().unwrap_or_default();
        let detail = error["detail"].as_str().unwrap_or("is invalid").to_owned();
        let member = pointer
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        match fields.iter_mut().find(|f| f.name == member) {
            Some(field) => {
                field.error = Some(match field.error.take() {
                    Some(before) => format!("{before}; {detail}"),
                    None => detail,
                })
            }
            None => general.push(if pointer.is_empty() {
                detail
            } else {
                format!("{pointer}: {detail}")
            }),
        }
    }
    general
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: Kind, nullable: bool) -> Field {
        Field {
            name: name.into(),
            label: label(name),
            kind,
            required: false,
            nullable,
            help: String::new(),
            value: String::new(),
            checked: false,
            options: vec![],
            error: None,
            attributes: vec![],
        }
    }

    #[test]
    fn submitted_text_becomes_typed_json() {
        let fields = vec![
            field("name", Kind::Input("text"), false),
            field("count", Kind::Number { integer: true }, true),
            field("active", Kind::Check, false),
            field("tags", Kind::Lines, false),
            field("due_at", Kind::Input("datetime-local"), true),
            field("extra", Kind::Json, true),
        ];
        let mut form = BTreeMap::new();
        form.insert("name".to_owned(), vec!["Acme".to_owned()]);
        form.insert("count".to_owned(), vec!["x".to_owned()]);
        form.insert("tags".to_owned(), vec!["a\n\nb ".to_owned()]);
        form.insert("due_at".to_owned(), vec!["2026-01-02T03:04".to_owned()]);
        form.insert("extra".to_owned(), vec![String::new()]);
        let (body, errors) = body(&fields, &form, true);
        assert_eq!(body["name"], "Acme");
        assert_eq!(body["active"], false);
        assert_eq!(body["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(body["due_at"], "2026-01-02T03:04:00Z");
        assert_eq!(
            body["extra"],
            Value::Null,
            "an emptied nullable member is null"
        );
        assert!(body.get("count").is_none());
        assert_eq!(errors["count"], "enter a whole number");
    }

    #[test]
    fn labels_read_well() {
        assert_eq!(label("company_id"), "Company");
        assert_eq!(label("due_at"), "Due at");
        let audit = &crate::generated::audit_entry::TABLE;
        assert_eq!(field_label(audit, "entity_id"), "Entity id");
        assert_eq!(field_label(audit, "actor_user"), "Actor user");
        let setting = &crate::generated::setting::TABLE;
        assert_eq!(field_label(setting, "for_tenant"), "For tenant");
        let user = &crate::generated::user::TABLE;
        assert_eq!(field_label(user, "tenant_id"), "Tenant", "a reference");
        assert_eq!(
            row_label(&serde_json::json!({"first_name": "Ada", "last_name": "L", "id": "1"})),
            "Ada L"
        );
    }
}
