//! Which JSON Schema keywords Prefiq understands, which it knows but does not support yet, and
//! what to say about each. A keyword is never ignored silently.

/// Keywords lowering reads.
pub(crate) const SUPPORTED: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "$comment",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "default",
    "format",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "allOf",
    "oneOf",
    "anyOf",
    "discriminator",
    "readOnly",
    "deprecated",
    "examples",
    "x-prefiq",
];

/// Keywords that may stand beside `$ref` (annotations and Prefiq options).
pub(crate) const BESIDE_REF: &[&str] = &[
    "$ref",
    "$comment",
    "title",
    "description",
    "default",
    "readOnly",
    "deprecated",
    "examples",
    "x-prefiq",
];

/// Known keywords without support yet, with the way forward.
pub(crate) fn unsupported(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "not" | "if" | "then" | "else" => {
            "conditional schemas have no type in Rust or SQL; check the rule in a service hook instead"
        }
        "dependentRequired" | "dependentSchemas" => {
            "check dependent members in a service hook (before_create/before_update)"
        }
        "patternProperties" | "propertyNames" => {
            "use `additionalProperties: {schema}` for a map with free keys"
        }
        "unevaluatedProperties" | "unevaluatedItems" => {
            "entity objects are already closed: unknown members are rejected"
        }
        "prefixItems" | "contains" | "minContains" | "maxContains" => {
            "use `items` with one schema for every item"
        }
        "minProperties" | "maxProperties" => {
            "list the members under `properties` and mark the mandatory ones `required`"
        }
        "contentEncoding" | "contentMediaType" | "contentSchema" => {
            "store binary content elsewhere and keep a `format: uri` to it"
        }
        "$anchor" | "$dynamicRef" | "$dynamicAnchor" | "$recursiveRef" | "$recursiveAnchor" => {
            "refer to definitions with `$ref: '#/$defs/Name'` or `$ref: other.yaml#/$defs/Name`"
        }
        "$vocabulary" => {
            "Prefiq schema files use JSON Schema 2020-12 with the x-prefiq vocabulary; remove `$vocabulary`"
        }
        "definitions" => "rename `definitions` to `$defs` (JSON Schema 2020-12)",
        "nullable" => "`nullable` is OpenAPI 3.0; in JSON Schema write `type: [string, \"null\"]`",
        "example" => "`example` is OpenAPI 3.0; write `examples: [...]`",
        "writeOnly" => {
            "write-only members are not supported yet; keep secrets out of entity schemas"
        }
        "dependencies" => "`dependencies` is draft-07; check dependent members in a service hook",
        _ => return None,
    })
}

/// Every keyword name Prefiq knows, for "did you mean" suggestions.
pub(crate) fn all_known() -> Vec<&'static str> {
    let mut known: Vec<&str> = SUPPORTED.to_vec();
    known.extend([
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
        "prefixItems",
        "contains",
        "minContains",
        "maxContains",
        "minProperties",
        "maxProperties",
        "writeOnly",
    ]);
    known
}

/// String formats validated at run time and kept as `String` in Rust.
pub(crate) const STRING_FORMATS: &[&str] = &[
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
    "time",
    "duration",
];

/// Formats with a type of their own.
pub(crate) const TYPED_FORMATS: &[&str] = &[
    "uuid",
    "date",
    "date-time",
    "decimal",
    "int32",
    "int64",
    "float",
    "double",
];

/// Keywords that only mean something for one JSON type, to warn when they have no effect.
pub(crate) fn applies_to(keyword: &str) -> Option<&'static [&'static str]> {
    Some(match keyword {
        "minLength" | "maxLength" | "pattern" => &["string"],
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
            &["integer", "number"]
        }
        "minItems" | "maxItems" | "uniqueItems" | "items" => &["array"],
        "properties" | "required" | "additionalProperties" => &["object"],
        _ => return None,
    })
}
