//! Response validation against an app's OpenAPI 3.1 document: every response a test receives
//! must have a documented status, a documented media type, and a body that validates against
//! the documented schema (with the `jsonschema` crate).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// An OpenAPI document and the validators compiled from it so far.
pub struct Contract {
    document: Value,
    validators: Mutex<HashMap<String, jsonschema::Validator>>,
    checked: Mutex<usize>,
}

fn matches(template: &str, path: &str) -> Option<usize> {
    let a: Vec<&str> = template.split('/').collect();
    let b: Vec<&str> = path.split('/').collect();
    if a.len() != b.len() {
        return None;
    }
    let mut params = 0;
    for (t, p) in a.iter().zip(&b) {
        if t.starts_with('{') && t.ends_with('}') {
            params += 1;
        } else if t != p {
            return None;
        }
    }
    Some(params)
}

impl Contract {
    /// Reads an OpenAPI 3.1 document.
    pub fn load(path: &std::path::Path) -> Contract {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let document = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        Contract {
            document,
            validators: Mutex::new(HashMap::new()),
            checked: Mutex::new(0),
        }
    }

    /// How many responses were checked.
    pub fn checked(&self) -> usize {
        *self.checked.lock().unwrap()
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => self
                .document
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or(value),
            None => value,
        }
    }

    /// Checks one response. Requests to paths or methods the document does not have (a 404 for
    /// an unknown route, a 405) have no contract and are skipped.
    pub fn check(
        &self,
        method: &str,
        path_and_query: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        let Some(paths) = self.document["paths"].as_object() else {
            return;
        };
        let best = paths
            .iter()
            .filter_map(|(template, item)| {
                matches(template, path).map(|params| (params, template, item))
            })
            .min_by_key(|(params, _, _)| *params);
        let Some((_, template, item)) = best else {
            return;
        };
        let Some(operation) = item.get(method.to_ascii_lowercase()) else {
            return;
        };
        let responses = &operation["responses"];
        let spec = responses
            .get(status.to_string())
            .or_else(|| responses.get(format!("{}XX", status / 100)))
            .or_else(|| responses.get("default"))
            .unwrap_or_else(|| {
                panic!(
                    "{method} {template} answered {status}, which the OpenAPI document does not declare (declared: {:?}); body: {}",
                    responses.as_object().map(|r| r.keys().collect::<Vec<_>>()),
                    String::from_utf8_lossy(body)
                )
            });
        let spec = self.resolve(spec);
        let Some(content) = spec
            .get("content")
            .and_then(Value::as_object)
            .filter(|c| !c.is_empty())
        else {
            assert!(
                body.is_empty(),
                "{method} {template} {status} must have no body, got {}",
                String::from_utf8_lossy(body)
            );
            *self.checked.lock().unwrap() += 1;
            return;
        };
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let Some(entry) = content.get(&media) else {
            panic!(
                "{method} {template} {status} was sent as `{media}`, but the document declares {:?}",
                content.keys().collect::<Vec<_>>()
            );
        };
        let instance: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "{method} {template} {status}: the body is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        let schema = &entry["schema"];
        let key = schema.to_string();
        let mut validators = self.validators.lock().unwrap();
        let validator = validators.entry(key).or_insert_with(|| {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": self.document["components"],
                "allOf": [schema],
            });
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .expect("the documented schema compiles")
        });
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the body breaks the documented schema:\n{}\nbody: {instance}",
            errors.join("\n")
        );
        *self.checked.lock().unwrap() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        let document = json!({
            "openapi": "3.1.0",
            "paths": {
                "/things/{id}": { "get": { "responses": {
                    "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } } },
                    "204": { "description": "empty" }
                } } }
            },
            "components": { "schemas": { "Thing": { "type": "object", "required": ["id"], "properties": { "id": { "type": "integer" } } } } }
        });
        Contract {
            document,
            validators: Mutex::new(HashMap::new()),
            checked: Mutex::new(0),
        }
    }

    fn fails(check: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let error = std::panic::catch_unwind(check).expect_err("the check must fail");
        error.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn conforming_responses_pass_and_are_counted() {
        let contract = contract();
        contract.check(
            "GET",
            "/things/7?x=1",
            200,
            Some("application/json"),
            br#"{"id": 7}"#,
        );
        contract.check("GET", "/things/7", 204, None, b"");
        contract.check("GET", "/elsewhere", 404, Some("text/plain"), b"nope");
        assert_eq!(contract.checked(), 2);
    }

    #[test]
    fn every_kind_of_breach_is_caught() {
        let c = contract();
        assert!(
            fails(|| c.check(
                "GET",
                "/things/7",
                200,
                Some("application/json"),
                br#"{"id": "x"}"#
            ))
            .contains("breaks the documented schema")
        );
        let c = contract();
        assert!(
            fails(|| c.check("GET", "/things/7", 500, Some("application/json"), b"{}"))
                .contains("does not declare")
        );
        let c = contract();
        assert!(
            fails(|| c.check("GET", "/things/7", 200, Some("text/html"), b"<p>"))
                .contains("was sent as")
        );
        let c = contract();
        assert!(
            fails(|| c.check("GET", "/things/7", 204, None, b"{}")).contains("must have no body")
        );
    }
}
