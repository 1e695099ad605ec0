//! One OpenAPI 3.1 document for everything Cortex serves, merged from each app's own (and
//! Cortex's), and an API reference rendered from it on the server, so that `/docs` works
//! offline: no script, font or style comes from anywhere else.

use std::collections::BTreeMap;

use askama::Template;
use serde_json::{Map, Value, json};

const SECTIONS: [&str; 5] = [
    "schemas",
    "responses",
    "parameters",
    "headers",
    "securitySchemes",
];

fn pascal(app: &str) -> String {
    app.split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Rewrites every `$ref` of `value` that `renames` names.
fn rewrite(value: &mut Value, renames: &BTreeMap<String, String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "$ref" {
                    if let Some(target) = child.as_str().and_then(|r| renames.get(r)) {
                        *child = Value::String(target.clone());
                    }
                } else {
                    rewrite(child, renames);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, renames)),
        _ => {}
    }
}

/// The token endpoints, described for the merged document.
fn auth_paths() -> Value {
    let token_error = json!({
        "description": "An RFC 6749 error: `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client` or `unsupported_grant_type` (the `password` grant is refused).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
    });
    json!({
        "/auth/token": {"post": {
            "operationId": "token",
            "tags": ["Authentication"],
            "summary": "Get an access token",
            "description": "RFC 6749 token endpoint: `authorization_code` with PKCE (S256), `client_credentials`, or `refresh_token` (which rotates: a reused refresh token revokes its family). Responses carry `Cache-Control: no-store`.",
            "security": [],
            "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {
                    "grant_type": {"type": "string", "enum": ["authorization_code", "client_credentials", "refresh_token"]},
                    "code": {"type": "string"},
                    "redirect_uri": {"type": "string"},
                    "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128},
                    "refresh_token": {"type": "string"},
                    "client_id": {"type": "string"},
                    "client_secret": {"type": "string"}
                }
            }}}},
            "responses": {
                "200": {"description": "The tokens.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}}},
                "400": token_error,
                "401": token_error,
                "429": token_error
            }
        }},
        "/auth/revoke": {"post": {
            "operationId": "revokeToken",
            "tags": ["Authentication"],
            "summary": "Revoke a refresh token (with its family) or a personal access token",
            "security": [],
            "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}
            }}}},
            "responses": {"200": {"description": "Revoked, or unknown: the answer is the same."}, "400": token_error}
        }},
        "/.well-known/jwks.json": {"get": {
            "operationId": "keys",
            "tags": ["Authentication"],
            "summary": "The public keys access tokens are signed with (JWKS)",
            "security": [],
            "responses": {"200": {"description": "The key set.", "content": {"application/json": {"schema": {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {"type": "object"}}}}}}}}
        }}
    })
}

/// Documents the 404 every operation of an app's path `item` can answer under Cortex: an
/// administrator can switch the app off for a tenant, and its routes then answer "no route
/// matches this URL". Operations that document a 404 already (an item's) keep theirs.
fn answer_404_when_switched_off(item: &mut Value, problem: &str) {
    let Some(operations) = item.as_object_mut() else {
        return;
    };
    for operation in operations.values_mut() {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        responses.entry("404").or_insert_with(|| {
            json!({
                "description": "The app is switched off for the caller's tenant.",
                "content": {"application/problem+json": {"schema": {"$ref": problem}}}
            })
        });
    }
}

/// The merged document of Cortex (`own`) and the installed apps, `(name, document)`.
pub fn merged(own: &str, apps: &[(&str, &str)]) -> Value {
    let mut paths = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    let mut components: BTreeMap<&str, Map<String, Value>> =
        SECTIONS.iter().map(|s| (*s, Map::new())).collect();
    let documents = std::iter::once(("cortex", own)).chain(apps.iter().copied());
    for (app, text) in documents {
        let Ok(mut document) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        // Components that clash with an earlier app's (same name, other content) are renamed
        // with the app's name in front, and every reference to them follows.
        let mut renames = BTreeMap::new();
        for section in SECTIONS {
            let Some(own) = document["components"][section].as_object() else {
                continue;
            };
            for (name, value) in own {
                if let Some(existing) = components[section].get(name) {
                    if existing != value {
                        renames.insert(
                            format!("#/components/{section}/{name}"),
                            format!("#/components/{section}/{}{name}", pascal(app)),
                        );
                    }
                }
            }
        }
        rewrite(&mut document, &renames);
        for section in SECTIONS {
            let Some(own) = document["components"][section].as_object() else {
                continue;
            };
            for (name, value) in own {
                let key = format!("#/components/{section}/{name}");
                let name = renames
                    .get(&key)
                    .and_then(|r| r.rsplit('/').next())
                    .map(str::to_owned)
                    .unwrap_or_else(|| name.clone());
                if let Some(section) = components.get_mut(section) {
                    section.entry(name).or_insert_with(|| value.clone());
                }
            }
        }
        if let Some(own) = document["paths"].as_object() {
            for (path, item) in own {
                if path == "/openapi.json" {
                    continue;
                }
                let mut item = item.clone();
                if app != "cortex" {
                    let problem = renames
                        .get("#/components/schemas/Problem")
                        .map_or("#/components/schemas/Problem", String::as_str);
                    answer_404_when_switched_off(&mut item, problem);
                }
                paths.entry(path.clone()).or_insert(item);
            }
        }
        for tag in document["tags"].as_array().cloned().unwrap_or_default() {
            if !tags.iter().any(|t| t["name"] == tag["name"]) {
                tags.push(tag);
            }
        }
    }
    if let Some(auth) = auth_paths().as_object() {
        for (path, item) in auth {
            paths.insert(path.clone(), item.clone());
        }
    }
    tags.push(json!({"name": "Authentication", "description": "Tokens, keys and revocation (OAuth 2.0)."}));
    if let Some(schemas) = components.get_mut("schemas") {
        schemas.insert(
            "TokenResponse".into(),
            json!({"type": "object", "required": ["access_token", "token_type", "expires_in"], "properties": {
                "access_token": {"type": "string"},
                "token_type": {"type": "string", "const": "Bearer"},
                "expires_in": {"type": "integer"},
                "refresh_token": {"type": "string"}
            }}),
        );
        schemas.insert(
            "OAuthError".into(),
            json!({"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"}
            }}),
        );
    }
    let components: Map<String, Value> = components
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), Value::Object(v)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Cortex API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every installed app under /api/<app>/, Cortex's own API under /api/cortex/, and the OAuth 2.0 endpoints. Every operation needs a bearer access token (POST /auth/token) or a personal access token; `x-prefiq-permission` names the permission it checks. Errors are RFC 9457 problem+json."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": tags,
        "paths": paths,
        "components": components
    })
}

/// One operation on the reference page.
#[derive(Debug)]
pub struct OperationView {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Its path.
    pub path: String,
    /// Its id, for anchors.
    pub id: String,
    /// One line.
    pub summary: String,
    /// More.
    pub description: String,
    /// The permission it checks.
    pub permission: String,
    /// `(name, in, required, type, description)`.
    pub params: Vec<(String, String, bool, String, String)>,
    /// `(media type, schema)` of the body.
    pub body: Option<(String, String)>,
    /// `(status, description, schema)`.
    pub responses: Vec<(String, String, String)>,
}

/// A schema on the reference page.
#[derive(Debug)]
pub struct SchemaView {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// `(member, type, required, description)`.
    pub members: Vec<(String, String, bool, String)>,
}

/// The reference page.
#[derive(Template)]
#[template(path = "docs.html")]
pub struct DocsPage {
    /// The document's title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// Operations by tag.
    pub groups: Vec<(String, Vec<OperationView>)>,
    /// Every schema.
    pub schemas: Vec<SchemaView>,
}

/// A type, in words: `string (uuid)`, `array of Deal`, `Company`.
pub fn describe(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(any) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return any.iter().map(describe).collect::<Vec<_>>().join(" | ");
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_owned(),
    };
    if ty.contains("array") {
        return format!("{ty} of {}", describe(&schema["items"]));
    }
    match (schema["format"].as_str(), schema["enum"].as_array()) {
        (_, Some(values)) => format!(
            "{ty}: {}",
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Some(format), None) => format!("{ty} ({format})"),
        (None, None) => ty,
    }
}

/// The reference page of `document`.
pub fn page(document: &Value) -> DocsPage {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut groups: BTreeMap<String, Vec<OperationView>> = BTreeMap::new();
    let resolve = |v: &Value| -> Value {
        match v["$ref"].as_str() {
            Some(r) => {
                let pointer = r.trim_start_matches('#');
                document.pointer(pointer).cloned().unwrap_or(Value::Null)
            }
            None => v.clone(),
        }
    };
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let operation = &item[method];
            if !operation.is_object() {
                continue;
            }
            let mut params = Vec::new();
            let all = item["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(operation["parameters"].as_array().into_iter().flatten());
            for param in all {
                let param = resolve(param);
                params.push((
                    text(&param["name"]),
                    text(&param["in"]),
                    param["required"].as_bool().unwrap_or(false),
                    describe(&param["schema"]),
                    text(&param["description"]),
                ));
            }
            let body = operation["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.iter().next())
                .map(|(media, content)| (media.clone(), describe(&content["schema"])));
            let responses = operation["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, response)| {
                    let response = resolve(response);
                    let schema = response["content"]
                        .as_object()
                        .and_then(|c| c.values().next())
                        .map(|c| describe(&c["schema"]))
                        .unwrap_or_default();
                    (status.clone(), text(&response["description"]), schema)
                })
                .collect();
            let tag = operation["tags"][0].as_str().unwrap_or("Other").to_owned();
            groups.entry(tag).or_default().push(OperationView {
                method: method.to_uppercase(),
                path: path.clone(),
                id: text(&operation["operationId"]),
                summary: text(&operation["summary"]),
                description: text(&operation["description"]),
                permission: text(&operation["x-prefiq-permission"]),
                params,
                body,
                responses,
            });
        }
    }
    let schemas = document["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            SchemaView {
                name: name.clone(),
                description: text(&schema["description"]),
                members: schema["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(member, s)| {
                        (
                            member.clone(),
                            describe(s),
                            required.contains(&member.as_str()),
                            text(&s["description"]),
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    DocsPage {
        title: text(&document["info"]["title"]),
        description: text(&document["info"]["description"]),
        groups: groups.into_iter().collect(),
        schemas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashing_components_are_renamed_and_references_follow() {
        let a = json!({"paths": {"/api/a/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}}}}},
            "components": {"schemas": {"Item": {"type": "string"}, "Problem": {"type": "object"}}}});
        let b = json!({"paths": {"/api/b/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}}}}},
            "components": {"schemas": {"Item": {"type": "integer"}, "Problem": {"type": "object"}}}});
        let merged = merged("{}", &[("a", &a.to_string()), ("b-c", &b.to_string())]);
        let schemas = &merged["components"]["schemas"];
        assert_eq!(schemas["Item"], json!({"type": "string"}));
        assert_eq!(schemas["BCItem"], json!({"type": "integer"}));
        assert!(
            schemas.get("BCProblem").is_none(),
            "identical components are shared"
        );
        assert_eq!(
            merged["paths"]["/api/b/x"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/BCItem"
        );
        assert!(merged["paths"]["/auth/token"]["post"].is_object());
    }

    #[test]
    fn every_app_operation_documents_the_404_of_an_app_switched_off() {
        let own = json!({"paths": {"/api/cortex/users": {"get": {"responses": {"200": {}}}}}});
        let app = json!({"paths": {
            "/api/a/x": {"get": {"responses": {"200": {}}}, "parameters": []},
            "/api/a/x/{id}": {"get": {"responses": {"200": {}, "404": {"description": "No such x."}}}}
        }, "components": {"schemas": {"Problem": {"type": "object"}}}});
        let merged = merged(&own.to_string(), &[("a", &app.to_string())]);
        let list = &merged["paths"]["/api/a/x"]["get"]["responses"]["404"];
        assert_eq!(
            list["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert_eq!(
            merged["paths"]["/api/a/x/{id}"]["get"]["responses"]["404"]["description"],
            "No such x.",
            "a documented 404 stays"
        );
        assert!(
            merged["paths"]["/api/cortex/users"]["get"]["responses"]
                .get("404")
                .is_none(),
            "Cortex's own operations cannot be switched off"
        );
    }
}
