//! Parameters of custom operations: path, query and header values collected into one JSON
//! object, coerced to the declared JSON types, then validated like a body. Invalid ones are 400s.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::problem::Problem;

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    /// In the path.
    Path,
    /// In the query string.
    Query,
    /// In a header.
    Header,
}

/// The JSON type a parameter's text is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamShape {
    /// A string (formats and patterns are checked by the schema).
    String,
    /// An integer.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A repeated query parameter, each value of this shape.
    Array(ParamItem),
}

/// The item shape of an array parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamItem {
    /// Strings.
    String,
    /// Integers.
    Integer,
    /// Numbers.
    Number,
    /// Booleans.
    Boolean,
}

/// One declared parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Its name on the wire.
    pub name: &'static str,
    /// Where it is sent.
    pub location: ParamIn,
    /// How its text is read.
    pub shape: ParamShape,
}

fn coerce(text: &str, item: ParamItem) -> Value {
    let parsed = match item {
        ParamItem::String => None,
        ParamItem::Integer => text
            .parse::<i64>()
            .ok()
            .map(Value::from)
            .or_else(|| text.parse::<u64>().ok().map(Value::from)),
        ParamItem::Number => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ParamItem::Boolean => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
    };
    // Text that does not parse stays text, so that validation reports the type it should have.
    parsed.unwrap_or_else(|| Value::String(text.to_owned()))
}

/// Collects the declared parameters from a request into one object keyed by parameter name.
pub fn collect(
    specs: &[ParamSpec],
    path: &[(String, String)],
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Value {
    let mut object = Map::new();
    for spec in specs {
        let texts: Vec<&str> = match spec.location {
            ParamIn::Path => path
                .iter()
                .filter(|(k, _)| k == spec.name)
                .map(|(_, v)| v.as_str())
                .collect(),
            ParamIn::Query => query
                .iter()
                .filter(|(k, _)| k == spec.name)
                .map(|(_, v)| v.as_str())
                .collect(),
            ParamIn::Header => headers
                .get_all(spec.name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect(),
        };
        let value = match spec.shape {
            ParamShape::Array(item) if !texts.is_empty() => {
                Value::Array(texts.iter().map(|t| coerce(t, item)).collect())
            }
            ParamShape::Array(_) => continue,
            shape => {
                let Some(text) = texts.last() else { continue };
                let item = match shape {
                    ParamShape::Integer => ParamItem::Integer,
                    ParamShape::Number => ParamItem::Number,
                    ParamShape::Boolean => ParamItem::Boolean,
                    _ => ParamItem::String,
                };
                coerce(text, item)
            }
        };
        object.insert(spec.name.to_owned(), value);
    }
    Value::Object(object)
}

/// Turns a validation problem about parameters into a 400.
pub fn invalid(problem: Problem) -> Problem {
    let errors = problem.errors;
    let names: Vec<String> = errors
        .iter()
        .map(|e| e.pointer.trim_start_matches('/').to_owned())
        .collect();
    Problem::new(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid-parameter",
        "Invalid parameter",
    )
    .with_detail(format!(
        "invalid parameter{}: {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ))
    .with_errors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_as_their_declared_types() {
        let specs = [
            ParamSpec {
                name: "id",
                location: ParamIn::Path,
                shape: ParamShape::String,
            },
            ParamSpec {
                name: "limit",
                location: ParamIn::Query,
                shape: ParamShape::Integer,
            },
            ParamSpec {
                name: "tag",
                location: ParamIn::Query,
                shape: ParamShape::Array(ParamItem::String),
            },
            ParamSpec {
                name: "if-match",
                location: ParamIn::Header,
                shape: ParamShape::String,
            },
            ParamSpec {
                name: "missing",
                location: ParamIn::Query,
                shape: ParamShape::Boolean,
            },
        ];
        let mut headers = HeaderMap::new();
        headers.insert("if-match", "\"3\"".parse().unwrap());
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let value = collect(
            &specs,
            &pairs(&[("id", "x")]),
            &pairs(&[("limit", "5"), ("tag", "a"), ("tag", "b")]),
            &headers,
        );
        assert_eq!(
            value,
            serde_json::json!({"id": "x", "limit": 5, "tag": ["a", "b"], "if-match": "\"3\""})
        );
        let value = collect(&specs, &[], &pairs(&[("limit", "many")]), &HeaderMap::new());
        assert_eq!(
            value["limit"], "many",
            "unparsable text stays text for validation to reject"
        );
    }
}
