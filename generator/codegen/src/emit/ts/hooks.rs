//! `src/hooks/generated.ts`: TanStack Query hooks, with the cache follow-up of every write.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{App, CrudAction, FieldRole};
use crate::names::pascal;
use crate::templates::Templates;

use super::components::crud_op;
use super::types::ts_type;

/// `src/hooks/generated.ts`: TanStack Query keys, options and hooks per operation, with the
/// cache follow-up of each write derived from the entities' references.
pub(super) fn hooks(app: &App, templates: &Templates) -> Result<String, Diagnostic> {
    use heck::ToLowerCamelCase;
    let key_of = |name: &str| {
        app.entity(name)
            .map(|e| e.plural.to_lower_camel_case())
            .unwrap_or_default()
    };
    let mut imports: BTreeSet<String> = BTreeSet::new();
    let mut entities = Vec::new();
    for entity in &app.entities {
        let op = |action: CrudAction| crud_op(app, entity, action);
        let types = &entity.types;
        imports.extend([entity.name.clone(), types.query.clone()]);
        if !entity.read_only {
            imports.extend([types.create.clone(), types.patch.clone()]);
        }
        let parents: Vec<Value> = entity
            .fields
            .iter()
            .filter_map(|f| {
                let target = f.references.as_ref()?;
                Some(serde_json::json!({ "field": f.member.name, "key": key_of(&target.entity) }))
            })
            .collect();
        let children: BTreeSet<String> = app
            .entities
            .iter()
            .filter(|other| {
                other.fields.iter().any(|f| {
                    f.references
                        .as_ref()
                        .is_some_and(|r| r.entity == entity.name)
                })
            })
            .map(|other| key_of(&other.name))
            .collect();
        let words = entity.plural.replace(['-', '_'], " ");
        let article = crate::names::article(&entity.name);
        let key = entity.plural.to_lower_camel_case();
        let row = entity.name.to_lower_camel_case();
        entities.push(serde_json::json!({
            "name": entity.name,
            "key": key,
            "plural": pascal(&entity.plural),
            "plural_words": words,
            "article": article,
            "id": entity.key().member.name,
            "id_type": ts_type(&entity.key().member.ty, false),
            "version": entity.fields.iter().find(|f| f.role == FieldRole::Version).map(|f| f.member.name.clone()),
            "query": types.query,
            "create_type": types.create,
            "patch_type": types.patch,
            "list": op(CrudAction::List),
            "get": op(CrudAction::Get),
            "create": op(CrudAction::Create),
            "update": op(CrudAction::Update),
            "delete": op(CrudAction::Delete),
            "create_pascal": op(CrudAction::Create).map(|o| pascal(&o)),
            "update_pascal": op(CrudAction::Update).map(|o| pascal(&o)),
            "delete_pascal": op(CrudAction::Delete).map(|o| pascal(&o)),
            "list_query": format!("{key}Query"),
            "pages_query": format!("{key}PagesQuery"),
            "row_query": format!("{row}Query"),
            "parents": parents,
            "children": children,
        }));
    }
    let operations: Vec<Value> = app
        .custom()
        .map(|o| {
            // A writing operation's variables are the client function's arguments.
            if let Some(params) = o.params_type.as_ref().filter(|_| !o.writes()) {
                imports.insert(params.clone());
            }
            let optional = o.params.iter().all(|p| !p.required);
            serde_json::json!({
                "id": o.id,
                "pascal": pascal(&o.id),
                "method": o.method.as_str(),
                "path": o.path,
                "reads": !o.writes(),
                "params_type": o.params_type,
                "params_arg": o.params_type.as_ref().map(|t| format!("params: {t}{}", if optional { " = {}" } else { "" })).unwrap_or_default(),
            })
        })
        .collect();
    templates.render(
        "ts/hooks.ts.jinja",
        serde_json::json!({ "app": app.name, "entities": entities, "operations": operations, "imports": imports }),
    )
}
