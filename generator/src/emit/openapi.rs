//! The OpenAPI 3.1 document of an app: every route with its parameters, bodies, responses and
//! problem+json errors, with components made by [`super::schema`].

use serde_json::{Map, Value, json};

use super::schema::{self, COMPONENTS};
use crate::ir::{App, Entity, Type};

fn reference(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn problem_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": reference("schemas", "Problem") } } })
}

/// The statuses of the generated CRUD routes, in `operation_ids` order: `(success, errors)`.
pub const CRUD_STATUSES: [(u16, &[u16]); 5] = [
    (200, &[400, 500]),
    (201, &[400, 409, 413, 415, 422, 500]),
    (200, &[404, 500]),
    (200, &[400, 404, 409, 412, 413, 415, 422, 500]),
    (204, &[404, 409, 412, 500]),
];

/// The shared response component of an error status.
pub fn error_component(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        404 => "NotFound",
        409 => "Conflict",
        412 => "PreconditionFailed",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Unprocessable",
        _ => "InternalError",
    }
}

fn error_responses(statuses: &[u16]) -> Vec<(String, Value)> {
    statuses
        .iter()
        .map(|s| (s.to_string(), reference("responses", error_component(*s))))
        .collect()
}

/// Every response a custom operation can give: the declared ones, plus the errors the
/// generated handler itself produces (bad parameters or bodies, and 500).
pub fn operation_statuses(operation: &crate::ir::Operation) -> Vec<(u16, crate::ir::ResponseBody)> {
    use crate::ir::ResponseBody;
    let mut statuses: Vec<(u16, ResponseBody)> = operation
        .responses
        .iter()
        .map(|r| (r.status, r.body.clone()))
        .collect();
    let mut implied = vec![500];
    if operation.body.is_some() {
        implied.extend([400, 413, 415, 422]);
    }
    if !operation.params.is_empty() {
        implied.push(400);
    }
    for status in implied {
        if !statuses.iter().any(|(s, _)| *s == status) {
            statuses.push((status, ResponseBody::Problem));
        }
    }
    statuses.sort_by_key(|(s, _)| *s);
    statuses
}

/// The operation ids of an entity's routes: `listCompanies`, `createCompany`, ...
pub fn operation_ids(entity: &Entity) -> [String; 5] {
    let plural = crate::lower::names::pascal(&entity.plural);
    [
        format!("list{plural}"),
        format!("create{}", entity.name),
        format!("get{}", entity.name),
        format!("update{}", entity.name),
        format!("delete{}", entity.name),
    ]
}

fn filter_parameter(entity: &Entity, field: &crate::ir::Field) -> Value {
    let operators = match &field.member.ty {
        Type::Array(_) => "`cs` (contains)",
        Type::String(_) | Type::Enum { .. } => {
            "`eq`, `ne`, `lt`, `lte`, `gt`, `gte`, `in`, `like`, `ilike`"
        }
        Type::Boolean => "`eq`, `ne`",
        _ => "`eq`, `ne`, `lt`, `lte`, `gt`, `gte`, `in`",
    };
    let nulls = if field.is_nullable_column() {
        ", `is.null`, `is.notnull`"
    } else {
        ""
    };
    json!({
        "name": field.member.name,
        "in": "query",
        "required": false,
        "description": format!("Filter {} by `{}`: `op.value` with {operators}{nulls}. A value without an operator means `eq`; `in.(a,b)` lists values; `like.*text*` uses `*` as the wildcard.", entity.plural, field.member.name),
        "schema": { "type": "string" }
    })
}

fn responses(success: (u16, Value), errors: &[u16]) -> Value {
    let mut map = Map::new();
    map.insert(success.0.to_string(), success.1);
    map.extend(error_responses(errors));
    Value::Object(map)
}

fn entity_paths(app: &App, entity: &Entity, paths: &mut Map<String, Value>) {
    let [list, create, get, update, delete] = operation_ids(entity);
    let collection = format!("/api/{}/{}", app.name, entity.plural);
    let item = format!("{collection}/{{id}}");
    let tag = entity.name.clone();
    let model = reference("schemas", &entity.name);
    let sortable: Vec<&str> = entity
        .fields
        .iter()
        .filter(|f| f.sortable)
        .map(|f| f.member.name.as_str())
        .collect();
    let mut list_parameters = vec![
        reference("parameters", "limit"),
        reference("parameters", "cursor"),
        reference("parameters", "count"),
    ];
    list_parameters.push(json!({
        "name": "sort",
        "in": "query",
        "required": false,
        "description": format!("Comma-separated sort keys, `-` for descending (NULLs last). Sortable: {}. The primary key breaks ties.", if sortable.is_empty() { "none".to_owned() } else { sortable.join(", ") }),
        "schema": { "type": "string" }
    }));
    for field in entity.fields.iter().filter(|f| f.filterable) {
        list_parameters.push(filter_parameter(entity, field));
    }
    if entity.fields.iter().any(|f| f.filterable) {
        list_parameters.push(json!({
            "name": "or",
            "in": "query",
            "required": false,
            "description": "A group of conditions of which one must hold: `or=(field.op.value,field.op.value)`.",
            "schema": { "type": "string" }
        }));
    }
    let etag = json!({ "ETag": reference("headers", "ETag") });
    let [list_s, create_s, get_s, update_s, delete_s] = CRUD_STATUSES;
    let key_from_body = format!("$response.body#/{}", entity.key().member.name);
    paths.insert(collection, json!({
        "get": {
            "operationId": list,
            "tags": [tag],
            "summary": format!("List {}", entity.plural),
            "description": "Keyset-paginated: follow `next_cursor` until it is null.",
            "parameters": list_parameters,
            "responses": responses((list_s.0, json!({ "description": format!("A page of {}.", entity.plural), "content": json_content(reference("schemas", &format!("{}Page", entity.name))) })), list_s.1)
        },
        "post": {
            "operationId": create,
            "tags": [tag],
            "summary": format!("Create a {}", entity.name),
            "requestBody": { "required": true, "content": json_content(reference("schemas", &format!("{}Create", entity.name))) },
            "responses": responses((create_s.0, json!({
                "description": format!("The new {}.", entity.name),
                "headers": { "ETag": reference("headers", "ETag"), "Location": reference("headers", "Location") },
                "content": json_content(model.clone()),
                "links": {
                    format!("Get{}", entity.name): { "operationId": get, "parameters": { "id": key_from_body }, "description": format!("The {} just created.", entity.name) },
                    format!("Update{}", entity.name): { "operationId": update, "parameters": { "id": key_from_body }, "description": format!("Change the {} just created.", entity.name) },
                    format!("Delete{}", entity.name): { "operationId": delete, "parameters": { "id": key_from_body }, "description": format!("Delete the {} just created.", entity.name) }
                }
            })), create_s.1)
        }
    }));
    let key_schema = schema::type_schema(&entity.key().member.ty, false, COMPONENTS);
    paths.insert(item, json!({
        "parameters": [{ "name": "id", "in": "path", "required": true, "description": format!("The {}'s `{}`.", entity.name, entity.key().member.name), "schema": key_schema }],
        "get": {
            "operationId": get,
            "tags": [tag],
            "summary": format!("Get a {}", entity.name),
            "responses": responses((get_s.0, json!({ "description": format!("The {}.", entity.name), "headers": etag, "content": json_content(model.clone()) })), get_s.1)
        },
        "patch": {
            "operationId": update,
            "tags": [tag],
            "summary": format!("Update a {}", entity.name),
            "description": "A JSON merge patch (RFC 7386). Send `If-Match` with the ETag you read to be sure nobody changed it meanwhile (412 otherwise).",
            "parameters": [reference("parameters", "if-match")],
            "requestBody": { "required": true, "content": { "application/merge-patch+json": { "schema": reference("schemas", &format!("{}Patch", entity.name)) } } },
            "responses": responses((update_s.0, json!({ "description": format!("The updated {}.", entity.name), "headers": etag, "content": json_content(model) })), update_s.1)
        },
        "delete": {
            "operationId": delete,
            "tags": [tag],
            "summary": format!("Delete a {}", entity.name),
            "parameters": [reference("parameters", "if-match")],
            "responses": responses((delete_s.0, json!({ "description": "Deleted." })), delete_s.1)
        }
    }));
}

fn operation_item(operation: &crate::ir::Operation) -> Value {
    use crate::ir::{OperationParamKind, ResponseBody};
    let mut item = Map::new();
    item.insert("operationId".into(), operation.id.clone().into());
    if !operation.tags.is_empty() {
        item.insert("tags".into(), json!(operation.tags));
    }
    if let Some(summary) = &operation.summary {
        item.insert("summary".into(), summary.clone().into());
    }
    if let Some(description) = &operation.description {
        item.insert("description".into(), description.clone().into());
    }
    if operation.deprecated {
        item.insert("deprecated".into(), true.into());
    }
    if let Some(security) = &operation.security {
        item.insert("security".into(), security.clone());
    }
    let parameters: Vec<Value> = operation
        .params
        .iter()
        .map(|param| {
            let member = crate::emit::rust::param_member(param);
            let mut p = Map::new();
            p.insert("name".into(), param.name.clone().into());
            p.insert(
                "in".into(),
                match param.kind {
                    OperationParamKind::Path => "path",
                    OperationParamKind::Query => "query",
                    OperationParamKind::Header => "header",
                }
                .into(),
            );
            p.insert("required".into(), param.required.into());
            if let Some(d) = &param.description {
                p.insert("description".into(), d.clone().into());
            }
            p.insert(
                "schema".into(),
                schema::member_schema(&member, false, COMPONENTS),
            );
            Value::Object(p)
        })
        .collect();
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
            json_content(schema::type_schema(&body.ty, false, COMPONENTS)),
        );
        item.insert("requestBody".into(), Value::Object(b));
    }
    let mut responses = Map::new();
    for (status, body) in operation_statuses(operation) {
        let declared = operation.responses.iter().find(|r| r.status == status);
        let value = match (declared, body) {
            (None, _) => reference("responses", error_component(status)),
            (Some(r), ResponseBody::Empty) => json!({ "description": r.description }),
            (Some(r), ResponseBody::Json { ty }) => {
                json!({ "description": r.description, "content": json_content(schema::type_schema(&ty, false, COMPONENTS)) })
            }
            (Some(r), ResponseBody::Problem) => {
                let schema = if status == 422 {
                    "ValidationProblem"
                } else {
                    "Problem"
                };
                json!({ "description": r.description, "content": { "application/problem+json": { "schema": reference("schemas", schema) } } })
            }
        };
        responses.insert(status.to_string(), value);
    }
    item.insert("responses".into(), Value::Object(responses));
    Value::Object(item)
}

/// The problem+json schemas.
pub fn problem_schemas() -> Map<String, Value> {
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
pub fn document(app: &App) -> Value {
    let mut paths = Map::new();
    for entity in &app.entities {
        entity_paths(app, entity, &mut paths);
    }
    for operation in &app.operations {
        let entry = paths
            .entry(operation.path.clone())
            .or_insert_with(|| json!({}));
        if let Some(item) = entry.as_object_mut() {
            item.insert(
                operation.method.to_ascii_lowercase(),
                operation_item(operation),
            );
        }
    }
    paths.insert("/healthz".into(), json!({
        "get": {
            "operationId": "health",
            "tags": ["Service"],
            "summary": "Check that the service and its database answer",
            "responses": {
                "200": { "description": "Healthy.", "content": json_content(json!({ "type": "object", "required": ["status"], "properties": { "status": { "type": "string" } } })) },
                "503": problem_response("The database is unreachable.")
            }
        }
    }));
    let mut schemas = problem_schemas();
    for (name, named) in &app.types {
        schemas.insert(
            name.clone(),
            schema::named_schema(app, name, named, COMPONENTS),
        );
    }
    for entity in &app.entities {
        schemas.insert(entity.name.clone(), schema::model(entity, COMPONENTS));
        schemas.insert(
            format!("{}Create", entity.name),
            schema::create(entity, COMPONENTS),
        );
        schemas.insert(
            format!("{}Patch", entity.name),
            schema::patch(entity, COMPONENTS),
        );
        schemas.insert(
            format!("{}Page", entity.name),
            schema::page(entity, COMPONENTS),
        );
    }
    let mut tags: Vec<Value> = app
        .entities
        .iter()
        .map(|e| json!({ "name": e.name, "description": e.description.clone().unwrap_or_else(|| format!("{} records.", e.name)) }))
        .collect();
    for operation in &app.operations {
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
            "description": format!("The `{}` app, generated by Prefiq from apps/{}/core/schema. Errors are RFC 9457 problem+json.", app.name, app.name)
        },
        "servers": [{ "url": "/" }],
        // Alone, an app accepts anonymous calls; operations that name a scheme say so themselves.
        "security": [],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                "limit": { "name": "limit", "in": "query", "required": false, "description": "Rows per page, 1 to 1000.", "schema": { "type": "integer", "format": "int32", "minimum": 1, "maximum": 1000, "default": 50 } },
                "cursor": { "name": "cursor", "in": "query", "required": false, "description": "The `next_cursor` of the previous page.", "schema": { "type": "string" } },
                "count": { "name": "count", "in": "query", "required": false, "description": "`exact` to add the number of matching rows as `total`.", "schema": { "type": "string", "enum": ["exact", "none"] } },
                "if-match": { "name": "If-Match", "in": "header", "required": false, "description": "The ETag last read; the request fails with 412 if the row changed since.", "schema": { "type": "string" } }
            },
            "headers": {
                "ETag": { "description": "The row version, for `If-Match`.", "schema": { "type": "string" } },
                "Location": { "description": "The URL of the new resource.", "schema": { "type": "string" } }
            },
            "securitySchemes": app.security_schemes,
            "responses": {
                "BadRequest": problem_response("The request is malformed: bad JSON, or a bad query parameter."),
                "NotFound": problem_response("No such resource."),
                "Conflict": problem_response("The change conflicts with stored data: a unique value is taken, or a reference is broken."),
                "PreconditionFailed": problem_response("`If-Match` names a version that is no longer current."),
                "PayloadTooLarge": problem_response("The body is larger than the server accepts."),
                "UnsupportedMediaType": problem_response("The body is not JSON."),
                "Unprocessable": { "description": "The body breaks the schema; `errors` lists each invalid member.", "content": { "application/problem+json": { "schema": reference("schemas", "ValidationProblem") } } },
                "InternalError": problem_response("The server failed; quote the `x-request-id` header when reporting it.")
            }
        }
    })
}
