//! Lowering of one JSON Schema node into a [`Type`], creating named types for objects, enums
//! and unions. `$ref` is followed across files; a cycle of aliases is an error, a cycle through
//! an object member is a recursive type.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::keywords::{self, BESIDE_REF, STRING_FORMATS, TYPED_FORMATS};
use super::{Loc, Lowerer};
use crate::ir::{
    ArrayType, DecimalType, EnumType, EnumValue, Member, NamedType, NumberType, StringType,
    StructType, Type, UnionType, UnionVariant,
};
use crate::load::FileKind;
use crate::names::{self, pascal};

/// A lowered schema node.
#[derive(Debug, Clone)]
pub(super) struct Lowered {
    pub ty: Type,
    pub nullable: bool,
}

impl Lowered {
    fn any() -> Lowered {
        Lowered {
            ty: Type::Any,
            nullable: false,
        }
    }
    fn of(ty: Type) -> Lowered {
        Lowered {
            ty,
            nullable: false,
        }
    }
}

/// The members of an object schema after `allOf` and `$ref` are merged.
#[derive(Debug, Default)]
pub(super) struct Shape {
    pub properties: Vec<(String, Loc)>,
    pub required: BTreeSet<String>,
    pub description: Option<String>,
    pub title: Option<String>,
}

fn is_null_schema(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
        && value.as_object().is_some_and(|o| o.len() == 1)
}

fn number(value: Option<&Value>) -> Option<serde_json::Number> {
    match value {
        Some(Value::Number(n)) => Some(n.clone()),
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Lowerer<'_> {
    /// Reports unknown and unsupported keywords of a schema object.
    pub(super) fn check_keywords(&mut self, loc: &Loc, object: &Map<String, Value>) {
        let mut declared: Vec<&str> = match object.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if object.get("format").and_then(Value::as_str) == Some("decimal") {
            declared.push("number"); // bounds of decimal strings are checked exactly (x-decimal)
        }
        for key in object.keys() {
            let at = loc.child(key);
            if key.starts_with("x-") {
                continue;
            }
            if key == "$schema" && !loc.pointer.is_empty() {
                self.error(
                    &at,
                    true,
                    "prefiq::lower::nested_schema_keyword",
                    "`$schema` may only appear at the root of a file",
                    "remove it",
                    "here",
                );
                continue;
            }
            if keywords::SUPPORTED.contains(&key.as_str()) {
                if let Some(applies) = keywords::applies_to(key) {
                    if !declared.is_empty() && !declared.iter().any(|t| applies.contains(t)) {
                        self.warn(
                            &at,
                            true,
                            "prefiq::lower::no_effect",
                            format!(
                                "`{key}` has no effect on a value of type {}",
                                declared.join(" or ")
                            ),
                            format!(
                                "`{key}` applies to {}; remove it or fix `type`",
                                applies.join(", ")
                            ),
                        );
                    }
                }
                continue;
            }
            if self.files[loc.file].kind == FileKind::OpenApi
                && (key == "example" || (key == "nullable" && self.is_openapi_30(loc.file)))
            {
                continue;
            }
            if let Some(help) = keywords::unsupported(key) {
                self.error(
                    &at,
                    true,
                    "prefiq::lower::unsupported_keyword",
                    format!("the keyword `{key}` is not supported yet"),
                    help,
                    "not supported",
                );
                continue;
            }
            let known = keywords::all_known();
            let help = match names::closest(key, &known) {
                Some(close) => {
                    format!("did you mean `{close}`? Custom annotations must start with `x-`")
                }
                None => "remove it, or prefix custom annotations with `x-`".to_owned(),
            };
            self.error(
                &at,
                true,
                "prefiq::lower::unknown_keyword",
                format!("unknown keyword `{key}`"),
                help,
                "unknown keyword",
            );
        }
    }

    /// Resolves a `$ref` written at `loc`.
    pub(super) fn resolve_ref(&mut self, loc: &Loc, reference: &str) -> Option<Loc> {
        let at = loc.child("$ref");
        let (file_part, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let file = if file_part.is_empty() {
            loc.file
        } else if file_part.contains("://") {
            self.error(&at, false, "prefiq::lower::remote_ref", format!("`{reference}` refers to another server"), "copy the definition into this app's core/schema/ folder; Prefiq never fetches schemas over the network", "remote $ref");
            return None;
        } else {
            let base = self.files[loc.file].path();
            let dir = base.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
            for part in file_part.split('/') {
                match part {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    other => parts.push(other),
                }
            }
            let target = parts.join("/");
            match self.files.iter().position(|f| f.path() == target) {
                Some(index) => index,
                None => {
                    let names: Vec<String> = self
                        .files
                        .iter()
                        .filter_map(|f| f.path().rsplit('/').next().map(str::to_owned))
                        .collect();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    let wanted = file_part.rsplit('/').next().unwrap_or(file_part);
                    let help = match names::closest(wanted, &names) {
                        Some(close) => {
                            format!("did you mean `{close}`? Paths are relative to this file")
                        }
                        None => format!("files of this app: {}", names.join(", ")),
                    };
                    self.error(
                        &at,
                        false,
                        "prefiq::lower::unresolved_ref",
                        format!("unresolved $ref `{reference}`: there is no file `{target}`"),
                        help,
                        "unresolved",
                    );
                    return None;
                }
            }
        };
        if !fragment.is_empty() && !fragment.starts_with('/') {
            self.error(
                &at,
                false,
                "prefiq::lower::unresolved_ref",
                format!("unresolved $ref `{reference}`: anchors are not supported"),
                "refer to a definition by pointer, as in `#/$defs/Address`",
                "unresolved",
            );
            return None;
        }
        let target = Loc {
            file,
            pointer: fragment.to_owned(),
        };
        if self.files[file].kind != FileKind::Schema && file != loc.file {
            self.error(&at, false, "prefiq::lower::unresolved_ref", format!("`{reference}` points into an OpenAPI fragment"), "entity schemas may refer to schema files only; move the definition into a schema file", "unresolved");
            return None;
        }
        let Some(document) = &self.files[file].value else {
            return None; // the file did not parse; its own diagnostic says why
        };
        if document.pointer(&target.pointer).is_none() {
            let (container, prefix) = if self.files[file].kind == FileKind::OpenApi {
                ("/components/schemas", "#/components/schemas/")
            } else {
                ("/$defs", "#/$defs/")
            };
            let defs: Vec<String> = document
                .pointer(container)
                .and_then(Value::as_object)
                .map(|d| d.keys().map(|k| format!("{prefix}{k}")).collect())
                .unwrap_or_default();
            let short: Vec<&str> = defs
                .iter()
                .map(|d| d.rsplit('/').next().unwrap_or(d))
                .collect();
            let wanted = fragment.rsplit('/').next().unwrap_or(fragment);
            let help = match names::closest(wanted, &short) {
                Some(close) => format!("did you mean `{prefix}{close}`?"),
                None if defs.is_empty() => format!(
                    "{} has no {}",
                    self.files[file].path(),
                    &prefix[2..prefix.len() - 1]
                ),
                None => format!("definitions there: {}", defs.join(", ")),
            };
            self.error(
                &at,
                false,
                "prefiq::lower::unresolved_ref",
                format!(
                    "unresolved $ref `{reference}`: {} has no `#{fragment}`",
                    self.files[file].path()
                ),
                help,
                "unresolved",
            );
            return None;
        }
        self.touched.insert(file);
        Some(target)
    }

    /// The name a schema at `loc` gets as a named type.
    fn name_for(&self, loc: &Loc, hint: &str) -> String {
        let value = self.value(loc);
        if let Some(title) = value.and_then(|v| v.get("title")).and_then(Value::as_str) {
            return pascal(title);
        }
        let segments: Vec<&str> = loc.pointer.split('/').collect();
        if segments.len() >= 2
            && (segments[segments.len() - 2] == "$defs"
                || (segments.len() >= 3
                    && segments[segments.len() - 2] == "schemas"
                    && segments[segments.len() - 3] == "components"))
        {
            return pascal(
                &segments[segments.len() - 1]
                    .replace("~1", "/")
                    .replace("~0", "~"),
            );
        }
        if loc.pointer.is_empty() {
            let path = self.files[loc.file].path();
            let stem = path.rsplit('/').next().unwrap_or(path);
            let stem = stem.split('.').next().unwrap_or(stem);
            return pascal(stem);
        }
        pascal(hint)
    }

    /// Registers a named type, reporting a clash with another schema of the same name.
    fn register(&mut self, name: &str, loc: &Loc, placeholder: NamedType) -> bool {
        if let Some(other) = self.type_origin.get(name) {
            if other != loc {
                let other_path = format!("{}#{}", self.files[other.file].path(), other.pointer);
                self.error(
                    loc,
                    false,
                    "prefiq::lower::duplicate_type",
                    format!("two schemas are both named `{name}`; the other is {other_path}"),
                    "give one of them a different `title` (or rename its $defs key)",
                    "second definition",
                );
                return false;
            }
            return true;
        }
        if names::is_reserved_type_name(name) || !names::is_valid_type_name(name) {
            self.error(loc, false, "prefiq::lower::type_name", format!("`{name}` cannot be a type name"), "set a `title` in PascalCase that is not a Rust prelude name (Option, Result, String, Vec, ...)", "here");
            return false;
        }
        self.type_origin.insert(name.to_owned(), loc.clone());
        self.types.insert(name.to_owned(), placeholder);
        true
    }

    /// Lowers the schema at `loc`. `hint` names a type made from it when it has no name of its own.
    pub(super) fn lower_schema(&mut self, loc: &Loc, hint: &str) -> Lowered {
        self.touched.insert(loc.file);
        let Some(value) = self.value(loc).cloned() else {
            return Lowered::any();
        };
        let object = match value {
            Value::Bool(true) => return Lowered::any(),
            Value::Object(object) => object,
            _ => {
                self.error(
                    loc,
                    false,
                    "prefiq::lower::not_a_schema",
                    "this is not a schema",
                    "a schema is an object such as `{type: string}`",
                    "expected a schema",
                );
                return Lowered::any();
            }
        };
        self.check_keywords(loc, &object);

        if let Some(reference) = object.get("$ref") {
            return self.lower_ref(loc, &object, reference);
        }

        for key in ["anyOf", "oneOf"] {
            if let Some(list) = object.get(key).and_then(Value::as_array) {
                let nulls = list.iter().filter(|v| is_null_schema(v)).count();
                let others: Vec<usize> = (0..list.len())
                    .filter(|i| !is_null_schema(&list[*i]))
                    .collect();
                if nulls == 1 && others.len() == 1 {
                    let mut lowered =
                        self.lower_schema(&loc.child(key).child(&others[0].to_string()), hint);
                    lowered.nullable = true;
                    return lowered;
                }
                if key == "anyOf" {
                    self.error(&loc.child(key), true, "prefiq::lower::any_of", "`anyOf` is supported only as `anyOf: [X, {type: \"null\"}]`", "use `oneOf` with a discriminator for a choice between shapes; anyOf has no exact Rust or SQL type", "anyOf");
                    return Lowered::any();
                }
                let mut lowered = self.lower_union(loc, hint, &object);
                lowered.nullable |= nulls > 0;
                return lowered;
            }
        }

        let (types, nullable) = match object.get("type") {
            Some(Value::String(t)) => (vec![t.clone()], false),
            Some(Value::Array(list)) => {
                let names: Vec<String> = list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                let nullable = names.iter().any(|t| t == "null");
                (
                    names.into_iter().filter(|t| t != "null").collect(),
                    nullable,
                )
            }
            _ => (vec![], false),
        };
        if types.len() > 1 {
            self.error(
                &loc.child("type"),
                false,
                "prefiq::lower::several_types",
                format!(
                    "a value of several types ({}) has no single Rust or SQL type",
                    types.join(", ")
                ),
                "pick one type, or use `oneOf` with one schema per type",
                "several types",
            );
            return Lowered::any();
        }
        let mut lowered = if object.contains_key("enum") {
            self.lower_enum(loc, hint, &object)
        } else if object.contains_key("allOf") {
            self.lower_struct(loc, hint)
        } else {
            let kind = types.first().cloned().or_else(|| {
                if object.contains_key("properties") {
                    Some("object".into())
                } else if object.contains_key("items") {
                    Some("array".into())
                } else {
                    object.get("const").map(|c| json_kind(c).to_owned())
                }
            });
            match kind.as_deref() {
                Some("string") => self.lower_string(loc, &object),
                Some("integer") => self.lower_integer(loc, &object),
                Some("number") => self.lower_number(loc, &object),
                Some("boolean") => Lowered::of(Type::Boolean),
                Some("array") => self.lower_array(loc, hint, &object),
                Some("object") => self.lower_object(loc, hint, &object),
                Some("null") => {
                    self.error(
                        loc,
                        false,
                        "prefiq::lower::only_null",
                        "a value that can only be null carries no data",
                        "remove the member, or give it a type",
                        "only null",
                    );
                    Lowered::any()
                }
                Some(other) => {
                    self.error(
                        &loc.child("type"),
                        false,
                        "prefiq::lower::unknown_type",
                        format!("unknown type `{other}`"),
                        "use string, number, integer, boolean, object or array",
                        "unknown type",
                    );
                    Lowered::any()
                }
                None => Lowered::any(),
            }
        };
        lowered.nullable |= nullable
            || (object.get("nullable") == Some(&Value::Bool(true)) && self.is_openapi_30(loc.file));
        lowered
    }

    /// `{$ref: ...}`: the schema it points to (nothing beside it but annotations).
    fn lower_ref(&mut self, loc: &Loc, object: &Map<String, Value>, reference: &Value) -> Lowered {
        let Some(reference) = reference.as_str() else {
            return Lowered::any();
        };
        for key in object
            .keys()
            .filter(|k| !BESIDE_REF.contains(&k.as_str()) && !k.starts_with("x-"))
        {
            self.error(
                &loc.child(key),
                true,
                "prefiq::lower::beside_ref",
                format!("`{key}` beside `$ref` is not supported"),
                "wrap both in `allOf: [{$ref: ...}, {...}]`",
                "beside $ref",
            );
        }
        let Some(target) = self.resolve_ref(loc, reference) else {
            return Lowered::any();
        };
        self.lower_ref_target(loc, &target)
    }

    /// `type: object`: a struct when it has properties, a map when only
    /// `additionalProperties` says what its values are, and any JSON object otherwise.
    fn lower_object(&mut self, loc: &Loc, hint: &str, object: &Map<String, Value>) -> Lowered {
        if object.contains_key("properties") {
            return self.lower_struct(loc, hint);
        }
        match object.get("additionalProperties") {
            Some(Value::Object(_)) => {
                let values =
                    self.lower_schema(&loc.child("additionalProperties"), &format!("{hint}Value"));
                Lowered::of(Type::Map {
                    values: Box::new(values.ty),
                })
            }
            _ => Lowered::any(),
        }
    }

    fn lower_ref_target(&mut self, at: &Loc, target: &Loc) -> Lowered {
        if target.pointer.is_empty() && self.files[at.file].kind == FileKind::OpenApi {
            if let Some(name) = self.entity_names.get(&target.file) {
                return Lowered::of(Type::Entity { name: name.clone() });
            }
        }
        if target.pointer.is_empty() && self.entity_files.contains(&target.file) {
            self.error(&at.child("$ref"), false, "prefiq::lower::embedded_entity", format!("`$ref` to the entity in {} would embed a copy of it", self.files[target.file].path()), "to link two entities, give this field the key's type and `x-prefiq: {references: EntityName}`", "embeds an entity");
            return Lowered::any();
        }
        if let Some(named) = self.memo.get(target) {
            return Lowered::of(named.clone());
        }
        if let Some(start) = self.alias_stack.iter().position(|l| l == target) {
            let chain: Vec<String> = self.alias_stack[start..]
                .iter()
                .chain([target])
                .map(|l| format!("{}#{}", self.files[l.file].path(), l.pointer))
                .collect();
            self.error(&at.child("$ref"), false, "prefiq::lower::ref_cycle", format!("`$ref` cycle without indirection: {}", chain.join(" → ")), "a type cannot be only itself; make one step an object member (a recursive type) or break the cycle", "cycle");
            return Lowered::any();
        }
        self.alias_stack.push(target.clone());
        let hint = self.name_for(target, "");
        let lowered = self.lower_schema(target, &hint);
        self.alias_stack.pop();
        lowered
    }

    fn lower_string(&mut self, loc: &Loc, object: &Map<String, Value>) -> Lowered {
        let format = object.get("format").and_then(Value::as_str);
        let ty = match format {
            Some("uuid") => Type::Uuid,
            Some("date") => Type::Date,
            Some("date-time") => Type::DateTime,
            Some("decimal") => Type::Decimal(self.decimal(loc, object, false)),
            other => {
                if let Some(format) = other {
                    if !STRING_FORMATS.contains(&format) {
                        self.unknown_format(loc, format, "string");
                    }
                }
                if let Some(pattern) = object.get("pattern").and_then(Value::as_str) {
                    if let Err(error) = regex::Regex::new(pattern) {
                        let first = error
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim()
                            .to_owned();
                        self.error(&loc.child("pattern"), false, "prefiq::lower::pattern", format!("`pattern` is not a regular expression Prefiq can check: {first}"), "write the pattern without look-around or back-references (Rust's regex syntax, a subset of ECMA-262)", "invalid pattern");
                    }
                }
                Type::String(StringType {
                    format: other.map(str::to_owned),
                    min_length: object.get("minLength").and_then(Value::as_u64),
                    max_length: object.get("maxLength").and_then(Value::as_u64),
                    pattern: object
                        .get("pattern")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    constant: object
                        .get("const")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            }
        };
        Lowered::of(ty)
    }

    fn unknown_format(&mut self, loc: &Loc, format: &str, kind: &str) {
        let all: Vec<&str> = STRING_FORMATS
            .iter()
            .chain(TYPED_FORMATS)
            .copied()
            .collect();
        let help = match names::closest(format, &all) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!(
                "formats for {kind}s: {}",
                match kind {
                    "integer" => "int32, int64".to_owned(),
                    "number" => "float, double, decimal".to_owned(),
                    _ => format!(
                        "uuid, date, date-time, decimal, {}",
                        STRING_FORMATS.join(", ")
                    ),
                }
            ),
        };
        self.error(
            &loc.child("format"),
            false,
            "prefiq::lower::unknown_format",
            format!("unknown format `{format}` for a {kind}"),
            help,
            "unknown format",
        );
    }

    fn bounds(object: &Map<String, Value>, bits: u8) -> NumberType {
        // OpenAPI 3.0 writes `exclusiveMinimum: true` beside `minimum`.
        let exclusive = |flag: &str, bound: &str| match object.get(flag) {
            Some(Value::Bool(true)) => (None, number(object.get(bound))),
            _ => (number(object.get(bound)), number(object.get(flag))),
        };
        let (minimum, exclusive_minimum) = exclusive("exclusiveMinimum", "minimum");
        let (maximum, exclusive_maximum) = exclusive("exclusiveMaximum", "maximum");
        NumberType {
            bits,
            minimum,
            maximum,
            exclusive_minimum,
            exclusive_maximum,
            multiple_of: number(object.get("multipleOf")),
        }
    }

    fn decimal(&mut self, loc: &Loc, object: &Map<String, Value>, as_number: bool) -> DecimalType {
        let options = object.get("x-prefiq");
        let get = |key: &str| {
            options
                .and_then(|o| o.get(key))
                .and_then(Value::as_u64)
                .map(|v| v as u32)
        };
        let (precision, scale) = (get("precision"), get("scale"));
        if let (Some(p), Some(s)) = (precision, scale) {
            if s > p {
                self.error(
                    &loc.child("x-prefiq").child("scale"),
                    false,
                    "prefiq::lower::decimal_scale",
                    format!("scale {s} is larger than precision {p}"),
                    "the scale counts digits after the point, so it cannot exceed the precision",
                    "scale",
                );
            }
        }
        let bounds = Self::bounds(object, 0);
        if !as_number && bounds.multiple_of.is_some() {
            // No pattern states a step other than the scale's, and JSON Schema's `multipleOf`
            // does not apply to strings: the document could not say what the server checks.
            self.error(
                &loc.child("multipleOf"),
                true,
                "prefiq::lower::decimal_string_step",
                "`multipleOf` cannot be published for a decimal sent as a string",
                "remove it (`x-prefiq: {scale: N}` already makes the value a multiple of 10^-N), or send the decimal as a number (`type: number, format: decimal`)",
                "not publishable",
            );
        }
        DecimalType {
            as_number,
            precision,
            scale,
            bounds,
        }
    }

    fn lower_integer(&mut self, loc: &Loc, object: &Map<String, Value>) -> Lowered {
        let bits = match object.get("format").and_then(Value::as_str) {
            Some("int32") => 32,
            None | Some("int64") => 64,
            Some(other) => {
                self.unknown_format(loc, other, "integer");
                64
            }
        };
        Lowered::of(Type::Integer(Self::bounds(object, bits)))
    }

    fn lower_number(&mut self, loc: &Loc, object: &Map<String, Value>) -> Lowered {
        match object.get("format").and_then(Value::as_str) {
            Some("decimal") => Lowered::of(Type::Decimal(self.decimal(loc, object, true))),
            None | Some("float" | "double") => Lowered::of(Type::Number(Self::bounds(object, 64))),
            Some(other) => {
                self.unknown_format(loc, other, "number");
                Lowered::of(Type::Number(Self::bounds(object, 64)))
            }
        }
    }

    fn lower_array(&mut self, loc: &Loc, hint: &str, object: &Map<String, Value>) -> Lowered {
        if !object.contains_key("items") {
            self.error(
                loc,
                false,
                "prefiq::lower::array_items",
                "an array needs `items`",
                "say what each item is, as in `items: {type: string}`",
                "no items",
            );
            return Lowered::any();
        }
        let items = self.lower_schema(&loc.child("items"), &format!("{hint}Item"));
        Lowered::of(Type::Array(Box::new(ArrayType {
            items: items.ty,
            items_nullable: items.nullable,
            min_items: object.get("minItems").and_then(Value::as_u64),
            max_items: object.get("maxItems").and_then(Value::as_u64),
            unique_items: object
                .get("uniqueItems")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })))
    }

    fn lower_enum(&mut self, loc: &Loc, hint: &str, object: &Map<String, Value>) -> Lowered {
        let values = object
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let nullable = values.iter().any(Value::is_null);
        if let Some(named) = self.memo.get(loc) {
            return Lowered {
                ty: named.clone(),
                nullable,
            };
        }
        let strings: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        if strings.len() + usize::from(nullable) != values.len() || strings.is_empty() {
            self.error(&loc.child("enum"), false, "prefiq::lower::enum_values", "only enums of strings are supported", "use strings for enum values (they become Rust variants, TypeScript literals and SQL CHECK values); for numbers use minimum/maximum", "non-string values");
            return Lowered::any();
        }
        let name = self.name_for(loc, hint);
        if !self.register(
            &name,
            loc,
            NamedType::Enum(EnumType {
                description: None,
                values: vec![],
            }),
        ) {
            return Lowered::any();
        }
        self.memo
            .insert(loc.clone(), Type::Enum { name: name.clone() });
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut out = Vec::new();
        for value in strings {
            let variant = pascal(value);
            if let Some((other, _)) = seen.iter().find(|(_, v)| *v == variant) {
                self.error(&loc.child("enum"), false, "prefiq::lower::enum_collision", format!("enum values `{other}` and `{value}` both become the Rust variant `{variant}`"), "make the values differ in more than case and punctuation", "collide");
                continue;
            }
            if variant.is_empty() {
                self.error(
                    &loc.child("enum"),
                    false,
                    "prefiq::lower::enum_values",
                    format!("enum value `{value}` has no letters or digits to name a variant"),
                    "use a value with letters or digits",
                    "here",
                );
                continue;
            }
            seen.push((value.to_owned(), variant.clone()));
            out.push(EnumValue {
                value: value.to_owned(),
                variant,
            });
        }
        let description = object
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.types.insert(
            name.clone(),
            NamedType::Enum(EnumType {
                description,
                values: out,
            }),
        );
        Lowered {
            ty: Type::Enum { name },
            nullable,
        }
    }

    /// Follows `$ref`s from `loc` to the object schema it names.
    fn follow(&mut self, loc: &Loc) -> Option<Loc> {
        let mut current = loc.clone();
        let mut seen = vec![current.clone()];
        loop {
            let reference = self
                .value(&current)?
                .get("$ref")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let Some(reference) = reference else {
                return Some(current);
            };
            let next = self.resolve_ref(&current, &reference)?;
            if seen.contains(&next) {
                self.error(
                    &current.child("$ref"),
                    false,
                    "prefiq::lower::ref_cycle",
                    "`$ref` cycle without indirection",
                    "break the cycle",
                    "cycle",
                );
                return None;
            }
            seen.push(next.clone());
            current = next;
        }
    }

    /// The members of the object at `loc`, merging `allOf` parts.
    pub(super) fn shape(&mut self, loc: &Loc, depth: usize) -> Shape {
        let mut shape = Shape::default();
        let Some(object) = self.value(loc).and_then(Value::as_object).cloned() else {
            return shape;
        };
        if depth > 32 {
            self.error(
                loc,
                false,
                "prefiq::lower::ref_cycle",
                "`allOf` nests too deep (a cycle?)",
                "break the cycle",
                "here",
            );
            return shape;
        }
        shape.description = object
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        shape.title = object
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(parts) = object.get("allOf").and_then(Value::as_array) {
            for index in 0..parts.len() {
                let part = loc.child("allOf").child(&index.to_string());
                let Some(target) = self.follow(&part) else {
                    continue;
                };
                if target != part {
                    if let Some(Value::Object(o)) = self.value(&target).cloned() {
                        self.check_keywords(&target, &o);
                    }
                } else if let Some(Value::Object(o)) = self.value(&part).cloned() {
                    self.check_keywords(&part, &o);
                }
                let inner = self.shape(&target, depth + 1);
                for (name, at) in inner.properties {
                    shape.properties.retain(|(n, _)| *n != name);
                    shape.properties.push((name, at));
                }
                shape.required.extend(inner.required);
                if shape.description.is_none() {
                    shape.description = inner.description;
                }
            }
        }
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            for name in properties.keys() {
                shape.properties.retain(|(n, _)| n != name);
                shape
                    .properties
                    .push((name.clone(), loc.child("properties").child(name)));
            }
        }
        if let Some(required) = object.get("required").and_then(Value::as_array) {
            for (index, name) in required.iter().enumerate() {
                let Some(name) = name.as_str() else { continue };
                shape.required.insert(name.to_owned());
                if depth == 0
                    && !shape.properties.iter().any(|(n, _)| n == name)
                    && object.get("allOf").is_none()
                {
                    self.error(
                        &loc.child("required").child(&index.to_string()),
                        false,
                        "prefiq::lower::required_unknown",
                        format!("`{name}` is required but not a property"),
                        "add it under `properties`, or remove it from `required`",
                        "not a property",
                    );
                }
            }
        }
        if let Some(additional) = object.get("additionalProperties") {
            if additional != &Value::Bool(false) && object.contains_key("properties") {
                self.error(
                    &loc.child("additionalProperties"),
                    true,
                    "prefiq::lower::open_object",
                    "objects with `properties` are closed: unknown members are rejected",
                    "remove `additionalProperties`, or use it alone for a map",
                    "not supported here",
                );
            }
        }
        shape
    }

    /// Lowers the members of an object into a named struct.
    pub(super) fn lower_struct(&mut self, loc: &Loc, hint: &str) -> Lowered {
        self.lower_struct_without(loc, hint, None)
    }

    fn lower_struct_without(&mut self, loc: &Loc, hint: &str, skip: Option<&str>) -> Lowered {
        if let Some(named) = self.memo.get(loc) {
            return Lowered::of(named.clone());
        }
        let name = self.name_for(loc, hint);
        if !self.register(
            &name,
            loc,
            NamedType::Struct(StructType {
                description: None,
                members: vec![],
            }),
        ) {
            return Lowered::any();
        }
        self.memo
            .insert(loc.clone(), Type::Object { name: name.clone() });
        let outer_aliases = std::mem::take(&mut self.alias_stack);
        let shape = self.shape(loc, 0);
        let mut members = Vec::new();
        for (member, at) in &shape.properties {
            if Some(member.as_str()) == skip {
                continue;
            }
            let storage_options = self
                .value(at)
                .and_then(|v| v.get("x-prefiq"))
                .and_then(Value::as_object)
                .is_some_and(|o| o.keys().any(|k| k != "precision" && k != "scale"));
            if storage_options {
                self.error(&at.child("x-prefiq"), true, "prefiq::lower::nested_options", "x-prefiq storage options apply to entity fields only", "nested members take only `precision` and `scale` (for decimals); they are stored as JSON in their entity's column", "not an entity field");
            }
            if let Some(m) = self.lower_member(member, at, shape.required.contains(member), &name) {
                members.push(m);
            }
        }
        self.check_member_collisions(loc, &members);
        self.alias_stack = outer_aliases;
        self.types.insert(
            name.clone(),
            NamedType::Struct(StructType {
                description: shape.description,
                members,
            }),
        );
        Lowered::of(Type::Object { name })
    }

    /// Lowers one property into a member.
    pub(super) fn lower_member(
        &mut self,
        name: &str,
        at: &Loc,
        required: bool,
        owner: &str,
    ) -> Option<Member> {
        if !names::is_valid_member(name) {
            self.error(
                at,
                true,
                "prefiq::lower::member_name",
                format!("`{name}` cannot be a field name"),
                "field names start with a letter or `_` and hold letters, digits, `_` and `-`",
                "invalid name",
            );
            return None;
        }
        let lowered = self.lower_schema(at, &format!("{owner}{}", pascal(name)));
        let schema = self.value(at).cloned().unwrap_or(Value::Null);
        let default = schema.get("default").cloned();
        if let Some(value) = &default {
            if !self.default_fits(&lowered, value) {
                self.error(&at.child("default"), false, "prefiq::lower::default", format!("the default {value} does not fit this field's type"), "give a default of the field's type (for enums, one of its values); objects cannot have defaults", "bad default");
            }
        }
        Some(Member {
            name: name.to_owned(),
            rust: names::rust_field(name),
            ty: lowered.ty,
            required,
            nullable: lowered.nullable,
            boxed: false,
            default,
            description: schema
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            deprecated: schema
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            examples: schema
                .get("examples")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        })
    }

    pub(super) fn check_member_collisions(&mut self, loc: &Loc, members: &[Member]) {
        for (i, a) in members.iter().enumerate() {
            if let Some(b) = members[..i].iter().find(|b| b.rust == a.rust) {
                let at = loc.child("properties").child(&a.name);
                self.error(
                    &at,
                    true,
                    "prefiq::lower::name_collision",
                    format!(
                        "fields `{}` and `{}` both become `{}` in Rust and SQL",
                        b.name, a.name, a.rust
                    ),
                    "rename one of them so that their snake_case forms differ",
                    "collides",
                );
            }
        }
    }

    fn default_fits(&self, lowered: &Lowered, value: &Value) -> bool {
        if value.is_null() {
            return lowered.nullable;
        }
        fits(&self.types, &lowered.ty, value)
    }

    fn lower_union(&mut self, loc: &Loc, hint: &str, object: &Map<String, Value>) -> Lowered {
        if let Some(named) = self.memo.get(loc) {
            return Lowered::of(named.clone());
        }
        let list = object
            .get("oneOf")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let variants: Vec<Loc> = (0..list.len())
            .filter(|i| !is_null_schema(&list[*i]))
            .map(|i| loc.child("oneOf").child(&i.to_string()))
            .collect();
        let targets: Vec<Option<Loc>> = variants.iter().map(|v| self.follow(v)).collect();
        if targets.iter().any(Option::is_none) {
            return Lowered::any();
        }
        let targets: Vec<Loc> = targets.into_iter().flatten().collect();
        let is_object = |target: &Loc| {
            self.value(target)
                .and_then(Value::as_object)
                .is_some_and(|o| {
                    o.contains_key("properties")
                        || o.contains_key("allOf")
                        || o.get("type").and_then(Value::as_str) == Some("object")
                })
        };
        let name = self.name_for(loc, hint);
        if targets.iter().all(is_object) {
            self.lower_tagged_union(loc, name, object, &targets)
        } else {
            self.lower_kind_union(loc, name, object, &targets, &variants)
        }
    }

    /// The `const` value of member `tag` in a union variant: `const`, or a one-value `enum`.
    fn tag_value(&self, shape: &Shape, tag: &str) -> Option<String> {
        let at = shape.properties.iter().find(|(n, _)| n == tag)?.1.clone();
        let schema = self.value(&at)?;
        schema
            .get("const")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                let values = schema.get("enum")?.as_array()?;
                (values.len() == 1)
                    .then(|| values[0].as_str().map(str::to_owned))
                    .flatten()
            })
    }

    /// A union of objects told apart by a member with a distinct `const` value in each: the
    /// discriminator's `propertyName`, or else the first member of the first variant that
    /// works.
    fn lower_tagged_union(
        &mut self,
        loc: &Loc,
        name: String,
        object: &Map<String, Value>,
        targets: &[Loc],
    ) -> Lowered {
        let shapes: Vec<Shape> = targets.iter().map(|t| self.shape(t, 0)).collect();
        let declared = object
            .get("discriminator")
            .and_then(|d| d.get("propertyName"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let candidates: Vec<String> = match &declared {
            Some(tag) => vec![tag.clone()],
            None => shapes
                .first()
                .map(|s| s.properties.iter().map(|(n, _)| n.clone()).collect())
                .unwrap_or_default(),
        };
        let tag = candidates
            .into_iter()
            .find(|tag| shapes.iter().all(|s| self.tag_value(s, tag).is_some()));
        let Some(tag) = tag else {
            let help = match &declared {
                Some(tag) => format!("give every variant a member `{tag}` with a `const` value, as in `{tag}: {{const: email}}`"),
                None => "give every variant a member with a `const` value (`kind: {const: email}`) and name it in `discriminator: {propertyName: kind}`".to_owned(),
            };
            self.error(&loc.child("oneOf"), true, "prefiq::lower::ambiguous_union", "this oneOf is ambiguous: its variants share no member with a distinct `const` value", help, "ambiguous");
            return Lowered::any();
        };
        // Registered before its variants are lowered: a variant may refer back to the union.
        if !self.reserve_union(&name, loc) {
            return Lowered::any();
        }
        let mut out: Vec<UnionVariant> = Vec::new();
        for (target, shape) in targets.iter().zip(&shapes) {
            let value = self.tag_value(shape, &tag).unwrap_or_default();
            if out
                .iter()
                .any(|v| v.tag_value.as_deref() == Some(value.as_str()))
            {
                self.error(
                    target,
                    false,
                    "prefiq::lower::ambiguous_union",
                    format!("two variants have `{tag}: {value}`"),
                    "give each variant its own tag value",
                    "duplicate tag",
                );
                continue;
            }
            let variant = pascal(&value);
            let lowered =
                self.lower_struct_without(target, &format!("{name}{variant}"), Some(&tag));
            out.push(UnionVariant {
                variant,
                tag_value: Some(value),
                ty: lowered.ty,
            });
        }
        self.complete_union(name, object, Some(tag), out)
    }

    /// A union whose variants are told apart by their JSON kind (a string, a number, …).
    fn lower_kind_union(
        &mut self,
        loc: &Loc,
        name: String,
        object: &Map<String, Value>,
        targets: &[Loc],
        variants: &[Loc],
    ) -> Lowered {
        let mut kinds: Vec<&'static str> = Vec::new();
        let mut lowered_variants = Vec::new();
        for (target, variant_loc) in targets.iter().zip(variants) {
            let lowered = self.lower_schema(variant_loc, &format!("{name}Variant"));
            let kind = kind_of_type(&lowered.ty);
            if kind == "any" || kinds.contains(&kind) {
                self.error(target, false, "prefiq::lower::ambiguous_union", "this oneOf is ambiguous: two variants accept the same kind of JSON value", "give the variants distinct JSON types, or make them objects with a `const` tag and a discriminator", "overlaps another variant");
                return Lowered::any();
            }
            kinds.push(kind);
            lowered_variants.push(UnionVariant {
                variant: pascal(kind),
                tag_value: None,
                ty: lowered.ty,
            });
        }
        if !self.reserve_union(&name, loc) {
            return Lowered::any();
        }
        self.complete_union(name, object, None, lowered_variants)
    }

    /// Claims the union's name for `loc` (a diagnostic if another schema has it) and remembers
    /// it for `loc`.
    fn reserve_union(&mut self, name: &str, loc: &Loc) -> bool {
        let placeholder = NamedType::Union(UnionType {
            description: None,
            tag: None,
            variants: vec![],
        });
        if !self.register(name, loc, placeholder) {
            return false;
        }
        self.memo.insert(
            loc.clone(),
            Type::Union {
                name: name.to_owned(),
            },
        );
        true
    }

    /// Stores the union reserved as `name` with its variants.
    fn complete_union(
        &mut self,
        name: String,
        object: &Map<String, Value>,
        tag: Option<String>,
        variants: Vec<UnionVariant>,
    ) -> Lowered {
        let description = object
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.types.insert(
            name.clone(),
            NamedType::Union(UnionType {
                description,
                tag,
                variants,
            }),
        );
        Lowered::of(Type::Union { name })
    }
}

/// The kind of JSON value a type accepts, as a union without a tag tells its variants apart:
/// `"any"` for a type that accepts more than one.
fn kind_of_type(ty: &Type) -> &'static str {
    match ty {
        Type::String(_) | Type::Uuid | Type::Date | Type::DateTime | Type::Enum { .. } => "string",
        Type::Decimal(d) if !d.as_number => "string",
        Type::Integer(_) | Type::Number(_) | Type::Decimal(_) => "number",
        Type::Boolean => "boolean",
        Type::Array(_) => "array",
        Type::Object { .. } | Type::Entity { .. } | Type::Union { .. } | Type::Map { .. } => {
            "object"
        }
        Type::Any => "any",
    }
}

/// Whether `value` is a valid instance of `ty` (for defaults).
pub(super) fn fits(
    types: &std::collections::BTreeMap<String, NamedType>,
    ty: &Type,
    value: &Value,
) -> bool {
    match (ty, value) {
        (Type::String(s), Value::String(v)) => s.constant.as_ref().is_none_or(|c| c == v),
        (Type::Uuid, Value::String(v)) => {
            v.len() == 36 && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        }
        (Type::Date, Value::String(v)) => {
            v.len() == 10 && v.as_bytes()[4] == b'-' && v.as_bytes()[7] == b'-'
        }
        (Type::DateTime, Value::String(v)) => v.len() >= 20 && v.contains('T'),
        (Type::Decimal(d), Value::String(v)) if !d.as_number => {
            let digits = v.strip_prefix('-').unwrap_or(v);
            !digits.is_empty()
                && digits.split('.').count() <= 2
                && digits
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }
        (Type::Decimal(d), Value::Number(_)) => d.as_number,
        (Type::Integer(_), Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Type::Number(_), Value::Number(_)) => true,
        (Type::Boolean, Value::Bool(_)) => true,
        (Type::Enum { name }, Value::String(v)) => match types.get(name) {
            Some(NamedType::Enum(e)) => e.values.iter().any(|x| &x.value == v),
            _ => false,
        },
        (Type::Map { values }, Value::Object(members)) => {
            values.is_scalar() && members.values().all(|v| fits(types, values, v))
        }
        (Type::Array(array), Value::Array(items)) => items.iter().all(|item| {
            (item.is_null() && array.items_nullable)
                || (array.items.is_scalar() && fits(types, &array.items, item))
        }),
        _ => false,
    }
}
