//! `src/components/generated.tsx`: each entity's screens described for `@prefiq/frontend`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{App, CrudAction, Entity, FieldRole, Member, NamedType, OperationKind, Type};
use crate::names::pascal;
use crate::templates::Templates;

use super::LIBRARY;

/// A member name as a label: `first_name` → `First name`, `company_id` → `Company`.
fn label(name: &str) -> String {
    crate::names::capital(
        &name
            .strip_suffix("_id")
            .unwrap_or(name)
            .replace(['_', '-'], " "),
    )
}

/// The first text member a person would know a row by (its name), or its key.
fn title_field(entity: &Entity) -> String {
    entity
        .fields
        .iter()
        .find(|f| f.role == FieldRole::Data && matches!(f.member.ty, Type::String(_)))
        .unwrap_or_else(|| entity.key())
        .member
        .name
        .clone()
}

/// How a value of `ty` is entered, for resources/frontend's `FieldSpec.kind`, and an enum's values.
fn type_kind(app: &App, ty: &Type) -> (&'static str, Option<Vec<String>>) {
    match ty {
        Type::String(s) => match s.format.as_deref() {
            Some("email") => ("email", None),
            Some("uri") => ("url", None),
            _ => ("text", None),
        },
        Type::Uuid => ("text", None),
        Type::Date => ("date", None),
        Type::DateTime => ("datetime", None),
        Type::Integer(_) => ("integer", None),
        Type::Number(_) => ("number", None),
        Type::Decimal(_) => ("decimal", None),
        Type::Boolean => ("boolean", None),
        Type::Enum { name } => match app.types.get(name) {
            Some(NamedType::Enum(e)) => (
                "enum",
                Some(e.values.iter().map(|v| v.value.clone()).collect()),
            ),
            _ => ("text", None),
        },
        Type::Array(a) if matches!(a.items, Type::String(_)) => ("tags", None),
        Type::Array(a) if is_struct(app, &a.items) => ("list", None),
        ty if is_struct(app, ty) => ("object", None),
        Type::Union { name } => match app.types.get(name) {
            Some(NamedType::Union(u)) if u.tag.is_some() => ("union", None),
            _ => ("json", None),
        },
        _ => ("json", None),
    }
}

/// Whether `ty` is an object with named members (which a form shows as a group of fields).
fn is_struct(app: &App, ty: &Type) -> bool {
    matches!(ty, Type::Object { name } if matches!(app.types.get(name), Some(NamedType::Struct(_))))
}

/// How deep forms nest objects before a member is edited as JSON (a type may contain itself).
const NESTING: usize = 3;

/// The `FieldSpec` of a member a client sends: its kind, and for an object (or an array of
/// objects) its members, for a tagged union its tag and each alternative's members.
fn member_spec(app: &App, member: &Member, depth: usize) -> Value {
    let (mut kind, options) = type_kind(app, &member.ty);
    if depth >= NESTING && matches!(kind, "object" | "union" | "list") {
        kind = "json";
    }
    let mut spec = serde_json::json!({
        "name": member.name,
        "label": label(&member.name),
        "kind": kind,
        "required": member.required,
        "nullable": member.nullable,
        "writable": true,
        "sortable": false,
        "filterable": false,
        "column": false,
    });
    if let Some(description) = &member.description {
        spec["description"] = description.clone().into();
    }
    if let Type::String(s) = &member.ty {
        if let Some(max) = s.max_length {
            spec["maxLength"] = max.into();
        }
    }
    if let Some(options) = options {
        spec["options"] = options.into();
    }
    let members = |ty: &Type| -> Vec<Value> {
        match ty {
            Type::Object { name } => match app.types.get(name) {
                Some(NamedType::Struct(s)) => s
                    .members
                    .iter()
                    .map(|m| member_spec(app, m, depth + 1))
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    };
    match (&member.ty, kind) {
        (ty @ Type::Object { .. }, "object") => spec["fields"] = members(ty).into(),
        (Type::Array(a), "list") => spec["fields"] = members(&a.items).into(),
        (Type::Union { name }, "union") => {
            if let Some(NamedType::Union(u)) = app.types.get(name) {
                spec["tag"] = u.tag.clone().into();
                spec["variants"] = u
                    .variants
                    .iter()
                    .map(|v| serde_json::json!({ "value": v.tag_value, "fields": members(&v.ty) }))
                    .collect::<Vec<_>>()
                    .into();
            }
        }
        _ => {}
    }
    spec
}

/// The CRUD operation `action` of `entity`, by its id.
pub(super) fn crud_op(app: &App, entity: &Entity, action: CrudAction) -> Option<String> {
    app.operations
        .iter()
        .find(|o| matches!(&o.kind, OperationKind::Crud { entity: e, action: a } if *e == entity.name && *a == action))
        .map(|o| o.id.clone())
}

/// Whether an entity gets screens: it is listed and read.
fn has_screens(app: &App, entity: &Entity) -> bool {
    [CrudAction::List, CrudAction::Get]
        .iter()
        .all(|a| crud_op(app, entity, *a).is_some())
}

/// One field's `FieldSpec`, as the members of a TypeScript object literal, and the picker and
/// label of a reference.
fn field_spec(
    app: &App,
    entity: &Entity,
    field: &crate::ir::Field,
    hooks: &mut BTreeSet<String>,
) -> Value {
    let mut spec = member_spec(app, &field.member, 0);
    if field.references.is_none()
        && field.role == FieldRole::Data
        && field.member.name.ends_with("_id")
    {
        // Only a reference is named after what it points at (`deal_id` is "Deal").
        spec["label"] = crate::names::capital(&field.member.name.replace(['_', '-'], " ")).into();
    }
    // A field is sent only by the forms of an entity the API writes.
    let sent = field.is_writable() && !entity.read_only;
    let kind = if field.references.is_some() {
        "reference".to_owned()
    } else {
        spec["kind"].as_str().unwrap_or("json").to_owned()
    };
    spec["kind"] = kind.clone().into();
    spec["required"] = (field.member.required && sent).into();
    spec["writable"] = sent.into();
    spec["sortable"] = field.sortable.into();
    spec["filterable"] = field.filterable.into();
    spec["column"] = (field.is_writable()
        && !matches!(kind.as_str(), "json" | "object" | "union" | "list"))
    .into();
    // A reference picks from the rows it may point at; to an entity with screens, it also names
    // its row by title and links to it.
    let target = field
        .references
        .as_ref()
        .and_then(|r| app.entity(&r.entity));
    let screens = target.filter(|t| has_screens(app, t));
    if let Some(target) = screens {
        spec["target"] = target.plural.clone().into();
    }
    // Its picker finds rows by title where the title is a filter.
    let listed = target.filter(|t| crud_op(app, t, CrudAction::List).is_some());
    let search = listed.and_then(|t| {
        let title = title_field(t);
        t.fields
            .iter()
            .any(|f| {
                f.member.name == title && f.filterable && matches!(f.member.ty, Type::String(_))
            })
            .then_some(title)
    });
    if search.is_some() {
        spec["searchable"] = true.into();
    }
    let literal = spec.to_string();
    let mut out = serde_json::json!({ "json": &literal[1..literal.len() - 1] });
    if let Some(target) = listed {
        let hook = format!("use{}", pascal(&target.plural));
        hooks.insert(hook.clone());
        out["options_hook"] = hook.into();
        out["options_value"] = target.key().member.name.clone().into();
        out["options_label"] = title_field(target).into();
        if let Some(title) = search {
            out["options_search"] = title.into();
        }
    }
    if let Some(target) = screens {
        let hook = format!("use{}", target.name);
        hooks.insert(hook.clone());
        out["label_hook"] = hook.into();
        out["label_id"] = format!("to{}Id", target.name).into();
        out["label_title"] = title_field(target).into();
    }
    out
}

/// `src/components/generated.tsx`: each entity's screens described from its schema, bound to
/// the generated hooks and validators, for the components of resources/frontend.
pub(super) fn components(app: &App, templates: &Templates) -> Result<String, Diagnostic> {
    use heck::ToLowerCamelCase;
    let library = LIBRARY;
    let mut hooks: BTreeSet<String> = BTreeSet::new();
    let mut validators: BTreeSet<String> = BTreeSet::new();
    let mut types: BTreeSet<String> = BTreeSet::new();
    let mut entities = Vec::new();
    for entity in app.entities.iter().filter(|e| has_screens(app, e)) {
        let fields: Vec<Value> = entity
            .fields
            .iter()
            .map(|field| field_spec(app, entity, field, &mut hooks))
            .collect();
        let hook = |action: CrudAction| {
            format!(
                "use{}",
                pascal(&crud_op(app, entity, action).unwrap_or_default())
            )
        };
        let use_list = format!("use{}", pascal(&entity.plural));
        let use_row = format!("use{}", entity.name);
        let version = entity.fields.iter().any(|f| f.role == FieldRole::Version);
        hooks.extend([
            use_list.clone(),
            use_row.clone(),
            format!("type {}Id", entity.name),
        ]);
        // A read-only entity's screens list and show rows; only the others edit them.
        let writes = !entity.read_only;
        if writes {
            hooks.extend([
                hook(CrudAction::Create),
                hook(CrudAction::Update),
                hook(CrudAction::Delete),
            ]);
            validators.insert(format!("validate{}Create", entity.name));
            validators.insert(format!("validate{}Patch", entity.name));
        }
        if version {
            hooks.insert(format!("etag{}", entity.name));
        }
        types.insert(entity.name.clone());
        types.insert(entity.types.query.clone());
        let numeric = matches!(entity.key().member.ty, Type::Integer(_) | Type::Number(_));
        entities.push(serde_json::json!({
            "name": entity.name,
            "spec": format!("{}Spec", entity.name.to_lower_camel_case()),
            "plural_label": label(&entity.plural),
            "path": entity.plural,
            "id": entity.key().member.name,
            "title": title_field(entity),
            "from_string": if numeric { "Number(id)" } else { "id" },
            "etag": version.then(|| format!("etag{}", entity.name)),
            "query": entity.types.query,
            "use_list": use_list,
            "use_row": use_row,
            "writes": writes,
            "use_create": hook(CrudAction::Create),
            "use_update": hook(CrudAction::Update),
            "use_delete": hook(CrudAction::Delete),
            "fields": fields,
        }));
    }
    let specs: Vec<String> = entities
        .iter()
        .map(|e| e["spec"].as_str().unwrap_or_default().to_owned())
        .collect();
    // `EntitySpec` types `ENTITIES`; `WritableSpec` the entities the API writes.
    let mut spec_types = vec!["EntitySpec"];
    if app
        .entities
        .iter()
        .any(|e| has_screens(app, e) && !e.read_only)
    {
        spec_types.push("WritableSpec");
    }
    templates.render(
        "ts/components.tsx.jinja",
        serde_json::json!({
            "app": app.name, "library": library, "entities": entities, "specs": specs,
            "spec_types": spec_types,
            "hooks": hooks, "validators": validators, "types": types,
        }),
    )
}
