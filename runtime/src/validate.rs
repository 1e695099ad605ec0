//! Request validation: each entity's JSON Schema, compiled once at start-up with `jsonschema`,
//! turned into a 422 problem that lists every invalid member by JSON pointer.

use std::str::FromStr;

use jsonschema::error::ValidationErrorKind;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::problem::{FieldError, Problem};

/// A compiled JSON Schema for one kind of request body.
pub struct Validator {
    inner: jsonschema::Validator,
    read_only: &'static [&'static str],
    /// The cross-field rules the definition publishes, checked once the schema holds.
    rules: crate::rules::Rules,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").finish_non_exhaustive()
    }
}

/// A schema that failed to compile: a generator bug, reported at start-up rather than per request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the embedded schema `{name}` does not compile: {message}")]
pub struct SchemaError {
    name: String,
    message: String,
}

/// The `x-decimal` keyword: precision, scale and bounds of exact decimals, which JSON Schema
/// cannot check on strings (and checks only approximately on numbers).
struct DecimalLimits {
    precision: Option<u32>,
    scale: Option<u32>,
    bounds: Vec<(&'static str, Decimal)>,
}

impl DecimalLimits {
    fn from_schema(value: &Value) -> DecimalLimits {
        let number = |key: &str| {
            value
                .get(key)
                .and_then(|v| Decimal::from_str(&v.to_string()).ok())
        };
        let limit = |key: &str| value.get(key).and_then(Value::as_u64).map(|n| n as u32);
        let bounds = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
            .into_iter()
            .filter_map(|key| number(key).map(|n| (key, n)))
            .collect();
        DecimalLimits {
            precision: limit("precision"),
            scale: limit("scale"),
            bounds,
        }
    }

    fn problem(&self, instance: &Value) -> Option<String> {
        let text = match instance {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let Ok(mut value) = Decimal::from_str(&text) else {
            return Some(
                "has more digits than an exact decimal holds (28 significant digits)".into(),
            );
        };
        // A JSON number is a double: a value within rounding error of the scale is that value.
        if let (Value::Number(_), Some(scale)) = (instance, self.scale) {
            let rounded = value.round_dp(scale);
            if (value - rounded).abs() <= Decimal::new(1, 9) {
                value = rounded;
            }
        }
        let value = value.normalize();
        if let Some(scale) = self.scale {
            if value.scale() > scale {
                return Some(format!(
                    "has more than {scale} digits after the decimal point"
                ));
            }
            if let Some(precision) = self.precision {
                let whole = value
                    .trunc()
                    .abs()
                    .to_string()
                    .trim_start_matches('0')
                    .len() as u32;
                if whole > precision.saturating_sub(scale) {
                    return Some(format!(
                        "has more than {} digits before the decimal point",
                        precision - scale
                    ));
                }
            }
        }
        for (key, bound) in &self.bounds {
            let broken = match *key {
                "minimum" => value < *bound,
                "maximum" => value > *bound,
                "exclusiveMinimum" => value <= *bound,
                _ => value >= *bound,
            };
            if broken {
                let words = match *key {
                    "minimum" => "at least",
                    "maximum" => "at most",
                    "exclusiveMinimum" => "more than",
                    _ => "less than",
                };
                return Some(format!("must be {words} {bound}"));
            }
        }
        None
    }
}

impl<'i> jsonschema::Keyword<'i> for DecimalLimits {
    fn validate(&self, instance: &'i Value) -> Result<(), jsonschema::ValidationError<'i>> {
        match self.problem(instance) {
            Some(message) => Err(jsonschema::ValidationError::custom(message)),
            None => Ok(()),
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        self.problem(instance).is_none()
    }
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
        let options = crate::format::PINNED.iter().fold(
            jsonschema::draft202012::options().should_validate_formats(true),
            |options, (format, check)| options.with_format(*format, *check),
        );
        let inner = options
            .with_keyword("x-decimal", |_, value: &Value, _| {
                Ok(Box::new(DecimalLimits::from_schema(value)))
            })
            .build(&schema)
            .map_err(|e| error(e.to_string()))?;
        let rules = crate::rules::Rules::of(&document["$defs"][name]).map_err(error)?;
        Ok(Self {
            inner,
            read_only,
            rules,
        })
    }

    /// Checks `instance` against the schema, then against its rules; on failure, a 422 problem
    /// with one entry per invalid member.
    pub fn check(&self, instance: &Value) -> Result<(), Problem> {
        self.errors(instance).map_err(Problem::unprocessable)
    }

    /// Checks `instance`, which the schema admits, against the rules alone: a 422 problem
    /// naming each blamed member with the rule's message.
    pub fn check_rules(&self, instance: &Value) -> Result<(), Problem> {
        let errors = self.rules.errors(instance);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::unprocessable(errors))
        }
    }

    /// Checks a row about to be written: whoever built it (a handler, a hook, a service), a row
    /// that breaks its schema is never stored. The error names every member at fault.
    pub fn check_row(&self, row: &impl serde::Serialize) -> Result<(), crate::db::DbError> {
        let value = serde_json::to_value(row).map_err(|e| {
            crate::db::DbError::Invalid(vec![FieldError {
                pointer: String::new(),
                detail: format!("cannot be written as JSON: {e}"),
                keyword: None,
            }])
        })?;
        self.check_stored(&value)
    }

    /// [`Validator::check_row`] for a row already turned into JSON.
    pub fn check_stored(&self, row: &Value) -> Result<(), crate::db::DbError> {
        self.errors(row).map_err(crate::db::DbError::Invalid)
    }

    /// The schema's errors or, when it holds, the rules'.
    fn errors(&self, instance: &Value) -> Result<(), Vec<FieldError>> {
        self.check_schema(instance)?;
        let errors = self.rules.errors(instance);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Checks `instance` against the schema alone; on failure, its errors.
    pub fn check_schema(&self, instance: &Value) -> Result<(), Vec<FieldError>> {
        // The common case first: a valid instance is judged without building any error.
        if self.inner.is_valid(instance) {
            return Ok(());
        }
        let mut errors = Vec::new();
        for error in self.inner.iter_errors(instance) {
            self.explain(&error, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            errors.sort_by(|a, b| (&a.pointer, &a.detail).cmp(&(&b.pointer, &b.detail)));
            errors.dedup();
            Err(errors)
        }
    }

    /// Turns one validation error into field errors, looking inside `oneOf`/`anyOf` for the
    /// alternative the client most likely meant, so that the pointer names the member at fault.
    fn explain(&self, error: &jsonschema::ValidationError<'_>, out: &mut Vec<FieldError>) {
        let at = error.instance_path().to_string();
        let keyword = error.kind().keyword().to_owned();
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(FieldError {
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
                    out.push(FieldError {
                        pointer: format!("{at}/{}", escape(name)),
                        detail,
                        keyword: Some(keyword.clone()),
                    });
                }
            }
            ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::AnyOf { context } => {
                // The alternative whose errors lie deepest is the one the client aimed at
                // (a nullable object that is an object, a tagged union variant with its tag).
                let depth = |branch: &Vec<jsonschema::ValidationError<'static>>| {
                    branch
                        .iter()
                        .map(|e| e.instance_path().to_string().len())
                        .min()
                        .unwrap_or(0)
                };
                let best = context
                    .iter()
                    .filter(|branch| !branch.is_empty() && depth(branch) > at.len())
                    .max_by_key(|branch| depth(branch));
                match best {
                    Some(branch)
                        if context.iter().filter(|b| depth(b) == depth(branch)).count() == 1 =>
                    {
                        for inner in branch {
                            self.explain(inner, out);
                        }
                    }
                    _ => out.push(FieldError {
                        pointer: at,
                        detail: message(error.kind()),
                        keyword: Some(keyword),
                    }),
                }
            }
            kind => out.push(FieldError {
                pointer: at,
                detail: message(kind),
                keyword: Some(keyword),
            }),
        }
    }
}

/// The message of a failed keyword. It never repeats the value (which may be long, or secret)
/// and is worded the same in the browser's validators (`src/services/validate.ts`), so that a
/// form shows what the server would answer.
fn message(kind: &ValidationErrorKind) -> String {
    use jsonschema::error::TypeKind;
    let json = |value: &Value| value.to_string();
    match kind {
        ValidationErrorKind::Type { kind } => {
            let mut names: Vec<String> = match kind {
                TypeKind::Single(one) => vec![one.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            names.sort();
            format!("must be of type {}", names.join(" or "))
        }
        ValidationErrorKind::Enum { options } => {
            let options: Vec<String> = options
                .as_array()
                .map(|values| values.iter().map(json).collect())
                .unwrap_or_default();
            format!("must be one of {}", options.join(", "))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("must be {}", json(expected_value))
        }
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} characters long")
        }
        ValidationErrorKind::Pattern { .. } => "does not have the expected form".into(),
        ValidationErrorKind::Format { format } => format!("is not a valid {format}"),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be more than {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("must be a multiple of {multiple_of}")
        }
        ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} items"),
        ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} items"),
        ValidationErrorKind::UniqueItems => "must not hold the same item twice".into(),
        ValidationErrorKind::MinProperties { limit } => {
            format!("must have at least {limit} members")
        }
        ValidationErrorKind::MaxProperties { limit } => {
            format!("must have at most {limit} members")
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            "matches none of the allowed shapes".into()
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            "matches more than one of the allowed shapes".into()
        }
        ValidationErrorKind::Custom { message, .. } => message.clone(),
        ValidationErrorKind::FalseSchema => "is not allowed".into(),
        // Only a map's no-NUL rule, which the body's NUL check answers first (`http.rs`).
        ValidationErrorKind::PropertyNames { .. } => {
            "has a member name that does not have the expected form".into()
        }
        // Keywords the generator never emits.
        other => format!("does not satisfy `{}`", other.keyword()),
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
pub fn decode<T: serde::de::DeserializeOwned>(mut body: Value) -> Result<T, Problem> {
    integral(&mut body);
    serde_json::from_value(body).map_err(undecodable)
}

/// [`decode`] of a body kept for later comparison: its integral numbers become integers in
/// place, so that the body compares equal to what the decoded value turns back into.
pub fn decode_kept<T: serde::de::DeserializeOwned>(body: &mut Value) -> Result<T, Problem> {
    integral(body);
    T::deserialize(&*body).map_err(undecodable)
}

fn undecodable(error: serde_json::Error) -> Problem {
    Problem::unprocessable(vec![FieldError {
        pointer: String::new(),
        detail: error.to_string(),
        keyword: None,
    }])
}

/// JSON Schema counts `167.0` as an integer (its fraction is zero), and so does the document; serde
/// would refuse it for an `i32`. Such numbers become integers before decoding, so what the schema
/// admits the typed code reads. A `f64` member reads an integer just as well.
pub(crate) fn integral(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral),
        Value::Object(members) => members.values_mut().for_each(integral),
        _ => {}
    }
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
    fn decimal_limits_check_scale_precision_and_bounds() {
        let document = json!({"$defs": {"M": {"type": "string", "format": "decimal",
            "x-decimal": {"precision": 6, "scale": 2, "minimum": 0}}}});
        let validator = Validator::new(&document, "M", &[]).unwrap();
        assert!(validator.check(&json!("1234.50")).is_ok());
        assert!(
            validator.check(&json!("1234.500")).is_ok(),
            "trailing zeros lose nothing"
        );
        for bad in ["12.345", "12345.6", "-1"] {
            let problem = validator.check(&json!(bad)).unwrap_err();
            assert_eq!(
                problem.errors[0].keyword.as_deref(),
                Some("x-decimal"),
                "{bad}: {problem:?}"
            );
        }
    }

    #[test]
    fn decimals_need_digits_on_both_sides_of_the_point() {
        use crate::format::is_decimal;
        assert!(is_decimal("10") && is_decimal("-0.5") && is_decimal("12.50"));
        assert!(!is_decimal("") && !is_decimal(".5") && !is_decimal("1.") && !is_decimal("1e3"));
    }
}
