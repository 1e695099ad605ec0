//! Lowering of OpenAPI fragments (`*.openapi.yaml|json`, OpenAPI 3.0.x or 3.1.x) into custom
//! operations. Their schemas are lowered like entity schemas and may `$ref` entities, shared
//! definitions and the fragment's own `components`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Loc, Lowerer};
use crate::ir::{
    Access, Derived, Method, NamedType, Operation, OperationBody, OperationKind, OperationParam,
    OperationParamKind, OperationResponse, ParamRole, ResponseBody, ResponseHeader, ResponseOrigin,
    RowScope, Scope, Type, status_name,
};
use crate::load::FileKind;
use crate::names::{self, pascal};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn is_json_media(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or("").trim();
    essence == "application/json"
        || (essence.starts_with("application/")
            && essence.ends_with("+json")
            && essence != "application/problem+json")
}

/// The path with parameter names erased, to compare routes: `/a/{id}/b` → `/a/{}/b`.
pub(super) fn route_shape(path: &str) -> String {
    let mut shape = String::new();
    let mut in_param = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                in_param = true;
                shape.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => shape.push(ch),
        }
    }
    shape
}

fn template_params(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

impl Lowerer<'_> {
    /// Follows a `$ref` to a component of the same fragment (parameters, responses, bodies).
    fn component(&mut self, loc: &Loc) -> Option<Loc> {
        let value = self.value(loc)?;
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Some(loc.clone());
        };
        let fragment = reference.strip_prefix('#').unwrap_or("");
        let target = Loc {
            file: loc.file,
            pointer: fragment.to_owned(),
        };
        if !reference.starts_with("#/") || self.value(&target).is_none() {
            self.error(&loc.child("$ref"), false, "prefiq::lower::unresolved_ref", format!("unresolved $ref `{reference}`"), "parameters, responses and request bodies may refer to `#/components/...` of the same fragment", "unresolved");
            return None;
        }
        Some(target)
    }

    /// Whether schemas in this file follow OpenAPI 3.0 (`nullable`, `example`, boolean exclusive bounds).
    pub(super) fn is_openapi_30(&self, file: usize) -> bool {
        self.files[file].kind == FileKind::OpenApi
            && self.files[file]
                .value
                .as_ref()
                .and_then(|v| v.get("openapi"))
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("3.0"))
    }

    /// Lowers every operation of every fragment; `crud` are the generated routes they must
    /// not clash with.
    pub(super) fn lower_operations(&mut self, app: &str, crud: &[Operation]) -> Vec<Operation> {
        let mut operations: Vec<Operation> = Vec::new();
        let mut routes: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for operation in crud {
            if let OperationKind::Crud { entity, .. } = &operation.kind {
                routes.insert(
                    (
                        operation.method.as_str().to_owned(),
                        route_shape(&operation.path),
                    ),
                    format!("the generated CRUD route of {entity}"),
                );
            }
            ids.insert(operation.id.clone());
        }
        let prefix = format!("/api/{app}/");
        for file in 0..self.files.len() {
            if self.files[file].kind != FileKind::OpenApi || self.files[file].value.is_none() {
                continue;
            }
            self.touched.insert(file);
            let root = Loc {
                file,
                pointer: String::new(),
            };
            match self
                .value(&root)
                .and_then(|v| v.get("openapi"))
                .and_then(Value::as_str)
            {
                Some(version) if version.starts_with("3.0") || version.starts_with("3.1") => {}
                other => {
                    let shown = other
                        .map(|v| format!("`{v}`"))
                        .unwrap_or_else(|| "missing".to_owned());
                    self.error(
                        &root.child("openapi"),
                        true,
                        "prefiq::lower::openapi_version",
                        format!("the OpenAPI version is {shown}"),
                        "write `openapi: 3.1.0` (3.0.x is accepted too)",
                        "version",
                    );
                    continue;
                }
            }
            let paths: Vec<String> = self
                .value(&root)
                .and_then(|v| v.get("paths"))
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            for path in paths {
                let path_loc = root.child("paths").child(&path);
                if !path.starts_with(&prefix) {
                    self.error(&path_loc, true, "prefiq::lower::operation_path", format!("`{path}` is outside the app's `{prefix}`"), format!("start every path with `{prefix}` so that URLs stay the same when Cortex mounts the app"), "outside the app");
                    continue;
                }
                let keys: Vec<String> = self
                    .value(&path_loc)
                    .and_then(Value::as_object)
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                for key in &keys {
                    if !METHODS.contains(&key.as_str())
                        && key != "parameters"
                        && key != "summary"
                        && key != "description"
                        && !key.starts_with("x-")
                    {
                        self.error(
                            &path_loc.child(key),
                            true,
                            "prefiq::lower::operation_method",
                            format!("`{key}` operations are not supported"),
                            "use get, post, put, patch or delete",
                            "unsupported",
                        );
                    }
                }
                for method in METHODS {
                    if !keys.iter().any(|k| k == method) {
                        continue;
                    }
                    let op_loc = path_loc.child(method);
                    let upper = method.to_ascii_uppercase();
                    let shape = route_shape(&path);
                    if let Some(owner) = routes.get(&(upper.clone(), shape.clone())) {
                        self.error(&op_loc, true, "prefiq::lower::route_conflict", format!("{upper} {path} is already {owner}"), "choose another path or method; generated CRUD routes cannot be replaced (use the service hooks to change their behaviour)", "conflicts");
                        continue;
                    }
                    if let Some(operation) =
                        self.lower_operation(app, &op_loc, &path_loc, method, &path, &mut ids)
                    {
                        routes.insert((upper, shape), format!("operation `{}`", operation.id));
                        operations.push(operation);
                    }
                }
            }
            if let Some(schemes) = self
                .value(&root)
                .and_then(|v| v.pointer("/components/securitySchemes"))
                .and_then(Value::as_object)
                .cloned()
            {
                for (name, scheme) in schemes {
                    self.security_schemes.insert(name, scheme);
                }
            }
        }
        operations.sort_by(|a, b| a.id.cmp(&b.id));
        operations
    }

    fn lower_operation(
        &mut self,
        app: &str,
        loc: &Loc,
        path_loc: &Loc,
        method_name: &str,
        path: &str,
        ids: &mut BTreeSet<String>,
    ) -> Option<Operation> {
        let method = Method::from_lower(method_name)?;
        let object = self.value(loc)?.as_object()?.clone();
        let id = self.operation_id(loc, &object, method, path, ids)?;
        let id_loc = loc.child("operationId");
        let type_prefix = pascal(&id);

        let params = self.lower_params(loc, path_loc, path, &type_prefix);

        let body = match self.value(&loc.child("requestBody")).cloned() {
            None => None,
            Some(_) => {
                let body_loc = self.component(&loc.child("requestBody"))?;
                self.lower_body(&body_loc, &type_prefix)
            }
        };
        if body.is_some() && method == Method::Get {
            self.error(
                &loc.child("requestBody"),
                true,
                "prefiq::lower::get_body",
                "a GET operation cannot have a request body",
                "send the inputs as query parameters, or use POST",
                "body on GET",
            );
        }

        let responses = self.lower_responses(
            loc,
            &id,
            &type_prefix,
            (body.is_some(), !params.is_empty(), method != Method::Get),
        );
        let params_type = (!params.is_empty())
            .then(|| self.register_params_type(loc, &id_loc, &id, &type_prefix));
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let access = self.operation_access(app, loc, &object, method, &id);
        Some(Operation {
            rust: names::rust_field(&id),
            access,
            type_prefix,
            id,
            method,
            path: path.to_owned(),
            kind: OperationKind::Custom,
            summary: text("summary"),
            description: text("description"),
            tags: object
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            deprecated: object
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            security: object.get("security").cloned(),
            params,
            params_type,
            body,
            responses,
            source: self.files[loc.file].path().to_owned(),
        })
    }

    /// The operation's `operationId`, checked: present, an identifier, unique in the app.
    fn operation_id(
        &mut self,
        loc: &Loc,
        object: &Map<String, Value>,
        method: Method,
        path: &str,
        ids: &mut BTreeSet<String>,
    ) -> Option<String> {
        let Some(id) = object
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            self.error(loc, true, "prefiq::lower::operation_id", format!("{method} {path} has no operationId"), "add `operationId: verbNoun` (it names the service method, the client function and the types)", "no operationId");
            return None;
        };
        let id_loc = loc.child("operationId");
        if !id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.error(
                &id_loc,
                false,
                "prefiq::lower::operation_id",
                format!("`{id}` cannot be an operationId"),
                "use letters and digits in camelCase, as in `winDeal`",
                "invalid",
            );
            return None;
        }
        if !ids.insert(id.clone()) {
            self.error(&id_loc, false, "prefiq::lower::duplicate_operation", format!("the operationId `{id}` is used twice"), "operationIds are unique across the app, including the generated CRUD ones (listDeals, createDeal, getDeal, updateDeal, deleteDeal)", "duplicate");
            return None;
        }
        Some(id)
    }

    /// The operation's parameters: path-level first, then operation-level (which override by
    /// name and place), checked against the path template and for names that collide in Rust.
    fn lower_params(
        &mut self,
        loc: &Loc,
        path_loc: &Loc,
        path: &str,
        type_prefix: &str,
    ) -> Vec<OperationParam> {
        let mut param_locs: Vec<Loc> = Vec::new();
        for owner in [path_loc, loc] {
            let count = self
                .value(&owner.child("parameters"))
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            for index in 0..count {
                if let Some(target) =
                    self.component(&owner.child("parameters").child(&index.to_string()))
                {
                    param_locs.push(target);
                }
            }
        }
        let mut params: Vec<OperationParam> = Vec::new();
        for at in param_locs {
            let Some(param) = self.lower_param(&at, type_prefix) else {
                continue;
            };
            params.retain(|p| !(p.name == param.name && p.kind == param.kind));
            params.push(param);
        }
        let declared: Vec<String> = params
            .iter()
            .filter(|p| p.kind == OperationParamKind::Path)
            .map(|p| p.name.clone())
            .collect();
        for name in template_params(path) {
            if !declared.contains(&name) {
                self.error(loc, true, "prefiq::lower::path_param", format!("the path parameter `{{{name}}}` is not declared"), format!("add `{{name: {name}, in: path, required: true, schema: {{type: string}}}}` to `parameters`"), "undeclared");
            }
        }
        for name in &declared {
            if !template_params(path).contains(name) {
                self.error(
                    loc,
                    true,
                    "prefiq::lower::path_param",
                    format!("`{name}` is declared `in: path` but is not in `{path}`"),
                    "put it in the path template or change `in`",
                    "not in the path",
                );
            }
        }
        let mut seen = BTreeSet::new();
        for param in &params {
            if !seen.insert(param.rust.clone()) {
                self.error(
                    loc,
                    true,
                    "prefiq::lower::name_collision",
                    format!("two parameters become `{}` in Rust", param.rust),
                    "rename one of them",
                    "collides",
                );
            }
        }
        params
    }

    /// The operation's responses, by status: the declared ones, then the errors the generated
    /// handler itself gives (bad parameters or bodies, 401, 403 and 500) and, for a write, those
    /// of its `Idempotency-Key` (400, 409, 422).
    fn lower_responses(
        &mut self,
        loc: &Loc,
        id: &str,
        type_prefix: &str,
        (has_body, has_params, writes): (bool, bool, bool),
    ) -> Vec<OperationResponse> {
        let mut responses = Vec::new();
        let statuses: Vec<String> = self
            .value(&loc.child("responses"))
            .and_then(Value::as_object)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        for status in statuses {
            let at = loc.child("responses").child(&status);
            let Ok(code) = status.parse::<u16>() else {
                self.error(&at, true, "prefiq::lower::response_status", format!("response `{status}` has no exact status code"), "declare each status explicitly (200, 404, 422...): every status gets its own variant of the typed response", "not a status");
                continue;
            };
            if !(100..600).contains(&code) {
                self.error(
                    &at,
                    true,
                    "prefiq::lower::response_status",
                    format!("{code} is not an HTTP status"),
                    "use a status from 100 to 599",
                    "not a status",
                );
                continue;
            }
            let Some(target) = self.component(&at) else {
                continue;
            };
            if let Some(response) = self.lower_response(&target, code, type_prefix) {
                responses.push(response);
            }
        }
        if !responses.iter().any(OperationResponse::is_success) {
            self.error(&loc.child("responses"), true, "prefiq::lower::no_success", format!("`{id}` declares no 2xx response"), "declare the success response, as in `'200': {description: ..., content: {application/json: {schema: ...}}}`", "no success");
        }
        let mut implied = vec![401, 403, 500];
        if has_body {
            implied.extend([400, 413, 415, 422]);
        }
        if has_params {
            implied.push(400);
        }
        if writes {
            implied.extend([400, 409, 422]);
        }
        for status in implied {
            if !responses.iter().any(|r| r.status == status) {
                responses.push(super::crud::standard_response(status));
            }
        }
        responses.sort_by_key(|r| r.status);
        responses
    }

    /// Names the type of the operation's parameters, `<Operation>Params` (a diagnostic when a
    /// schema has that name already).
    fn register_params_type(
        &mut self,
        loc: &Loc,
        id_loc: &Loc,
        id: &str,
        type_prefix: &str,
    ) -> String {
        let name = format!("{type_prefix}Params");
        if let Some(origin) = self.type_origin.get(&name).cloned() {
            let other = format!("{}#{}", self.files[origin.file].path(), origin.pointer);
            self.error(
                id_loc,
                false,
                "prefiq::lower::duplicate_type",
                format!("`{name}` is the type of `{id}`'s parameters, and {other} takes it too"),
                "give that schema a different `title`, or rename the operation",
                "operation",
            );
        } else {
            self.type_origin.insert(name.clone(), loc.clone());
            self.types.insert(
                name.clone(),
                NamedType::Derived(Derived::Params {
                    operation: id.to_owned(),
                }),
            );
        }
        name
    }

    /// Who may call the operation: the roles granted it by default (`x-prefiq-roles`, or
    /// whoever may read for a `GET` and members for anything else) and its scope
    /// (`x-prefiq-scope: platform` keeps it to platform operators).
    fn operation_access(
        &mut self,
        app: &str,
        loc: &Loc,
        object: &Map<String, Value>,
        method: Method,
        id: &str,
    ) -> Access {
        let default_roles: Vec<String> =
            match object.get("x-prefiq-roles").and_then(Value::as_array) {
                Some(roles) => roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                None if method == Method::Get => vec!["member".into(), "viewer".into()],
                None => vec!["member".into()],
            };
        let scope = match object.get("x-prefiq-scope") {
            None => Scope::Tenant,
            Some(Value::String(s)) if s == "tenant" => Scope::Tenant,
            Some(Value::String(s)) if s == "platform" => Scope::Platform,
            Some(other) => {
                self.error(
                    &loc.child("x-prefiq-scope"),
                    false,
                    "prefiq::lower::operation_scope",
                    format!("`x-prefiq-scope` is {other}, which is no scope"),
                    "write `x-prefiq-scope: platform` for an operation only platform operators may call, or leave it out (a tenant's callers, as their roles allow)",
                    "not a scope",
                );
                Scope::Tenant
            }
        };
        Access {
            permission: format!("{app}.{id}"),
            default_roles,
            rows: RowScope::All,
            scope,
        }
    }

    fn lower_param(&mut self, at: &Loc, type_prefix: &str) -> Option<OperationParam> {
        let object = self.value(at)?.as_object()?.clone();
        let name = object
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = match object.get("in").and_then(Value::as_str) {
            Some("path") => OperationParamKind::Path,
            Some("query") => OperationParamKind::Query,
            Some("header") => OperationParamKind::Header,
            other => {
                self.error(
                    &at.child("in"),
                    true,
                    "prefiq::lower::param_location",
                    format!(
                        "parameters `in: {}` are not supported",
                        other.unwrap_or("?")
                    ),
                    "use path, query or header",
                    "unsupported",
                );
                return None;
            }
        };
        if !names::is_valid_member(&name) {
            self.error(
                at,
                true,
                "prefiq::lower::member_name",
                format!("`{name}` cannot be a parameter name"),
                "parameter names start with a letter and hold letters, digits, `_` and `-`",
                "invalid",
            );
            return None;
        }
        let required = object
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if kind == OperationParamKind::Path && !required {
            self.error(
                at,
                true,
                "prefiq::lower::path_param",
                format!("the path parameter `{name}` must be `required: true`"),
                "add `required: true`",
                "optional path parameter",
            );
        }
        if !object.contains_key("schema") {
            self.error(
                at,
                true,
                "prefiq::lower::param_schema",
                format!("the parameter `{name}` has no schema"),
                "add `schema: {type: string}` (or the parameter's type)",
                "no schema",
            );
            return None;
        }
        let lowered = self.lower_schema(
            &at.child("schema"),
            &format!("{type_prefix}{}", pascal(&name)),
        );
        let scalar = match &lowered.ty {
            Type::Array(a) => a.items.is_scalar() && kind == OperationParamKind::Query,
            ty => ty.is_scalar(),
        };
        if !scalar {
            self.error(&at.child("schema"), true, "prefiq::lower::param_type", format!("the parameter `{name}` must be a scalar (or, in the query, an array of scalars)"), "send structured input in the request body", "not a scalar");
            return None;
        }
        Some(OperationParam {
            rust: names::rust_field(&name),
            name,
            kind,
            role: ParamRole::Input,
            required,
            default: self
                .value(&at.child("schema"))
                .and_then(|s| s.get("default"))
                .cloned(),
            ty: lowered.ty,
            description: object
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    fn lower_body(&mut self, at: &Loc, type_prefix: &str) -> Option<OperationBody> {
        let object = self.value(at)?.as_object()?.clone();
        if object.get("required").and_then(Value::as_bool) != Some(true) {
            self.error(
                at,
                true,
                "prefiq::lower::optional_body",
                "optional request bodies are not supported",
                "add `required: true`, or move the optional inputs into query parameters",
                "optional body",
            );
        }
        let content = object
            .get("content")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let media: Vec<&String> = content.keys().collect();
        let Some(json) = media.iter().find(|m| is_json_media(m)) else {
            self.error(
                at,
                true,
                "prefiq::lower::body_media",
                "the request body must be `application/json`",
                "declare `content: {application/json: {schema: ...}}`",
                "no JSON content",
            );
            return None;
        };
        if media.len() > 1 {
            self.error(&at.child("content"), true, "prefiq::lower::body_media", "a request body has one media type", "keep only `application/json`: one media type per body keeps every client generator happy", "several media types");
        }
        let schema_loc = at.child("content").child(json).child("schema");
        if self.value(&schema_loc).is_none() {
            self.error(
                &at.child("content").child(json),
                true,
                "prefiq::lower::body_schema",
                "the request body has no schema",
                "add `schema:`",
                "no schema",
            );
            return None;
        }
        let lowered = self.lower_schema(&schema_loc, &format!("{type_prefix}Body"));
        Some(OperationBody {
            ty: lowered.ty,
            media_type: "application/json".to_owned(),
            description: object
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            rules: Vec::new(),
        })
    }

    fn lower_response(
        &mut self,
        at: &Loc,
        status: u16,
        type_prefix: &str,
    ) -> Option<OperationResponse> {
        let object = self.value(at)?.as_object()?.clone();
        let description = object
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let content = object
            .get("content")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let body = if content.is_empty() {
            if status >= 400 {
                ResponseBody::Problem
            } else {
                ResponseBody::Empty
            }
        } else if content.contains_key("application/problem+json") && content.len() == 1 {
            ResponseBody::Problem
        } else if let Some(media) = content.keys().find(|m| is_json_media(m)) {
            if content.len() > 1 {
                self.error(
                    &at.child("content"),
                    true,
                    "prefiq::lower::response_media",
                    "a response has one media type",
                    "keep only `application/json` (or `application/problem+json` for errors)",
                    "several media types",
                );
            }
            let schema_loc = at.child("content").child(media).child("schema");
            if self.value(&schema_loc).is_none() {
                self.error(
                    &at.child("content").child(media),
                    true,
                    "prefiq::lower::response_schema",
                    "the response has no schema",
                    "add `schema:`",
                    "no schema",
                );
                return None;
            }
            let lowered = self.lower_schema(
                &schema_loc,
                &format!("{type_prefix}{}", status_name(status)),
            );
            ResponseBody::Json { ty: lowered.ty }
        } else {
            self.error(
                &at.child("content"),
                true,
                "prefiq::lower::response_media",
                "responses are JSON",
                "use `application/json`, or `application/problem+json` for errors",
                "not JSON",
            );
            return None;
        };
        // A response that carries one entity carries its version as the ETag.
        let headers = match &body {
            ResponseBody::Json {
                ty: Type::Entity { .. },
            } if (200..300).contains(&status) => vec![ResponseHeader::ETag],
            _ => Vec::new(),
        };
        Some(OperationResponse {
            status,
            name: status_name(status),
            description,
            body,
            origin: ResponseOrigin::Declared,
            headers,
        })
    }
}
