//! A second front end: any OpenAPI 3.0 or 3.1 document (not written for Prefiq) lowered
//! leniently into the IR, so that the TypeScript client emitter can serve it.
//!
//! Prefiq's own schemas are lowered strictly (an ambiguous union is an error). A third-party
//! document is taken as it is: unions stay unions, `allOf` objects merge, and what has no
//! TypeScript shape becomes `unknown`, counted in [`Imported::degraded`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{
    Access, App, ArrayType, EnumType, EnumValue, Member, Method, NamedType, NumberType, Operation,
    OperationBody, OperationKind, OperationParam, OperationParamKind, OperationResponse, ParamRole,
    ResponseBody, ResponseOrigin, RowScope, StringType, StructType, Type, UnionType, UnionVariant,
    status_name,
};
use crate::names::{pascal, rust_field};

/// The result of an import.
#[derive(Debug)]
pub(crate) struct Imported {
    /// The operations and named types, as an app without entities.
    pub app: App,
    /// Schemas that had no TypeScript shape and became `unknown`.
    pub degraded: usize,
}

/// Names TypeScript or the generated client already uses at module scope.
const TAKEN: &[&str] = &[
    "Record",
    "Partial",
    "Promise",
    "Response",
    "Request",
    "Error",
    "Array",
    "Object",
    "String",
    "Number",
    "Boolean",
    "Date",
    "Map",
    "Set",
    "Problem",
    "FieldError",
    "ValidationProblem",
    "Ok",
    "Err",
    "RequestOptions",
    "ClientConfig",
    "ApiError",
    "Symbol",
    "Function",
];

/// JavaScript words a function may not be named.
const JS_RESERVED: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "let",
    "static",
    "implements",
    "interface",
    "package",
    "private",
    "protected",
    "public",
    "await",
];

struct Importer<'a> {
    document: &'a Value,
    openapi30: bool,
    types: BTreeMap<String, NamedType>,
    refs: HashMap<String, Type>,
    taken: BTreeSet<String>,
    degraded: usize,
}

/// A camelCase identifier from any text: `repos/get-content` → `reposGetContent`.
fn camel(text: &str) -> String {
    let pascal = pascal(text);
    let mut chars = pascal.chars();
    let camel = match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => "operation".to_owned(),
    };
    if JS_RESERVED.contains(&camel.as_str()) {
        format!("{camel}Operation")
    } else {
        camel
    }
}

impl Importer<'_> {
    fn unique(&mut self, wanted: &str) -> String {
        let base = if wanted.is_empty() || TAKEN.contains(&wanted) {
            format!("{wanted}Schema")
        } else {
            wanted.to_owned()
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        name
    }

    fn resolve<'b>(&'b self, value: &'b Value) -> &'b Value {
        let mut current = value;
        for _ in 0..16 {
            match current
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
            {
                Some(pointer) => match self.document.pointer(pointer) {
                    Some(target) => current = target,
                    None => return current,
                },
                None => return current,
            }
        }
        current
    }

    fn degrade(&mut self) -> (Type, bool) {
        self.degraded += 1;
        (Type::Any, false)
    }

    /// The type of a schema; `hint` names the types made from inline objects, enums and unions.
    fn schema(&mut self, value: &Value, hint: &str) -> (Type, bool) {
        let Some(object) = value.as_object() else {
            return (Type::Any, false);
        };
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            return match self.reference(reference) {
                Some(ty) => (ty, false),
                None => self.degrade(),
            };
        }
        let mut nullable = self.openapi30 && object.get("nullable") == Some(&Value::Bool(true));
        for key in ["oneOf", "anyOf"] {
            if let Some(list) = object.get(key).and_then(Value::as_array) {
                let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
                nullable |= list.iter().any(is_null);
                let variants: Vec<&Value> = list.iter().filter(|v| !is_null(v)).collect();
                if variants.len() == 1 {
                    let (ty, inner) = self.schema(variants[0], hint);
                    return (ty, nullable || inner);
                }
                let name = self.unique(hint);
                let mut out = Vec::new();
                for (index, variant) in variants.iter().enumerate() {
                    let (ty, _) = self.schema(variant, &format!("{name}{}", index + 1));
                    if !out.iter().any(|v: &UnionVariant| v.ty == ty) {
                        out.push(UnionVariant {
                            variant: format!("V{index}"),
                            tag_value: None,
                            ty,
                        });
                    }
                }
                let description = object
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.types.insert(
                    name.clone(),
                    NamedType::Union(UnionType {
                        description,
                        tag: None,
                        variants: out,
                    }),
                );
                return (Type::Union { name }, nullable);
            }
        }
        if let Some(parts) = object.get("allOf").and_then(Value::as_array) {
            // `allOf: [X]` beside annotations is just X.
            if let [only] = parts.as_slice() {
                let (ty, inner) = self.schema(only, hint);
                return (ty, nullable || inner);
            }
            return (self.structure(value, hint), nullable);
        }
        let types: Vec<&str> = match object.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        nullable |= types.contains(&"null");
        let concrete: Vec<&str> = types.iter().copied().filter(|t| *t != "null").collect();
        if concrete.len() > 1 {
            let name = self.unique(hint);
            let variants = concrete
                .iter()
                .enumerate()
                .map(|(index, kind)| UnionVariant {
                    variant: format!("V{index}"),
                    tag_value: None,
                    ty: self.primitive(kind, object, &format!("{name}{}", index + 1)),
                })
                .collect();
            self.types.insert(
                name.clone(),
                NamedType::Union(UnionType {
                    description: None,
                    tag: None,
                    variants,
                }),
            );
            return (Type::Union { name }, nullable);
        }
        let kind = concrete.first().copied().or_else(|| {
            if object.contains_key("properties") || object.contains_key("additionalProperties") {
                Some("object")
            } else if object.contains_key("items") {
                Some("array")
            } else {
                None
            }
        });
        match kind {
            Some(kind) => (self.primitive(kind, object, hint), nullable),
            None => (Type::Any, nullable),
        }
    }

    fn primitive(
        &mut self,
        kind: &str,
        object: &serde_json::Map<String, Value>,
        hint: &str,
    ) -> Type {
        if let (Some(values), "string") = (object.get("enum").and_then(Value::as_array), kind) {
            let strings: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
            if !strings.is_empty() {
                let name = self.unique(hint);
                let mut seen = BTreeSet::new();
                let values = strings
                    .iter()
                    .map(|v| {
                        let mut variant = pascal(v);
                        while !seen.insert(variant.clone()) {
                            variant.push('_');
                        }
                        EnumValue {
                            value: (*v).to_owned(),
                            variant,
                        }
                    })
                    .collect();
                let description = object
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.types.insert(
                    name.clone(),
                    NamedType::Enum(EnumType {
                        description,
                        values,
                    }),
                );
                return Type::Enum { name };
            }
        }
        match kind {
            "string" => match object.get("format").and_then(Value::as_str) {
                Some("binary") => Type::Any,
                format => Type::String(StringType {
                    format: format.map(str::to_owned),
                    ..StringType::default()
                }),
            },
            "integer" => Type::Integer(NumberType {
                bits: 64,
                ..NumberType::default()
            }),
            "number" => Type::Number(NumberType {
                bits: 64,
                ..NumberType::default()
            }),
            "boolean" => Type::Boolean,
            "array" => {
                let items = object.get("items").cloned().unwrap_or(Value::Bool(true));
                let (items, items_nullable) = self.schema(&items, &format!("{hint}Item"));
                Type::Array(Box::new(ArrayType {
                    items,
                    items_nullable,
                    min_items: None,
                    max_items: None,
                    unique_items: false,
                }))
            }
            "object" => {
                if object.contains_key("properties") {
                    self.structure(&Value::Object(object.clone()), hint)
                } else {
                    match object.get("additionalProperties") {
                        Some(values @ Value::Object(_)) => {
                            let (values, _) = self.schema(values, &format!("{hint}Value"));
                            Type::Map {
                                values: Box::new(values),
                            }
                        }
                        _ => Type::Map {
                            values: Box::new(Type::Any),
                        },
                    }
                }
            }
            _ => {
                self.degraded += 1;
                Type::Any
            }
        }
    }

    /// An object (with `allOf` parts merged) as a named struct.
    fn structure(&mut self, value: &Value, hint: &str) -> Type {
        let name = self.unique(hint);
        let mut properties: Vec<(String, Value)> = Vec::new();
        let mut required: BTreeSet<String> = BTreeSet::new();
        let mut stack = vec![value.clone()];
        let mut description = value
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        while let Some(part) = stack.pop() {
            let part = self.resolve(&part).clone();
            if let Some(parts) = part.get("allOf").and_then(Value::as_array) {
                stack.extend(parts.iter().rev().cloned());
            }
            if description.is_none() {
                description = part
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            if let Some(map) = part.get("properties").and_then(Value::as_object) {
                for (key, schema) in map {
                    properties.retain(|(k, _)| k != key);
                    properties.push((key.clone(), schema.clone()));
                }
            }
            if let Some(list) = part.get("required").and_then(Value::as_array) {
                required.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        // Register before the members, so that recursive references find the name.
        self.types.insert(
            name.clone(),
            NamedType::Struct(StructType {
                description: None,
                members: vec![],
            }),
        );
        let mut members = Vec::new();
        for (key, schema) in properties {
            let (ty, nullable) = self.schema(&schema, &format!("{name}{}", pascal(&key)));
            members.push(Member {
                rust: rust_field(&key),
                required: required.contains(&key),
                nullable,
                boxed: false,
                default: None,
                description: schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                deprecated: schema
                    .get("deprecated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                examples: vec![],
                name: key,
                ty,
            });
        }
        self.types.insert(
            name.clone(),
            NamedType::Struct(StructType {
                description,
                members,
            }),
        );
        Type::Object { name }
    }

    /// A `#/components/schemas/X` reference as a named type.
    fn reference(&mut self, reference: &str) -> Option<Type> {
        if let Some(ty) = self.refs.get(reference) {
            return Some(ty.clone());
        }
        let key = reference.strip_prefix("#/components/schemas/")?;
        let target = self.document.pointer(reference.strip_prefix('#')?)?.clone();
        let hint = pascal(key);
        // A placeholder breaks cycles: a recursive schema refers to its own name.
        let reserved = self.unique(&hint);
        self.taken.remove(&reserved);
        self.refs.insert(
            reference.to_owned(),
            Type::Object {
                name: reserved.clone(),
            },
        );
        let (ty, _) = self.schema(&target, &reserved);
        self.refs.insert(reference.to_owned(), ty.clone());
        Some(ty)
    }

    fn parameters(&mut self, list: Option<&Value>, prefix: &str, out: &mut Vec<OperationParam>) {
        for param in list.and_then(Value::as_array).into_iter().flatten() {
            let param = self.resolve(param).clone();
            let name = param
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let kind = match param.get("in").and_then(Value::as_str) {
                Some("path") => OperationParamKind::Path,
                Some("query") => OperationParamKind::Query,
                Some("header") => OperationParamKind::Header,
                _ => continue,
            };
            let schema = param.get("schema").cloned().unwrap_or(Value::Bool(true));
            let (ty, _) = self.schema(&schema, &format!("{prefix}{}", pascal(&name)));
            out.retain(|p| !(p.name == name && p.kind == kind));
            out.push(OperationParam {
                rust: rust_field(&name),
                role: ParamRole::Input,
                required: param
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    || kind == OperationParamKind::Path,
                default: None,
                description: param
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                name,
                kind,
                ty,
            });
        }
    }

    fn json_content(&mut self, content: Option<&Value>, hint: &str) -> Option<Type> {
        let content = content?.as_object()?;
        let json = content.iter().find(|(media, _)| {
            let essence = media.split(';').next().unwrap_or("");
            essence == "application/json" || essence.ends_with("+json")
        });
        match json {
            Some((_, media)) => media.get("schema").map(|s| self.schema(s, hint).0),
            None => Some(Type::Any),
        }
    }
}

/// Imports an OpenAPI 3.0/3.1 document as an app named `name`.
pub(crate) fn import(document: &Value, name: &str) -> Result<Imported, Diagnostic> {
    let version = document
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !version.starts_with("3.0") && !version.starts_with("3.1") {
        return Err(Diagnostic::error(
            "prefiq::import::version",
            format!("not an OpenAPI 3.0 or 3.1 document (openapi: {version:?})"),
        )
        .with_help("convert Swagger 2.0 documents to OpenAPI 3 first"));
    }
    let mut importer = Importer {
        document,
        openapi30: version.starts_with("3.0"),
        types: BTreeMap::new(),
        refs: HashMap::new(),
        taken: TAKEN.iter().map(|t| (*t).to_owned()).collect(),
        degraded: 0,
    };
    let mut operations = Vec::new();
    let mut ids = BTreeSet::new();
    let paths = document
        .get("paths")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (path, item) in &paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let raw = operation
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{method} {path}"));
            let mut id = camel(&raw);
            while !ids.insert(id.clone()) {
                id.push('_');
            }
            let prefix = pascal(&id);
            let mut params = Vec::new();
            importer.parameters(item.get("parameters"), &prefix, &mut params);
            importer.parameters(operation.get("parameters"), &prefix, &mut params);
            let body = operation
                .get("requestBody")
                .map(|b| importer.resolve(b).clone())
                .and_then(|body| {
                    importer
                        .json_content(body.get("content"), &format!("{prefix}Body"))
                        .map(|ty| OperationBody {
                            ty,
                            media_type: "application/json".to_owned(),
                            description: body
                                .get("description")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            rules: Vec::new(),
                        })
                });
            let mut responses = Vec::new();
            for (status, response) in operation
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let Ok(status) = status.parse::<u16>() else {
                    continue;
                };
                let response = importer.resolve(response).clone();
                let body = match importer.json_content(
                    response.get("content"),
                    &format!("{prefix}Response{status}"),
                ) {
                    Some(ty) => ResponseBody::Json { ty },
                    None => ResponseBody::Empty,
                };
                responses.push(OperationResponse {
                    status,
                    name: status_name(status),
                    origin: ResponseOrigin::Declared,
                    headers: Vec::new(),
                    description: response
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    body,
                });
            }
            responses.sort_by_key(|r| r.status);
            let text = |key: &str| {
                operation
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let Some(method) = Method::from_lower(method) else {
                continue;
            };
            operations.push(Operation {
                rust: rust_field(&id),
                access: Access {
                    permission: id.clone(),
                    default_roles: Vec::new(),
                    rows: RowScope::All,
                    scope: crate::ir::Scope::Tenant,
                },
                params_type: (!params.is_empty()).then(|| format!("{prefix}Params")),
                type_prefix: prefix.clone(),
                kind: OperationKind::Custom,
                id,
                method,
                path: path.clone(),
                summary: text("summary"),
                description: text("description"),
                tags: operation
                    .get("tags")
                    .and_then(Value::as_array)
                    .map(|t| {
                        t.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                deprecated: operation
                    .get("deprecated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                security: operation.get("security").cloned(),
                params,
                body,
                responses,
                source: String::new(),
            });
        }
    }
    operations.sort_by(|a, b| a.id.cmp(&b.id));
    let app = App {
        name: name.to_owned(),
        base_path: String::new(),
        sources: vec![],
        entities: vec![],
        types: importer.types,
        operations,
        security_schemes: BTreeMap::new(),
        migrations: vec![],
        events: vec![],
    };
    Ok(Imported {
        app,
        degraded: importer.degraded,
    })
}
