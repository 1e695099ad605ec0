//! `src/services/client.ts`: one tree-shakable function per operation, typed by status.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{
    App, CrudAction, Entity, Operation, OperationKind, OperationParamKind, ResponseBody,
};
use crate::names::pascal;
use crate::templates::Templates;

use super::types::{TsItem, key, ts_type};
use super::{TsOptions, doc};

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

/// `client.ts`: a function per operation, importing only the declared `items` it mentions.
pub(super) fn render(
    app: &App,
    templates: &Templates,
    options: &TsOptions,
    items: &[TsItem],
) -> Result<String, Diagnostic> {
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
    templates.render(
        "ts/client.ts.jinja",
        serde_json::json!({ "app": app.name, "imports": imports, "types_path": options.types_path, "runtime": options.runtime, "operations": operations }),
    )
}

/// `core.ts`, the request helper, for a client that carries its own (`prefiq openapi-ts`): the
/// same code as the frontend library's, which the template links to.
pub(crate) fn core(templates: &Templates) -> Result<String, Diagnostic> {
    templates.render("ts/core.ts.jinja", Value::Null)
}

#[cfg(test)]
mod tests {
    /// The built-in `ts/core.ts.jinja` is the frontend library's `core.ts` (a link), and renders
    /// to it unchanged: a client that carries its own request helper carries the library's.
    #[test]
    fn the_bundled_core_is_the_library_s_own() {
        let library = include_str!("../../../../../resources/frontend/src/core.ts");
        let templates = crate::templates::Templates::builtin().unwrap();
        let rendered = super::core(&templates).unwrap();
        assert_eq!(rendered.trim_end(), library.trim_end());
    }
}
