//! The OpenAPI 3.1 document of an app: every route with its parameters, bodies, responses and
//! problem+json errors, with components made by [`crate::schemas`].

use serde_json::{Map, Value, json};

use crate::ir::{
    App, CrudAction, Operation, OperationKind, OperationParam, OperationResponse, ParamRole,
    ResponseBody, ResponseHeader, ResponseOrigin,
};
use crate::schemas::{self as schema, COMPONENTS};

fn reference(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn problem_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": reference("schemas", "Problem") } } })
}

fn parameter(param: &OperationParam) -> Value {
    match param.role {
        ParamRole::Limit => return reference("parameters", "limit"),
        ParamRole::Cursor => return reference("parameters", "cursor"),
        ParamRole::Count => return reference("parameters", "count"),
        ParamRole::IfMatch => return reference("parameters", "if-match"),
        _ => {}
    }
    let schema = match param.role {
        // Sort keys and filters are strings with a small grammar of their own, as patterns the
        // server checks too. A filter is one condition here; the server also takes the
        // parameter repeated (up to 10 times), all of which must hold.
        ParamRole::Filter { .. } => match &param.ty {
            crate::ir::Type::Array(array) => schema::type_schema(&array.items, false, COMPONENTS),
            other => schema::type_schema(other, false, COMPONENTS),
        },
        ParamRole::Sort | ParamRole::Or => schema::type_schema(&param.ty, false, COMPONENTS),
        ParamRole::Key => schema::type_schema(&param.ty, false, COMPONENTS),
        _ => schema::member_schema(&param.member(), false, COMPONENTS),
    };
    let mut p = Map::new();
    p.insert("name".into(), param.name.clone().into());
    p.insert("in".into(), param.kind.as_str().into());
    p.insert("required".into(), param.required.into());
    if let Some(d) = &param.description {
        p.insert("description".into(), d.clone().into());
    }
    p.insert("schema".into(), schema);
    Value::Object(p)
}

fn header(header: ResponseHeader) -> (&'static str, Value) {
    match header {
        ResponseHeader::ETag => ("ETag", reference("headers", "ETag")),
        ResponseHeader::Location => ("Location", reference("headers", "Location")),
    }
}

/// OpenAPI links from a new row to the routes that take its key.
fn links(app: &App, entity: &str) -> Option<Value> {
    let entity = app.entity(entity)?;
    let key = format!("$response.body#/{}", entity.key().member.name);
    let mut links = Map::new();
    for (action, verb) in [
        (CrudAction::Get, "The {} just created."),
        (CrudAction::Update, "Change the {} just created."),
        (CrudAction::Delete, "Delete the {} just created."),
    ] {
        let operation = app.crud_operation(&entity.name, action)?;
        links.insert(
            operation.type_prefix.clone(),
            json!({ "operationId": operation.id, "parameters": { "id": key }, "description": verb.replace("{}", &entity.name) }),
        );
    }
    Some(Value::Object(links))
}

fn response(app: &App, operation: &Operation, response: &OperationResponse) -> Value {
    if response.origin == ResponseOrigin::Standard {
        return reference("responses", &response.name);
    }
    let mut r = Map::new();
    r.insert("description".into(), response.description.clone().into());
    if !response.headers.is_empty() {
        let headers: Map<String, Value> = response
            .headers
            .iter()
            .map(|h| {
                let (name, value) = header(*h);
                (name.to_owned(), value)
            })
            .collect();
        r.insert("headers".into(), Value::Object(headers));
    }
    match &response.body {
        ResponseBody::Empty => {}
        ResponseBody::Json { ty } => {
            r.insert(
                "content".into(),
                json_content(schema::type_schema(ty, false, COMPONENTS)),
            );
        }
        ResponseBody::Problem => {
            let schema = ResponseBody::problem_schema(response.status);
            r.insert(
                "content".into(),
                json!({ "application/problem+json": { "schema": reference("schemas", schema) } }),
            );
        }
    }
    if let OperationKind::Crud {
        entity,
        action: CrudAction::Create,
    } = &operation.kind
    {
        if response.is_success() {
            if let Some(links) = links(app, entity) {
                r.insert("links".into(), links);
            }
        }
    }
    Value::Object(r)
}

fn operation_item(app: &App, operation: &Operation) -> Value {
    let mut item = Map::new();
    item.insert("operationId".into(), operation.id.clone().into());
    if !operation.tags.is_empty() {
        item.insert("tags".into(), json!(operation.tags));
    }
    if let Some(summary) = &operation.summary {
        item.insert("summary".into(), summary.clone().into());
    }
    // A platform operation says so where people read: its description.
    let platform_note = (operation.access.scope == crate::ir::Scope::Platform)
        .then_some("Only platform operators may call it: a tenant's roles never grant it.");
    match (&operation.description, platform_note) {
        (Some(description), Some(note)) => {
            item.insert(
                "description".into(),
                format!("{description}\n\n{note}").into(),
            );
        }
        (Some(description), None) => {
            item.insert("description".into(), description.clone().into());
        }
        (None, Some(note)) => {
            item.insert("description".into(), note.into());
        }
        (None, None) => {}
    }
    if operation.deprecated {
        item.insert("deprecated".into(), true.into());
    }
    if let Some(security) = &operation.security {
        item.insert("security".into(), security.clone());
    }
    item.insert(
        "x-prefiq-permission".into(),
        operation.access.permission.clone().into(),
    );
    if operation.access.scope == crate::ir::Scope::Platform {
        item.insert("x-prefiq-scope".into(), "platform".into());
    }
    // A CRUD route's key is a parameter of its path item, shared by the item's routes.
    let mut parameters: Vec<Value> = operation
        .params
        .iter()
        .filter(|p| !(p.role == ParamRole::Key && operation.crud_action().is_some()))
        .map(parameter)
        .collect();
    // Every write takes an `Idempotency-Key` (the runtime's middleware honours it).
    if operation.writes() {
        parameters.push(reference("parameters", "idempotency-key"));
    }
    if !parameters.is_empty() {
        item.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = &operation.body {
        let mut b = Map::new();
        b.insert("required".into(), true.into());
        if let Some(d) = &body.description {
            b.insert("description".into(), d.clone().into());
        }
        b.insert(
            "content".into(),
            json!({ body.media_type.clone(): { "schema": schema::with_rules(schema::type_schema(&body.ty, false, COMPONENTS), &body.rules) } }),
        );
        item.insert("requestBody".into(), Value::Object(b));
    }
    let responses: Map<String, Value> = operation
        .responses
        .iter()
        .map(|r| (r.status.to_string(), response(app, operation, r)))
        .collect();
    item.insert("responses".into(), Value::Object(responses));
    Value::Object(item)
}

/// The problem+json schemas.
pub(super) fn problem_schemas() -> Map<String, Value> {
    let mut schemas = Map::new();
    schemas.insert("FieldError".into(), json!({
        "type": "object",
        "description": "One invalid member of a request.",
        "required": ["pointer", "detail"],
        "properties": {
            "pointer": { "type": "string", "description": "JSON pointer (RFC 6901) to the member in the request body." },
            "detail": { "type": "string" },
            "keyword": { "type": "string", "description": "The JSON Schema keyword that failed." }
        }
    }));
    schemas.insert("Problem".into(), json!({
        "type": "object",
        "description": "An RFC 9457 problem.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string", "format": "uri" },
            "title": { "type": "string" },
            "status": { "type": "integer", "format": "int32" },
            "detail": { "type": "string" },
            "errors": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" } }
        }
    }));
    schemas.insert("ValidationProblem".into(), json!({
        "description": "A 422 problem: `errors` lists every invalid member of the body.",
        "allOf": [
            { "$ref": "#/components/schemas/Problem" },
            { "type": "object", "required": ["errors"], "properties": { "errors": { "type": "array", "items": { "$ref": "#/components/schemas/FieldError" } } } }
        ]
    }));
    schemas
}

/// The OpenAPI 3.1 document of `app`.
pub(super) fn document(app: &App) -> Value {
    let mut paths = Map::new();
    for operation in &app.operations {
        let entry = paths.entry(operation.path.clone()).or_insert_with(|| {
            let mut item = Map::new();
            if operation.crud_action().is_some() {
                let shared: Vec<Value> = operation
                    .params
                    .iter()
                    .filter(|p| p.role == ParamRole::Key)
                    .map(parameter)
                    .collect();
                if !shared.is_empty() {
                    item.insert("parameters".into(), Value::Array(shared));
                }
            }
            Value::Object(item)
        });
        if let Some(item) = entry.as_object_mut() {
            item.insert(
                operation.method.lower().to_owned(),
                operation_item(app, operation),
            );
        }
    }
    paths.insert("/healthz".into(), json!({
        "get": {
            "operationId": "health",
            "tags": ["Service"],
            // Load balancers probe it without credentials.
            "security": [],
            "summary": "Check that the service and its database answer",
            "responses": {
                "200": { "description": "Healthy.", "content": json_content(json!({ "type": "object", "required": ["status"], "properties": { "status": { "type": "string" } } })) },
                "503": problem_response("The database is unreachable.")
            }
        }
    }));
    let mut schemas = problem_schemas();
    for (name, named) in app.declared_types() {
        schemas.insert(
            name.clone(),
            schema::named_schema(app, name, named, COMPONENTS),
        );
    }
    for entity in &app.entities {
        schemas.insert(entity.name.clone(), schema::model(entity, COMPONENTS));
        schemas.insert(entity.types.page.clone(), schema::page(entity, COMPONENTS));
        if entity.read_only {
            continue;
        }
        schemas.insert(
            entity.types.create.clone(),
            schema::create(entity, COMPONENTS),
        );
        // On a merge patch the rules judge the merged result, not the patch: published for
        // clients, never compiled against the patch itself (see `schema::document`).
        schemas.insert(
            entity.types.patch.clone(),
            schema::with_rules(schema::patch(entity, app, COMPONENTS), &entity.rules),
        );
    }
    // The standard errors, each described once; operations refer to them.
    let mut standard: Vec<&OperationResponse> = app
        .operations
        .iter()
        .flat_map(|o| &o.responses)
        .filter(|r| r.origin == ResponseOrigin::Standard)
        .collect();
    standard.sort_by_key(|r| r.status);
    standard.dedup_by_key(|r| r.status);
    let responses: Map<String, Value> = standard
        .into_iter()
        .map(|r| {
            let schema = ResponseBody::problem_schema(r.status);
            (
                r.name.clone(),
                json!({ "description": r.description, "content": { "application/problem+json": { "schema": reference("schemas", schema) } } }),
            )
        })
        .collect();
    let mut tags: Vec<Value> = app
        .entities
        .iter()
        .map(|e| json!({ "name": e.name, "description": e.description.clone().unwrap_or_else(|| format!("{} records.", e.name)) }))
        .collect();
    for operation in app.custom() {
        for tag in &operation.tags {
            if !tags.iter().any(|t| t["name"] == *tag) {
                tags.push(json!({ "name": tag, "description": format!("{tag} operations.") }));
            }
        }
    }
    tags.push(json!({ "name": "Service", "description": "Operational endpoints." }));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} API", app.name),
            "version": "0.1.0",
            "description": format!("The `{}` app, generated by Prefiq from {}/core/schema. Errors are RFC 9457 problem+json.", app.name, crate::ir::app_root(&app.name))
        },
        "servers": [{ "url": "/" }],
        // Every operation needs an access token (401 without, 403 without its permission).
        "security": [{ crate::ir::BEARER_SCHEME: [] }],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                "limit": { "name": "limit", "in": "query", "required": false, "description": "Rows per page, 1 to 1000.", "schema": { "type": "integer", "format": "int32", "minimum": 1, "maximum": 1000, "default": 50 } },
                "cursor": { "name": "cursor", "in": "query", "required": false, "description": "The `next_cursor` of the previous page; one this API did not make is a 404.", "schema": { "type": "string", "pattern": prefiq_grammar::CURSOR } },
                "count": { "name": "count", "in": "query", "required": false, "description": "`exact` to add the number of matching rows as `total`.", "schema": { "type": "string", "enum": ["exact", "none"] } },
                "idempotency-key": { "name": "Idempotency-Key", "in": "header", "required": false, "description": "A key of yours (a UUID, say) that makes retries of this request safe: a request with the key of an earlier one gets that request's response again, marked `Idempotency-Replayed: true`, and the operation happens once. Keys are yours alone (your tenant, you and this route) and hold for a day. The same key with a different request is a 422; while its first request still runs, a 409 with `Retry-After`.", "schema": { "type": "string", "pattern": prefiq_grammar::IDEMPOTENCY_KEY } },
                "if-match": { "name": "If-Match", "in": "header", "required": false, "description": "The ETag last read (`\"3\"`), or `*`; the request fails with 412 if the row changed since. If-Match compares strongly: a weak tag never matches. A value that is not an entity tag list is a 400.", "schema": { "type": "string", "pattern": crate::ir::ETAG_LIST_PATTERN } }
            },
            "headers": {
                "ETag": { "description": "The row version, for `If-Match`.", "schema": { "type": "string" } },
                "Location": { "description": "The URL of the new resource.", "schema": { "type": "string" } }
            },
            "securitySchemes": app.security_schemes,
            "responses": responses
        }
    })
}
