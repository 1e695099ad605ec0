//! Prefiq's own schema vocabulary, the `x-prefiq` keyword: what JSON Schema cannot say about
//! storage (tables, keys, indexes, references) and about list queries.
//!
//! These types are the single definition: lowering deserialises `x-prefiq` into them, and
//! `schemars` turns them into the meta-schema under `schemas/` that editors use to complete
//! and check schema files.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The `$id` of the meta-schema; schema files may name it (or its file) in `$schema`.
pub const META_SCHEMA_ID: &str = "https://prefiq.dev/schemas/entity.schema.json";
/// Where the meta-schema is written, relative to the project root.
pub const META_SCHEMA_PATH: &str = "schemas/entity.schema.json";
/// The design tokens of every app and Cortex, relative to the project root.
pub const TOKENS_PATH: &str = "resources/design/tokens.json";
/// The JSON Schema dialect of every schema file.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// `x-prefiq` at the root of an entity's schema. Its presence makes the file an entity.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "Prefiq entity options")]
pub struct EntityOptions {
    /// The SQL table. Default: the entity name in snake_case, pluralised (`SalesDeal` → `sales_deals`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The URL segment of the collection. Default: the table name with `-` for `_` (`/api/crm/sales-deals`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
    /// Indexes and unique constraints over one or more fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexOptions>,
    /// A stable identity that survives renaming the entity (its table is renamed, not dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The entity's previous name, to rename its table rather than drop and recreate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// Whose rows these are. Default: `tenant`, each row belongs to one tenant (a `tenant_id`
    /// column the server fills from the caller's token, enforced in every query and, on
    /// PostgreSQL, by row-level security). `global`: rows every tenant shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<TenancyOption>,
    /// Who writes the rows of a `global` entity, which every tenant shares: `platform`, only
    /// platform operators create, update and delete them (a tenant's administrator never does);
    /// `tenant`, each row belongs to the tenant its `tenant-member` names, and a tenant's callers
    /// see and write only their own tenant's rows. A writable `global` entity must say which.
    /// Tenant-scoped entities are always `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeOption>,
    /// For a `global` entity whose rows each belong to one tenant: the member (`format: uuid`)
    /// that names it, as `tenant_id` on a user. A caller who is not a platform operator lists and
    /// reads only the rows of its own tenant (and rows whose member is null: the platform's,
    /// which only operators write), writes only its own tenant's (a missing member becomes its
    /// tenant), and moves no row to another tenant. On PostgreSQL, row-level security holds the
    /// server's role to the same rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_member: Option<String>,
    /// Who sees a row within its tenant. Default: `all`, anyone granted the entity's
    /// permissions. `owner`: only the user who created it (an `owner_id` field the server
    /// sets), and callers granted `<app>.<entity>.all-rows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowsOption>,
    /// The roles granted each action by default, as `{role: [read, create, update, delete,
    /// all-rows]}`; administrators change grants at run time. Default: `viewer` may read,
    /// `member` may read, create, update and delete. The `admin` role may do everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<std::collections::BTreeMap<String, Vec<GrantAction>>>,
    /// Whether the API only lists and reads its rows. `true`: no create, update or delete
    /// routes, no write functions in the repository and no row version (rows never change
    /// through Prefiq); what writes them is the runtime, a service's own SQL or another system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Whether Prefiq's migrations create and change its table. Default: `true`. `false`: the
    /// table is made elsewhere (the runtime's own migrations, a hand-written migration, a
    /// database view) and must hold the columns the schema names; codegen never writes SQL
    /// for it. Only a `read-only` entity may be unmanaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
}

/// Whose rows an entity's are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TenancyOption {
    /// Each row belongs to one tenant.
    Tenant,
    /// Rows every tenant shares.
    Global,
}

/// Whose business an entity's writes, a member or an operation are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScopeOption {
    /// A tenant's: its callers act within their own tenant, as their roles allow.
    Tenant,
    /// The platform's: only platform operators, never a tenant's administrator.
    Platform,
}

/// Who sees a row within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RowsOption {
    /// Anyone granted the entity's permissions.
    All,
    /// The user who created it, and callers granted `all-rows`.
    Owner,
}

/// An action a role may be granted on an entity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum GrantAction {
    /// List and get.
    Read,
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
    /// See and change every row, not only one's own (with `rows: owner`).
    AllRows,
}

impl GrantAction {
    /// The action's segment in a permission.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantAction::Read => "read",
            GrantAction::Create => "create",
            GrantAction::Update => "update",
            GrantAction::Delete => "delete",
            GrantAction::AllRows => "all-rows",
        }
    }
}

/// An index over fields of an entity.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IndexOptions {
    /// The fields, in index order.
    #[schemars(length(min = 1))]
    pub fields: Vec<String>,
    /// Whether no two rows may share these values.
    #[serde(default)]
    pub unique: bool,
    /// The SQL name. Default: `<table>_<columns>_key` (unique) or `_idx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `x-prefiq` on a property of an entity.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "Prefiq field options")]
pub struct FieldOptions {
    /// This field is the primary key (exactly one per entity).
    #[serde(default)]
    pub primary_key: bool,
    /// How a primary key gets its value. Default: `uuid` for `format: uuid`, `identity` for integers,
    /// `client` for other strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<Generated>,
    /// The server sets this field; clients may not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerValue>,
    /// No two rows may share a value.
    #[serde(default)]
    pub unique: bool,
    /// Index the column.
    #[serde(default)]
    pub index: bool,
    /// List requests may filter on this field (it is indexed).
    #[serde(default)]
    pub filterable: bool,
    /// List requests may sort by this field (it is indexed).
    #[serde(default)]
    pub sortable: bool,
    /// A foreign key to another entity of the app: its name, or `{entity, on-delete}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<ReferenceOptions>,
    /// The SQL column. Default: the field name in snake_case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// For `format: decimal`: total digits (at most 28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 28))]
    pub precision: Option<u32>,
    /// For `format: decimal`: digits after the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 28))]
    pub scale: Option<u32>,
    /// A stable identity that survives renaming the field (its column is renamed, not dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The field's previous name, to rename its column rather than drop and recreate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// The value existing rows get when a migration makes this field required (or adds it) and
    /// it has no `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<serde_json::Value>,
    /// Enum values renamed since the last migration, old → new: rows keep their meaning.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub renamed_values: std::collections::BTreeMap<String, String>,
    /// The value is a secret (a token, a key): audit entries record that it changed, never
    /// what it was or became.
    #[serde(default)]
    pub secret: bool,
    /// Who may set the member. `platform`: only platform operators; anyone else's create leaves
    /// it at its default and their update leaves it as it is (a 403 otherwise). Default: whoever
    /// may write the row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeOption>,
}

/// How a primary key gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Generated {
    /// A time-ordered UUID (v7) made by the server.
    Uuid,
    /// An identity column: the database numbers rows.
    Identity,
    /// The client sends it on create.
    Client,
}

/// A value the server sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServerValue {
    /// When the row was created (`format: date-time`).
    CreatedAt,
    /// When the row was last written (`format: date-time`).
    UpdatedAt,
    /// The row version: 1, then +1 per update. Sent as the `ETag`; `If-Match` compares with it.
    Version,
    /// The user who created the row (`format: uuid`, nullable: service clients are nobody).
    Owner,
}

/// A foreign key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ReferenceOptions {
    /// Just the entity name; deleting a referenced row is refused.
    Entity(String),
    /// The entity and what deleting a referenced row does.
    Full {
        /// The referenced entity.
        entity: String,
        /// What deleting the referenced row does. Default: `restrict`.
        #[serde(default, rename = "on-delete")]
        on_delete: OnDeleteOption,
    },
}

/// What deleting a referenced row does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnDeleteOption {
    /// Refuse the delete (409) while rows refer to it.
    #[default]
    Restrict,
    /// Delete the referring rows too.
    Cascade,
    /// Set the referring field to null (it must be nullable).
    SetNull,
    /// Like restrict, checked at the end of the statement.
    NoAction,
}

/// The meta-schema of Prefiq schema files: JSON Schema 2020-12 plus the `x-prefiq` vocabulary.
pub fn meta_schema() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let entity = generator.subschema_for::<EntityOptions>();
    let field = generator.subschema_for::<FieldOptions>();
    let mut defs = generator.take_definitions(true);
    let sub = |r: &str| json!({ "$ref": format!("#/$defs/{r}") });
    let schema_map = json!({ "type": "object", "additionalProperties": sub("PropertySchema") });
    let schema_list = json!({ "type": "array", "items": sub("PropertySchema") });
    defs.insert(
        "PropertySchema".into(),
        json!({
            "description": "A JSON Schema for a property or definition; `x-prefiq` holds field options.",
            "type": ["object", "boolean"],
            "properties": {
                "x-prefiq": field,
                "properties": schema_map,
                "$defs": schema_map,
                "items": sub("PropertySchema"),
                "additionalProperties": sub("PropertySchema"),
                "allOf": schema_list,
                "oneOf": schema_list,
                "anyOf": schema_list
            }
        }),
    );
    json!({
        "$schema": DRAFT_2020_12,
        "$id": META_SCHEMA_ID,
        "title": "Prefiq schema file",
        "description": "A JSON Schema (draft 2020-12) for one entity, or shared definitions. `x-prefiq` at the root makes it an entity.",
        "allOf": [{ "$ref": DRAFT_2020_12 }],
        "type": "object",
        "properties": {
            "x-prefiq": entity,
            "properties": schema_map,
            "$defs": schema_map,
            "allOf": schema_list,
            "oneOf": schema_list
        },
        "$defs": defs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_schema_describes_both_option_sets() {
        let schema = meta_schema();
        let defs = schema["$defs"].as_object().unwrap();
        assert!(defs.contains_key("PropertySchema"));
        assert_eq!(
            defs["PropertySchema"]["properties"]["x-prefiq"]["$ref"],
            "#/$defs/FieldOptions"
        );
        assert!(
            defs["FieldOptions"]["properties"]
                .get("primary-key")
                .is_some()
        );
        assert_eq!(
            schema["properties"]["x-prefiq"]["$ref"],
            "#/$defs/EntityOptions"
        );
        assert!(defs["EntityOptions"]["properties"].get("indexes").is_some());
    }
}
