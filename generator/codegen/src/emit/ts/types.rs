//! `core/types/ts/index.ts`: every named type, entity model, create and patch body, page and
//! parameter object of an app, as TypeScript declarations.

use serde::Serialize;

use crate::ir::{
    App, CrudAction, Entity, FieldRole, Member, NamedType, Operation, OperationParamKind,
    ParamRole, Type,
};

use super::doc;

/// A property name, quoted when it is not an identifier.
pub(super) fn key(name: &str) -> String {
    let identifier = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier {
        name.to_owned()
    } else {
        serde_json::to_string(name).unwrap_or_default()
    }
}

/// The TypeScript type of a value.
pub(super) fn ts_type(ty: &Type, nullable: bool) -> String {
    let base = match ty {
        Type::String(_) | Type::Uuid | Type::Date | Type::DateTime => "string".to_owned(),
        Type::Decimal(d) => if d.as_number { "number" } else { "string" }.to_owned(),
        Type::Integer(_) | Type::Number(_) => "number".to_owned(),
        Type::Boolean => "boolean".to_owned(),
        Type::Enum { name }
        | Type::Object { name }
        | Type::Entity { name }
        | Type::Union { name } => name.clone(),
        Type::Array(a) => {
            let item = ts_type(&a.items, a.items_nullable);
            if item.contains(' ') {
                format!("({item})[]")
            } else {
                format!("{item}[]")
            }
        }
        Type::Map { values } => format!("Record<string, {}>", ts_type(values, false)),
        Type::Any => "unknown".to_owned(),
    };
    if nullable {
        format!("{base} | null")
    } else {
        base
    }
}

fn format_note(ty: &Type) -> Option<String> {
    match ty {
        Type::Uuid => Some("A UUID.".into()),
        Type::Date => Some("A date, `YYYY-MM-DD`.".into()),
        Type::DateTime => Some("An RFC 3339 date-time.".into()),
        Type::Decimal(d) if !d.as_number => Some("An exact decimal, as a string.".into()),
        Type::String(s) => s.format.as_ref().map(|f| format!("Format: {f}.")),
        _ => None,
    }
}

fn member_doc(member: &Member, indent: &str) -> String {
    let mut lines = Vec::new();
    if let Some(d) = &member.description {
        lines.push(d.clone());
    }
    if let Some(note) = format_note(&member.ty) {
        lines.push(note);
    }
    if let Some(default) = &member.default {
        lines.push(format!("Default: `{default}`."));
    }
    if member.deprecated {
        lines.push("@deprecated".into());
    }
    doc(&lines, indent)
}

fn property(
    member: &Member,
    optional: bool,
    nullable: bool,
    readonly: bool,
    ty: Option<String>,
) -> String {
    let ty = ty.unwrap_or_else(|| ts_type(&member.ty, nullable));
    format!(
        "{}  {}{}{}: {};\n",
        member_doc(member, "  "),
        if readonly { "readonly " } else { "" },
        key(&member.name),
        if optional { "?" } else { "" },
        ty
    )
}

#[derive(Serialize)]
pub(super) struct TsItem {
    pub(super) name: String,
    doc: String,
    interface: bool,
    body: String,
}

fn object(properties: &[String]) -> String {
    if properties.is_empty() {
        return "{}".to_owned();
    }
    format!("{{\n{}}}", properties.concat())
}

fn entity_items(app: &App, entity: &Entity, items: &mut Vec<TsItem>) {
    let fields = &entity.fields;
    let model: Vec<String> = fields
        .iter()
        .map(|f| {
            property(
                &f.member,
                f.is_model_optional(),
                f.is_model_nullable(),
                f.role != FieldRole::Data,
                None,
            )
        })
        .collect();
    let description = entity
        .description
        .clone()
        .unwrap_or_else(|| format!("{}.", crate::names::capital(&crate::names::a(&entity.name))));
    items.push(TsItem {
        name: entity.name.clone(),
        doc: doc(&[description], ""),
        interface: true,
        body: object(&model),
    });
    // A read-only entity has no bodies: nothing creates or patches one.
    if !entity.read_only {
        let create: Vec<String> = entity
            .writable()
            .map(|f| {
                property(
                    &f.member,
                    !f.is_create_required(),
                    f.member.nullable,
                    false,
                    None,
                )
            })
            .collect();
        items.push(TsItem {
            name: entity.types.create.clone(),
            doc: doc(
                &[format!(
                    "The fields a client sends to create {}.",
                    crate::names::a(&entity.name)
                )],
                "",
            ),
            interface: true,
            body: object(&create),
        });
        let patch: Vec<String> = entity
            .writable()
            .filter(|f| f.role == FieldRole::Data)
            .map(|f| {
                let removable = f.is_patch_removable();
                let ty = match &f.member.ty {
                    Type::Object { name } => Some(format!(
                        "Partial<{name}>{}",
                        if removable { " | null" } else { "" }
                    )),
                    _ => None,
                };
                property(&f.member, true, removable, false, ty)
            })
            .collect();
        items.push(TsItem {
            name: entity.types.patch.clone(),
            doc: doc(
                &[format!(
                    "A JSON merge patch of {}: `null` removes a field.",
                    crate::names::a(&entity.name)
                )],
                "",
            ),
            interface: true,
            body: object(&patch),
        });
    }
    items.push(TsItem {
        name: entity.types.page.clone(),
        doc: doc(&[format!("One page of {}.", entity.plural)], ""),
        interface: true,
        body: format!(
            "{{\n  items: {}[];\n  /** Pass as `cursor` to get the next page; null on the last page. */\n  next_cursor: string | null;\n  /** Every matching row, when `count: \"exact\"` was asked. */\n  total?: number;\n}}",
            entity.name
        ),
    });
    let Some(list) = app.crud_operation(&entity.name, CrudAction::List) else {
        return;
    };
    let sortable: Vec<&str> = fields
        .iter()
        .filter(|f| f.sortable)
        .map(|f| f.member.name.as_str())
        .collect();
    let query: Vec<String> = list
        .params
        .iter()
        .filter_map(|p| match &p.role {
            ParamRole::Limit => Some(
                "  /** Rows per page, 1 to 1000 (default 50). */\n  limit?: number;\n".to_owned(),
            ),
            ParamRole::Cursor => Some(
                "  /** The `next_cursor` of the previous page. */\n  cursor?: string;\n".to_owned(),
            ),
            ParamRole::Count => Some(
                "  /** `exact` adds `total`. */\n  count?: \"exact\" | \"none\";\n".to_owned(),
            ),
            ParamRole::Sort if !sortable.is_empty() => Some(format!(
                "  /** Sort keys, `-` for descending: {}. */\n  sort?: string;\n",
                sortable.join(", ")
            )),
            ParamRole::Filter { .. } => Some(format!(
                "  /** {} */\n  {}?: string | string[];\n",
                p.description.as_deref().unwrap_or("Filter: `op.value`."),
                key(&p.name)
            )),
            ParamRole::Or => Some(
                "  /** Conditions of which one must hold: `(field.op.value,field.op.value)`. */\n  or?: string;\n".to_owned(),
            ),
            _ => None,
        })
        .collect();
    items.push(TsItem {
        name: entity.types.query.clone(),
        doc: doc(&[format!("The query of `{}`.", list.id)], ""),
        interface: true,
        body: object(&query),
    });
}

fn named_items(app: &App, items: &mut Vec<TsItem>) {
    for (name, named) in app.declared_types() {
        let description: Vec<String> = named
            .description()
            .map(|d| vec![d.to_owned()])
            .unwrap_or_default();
        let (interface, body) = match named {
            NamedType::Struct(s) => {
                let mut properties = Vec::new();
                if let Some((tag, value)) = app.variant_tag(name) {
                    properties.push(format!(
                        "  {}: {};\n",
                        key(tag),
                        serde_json::to_string(value).unwrap_or_default()
                    ));
                }
                for m in &s.members {
                    properties.push(property(m, !m.required, m.nullable, false, None));
                }
                (true, object(&properties))
            }
            NamedType::Enum(e) => (
                false,
                e.values
                    .iter()
                    .map(|v| serde_json::to_string(&v.value).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            NamedType::Union(u) => (
                false,
                u.variants
                    .iter()
                    .map(|v| ts_type(&v.ty, false))
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            NamedType::Derived(_) => continue,
        };
        items.push(TsItem {
            name: name.clone(),
            doc: doc(&description, ""),
            interface,
            body,
        });
    }
}

fn params_item(operation: &Operation, items: &mut Vec<TsItem>) {
    let Some(name) = &operation.params_type else {
        return;
    };
    let properties: Vec<String> = operation
        .params
        .iter()
        .map(|p| {
            let member = p.member();
            let where_ = match p.kind {
                OperationParamKind::Path => "In the path.",
                OperationParamKind::Query => "In the query.",
                OperationParamKind::Header => "A header.",
            };
            let mut lines: Vec<String> = p.description.iter().cloned().collect();
            lines.push(where_.to_owned());
            format!(
                "{}  {}{}: {};\n",
                doc(&lines, "  "),
                key(&p.name),
                if p.required { "" } else { "?" },
                ts_type(&member.ty, false)
            )
        })
        .collect();
    items.push(TsItem {
        name: name.clone(),
        doc: doc(
            &[format!(
                "The parameters of `{}` ({} {}).",
                operation.id, operation.method, operation.path
            )],
            "",
        ),
        interface: true,
        body: object(&properties),
    });
}

/// One event type the app publishes, for the `EVENTS` constant of `index.ts`.
#[derive(Debug, Serialize)]
pub(super) struct TsEvent {
    /// Its key in `EVENTS`, as `DEAL_WON` or `COMPANY_CREATED`.
    key: String,
    /// The type, as `crm.deal_won`.
    value: String,
    /// What happened.
    doc: String,
    /// The named type of its data: the payload of a declared event, or the entity of an
    /// entity's (`{id, before, after}` around it).
    data: String,
}

/// Every event type of the app: each entity's `created`, `updated` and `deleted`, then those of
/// `core/events/`, as Rust names them (`prefiq_check::Event`).
pub(super) fn events(app: &App) -> Vec<TsEvent> {
    let mut events = Vec::new();
    for entity in &app.entities {
        for action in prefiq_grammar::ENTITY_ACTIONS {
            events.push(TsEvent {
                key: format!("{}_{}", entity.snake.to_uppercase(), action.to_uppercase()),
                value: prefiq_grammar::entity_event_type(&app.name, &entity.name, action),
                doc: format!(
                    "{} {} was {action}.",
                    if crate::names::article(&entity.name) == "an" {
                        "An"
                    } else {
                        "A"
                    },
                    entity.name
                ),
                data: format!("EntityChange<{}>", entity.name),
            });
        }
    }
    for event in &app.events {
        events.push(TsEvent {
            key: event.name.to_uppercase(),
            value: app.event_type(&event.name),
            // One line that cannot end the comment it is in.
            doc: event
                .description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("*/", "* /"),
            data: event.payload.clone(),
        });
    }
    events
}

/// Every declaration of `index.ts`: the named types, each entity's, each custom operation's
/// parameters.
pub(super) fn items(app: &App) -> Vec<TsItem> {
    let mut items = Vec::new();
    named_items(app, &mut items);
    for entity in &app.entities {
        entity_items(app, entity, &mut items);
    }
    for operation in app.custom() {
        params_item(operation, &mut items);
    }
    items
}
