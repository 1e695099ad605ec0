//! TypeScript output: the types of an app (`core/types/ts/index.ts`) and a fetch-only client
//! (`src/services/`). Type expressions are decided here; the files come from `templates/ts/`.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{
    App, CrudAction, Entity, FieldRole, Member, NamedType, Operation, OperationKind,
    OperationParamKind, ParamRole, ResponseBody, Type,
};
use crate::names::pascal;
use crate::templates::Templates;

/// Where the client imports the types from (relative to `src/services/`).
const TYPES_FROM_CLIENT: &str = "../../core/types/ts/index.js";

/// A comment block, with `*/` made harmless.
pub fn doc(lines: &[String], indent: &str) -> String {
    let lines: Vec<String> = lines
        .iter()
        .flat_map(|l| {
            if l.is_empty() {
                vec![String::new()]
            } else {
                l.lines().map(str::to_owned).collect::<Vec<_>>()
            }
        })
        .collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return String::new();
    }
    let escape = |l: &str| l.replace("*/", "*\\/");
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", escape(lines[0].trim()));
    }
    let mut out = format!("{indent}/**\n");
    for line in lines {
        out.push_str(&format!("{indent} * {}\n", escape(line.trim_end())).replace(" * \n", " *\n"));
    }
    out.push_str(&format!("{indent} */\n"));
    out
}

/// A property name, quoted when it is not an identifier.
fn key(name: &str) -> String {
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
pub fn ts_type(ty: &Type, nullable: bool) -> String {
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
struct TsItem {
    name: String,
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

#[derive(Serialize)]
struct TsListAll {
    name: String,
    query: String,
    item: String,
}

#[derive(Serialize)]
struct TsOperation {
    name: String,
    doc: String,
    result: String,
    results: Vec<String>,
    signature: String,
    method: String,
    path: String,
    query: Option<String>,
    headers: Option<String>,
    body: Option<String>,
    content_type: Option<String>,
    statuses: String,
    list_all: Option<TsListAll>,
}

fn results(statuses: &[(u16, String, bool)]) -> (Vec<String>, String) {
    // Group errors of one type: `Err<400 | 409, Problem>`.
    let mut out: Vec<String> = Vec::new();
    let mut groups: Vec<(String, Vec<u16>)> = Vec::new();
    for (status, ty, success) in statuses {
        if *success {
            out.push(format!("Ok<{status}, {ty}>"));
        } else if let Some(group) = groups.iter_mut().find(|(t, _)| t == ty) {
            group.1.push(*status);
        } else {
            groups.push((ty.clone(), vec![*status]));
        }
    }
    for (ty, codes) in groups {
        let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
        out.push(format!("Err<{}, {ty}>", codes.join(" | ")));
    }
    let table: Vec<String> = statuses
        .iter()
        .map(|(s, _, ok)| format!("{s}: {ok}"))
        .collect();
    (out, format!("{{ {} }}", table.join(", ")))
}

/// `(status, TypeScript type, success)` of every response of `operation`.
fn statuses(operation: &Operation) -> Vec<(u16, String, bool)> {
    operation
        .responses
        .iter()
        .map(|r| {
            let ty = match &r.body {
                ResponseBody::Empty => "undefined".to_owned(),
                ResponseBody::Json { ty } => ts_type(ty, false),
                ResponseBody::Problem => ResponseBody::problem_schema(r.status).to_owned(),
            };
            (r.status, ty, r.is_success())
        })
        .collect()
}

/// A path template as a JavaScript expression; `value` gives the expression of a parameter.
fn path_expression(path: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::from("`");
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .unwrap_or(rest.len() - 1);
        let name = &rest[start + 1..end];
        out.push_str(&format!("${{encodeURIComponent(String({}))}}", value(name)));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out.push('`');
    out
}

fn crud_operation(entity: &Entity, operation: &Operation, action: CrudAction) -> TsOperation {
    let key_ty = ts_type(&entity.key().member.ty, false);
    let (results, table) = results(&statuses(operation));
    let plain = format!("\"{}\"", operation.path);
    let item = path_expression(&operation.path, str::to_owned);
    let query = &entity.types.query;
    let (doc_line, signature, path, query_arg, headers, body, content_type) = match action {
        CrudAction::List => (
            format!("Lists {} (filters, sorting, keyset pages).", entity.plural),
            format!("query: {query} = {{}}, options: RequestOptions = {{}}"),
            plain,
            Some("query".to_owned()),
            None,
            None,
            None,
        ),
        CrudAction::Create => (
            format!("Creates {}.", crate::names::a(&entity.name)),
            format!(
                "body: {}, options: RequestOptions = {{}}",
                entity.types.create
            ),
            plain,
            None,
            None,
            Some("body".to_owned()),
            None,
        ),
        CrudAction::Get => (
            format!(
                "Gets {} (its ETag is in `response.headers`).",
                crate::names::a(&entity.name)
            ),
            format!("id: {key_ty}, options: RequestOptions = {{}}"),
            item,
            None,
            None,
            None,
            None,
        ),
        CrudAction::Update => (
            format!(
                "Updates {} with a JSON merge patch; pass `ifMatch` (the ETag you read) to refuse a lost update with 412.",
                crate::names::a(&entity.name)
            ),
            format!(
                "id: {key_ty}, patch: {}, options: RequestOptions & {{ ifMatch?: string }} = {{}}",
                entity.types.patch
            ),
            item,
            None,
            Some("{ \"if-match\": options.ifMatch }".to_owned()),
            Some("patch".to_owned()),
            operation.body.as_ref().map(|b| b.media_type.clone()),
        ),
        CrudAction::Delete => (
            format!(
                "Deletes {}; pass `ifMatch` to refuse if it changed since you read it.",
                crate::names::a(&entity.name)
            ),
            format!("id: {key_ty}, options: RequestOptions & {{ ifMatch?: string }} = {{}}"),
            item,
            None,
            Some("{ \"if-match\": options.ifMatch }".to_owned()),
            None,
            None,
        ),
    };
    let method = operation.method.as_str().to_owned();
    let list_all = (action == CrudAction::List).then(|| TsListAll {
        name: format!("listAll{}", pascal(&entity.plural)),
        query: query.clone(),
        item: entity.name.clone(),
    });
    TsOperation {
        name: operation.id.clone(),
        doc: doc(&[doc_line, format!("`{method} {}`", operation.path)], ""),
        result: format!("{}Result", operation.type_prefix),
        results,
        signature,
        method,
        path,
        query: query_arg,
        headers,
        body,
        content_type,
        statuses: table,
        list_all,
    }
}

fn custom_operation(operation: &Operation) -> TsOperation {
    let prefix = &operation.type_prefix;
    let (results, table) = results(&statuses(operation));
    let mut args = Vec::new();
    let access = |name: &str| {
        if key(name) == name {
            format!("params.{name}")
        } else {
            format!("params[{}]", key(name))
        }
    };
    if let Some(params_type) = &operation.params_type {
        let optional = operation.params.iter().all(|p| !p.required);
        args.push(format!(
            "params: {params_type}{}",
            if optional { " = {}" } else { "" }
        ));
    }
    if let Some(body) = &operation.body {
        args.push(format!("body: {}", ts_type(&body.ty, false)));
    }
    args.push("options: RequestOptions = {}".to_owned());
    let path = path_expression(&operation.path, access);
    let pick = |kind: OperationParamKind| -> Option<String> {
        let entries: Vec<String> = operation
            .params
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| format!("{}: {}", key(&p.name), access(&p.name)))
            .collect();
        (!entries.is_empty()).then(|| format!("{{ {} }}", entries.join(", ")))
    };
    let mut lines: Vec<String> = operation.summary.iter().cloned().collect();
    if let Some(description) = &operation.description {
        lines.push(String::new());
        lines.push(description.clone());
    }
    lines.push(String::new());
    lines.push(format!(
        "`{} {}`{}",
        operation.method,
        operation.path,
        if operation.tags.is_empty() {
            String::new()
        } else {
            format!(" (tags: {})", operation.tags.join(", "))
        }
    ));
    if let Some(security) = &operation.security {
        lines.push(format!("Security: `{security}`."));
    }
    if operation.deprecated {
        lines.push("@deprecated".into());
    }
    TsOperation {
        name: operation.id.clone(),
        doc: doc(&lines, ""),
        result: format!("{prefix}Result"),
        results,
        signature: args.join(", "),
        method: operation.method.as_str().to_owned(),
        path,
        query: pick(OperationParamKind::Query),
        headers: pick(OperationParamKind::Header),
        body: operation.body.as_ref().map(|_| "body".to_owned()),
        content_type: None,
        statuses: table,
        list_all: None,
    }
}

/// How to render TypeScript.
pub struct TsOptions<'a> {
    /// Where the client imports the types from.
    pub types_path: &'a str,
    /// Where the client imports its request helper from: [`RUNTIME`] in a project, `./core.js`
    /// for a client that carries its own ([`core`]).
    pub runtime: &'a str,
}

/// The React-free entry of the frontend library, which every generated service file imports.
pub const RUNTIME: &str = "@prefiq/frontend/client";

/// The frontend library's main entry (components, sessions), which the screens import.
pub const LIBRARY: &str = "@prefiq/frontend";

/// The TypeScript of an app: `(types, client)`.
pub fn render(
    app: &App,
    templates: &Templates,
    options: &TsOptions,
) -> Result<(String, String), Diagnostic> {
    let mut items = Vec::new();
    named_items(app, &mut items);
    for entity in &app.entities {
        entity_items(app, entity, &mut items);
    }
    for operation in app.custom() {
        params_item(operation, &mut items);
    }
    let types = templates.render(
        "ts/types.ts.jinja",
        serde_json::json!({ "app": app.name, "types": items }),
    )?;

    let operations: Vec<TsOperation> = app
        .operations
        .iter()
        .map(|operation| match &operation.kind {
            OperationKind::Crud { entity, action } => match app.entity(entity) {
                Some(entity) => crud_operation(entity, operation, *action),
                None => custom_operation(operation),
            },
            OperationKind::Custom => custom_operation(operation),
        })
        .collect();
    // Import only what the client mentions, so that `tsc` sees no unused imports.
    let mut mentioned: BTreeSet<String> = BTreeSet::new();
    for o in &operations {
        let mut text = format!("{} {}", o.signature, o.results.join(" "));
        if let Some(list) = &o.list_all {
            text.push_str(&format!(" {} {}", list.query, list.item));
        }
        mentioned.extend(
            text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .map(str::to_owned),
        );
    }
    let mut imports: Vec<String> = vec!["Problem".into(), "ValidationProblem".into()];
    imports.extend(items.iter().map(|i| i.name.clone()));
    imports.sort();
    imports.dedup();
    imports.retain(|name| mentioned.contains(name));
    let client = templates.render(
        "ts/client.ts.jinja",
        serde_json::json!({ "app": app.name, "imports": imports, "types_path": options.types_path, "runtime": options.runtime, "operations": operations }),
    )?;
    Ok((types, client))
}

/// `core.ts`, the request helper, for a client that carries its own (`prefiq openapi-ts`): the
/// same code as the frontend library's, which the template links to.
pub fn core(templates: &Templates) -> Result<String, Diagnostic> {
    templates.render("ts/core.ts.jinja", Value::Null)
}

/// `src/services/rules.ts`: the rules of `core/validation/` per body they judge, checked by the
/// frontend library's evaluator.
pub fn rules(app: &App, templates: &Templates) -> Result<String, Diagnostic> {
    let published = |rules: &[crate::ir::Rule]| {
        let value = crate::emit::schema::with_rules(serde_json::json!({}), rules);
        let lines: Vec<String> = value[crate::emit::schema::RULES]
            .as_array()
            .into_iter()
            .flatten()
            .map(|rule| format!("  {rule},"))
            .collect();
        format!("[\n{}\n]", lines.join("\n"))
    };
    let mut checks = Vec::new();
    for entity in app.entities.iter().filter(|e| !e.rules.is_empty()) {
        checks.push(serde_json::json!({
            "name": entity.name,
            "doc": format!("`{}` bodies (a create's input, or the merged result of a patch)", entity.name),
            "rules": published(&entity.rules),
        }));
    }
    for operation in app.custom() {
        if let Some(body) = operation.body.as_ref().filter(|b| !b.rules.is_empty()) {
            checks.push(serde_json::json!({
                "name": pascal(&operation.id),
                "doc": format!("`{}` bodies", operation.id),
                "rules": published(&body.rules),
            }));
        }
    }
    templates.render(
        "ts/rules.ts.jinja",
        serde_json::json!({ "root": crate::ir::app_root(&app.name), "runtime": RUNTIME, "checks": checks }),
    )
}

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
/// server checks, giving the server's pointers and messages.
pub fn validators(app: &App, templates: &Templates) -> Result<String, Diagnostic> {
    let document = crate::emit::schema::document(app);
    let defs = without_annotations(&document["$defs"]);
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
            "definition": crate::emit::schema::body_definition(operation),
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

/// `src/hooks/generated.ts`: TanStack Query keys, options and hooks per operation, with the
/// cache follow-up of each write derived from the entities' references.
pub fn hooks(app: &App, templates: &Templates) -> Result<String, Diagnostic> {
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
fn crud_op(app: &App, entity: &Entity, action: CrudAction) -> Option<String> {
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
pub fn components(app: &App, templates: &Templates) -> Result<String, Diagnostic> {
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

/// The TypeScript files of `app`: `(path, contents)`.
pub fn emit(app: &App, templates: &Templates) -> Result<Vec<(String, String)>, Diagnostic> {
    let (types, client) = render(
        app,
        templates,
        &TsOptions {
            types_path: TYPES_FROM_CLIENT,
            runtime: RUNTIME,
        },
    )?;
    let root = crate::ir::app_root(&app.name);
    Ok(vec![
        (format!("{root}/core/types/ts/index.ts"), types),
        (format!("{root}/src/services/client.ts"), client),
        (
            format!("{root}/src/services/rules.ts"),
            rules(app, templates)?,
        ),
        (
            format!("{root}/src/services/validate.ts"),
            validators(app, templates)?,
        ),
        (
            format!("{root}/src/hooks/generated.ts"),
            hooks(app, templates)?,
        ),
        (
            format!("{root}/src/components/generated.tsx"),
            components(app, templates)?,
        ),
    ])
}
