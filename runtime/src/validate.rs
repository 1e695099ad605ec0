//! Request validation: each entity's JSON Schema, compiled once at start-up with `jsonschema`,
//! turned into a 422 problem that lists every invalid member by JSON pointer.

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::problem::{FieldError, Problem};

/// A compiled JSON Schema for one kind of request body.
pub struct Validator {
    inner: jsonschema::Validator,
    read_only: &'static [&'static str],
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").finish_non_exhaustive()
    }
}

/// A schema that failed to compile: a generator bug, reported at start-up rather than per request.
#[derive(Debug, thiserror::Error)]
#[error("the embedded schema `{name}` does not compile: {message}")]
pub struct SchemaError {
    name: String,
    message: String,
}

/// `format: decimal`: an optional sign, digits, and an optional fraction.
fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

impl Validator {
    /// Compiles the definition `name` of `document` (a schema with `$defs`). `read_only` names
    /// the members a client may not send, so that sending one gets a precise message.
    pub fn new(
        document: &Value,
        name: &str,
        read_only: &'static [&'static str],
    ) -> Result<Self, SchemaError> {
        let error = |message: String| SchemaError {
            name: name.to_owned(),
            message,
        };
        if document.pointer(&format!("/$defs/{name}")).is_none() {
            return Err(error("no such definition".into()));
        }
        let schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/$defs/{name}"),
            "$defs": document["$defs"].clone(),
        });
        let inner = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .with_format("decimal", is_decimal)
            .build(&schema)
            .map_err(|e| error(e.to_string()))?;
        Ok(Self { inner, read_only })
    }

    /// Checks `instance`; on failure, a 422 problem with one entry per invalid member.
    pub fn check(&self, instance: &Value) -> Result<(), Problem> {
        let mut errors = Vec::new();
        for error in self.inner.iter_errors(instance) {
            let at = error.instance_path().to_string();
            let keyword = error.kind().keyword().to_owned();
            match error.kind() {
                ValidationErrorKind::Required { property } => {
                    let name = property.as_str().unwrap_or_default();
                    errors.push(FieldError {
                        pointer: format!("{at}/{}", escape(name)),
                        detail: "is required".into(),
                        keyword: Some(keyword),
                    });
                }
                ValidationErrorKind::AdditionalProperties { unexpected }
                | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                    for name in unexpected {
                        let detail = if at.is_empty() && self.read_only.contains(&name.as_str()) {
                            "is read-only: the server sets it".to_owned()
                        } else {
                            "is not a member of this schema".to_owned()
                        };
                        errors.push(FieldError {
                            pointer: format!("{at}/{}", escape(name)),
                            detail,
                            keyword: Some(keyword.clone()),
                        });
                    }
                }
                _ => errors.push(FieldError {
                    pointer: at,
                    detail: error.to_string(),
                    keyword: Some(keyword),
                }),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
            Err(Problem::unprocessable(errors))
        }
    }
}

/// Parses the embedded schema document.
pub fn document(text: &str) -> Result<Value, SchemaError> {
    serde_json::from_str(text).map_err(|e| SchemaError {
        name: "schemas.json".into(),
        message: e.to_string(),
    })
}

/// Turns a validated body into its Rust type. Validation ran first, so a failure here is a value
/// JSON Schema allows but Rust cannot hold (an integer beyond 64 bits): a 422 as well.
pub fn decode<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, Problem> {
    serde_json::from_value(body).map_err(|e| {
        Problem::unprocessable(vec![FieldError {
            pointer: String::new(),
            detail: e.to_string(),
            keyword: None,
        }])
    })
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({"$defs": {"T": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "amount": {"type": "string", "format": "decimal"}
            }
        }}})
    }

    fn pointers(problem: &Problem) -> Vec<&str> {
        problem.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn every_invalid_member_is_reported_with_its_pointer() {
        let validator = Validator::new(&document(), "T", &["id"]).unwrap();
        let problem = validator
            .check(&json!({"amount": "12,5", "id": "x", "extra": 1}))
            .unwrap_err();
        assert_eq!(problem.status, 422);
        assert_eq!(pointers(&problem), ["/amount", "/extra", "/id", "/name"]);
        let id = problem.errors.iter().find(|e| e.pointer == "/id").unwrap();
        assert_eq!(id.detail, "is read-only: the server sets it");
    }

    #[test]
    fn a_valid_body_passes() {
        let validator = Validator::new(&document(), "T", &[]).unwrap();
        assert!(
            validator
                .check(&json!({"name": "Acme", "amount": "-10.50"}))
                .is_ok()
        );
    }

    #[test]
    fn decimals_need_digits_on_both_sides_of_the_point() {
        assert!(is_decimal("10") && is_decimal("-0.5") && is_decimal("12.50"));
        assert!(!is_decimal("") && !is_decimal(".5") && !is_decimal("1.") && !is_decimal("1e3"));
    }
}
