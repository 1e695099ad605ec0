//! The intermediate representation: every app, entity, field, named type and operation, typed
//! and ordered. It is the one contract between the generator's stages: lowering makes it, and
//! every emitter is a function of it (and of the project's settings) alone.
//!
//! Everything an emitter would otherwise work out for itself is decided here once: routes,
//! operation ids, statuses and their names, the names of derived types (`CompanyCreate`), how a
//! field is stored, and the names of its constraints. Maps are `BTreeMap` and lists keep schema
//! order, so output never depends on hashing. Nothing here refers to YAML or JSON Schema crates.

#![deny(missing_docs)]

mod operation;
mod status;

pub use operation::*;
pub use status::{status_name, status_title};

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
    /// Where its routes live: `/api/<name>`.
    pub base_path: String,
    /// Schema files it was made from, relative to the project root.
    pub sources: Vec<String>,
    /// Entities, sorted by name.
    pub entities: Vec<Entity>,
    /// The type table: named types (nested objects, enums, unions) and the types derived from
    /// entities and operations (`CompanyCreate`, `WinDealParams`), keyed by Rust name.
    pub types: BTreeMap<String, NamedType>,
    /// Every operation: the CRUD routes of each entity in entity order (list, create, get,
    /// update, delete), then the custom operations of the OpenAPI fragments by operation id.
    pub operations: Vec<Operation>,
    /// `components.securitySchemes` of the fragments, by name.
    pub security_schemes: BTreeMap<String, Value>,
    /// `(version, name)` of each migration in `bin/migrations/`; empty before the first.
    pub migrations: Vec<(i64, String)>,
    /// The events it declares in `core/events/`, by name; its entities' `created`, `updated`
    /// and `deleted` events are implied and not listed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventDecl>,
}

/// An event an app declares in `core/events/`: published by its services, received by
/// subscribers in any app, delivered to webhooks, and described in its AsyncAPI document.
#[derive(Debug, Clone, Serialize)]
pub struct EventDecl {
    /// Its name in the app, as in `deal_won`: published as `<app>.<name>`.
    pub name: String,
    /// What happened, for the document.
    pub description: String,
    /// The named type of its payload.
    pub payload: String,
    /// The file it is declared in, relative to the project root.
    pub source: String,
}

impl App {
    /// The type an event named `name` of this app is published under, as in `crm.deal_won`.
    pub fn event_type(&self, name: &str) -> String {
        format!("{}.{name}", self.name)
    }
}

impl App {
    /// The entity named `name`.
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// The CRUD operations of `entity`, in [`CrudAction::ALL`] order.
    pub fn crud(&self, entity: &str) -> impl Iterator<Item = &Operation> {
        self.operations.iter().filter(
            move |o| matches!(&o.kind, OperationKind::Crud { entity: e, .. } if e == entity),
        )
    }

    /// The CRUD operation `action` of `entity`.
    pub fn crud_operation(&self, entity: &str, action: CrudAction) -> Option<&Operation> {
        self.crud(entity).find(|o| o.crud_action() == Some(action))
    }

    /// The custom operations (from OpenAPI fragments).
    pub fn custom(&self) -> impl Iterator<Item = &Operation> {
        self.operations
            .iter()
            .filter(|o| o.kind == OperationKind::Custom)
    }

    /// The named types a schema declared (not the derived ones), by name.
    pub fn declared_types(&self) -> impl Iterator<Item = (&String, &NamedType)> {
        self.types
            .iter()
            .filter(|(_, t)| !matches!(t, NamedType::Derived(_)))
    }

    /// The enum named `name`.
    pub fn enum_type(&self, name: &str) -> Option<&EnumType> {
        match self.types.get(name) {
            Some(NamedType::Enum(e)) => Some(e),
            _ => None,
        }
    }

    /// `(union tag, tag value)` of a struct that is a variant of a tagged union.
    pub fn variant_tag(&self, name: &str) -> Option<(&str, &str)> {
        self.types.values().find_map(|named| match named {
            NamedType::Union(UnionType {
                tag: Some(tag),
                variants,
                ..
            }) => variants.iter().find_map(|v| match (&v.ty, &v.tag_value) {
                (Type::Object { name: n }, Some(value)) if n == name => {
                    Some((tag.as_str(), value.as_str()))
                }
                _ => None,
            }),
            _ => None,
        })
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
    /// The names of the types derived from it, registered in [`App::types`].
    pub types: EntityTypes,
    /// Its collection's path, as in `/api/crm/companies`.
    pub collection_path: String,
    /// The path of one of its rows, as in `/api/crm/companies/{id}`.
    pub item_path: String,
    /// Whose rows these are.
    pub tenancy: Tenancy,
    /// Who writes its rows: [`Scope::Platform`] for a `global` entity only platform operators
    /// write; [`Scope::Tenant`] otherwise.
    pub scope: Scope,
    /// Index into `fields` of the member naming the tenant each row of a `global` entity belongs
    /// to (`x-prefiq.tenant-member`): callers who are not platform operators see and write only
    /// their own tenant's rows.
    pub tenant_member: Option<usize>,
    /// Index into `fields` of the owner, when only a row's owner (and callers granted every
    /// row) may see it.
    pub owner: Option<usize>,
    /// The roles granted each action by default (`read`, `create`, `update`, `delete`,
    /// `all-rows`), by role.
    pub grants: BTreeMap<String, Vec<String>>,
    /// Whether the API only lists and reads its rows (`x-prefiq.read-only`).
    pub read_only: bool,
    /// Whether Prefiq's migrations own its table (`x-prefiq.managed`, default `true`).
    pub managed: bool,
    /// The rules of `core/validation/` that its create input and every merged patch must keep.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// A cross-field rule from `core/validation/`: a JSONLogic condition a body must make true.
/// Codegen admits only a portable subset of JSONLogic, on which every engine agrees, and has
/// checked each `var` against the body's members and each comparison against their types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Unique within the app, as in `activity-subject`.
    pub id: String,
    /// The condition: valid bodies make it `true`.
    pub condition: Value,
    /// The JSON pointers a failure blames, as in `/deal_id`.
    pub blame: Vec<String>,
    /// What a failure says, next to each blamed member.
    pub message: String,
    /// The file it is written in, relative to the project root.
    pub source: String,
}

/// Whose rows an entity's are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tenancy {
    /// Each row belongs to one tenant: a [`TENANT_COLUMN`] the server fills from the caller,
    /// outside the entity's fields (no client reads or writes it).
    Tenant,
    /// Rows every tenant shares.
    Global,
}

/// Whose business a write, a member or an operation is: a tenant's, or the platform's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// A tenant's: callers act within their own tenant, as their roles allow.
    #[default]
    Tenant,
    /// The platform's: only platform operators, never a tenant's administrator.
    Platform,
}

impl Scope {
    /// `tenant` or `platform`, as schemas and documents spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Platform => "platform",
        }
    }
}

/// The app whose folder is the project's `cortex/` rather than `apps/cortex/`: Cortex's own
/// entities, generated like any app's.
pub const CORTEX: &str = "cortex";

/// The folder of the app `name`, relative to the project root: `apps/<name>`, or `cortex` for
/// Cortex's own app.
pub fn app_root(name: &str) -> String {
    if name == CORTEX {
        CORTEX.to_owned()
    } else {
        format!("apps/{name}")
    }
}

/// The package name of the app `name`'s server crate: `app-<name>`, or `cortex`; its types and
/// client crates add `-types` and `-client`.
pub fn crate_name(name: &str) -> String {
    if name == CORTEX {
        CORTEX.to_owned()
    } else {
        format!("app-{name}")
    }
}

/// The `If-Match` header's grammar (RFC 9110 §13.1.1): `*` or a list of entity tags. A weak or
/// unknown tag never matches (412); anything else is a 400.
pub const ETAG_LIST_PATTERN: &str =
    "^[ \\t]*(\\*|(W/)?\"[!#-~]*\"([ \\t]*,[ \\t]*(W/)?\"[!#-~]*\")*)[ \\t]*$";

/// The security scheme every operation requires: a bearer access token.
pub const BEARER_SCHEME: &str = "bearer";

/// The column that holds a row's tenant.
pub const TENANT_COLUMN: &str = "tenant_id";

/// The names of the types derived from an entity, each registered in the type table.
#[derive(Debug, Clone, Serialize)]
pub struct EntityTypes {
    /// What a client sends to create one: `CompanyCreate`.
    pub create: String,
    /// A JSON merge patch of one: `CompanyPatch`.
    pub patch: String,
    /// The stored state after a patch is merged (validated, not a wire type): `CompanyReplace`.
    pub replace: String,
    /// One page of a list: `CompanyPage`.
    pub page: String,
    /// The query of its list operation: `ListCompaniesQuery`.
    pub query: String,
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
    /// The server, at insert: the user who created the row.
    Owner,
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
    /// How the column stores the value.
    pub storage: Storage,
    /// The name of the check constraint that keeps an enum column to its values.
    pub check: Option<String>,
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
    /// A secret: audit entries redact its values.
    pub secret: bool,
    /// Who may set it: [`Scope::Platform`] for a member only platform operators change.
    pub scope: Scope,
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
        self.role == FieldRole::Owner
            || (self.role == FieldRole::Data
                && (self.member.nullable
                    || (!self.member.required && self.member.default.is_none())))
    }

    /// Whether the model (what a client reads) may lack the member: optional, without a default.
    pub fn is_model_optional(&self) -> bool {
        self.role == FieldRole::Data && !self.member.required && self.member.default.is_none()
    }

    /// Whether the model's member is present but may be null.
    pub fn is_model_nullable(&self) -> bool {
        matches!(self.role, FieldRole::Data | FieldRole::Owner) && self.member.nullable
    }

    /// Whether a create request must carry the member.
    pub fn is_create_required(&self) -> bool {
        self.member.required && self.member.default.is_none()
    }

    /// Whether a merge patch may remove the member (stored as NULL or reset to its default).
    pub fn is_patch_removable(&self) -> bool {
        self.member.nullable || !self.member.required || self.member.default.is_some()
    }
}

/// How a column stores a value, independent of the SQL dialect. Decided once, when a field is
/// lowered; the migration model, the repository SQL and the fixture loader all read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    /// `uuid` / `TEXT`.
    Uuid,
    /// `text` / `TEXT`.
    Text,
    /// `integer` / `INTEGER`.
    Int32,
    /// `bigint` / `INTEGER`.
    Int64,
    /// `double precision` / `REAL`.
    Float64,
    /// `numeric(p, s)` / `TEXT`.
    Numeric {
        /// Total digits.
        precision: Option<u32>,
        /// Digits after the point.
        scale: Option<u32>,
    },
    /// `boolean` / `INTEGER`.
    Boolean,
    /// `date` / `TEXT`.
    Date,
    /// `timestamptz` / `TEXT`.
    Timestamp,
    /// `jsonb` / `TEXT`.
    Json,
}

impl Storage {
    /// How a value of `ty` is stored.
    pub fn of(ty: &Type) -> Storage {
        match ty {
            Type::Uuid => Storage::Uuid,
            Type::String(_) | Type::Enum { .. } => Storage::Text,
            Type::Integer(n) if n.bits == 32 => Storage::Int32,
            Type::Integer(_) => Storage::Int64,
            Type::Number(_) => Storage::Float64,
            Type::Decimal(d) => Storage::Numeric {
                precision: d.precision,
                scale: d.scale,
            },
            Type::Boolean => Storage::Boolean,
            Type::Date => Storage::Date,
            Type::DateTime => Storage::Timestamp,
            Type::Object { .. }
            | Type::Entity { .. }
            | Type::Union { .. }
            | Type::Array(_)
            | Type::Map { .. }
            | Type::Any => Storage::Json,
        }
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
    /// The name of the foreign key constraint.
    pub constraint: String,
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
    /// A type derived from an entity or an operation, registered so that its name is taken.
    Derived(Derived),
}

impl NamedType {
    /// The `description`.
    pub fn description(&self) -> Option<&str> {
        match self {
            NamedType::Struct(s) => s.description.as_deref(),
            NamedType::Enum(e) => e.description.as_deref(),
            NamedType::Union(u) => u.description.as_deref(),
            NamedType::Derived(_) => None,
        }
    }
}

/// What a derived type is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum Derived {
    /// An entity's create input.
    Create {
        /// The entity.
        entity: String,
    },
    /// An entity's merge patch.
    Patch {
        /// The entity.
        entity: String,
    },
    /// An entity's state after a patch is merged.
    Replace {
        /// The entity.
        entity: String,
    },
    /// A page of an entity's list.
    Page {
        /// The entity.
        entity: String,
    },
    /// The query of an entity's list.
    Query {
        /// The entity.
        entity: String,
    },
    /// The parameters of an operation, as one object keyed by their names on the wire.
    Params {
        /// The operation id.
        operation: String,
    },
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
