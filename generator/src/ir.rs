//! The intermediate representation: every app, entity, field and named type, typed and ordered.
//!
//! Emitters read only this. Maps are `BTreeMap` and lists keep schema order, so output never
//! depends on hashing. Nothing here refers to YAML, `serde_yaml` or `jsonschema` types.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Everything one codegen run produces output for.
#[derive(Debug, Clone, Serialize)]
pub struct Ir {
    /// The apps, by name.
    pub apps: Vec<App>,
}

/// One app under `apps/<name>/`.
#[derive(Debug, Clone, Serialize)]
pub struct App {
    /// The folder name, as in `crm`.
    pub name: String,
    /// Schema files it was made from, relative to the project root.
    pub sources: Vec<String>,
    /// Entities, sorted by name.
    pub entities: Vec<Entity>,
    /// Named types (nested objects, enums, unions), keyed by Rust name.
    pub types: BTreeMap<String, NamedType>,
    /// Custom operations from OpenAPI fragments, sorted by operation id.
    pub operations: Vec<Operation>,
    /// `components.securitySchemes` of the fragments, by name.
    pub security_schemes: BTreeMap<String, Value>,
    /// `(version, name)` of each migration in `bin/migrations/`; empty before the first.
    pub migrations: Vec<(i64, String)>,
}

/// A custom operation declared in an OpenAPI fragment.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    /// The `operationId`, as in `winDeal`.
    pub id: String,
    /// The Rust method name, as in `win_deal`.
    pub rust: String,
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The path template, as in `/api/crm/deals/{id}/win`.
    pub path: String,
    /// `summary`.
    pub summary: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `deprecated`.
    pub deprecated: bool,
    /// `security`, as written.
    pub security: Option<Value>,
    /// Path, query and header parameters.
    pub params: Vec<OperationParam>,
    /// The JSON request body.
    pub body: Option<OperationBody>,
    /// Every declared response, by status.
    pub responses: Vec<OperationResponse>,
    /// The fragment it came from.
    pub source: String,
}

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationParamKind {
    /// In the path template.
    Path,
    /// In the query string.
    Query,
    /// In a header.
    Header,
}

/// One parameter of an operation.
#[derive(Debug, Clone, Serialize)]
pub struct OperationParam {
    /// The name on the wire.
    pub name: String,
    /// The Rust field name.
    pub rust: String,
    /// Where it is sent.
    pub kind: OperationParamKind,
    /// Whether it must be sent.
    pub required: bool,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Type,
    /// The schema `default`, used when it is not sent.
    pub default: Option<Value>,
    /// `description`.
    pub description: Option<String>,
}

/// The request body of an operation.
#[derive(Debug, Clone, Serialize)]
pub struct OperationBody {
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Type,
    /// `description`.
    pub description: Option<String>,
}

/// One declared response.
#[derive(Debug, Clone, Serialize)]
pub struct OperationResponse {
    /// The status code.
    pub status: u16,
    /// `description`.
    pub description: String,
    /// What the body is.
    pub body: ResponseBody,
}

/// The body of a response.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResponseBody {
    /// No body.
    Empty,
    /// JSON of this type.
    Json {
        /// The type.
        #[serde(rename = "type")]
        ty: Type,
    },
    /// An RFC 9457 problem.
    Problem,
}

impl OperationResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A persisted resource with a table and CRUD routes.
#[derive(Debug, Clone, Serialize)]
pub struct Entity {
    /// PascalCase name, as in `SalesDeal`.
    pub name: String,
    /// snake_case name, as in `sales_deal`.
    pub snake: String,
    /// The URL segment of its collection, as in `sales-deals`.
    pub plural: String,
    /// The SQL table.
    pub table: String,
    /// The `description` of the schema.
    pub description: Option<String>,
    /// The schema file, relative to the project root.
    pub source: String,
    /// Fields in schema order; server-set fields included.
    pub fields: Vec<Field>,
    /// Index into `fields` of the primary key.
    pub primary_key: usize,
    /// Unique constraints and indexes, including those implied by field options.
    pub indexes: Vec<Index>,
    /// The stable identity for renames (`x-prefiq.id`).
    pub stable_id: Option<String>,
    /// The previous name, for a rename.
    pub renamed_from: Option<String>,
}

impl Entity {
    /// The primary key field.
    pub fn key(&self) -> &Field {
        &self.fields[self.primary_key]
    }

    /// Fields a client sends on create (not server-set, not a generated key).
    pub fn writable(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.is_writable())
    }

    /// The row-version field.
    pub fn version(&self) -> &Field {
        self.fields
            .iter()
            .find(|f| f.role == FieldRole::Version)
            .unwrap_or(&self.fields[self.primary_key])
    }
}

/// What sets a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldRole {
    /// The client.
    Data,
    /// The primary key, generated by the server as described.
    PrimaryKey(KeyGeneration),
    /// The server, at insert.
    CreatedAt,
    /// The server, at every write.
    UpdatedAt,
    /// The server: 1 at insert, +1 at every update; the `ETag`.
    Version,
}

/// How a primary key gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyGeneration {
    /// A time-ordered UUID (v7) made by the server.
    Uuid,
    /// An identity column made by the database.
    Identity,
    /// Sent by the client.
    Client,
}

/// One column of an entity.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// The JSON member.
    #[serde(flatten)]
    pub member: Member,
    /// The SQL column.
    pub column: String,
    /// Who sets it.
    pub role: FieldRole,
    /// Whether list requests may filter on it.
    pub filterable: bool,
    /// Whether list requests may sort by it.
    pub sortable: bool,
    /// A foreign key.
    pub references: Option<Reference>,
    /// The stable identity for renames (`x-prefiq.id`).
    pub stable_id: Option<String>,
    /// The previous name, for a rename.
    pub renamed_from: Option<String>,
    /// The value existing rows get when a migration makes the field required.
    pub backfill: Option<Value>,
    /// Enum values renamed since the last migration, old → new.
    pub renamed_values: Vec<(String, String)>,
}

impl Field {
    /// Whether a client sends this field on create.
    pub fn is_writable(&self) -> bool {
        matches!(
            self.role,
            FieldRole::Data | FieldRole::PrimaryKey(KeyGeneration::Client)
        )
    }

    /// Whether the column may hold NULL.
    pub fn is_nullable_column(&self) -> bool {
        self.role == FieldRole::Data
            && (self.member.nullable || (!self.member.required && self.member.default.is_none()))
    }
}

/// A member of an object: an entity field or a nested object's property.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The JSON name.
    pub name: String,
    /// The Rust field name, without `r#` (keywords are raw at emit; `self` becomes `self_`).
    pub rust: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Type,
    /// Whether it must be present (for entities: on create).
    pub required: bool,
    /// Whether `null` is a valid value.
    pub nullable: bool,
    /// Boxed in Rust because the type contains itself.
    pub boxed: bool,
    /// The `default`, already checked against the type.
    pub default: Option<Value>,
    /// The `description`.
    pub description: Option<String>,
    /// `deprecated: true`.
    pub deprecated: bool,
    /// `examples`.
    pub examples: Vec<Value>,
}

/// A foreign key from a field to another entity's primary key.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    /// The referenced entity.
    pub entity: String,
    /// What deleting the referenced row does.
    pub on_delete: OnDelete,
}

/// `ON DELETE` behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDelete {
    /// Refuse (409) while rows refer to it.
    Restrict,
    /// Delete the referring rows too.
    Cascade,
    /// Set the referring field to null.
    SetNull,
    /// Check at the end of the statement.
    NoAction,
}

/// An index or unique constraint.
#[derive(Debug, Clone, Serialize)]
pub struct Index {
    /// Its SQL name.
    pub name: String,
    /// Indexed columns, in order.
    pub columns: Vec<String>,
    /// Whether it is a unique constraint.
    pub unique: bool,
    /// Whether it indexes a JSON array for containment (PostgreSQL GIN).
    pub json: bool,
}

/// A value type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Type {
    /// Text, with an optional informational format.
    String(StringType),
    /// A whole number.
    Integer(NumberType),
    /// A floating point number.
    Number(NumberType),
    /// An exact decimal, in JSON as a string or a number.
    Decimal(DecimalType),
    /// `true` or `false`.
    Boolean,
    /// `format: uuid`.
    Uuid,
    /// `format: date`.
    Date,
    /// `format: date-time`.
    DateTime,
    /// A named string enum.
    Enum {
        /// Its name in `App::types`.
        name: String,
    },
    /// A named object (stored as JSON in a column).
    Object {
        /// Its name in `App::types`.
        name: String,
    },
    /// The model of an entity (in operations only; entities link by `x-prefiq.references`).
    Entity {
        /// The entity name.
        name: String,
    },
    /// A named union (stored as JSON).
    Union {
        /// Its name in `App::types`.
        name: String,
    },
    /// A list.
    Array(Box<ArrayType>),
    /// A map from strings to values.
    Map {
        /// The value type.
        values: Box<Type>,
    },
    /// Any JSON value.
    Any,
}

impl Type {
    /// Whether values are stored as JSON documents.
    pub fn is_json(&self) -> bool {
        matches!(
            self,
            Type::Object { .. }
                | Type::Union { .. }
                | Type::Array(_)
                | Type::Map { .. }
                | Type::Any
        )
    }

    /// Whether the type is a scalar that SQL can compare.
    pub fn is_scalar(&self) -> bool {
        !self.is_json()
    }
}

/// String constraints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StringType {
    /// An informational format (email, uri, ...), validated at run time.
    pub format: Option<String>,
    /// `minLength`.
    pub min_length: Option<u64>,
    /// `maxLength`.
    pub max_length: Option<u64>,
    /// `pattern`.
    pub pattern: Option<String>,
    /// `const`.
    pub constant: Option<String>,
}

/// Number constraints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NumberType {
    /// 32 or 64 for integers; 64 for numbers.
    pub bits: u8,
    /// `minimum`.
    pub minimum: Option<serde_json::Number>,
    /// `maximum`.
    pub maximum: Option<serde_json::Number>,
    /// `exclusiveMinimum`.
    pub exclusive_minimum: Option<serde_json::Number>,
    /// `exclusiveMaximum`.
    pub exclusive_maximum: Option<serde_json::Number>,
    /// `multipleOf`.
    pub multiple_of: Option<serde_json::Number>,
}

/// An exact decimal.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecimalType {
    /// In JSON as a number (`type: number`) rather than a string.
    pub as_number: bool,
    /// Total digits (`x-prefiq.precision`).
    pub precision: Option<u32>,
    /// Digits after the point (`x-prefiq.scale`).
    pub scale: Option<u32>,
    /// Numeric bounds.
    #[serde(flatten)]
    pub bounds: NumberType,
}

/// A list type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayType {
    /// The item type.
    pub items: Type,
    /// Whether items may be null.
    pub items_nullable: bool,
    /// `minItems`.
    pub min_items: Option<u64>,
    /// `maxItems`.
    pub max_items: Option<u64>,
    /// `uniqueItems`.
    pub unique_items: bool,
}

/// A type with a name of its own.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NamedType {
    /// An object with known members.
    Struct(StructType),
    /// A string enum.
    Enum(EnumType),
    /// A `oneOf`.
    Union(UnionType),
}

impl NamedType {
    /// The `description`.
    pub fn description(&self) -> Option<&str> {
        match self {
            NamedType::Struct(s) => s.description.as_deref(),
            NamedType::Enum(e) => e.description.as_deref(),
            NamedType::Union(u) => u.description.as_deref(),
        }
    }
}

/// An object type.
#[derive(Debug, Clone, Serialize)]
pub struct StructType {
    /// The `description`.
    pub description: Option<String>,
    /// Members in schema order.
    pub members: Vec<Member>,
}

/// A string enum.
#[derive(Debug, Clone, Serialize)]
pub struct EnumType {
    /// The `description`.
    pub description: Option<String>,
    /// Values in schema order.
    pub values: Vec<EnumValue>,
}

/// One value of an enum.
#[derive(Debug, Clone, Serialize)]
pub struct EnumValue {
    /// The JSON string.
    pub value: String,
    /// The Rust variant.
    pub variant: String,
}

/// A `oneOf` union.
#[derive(Debug, Clone, Serialize)]
pub struct UnionType {
    /// The `description`.
    pub description: Option<String>,
    /// The discriminating member, for tagged unions; `None` for unions told apart by JSON kind.
    pub tag: Option<String>,
    /// The alternatives.
    pub variants: Vec<UnionVariant>,
}

/// One alternative of a union.
#[derive(Debug, Clone, Serialize)]
pub struct UnionVariant {
    /// The Rust variant.
    pub variant: String,
    /// The tag value, for tagged unions.
    pub tag_value: Option<String>,
    /// The type (a struct without its tag member, for tagged unions).
    #[serde(rename = "type")]
    pub ty: Type,
}
