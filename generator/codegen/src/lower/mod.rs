//! Stage 3, `lower`: turn validated schema files into the typed, ordered [`Ir`].
//!
//! Lowering never stops at the first problem: it collects every diagnostic it can, and a node
//! that cannot be lowered becomes `Type::Any` so that later checks do not cascade.

mod crud;
mod events;
pub(crate) mod keywords;
mod operations;
mod rules;
mod schema;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::ir::{
    App, BEARER_SCHEME, Entity, Field, FieldRole, Index, KeyGeneration, Member, NamedType,
    NumberType, OnDelete, Reference, Scope, Storage, TENANT_COLUMN, Tenancy, Type,
};
use crate::load::{AppInput, FileKind, Project, SourceFile};
use crate::names;
use crate::vocab::{
    self, EntityOptions, FieldOptions, Generated, GrantAction, OnDeleteOption, ReferenceOptions,
    RowsOption, ScopeOption, ServerValue, TenancyOption,
};

/// A schema node: a file and a JSON pointer into it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Loc {
    file: usize,
    pointer: String,
}

impl Loc {
    fn child(&self, segment: &str) -> Loc {
        Loc {
            file: self.file,
            pointer: format!("{}/{}", self.pointer, crate::load::spans::escape(segment)),
        }
    }
}

/// Lowers every app of the project.
pub(crate) fn lower(project: &Project) -> (crate::ir::Ir, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut apps = Vec::new();
    for input in &project.apps {
        let (app, mut found) = lower_app(input);
        diagnostics.append(&mut found);
        apps.push(app);
    }
    (crate::ir::Ir { apps }, diagnostics)
}

pub(crate) struct Lowerer<'a> {
    files: &'a [SourceFile],
    diagnostics: Vec<Diagnostic>,
    types: BTreeMap<String, NamedType>,
    type_origin: BTreeMap<String, Loc>,
    memo: HashMap<Loc, Type>,
    alias_stack: Vec<Loc>,
    entity_files: BTreeSet<usize>,
    touched: BTreeSet<usize>,
    /// `(field index, unique, index)` flags of the entity being lowered.
    pending_indexes: Vec<(usize, bool, bool)>,
    /// Entity names by the file that defines them, for `$ref`s from operations.
    entity_names: BTreeMap<usize, String>,
    /// `components.securitySchemes` of the fragments.
    security_schemes: BTreeMap<String, Value>,
}

impl Lowerer<'_> {
    fn value(&self, loc: &Loc) -> Option<&Value> {
        self.files[loc.file].value.as_ref()?.pointer(&loc.pointer)
    }

    fn report(&mut self, diagnostic: Diagnostic, loc: &Loc, on_key: bool, label: &str) {
        let file = &self.files[loc.file];
        // A problem with a whole file is shown at its `title` (or `x-prefiq`), not over every line.
        let (pointer, on_key) = match loc.pointer.as_str() {
            "" => match file.value.as_ref() {
                Some(v) if v.get("title").is_some() => ("/title", true),
                Some(v) if v.get("x-prefiq").is_some() => ("/x-prefiq", true),
                _ => ("", on_key),
            },
            pointer => (pointer, on_key),
        };
        let mut diagnostic = file.diag(diagnostic, pointer, on_key, label);
        diagnostic.pointer = Some(loc.pointer.clone());
        self.diagnostics.push(diagnostic);
    }

    fn error(
        &mut self,
        loc: &Loc,
        on_key: bool,
        code: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
        label: &str,
    ) {
        self.report(
            Diagnostic::error(code, message).with_help(help),
            loc,
            on_key,
            label,
        );
    }

    fn warn(
        &mut self,
        loc: &Loc,
        on_key: bool,
        code: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.report(
            Diagnostic::warning(code, message).with_help(help),
            loc,
            on_key,
            "here",
        );
    }
}

fn lower_app(input: &AppInput) -> (App, Vec<Diagnostic>) {
    let entity_files: BTreeSet<usize> = input
        .files
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.kind == FileKind::Schema
                && f.value
                    .as_ref()
                    .is_some_and(|v| v.get("x-prefiq").is_some())
        })
        .map(|(i, _)| i)
        .collect();
    let mut lowerer = Lowerer {
        files: &input.files,
        diagnostics: Vec::new(),
        types: BTreeMap::new(),
        type_origin: BTreeMap::new(),
        memo: HashMap::new(),
        alias_stack: Vec::new(),
        entity_files: entity_files.clone(),
        touched: entity_files.clone(),
        pending_indexes: Vec::new(),
        entity_names: BTreeMap::new(),
        security_schemes: BTreeMap::new(),
    };

    for (index, file) in input.files.iter().enumerate() {
        lowerer.check_schema_keyword(index, file);
    }

    // Entity names and the type names they imply are taken before any nested type is named.
    let mut entities: Vec<Entity> = Vec::new();
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for &file in &entity_files {
        let name = lowerer.entity_name(file);
        let root = Loc {
            file,
            pointer: String::new(),
        };
        if let Some(&other) = claimed.get(&name) {
            let message = format!(
                "two entities are named `{name}`; the other is {}",
                input.files[other].path()
            );
            lowerer.error(
                &root,
                false,
                "prefiq::lower::duplicate_entity",
                message,
                "give one of them a different `title` (the entity name) or file name",
                "second entity with this name",
            );
            continue;
        }
        claimed.insert(name.clone(), file);
        for suffix in ["", "Create", "Patch", "Replace", "Page"] {
            lowerer
                .type_origin
                .insert(format!("{name}{suffix}"), root.clone());
        }
    }
    for (name, &file) in &claimed {
        if let Some(entity) = lowerer.lower_entity(file, name) {
            lowerer.entity_names.insert(file, entity.name.clone());
            entities.push(entity);
        }
    }
    lowerer.check_entity_collisions(&entities);
    lowerer.resolve_references(&mut entities);
    let base_path = format!("/api/{}", input.name);
    entities.sort_by(|a, b| a.name.cmp(&b.name));
    let mut operations = Vec::new();
    for entity in &mut entities {
        crud::place(entity, &base_path);
        lowerer.register_derived(entity);
        operations.extend(crud::operations(&input.name, entity, &lowerer.types));
    }
    operations.extend(lowerer.lower_operations(&input.name, &operations));
    let snakes: Vec<String> = entities.iter().map(|e| e.snake.clone()).collect();
    let events = lowerer.lower_events(&snakes);
    lowerer.box_recursive_members();

    for (index, file) in input.files.iter().enumerate() {
        if file.kind == FileKind::Schema
            && file.value.is_some()
            && !lowerer.touched.contains(&index)
        {
            let root = Loc {
                file: index,
                pointer: String::new(),
            };
            lowerer.warn(&root, false, "prefiq::lower::unused_file", format!("{} defines no entity and nothing refers to it", file.path()), "add `x-prefiq: {}` at its root to make it an entity, refer to it with `$ref`, or delete it");
        }
    }

    // Every operation needs an access token from Cortex; a fragment may describe the scheme.
    let mut security_schemes = lowerer.security_schemes;
    security_schemes
        .entry(BEARER_SCHEME.to_owned())
        .or_insert_with(|| {
            serde_json::json!({
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token issued by Cortex (`POST /auth/token`), or a personal access token. Every operation needs one; the operation's permission (`x-prefiq-permission`) must be granted to one of the caller's roles."
            })
        });
    let mut app = App {
        name: input.name.clone(),
        base_path,
        sources: input.files.iter().map(|f| f.path().to_owned()).collect(),
        entities,
        types: lowerer.types,
        operations,
        security_schemes,
        migrations: input.migrations.versions(),
        events,
    };
    let mut diagnostics = lowerer.diagnostics;
    rules::attach(&mut app, &input.files, &mut diagnostics);
    (app, diagnostics)
}

impl Lowerer<'_> {
    fn check_schema_keyword(&mut self, file: usize, source: &SourceFile) {
        if source.kind == FileKind::Validation {
            return;
        }
        let Some(schema) = source.value.as_ref().and_then(|v| v.get("$schema")) else {
            return;
        };
        let ok = schema.as_str().is_some_and(|s| {
            s == vocab::DRAFT_2020_12
                || s == vocab::META_SCHEMA_ID
                || s.ends_with("entity.schema.json")
        });
        if !ok {
            let loc = Loc {
                file,
                pointer: "/$schema".into(),
            };
            self.error(&loc, false, "prefiq::lower::dialect", format!("unsupported `$schema` {schema}"), format!("schema files use JSON Schema 2020-12: name `{}`, or the Prefiq meta-schema `schemas/entity.schema.json` for editor completion", vocab::DRAFT_2020_12), "unsupported dialect");
        }
    }

    /// Registers the types derived from `entity` in the type table, so that no other schema can
    /// take their names.
    fn register_derived(&mut self, entity: &Entity) {
        use crate::ir::Derived;
        let root = Loc {
            file: self
                .files
                .iter()
                .position(|f| f.path() == entity.source)
                .unwrap_or(0),
            pointer: String::new(),
        };
        let of = entity.name.clone();
        let types = &entity.types;
        // A read-only entity has no bodies: nothing creates, patches or replaces one.
        let bodies = [
            (&types.create, Derived::Create { entity: of.clone() }),
            (&types.patch, Derived::Patch { entity: of.clone() }),
            (&types.replace, Derived::Replace { entity: of.clone() }),
        ]
        .into_iter()
        .filter(|_| !entity.read_only);
        let reads = [
            (&types.page, Derived::Page { entity: of.clone() }),
            (&types.query, Derived::Query { entity: of.clone() }),
        ];
        for (name, derived) in bodies.chain(reads) {
            match self.type_origin.get(name) {
                Some(origin) if *origin != root => {
                    let other = format!("{}#{}", self.files[origin.file].path(), origin.pointer);
                    self.error(
                        &root,
                        false,
                        "prefiq::lower::duplicate_type",
                        format!("`{name}` is the name of a type made for entity {of}, and {other} takes it too"),
                        "give that schema a different `title`",
                        "entity",
                    );
                }
                _ => {
                    self.type_origin.insert(name.clone(), root.clone());
                    self.types.insert(name.clone(), NamedType::Derived(derived));
                }
            }
        }
    }

    fn entity_name(&self, file: usize) -> String {
        let root = Loc {
            file,
            pointer: String::new(),
        };
        match self
            .value(&root)
            .and_then(|v| v.get("title"))
            .and_then(Value::as_str)
        {
            Some(title) => names::pascal(title),
            None => {
                let path = self.files[file].path();
                let stem = path.rsplit('/').next().unwrap_or(path);
                names::pascal(stem.split('.').next().unwrap_or(stem))
            }
        }
    }

    fn lower_entity(&mut self, file: usize, name: &str) -> Option<Entity> {
        self.touched.insert(file);
        let root = Loc {
            file,
            pointer: String::new(),
        };
        let options = self.entity_options(&root, name)?;
        let shape = self.shape(&root, 0);
        let snake = names::snake(name);
        let table = options
            .table
            .clone()
            .unwrap_or_else(|| names::plural(&snake));
        if !names::is_valid_sql_name(&table) {
            self.error(
                &root.child("x-prefiq"),
                true,
                "prefiq::lower::table_name",
                format!("`{table}` cannot be a table name"),
                "use lower-case letters, digits and `_`, at most 63 characters",
                "table",
            );
        }
        let plural = options
            .plural
            .clone()
            .unwrap_or_else(|| table.replace('_', "-"));

        let mut fields: Vec<Field> = Vec::new();
        let mut primary: Vec<(usize, Loc)> = Vec::new();
        let mut server_seen: BTreeMap<&'static str, String> = BTreeMap::new();
        for (member_name, at) in &shape.properties {
            let required = shape.required.contains(member_name);
            let Some((field, options)) =
                self.lower_field(name, &table, member_name, at, required, &mut server_seen)
            else {
                continue;
            };
            if options.primary_key {
                primary.push((fields.len(), at.clone()));
            }
            fields.push(field);
            // Pending unique/index flags are applied once the table name is known.
            self.pending_indexes
                .push((fields.len() - 1, options.unique, options.index));
        }

        let primary_key = match primary.as_slice() {
            [] => {
                self.error(&root, false, "prefiq::lower::no_primary_key", format!("entity `{name}` has no primary key"), "mark one field `x-prefiq: {primary-key: true}`, usually `id: {type: string, format: uuid, readOnly: true, x-prefiq: {primary-key: true}}`", "entity without a primary key");
                self.pending_indexes.clear();
                return None;
            }
            [(index, _)] => *index,
            [_, (_, second), ..] => {
                self.error(second, true, "prefiq::lower::composite_key", format!("entity `{name}` has more than one primary key field"), "composite keys are not supported: keep one key field and add a unique index over the others", "second key");
                self.pending_indexes.clear();
                return None;
            }
        };
        let read_only = options.read_only.unwrap_or(false);
        let managed = options.managed.unwrap_or(true);
        if !managed && !read_only {
            self.error(
                &root.child("x-prefiq").child("managed"),
                true,
                "prefiq::lower::unmanaged_writable",
                "an entity whose table Prefiq does not migrate cannot be written through Prefiq",
                "add `read-only: true` to the entity's `x-prefiq`, or remove `managed: false`",
                "unmanaged",
            );
        }
        // A read-only entity's rows never change through Prefiq: no version to keep.
        if !read_only {
            self.keep_server_field(&root, &mut fields, version_field(), VERSION_RESERVED);
        }
        let rows = options.rows.unwrap_or(RowsOption::All);
        if rows == RowsOption::Owner {
            self.keep_server_field(&root, &mut fields, owner_field(), OWNER_RESERVED);
        }
        self.check_columns(&root, &fields);
        let indexes = self.indexes(&root, &table, &fields, primary_key, &options);
        for field in &mut fields {
            if matches!(field.member.ty, Type::Enum { .. }) {
                field.check = Some(index_name(
                    &table,
                    std::slice::from_ref(&field.column),
                    "check",
                ));
            }
        }
        let tenancy = match options.tenancy {
            Some(TenancyOption::Global) => Tenancy::Global,
            Some(TenancyOption::Tenant) | None => Tenancy::Tenant,
        };
        let (scope, tenant_member) =
            self.entity_scope(&root, name, &options, tenancy, read_only, &fields);
        let owner = fields.iter().position(|f| f.role == FieldRole::Owner);
        if owner.is_some() && rows != RowsOption::Owner {
            let at = root.child("x-prefiq");
            self.error(
                &at,
                true,
                "prefiq::lower::owner_rows",
                format!("`{name}` has a `server: owner` field, but its rows are not owned"),
                "add `rows: owner` to the entity's `x-prefiq`, or drop `server: owner`",
                "rows",
            );
        }
        if tenancy == Tenancy::Tenant {
            if let Some(clash) = fields.iter().find(|f| f.column == TENANT_COLUMN) {
                let at = root.child("properties").child(&clash.member.name);
                self.error(
                    &at,
                    true,
                    "prefiq::lower::tenant_reserved",
                    format!("`{TENANT_COLUMN}` holds the tenant of each row, which the server takes from the caller's token"),
                    "remove this field (the tenant is never sent or read by clients), or mark the entity `x-prefiq: {tenancy: global}`",
                    "reserved",
                );
            }
        }
        let indexes = tenant_indexes(&table, tenancy, indexes);
        let grants = entity_grants(options.grants.as_ref());
        Some(Entity {
            tenancy,
            scope,
            tenant_member,
            owner,
            grants,
            types: crud::entity_types(name, &plural),
            collection_path: String::new(),
            item_path: String::new(),
            name: name.to_owned(),
            snake,
            plural,
            table,
            description: shape.description,
            source: self.files[file].path().to_owned(),
            fields,
            primary_key,
            indexes,
            stable_id: options.id,
            renamed_from: options.renamed_from,
            read_only,
            managed,
            rules: Vec::new(),
        })
    }

    /// An entity file's own checks (its name, its type) and its `x-prefiq` options.
    fn entity_options(&mut self, root: &Loc, name: &str) -> Option<EntityOptions> {
        let object = self.value(root)?.as_object()?.clone();
        self.check_keywords(root, &object);
        if !names::is_valid_type_name(name) || names::is_reserved_type_name(name) {
            self.error(
                root,
                false,
                "prefiq::lower::entity_name",
                format!("`{name}` cannot be an entity name"),
                "set `title` to a PascalCase name such as `Company` (not a Rust prelude name)",
                "entity",
            );
            return None;
        }
        if let Some(kind) = object
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| *t != "object")
        {
            self.error(
                &root.child("type"),
                false,
                "prefiq::lower::entity_type",
                format!("an entity is an object, not a {kind}"),
                "write `type: object` with `properties`",
                "not an object",
            );
            return None;
        }
        match serde_json::from_value(object.get("x-prefiq").cloned().unwrap_or(Value::Null)) {
            Ok(options) => Some(options),
            Err(error) if object.get("x-prefiq").is_some_and(Value::is_null) => {
                let _ = error;
                Some(EntityOptions::default())
            }
            Err(error) => {
                self.error(
                    &root.child("x-prefiq"),
                    true,
                    "prefiq::lower::entity_options",
                    format!("invalid x-prefiq options: {error}"),
                    "see schemas/entity.schema.json for the entity options",
                    "invalid",
                );
                None
            }
        }
    }

    /// One member of an entity as a field: its column, role, reference and storage options,
    /// with the options it was given (the caller keeps the key and the pending indexes).
    fn lower_field(
        &mut self,
        name: &str,
        table: &str,
        member_name: &str,
        at: &Loc,
        required: bool,
        server_seen: &mut BTreeMap<&'static str, String>,
    ) -> Option<(Field, FieldOptions)> {
        let member = self.lower_member(member_name, at, required, name)?;
        let schema = self.value(at).cloned().unwrap_or(Value::Null);
        let options: FieldOptions = match serde_json::from_value(
            schema
                .get("x-prefiq")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
        ) {
            Ok(options) => options,
            Err(error) => {
                self.error(
                    &at.child("x-prefiq"),
                    true,
                    "prefiq::lower::field_options",
                    format!("invalid x-prefiq options: {error}"),
                    "see schemas/entity.schema.json for the field options",
                    "invalid",
                );
                return None;
            }
        };
        let read_only = schema
            .get("readOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let role = self.field_role(at, &member, &options, server_seen);
        if read_only && role == FieldRole::Data {
            self.error(&at.child("readOnly"), true, "prefiq::lower::read_only", format!("`{member_name}` is readOnly, but nothing sets it"), "readOnly marks fields the server sets: add `x-prefiq: {server: created-at | updated-at | version}` or `primary-key: true`, or remove readOnly", "nothing sets it");
        }
        let column = options
            .column
            .clone()
            .unwrap_or_else(|| names::snake(member_name));
        if !names::is_valid_sql_name(&column) {
            self.error(
                at,
                true,
                "prefiq::lower::column_name",
                format!("`{column}` cannot be a column name"),
                "set `x-prefiq: {column: snake_case_name}`",
                "column",
            );
        }
        self.check_storage_options(at, &member, &options);
        let references = options.references.as_ref().map(|r| match r {
            ReferenceOptions::Entity(entity) => Reference {
                entity: entity.clone(),
                on_delete: OnDelete::Restrict,
                constraint: index_name(table, std::slice::from_ref(&column), "fkey"),
            },
            ReferenceOptions::Full { entity, on_delete } => Reference {
                entity: entity.clone(),
                constraint: index_name(table, std::slice::from_ref(&column), "fkey"),
                on_delete: match on_delete {
                    OnDeleteOption::Restrict => OnDelete::Restrict,
                    OnDeleteOption::Cascade => OnDelete::Cascade,
                    OnDeleteOption::SetNull => OnDelete::SetNull,
                    OnDeleteOption::NoAction => OnDelete::NoAction,
                },
            },
        });
        if options.scope == Some(ScopeOption::Platform) && role != FieldRole::Data {
            self.error(
                &at.child("x-prefiq").child("scope"),
                true,
                "prefiq::lower::field_scope",
                format!("`{member_name}` is set by the server, so no caller sets it"),
                "remove `scope: platform`: it is for members clients send",
                "nobody sends it",
            );
        }
        let field = Field {
            storage: Storage::of(&member.ty),
            check: None,
            member,
            column,
            role,
            filterable: options.filterable,
            sortable: options.sortable,
            references,
            stable_id: options.id.clone(),
            renamed_from: options.renamed_from.clone(),
            backfill: options.backfill.clone(),
            renamed_values: options
                .renamed_values
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
            secret: options.secret,
            scope: match options.scope {
                Some(ScopeOption::Platform) => Scope::Platform,
                Some(ScopeOption::Tenant) | None => Scope::Tenant,
            },
        };
        Some((field, options))
    }

    /// Adds a field the server keeps (`field`) unless the entity declares one of its role; a
    /// member that takes its name or column without the role is an error.
    fn keep_server_field(
        &mut self,
        root: &Loc,
        fields: &mut Vec<Field>,
        field: Field,
        reserved: Reserved,
    ) {
        if fields.iter().any(|f| f.role == field.role) {
            return;
        }
        let clash = fields
            .iter()
            .find(|f| f.member.name == field.member.name || f.column == field.column);
        match clash {
            Some(clash) => {
                let at = root.child("properties").child(&clash.member.name);
                self.error(
                    &at,
                    true,
                    reserved.code,
                    reserved.message,
                    reserved.fix,
                    "reserved",
                );
            }
            None => fields.push(field),
        }
    }

    /// No two members share a name, and no two fields a column.
    fn check_columns(&mut self, root: &Loc, fields: &[Field]) {
        self.check_member_collisions(
            root,
            &fields.iter().map(|f| f.member.clone()).collect::<Vec<_>>(),
        );
        for (i, a) in fields.iter().enumerate() {
            if fields[..i].iter().any(|b| b.column == a.column) {
                let at = root.child("properties").child(&a.member.name);
                self.error(
                    &at,
                    true,
                    "prefiq::lower::name_collision",
                    format!("two fields are stored in the column `{}`", a.column),
                    "set a different `x-prefiq: {column: ...}` on one of them",
                    "collides",
                );
            }
        }
    }

    /// Who writes the rows of an entity, and which member names a global row's tenant. Every
    /// writable `global` entity must say: its rows are shared by every tenant, so leaving it
    /// open would let any tenant's administrator write every tenant's rows.
    fn entity_scope(
        &mut self,
        root: &Loc,
        name: &str,
        options: &EntityOptions,
        tenancy: Tenancy,
        read_only: bool,
        fields: &[Field],
    ) -> (Scope, Option<usize>) {
        let at = root.child("x-prefiq");
        if tenancy == Tenancy::Tenant {
            if options.scope == Some(ScopeOption::Platform) || options.tenant_member.is_some() {
                let key = if options.tenant_member.is_some() {
                    "tenant-member"
                } else {
                    "scope"
                };
                self.error(
                    &at.child(key),
                    true,
                    "prefiq::lower::tenant_scope",
                    format!("`{name}` keeps each row in its tenant already, so `{key}` says nothing"),
                    "remove it, or mark the entity `tenancy: global` if every tenant shares its rows",
                    "tenant-scoped",
                );
            }
            return (Scope::Tenant, None);
        }
        let member = options.tenant_member.as_ref().and_then(|wanted| {
            let found = fields.iter().position(|f| &f.member.name == wanted);
            let usable = found.filter(|&i| {
                let f = &fields[i];
                f.storage == Storage::Uuid
                    && matches!(f.role, FieldRole::Data | FieldRole::PrimaryKey(_))
            });
            if usable.is_none() {
                let problem = match found {
                    None => format!("`{name}` has no member `{wanted}`"),
                    Some(_) => format!("`{wanted}` cannot name a tenant: it is not a `format: uuid` member a row keeps"),
                };
                self.error(
                    &at.child("tenant-member"),
                    false,
                    "prefiq::lower::tenant_member",
                    problem,
                    "name the member (`type: string, format: uuid`, or nullable for rows of the platform) that holds the id of the tenant a row belongs to",
                    "no such tenant member",
                );
            }
            usable
        });
        let scope = match options.scope {
            Some(ScopeOption::Platform) => Scope::Platform,
            Some(ScopeOption::Tenant) => {
                if options.tenant_member.is_none() {
                    self.error(
                        &at.child("scope"),
                        true,
                        "prefiq::lower::global_scope",
                        format!("`{name}` is written by tenants, but nothing says which tenant a row belongs to"),
                        "add `tenant-member: <member>`, the `format: uuid` member naming each row's tenant, or write `scope: platform` if only platform operators write it",
                        "which tenant?",
                    );
                }
                Scope::Tenant
            }
            None if read_only || options.tenant_member.is_some() => Scope::Tenant,
            None => {
                self.error(
                    &at.child("tenancy"),
                    false,
                    "prefiq::lower::global_scope",
                    format!("`{name}` is global: every tenant shares its rows, so say who writes them"),
                    "add `scope: platform` (only platform operators write it) or `tenant-member: <member>` (each row belongs to the tenant that `format: uuid` member names; a tenant writes only its own) to the entity's `x-prefiq`",
                    "who writes it?",
                );
                Scope::Tenant
            }
        };
        (scope, member)
    }

    fn field_role(
        &mut self,
        at: &Loc,
        member: &Member,
        options: &FieldOptions,
        seen: &mut BTreeMap<&'static str, String>,
    ) -> FieldRole {
        let key = &at.child("x-prefiq");
        if options.primary_key {
            if options.server.is_some() {
                self.error(
                    key,
                    true,
                    "prefiq::lower::key_role",
                    "a primary key cannot also be server-set",
                    "remove `server`",
                    "here",
                );
            }
            if member.nullable {
                self.error(
                    at,
                    true,
                    "prefiq::lower::nullable_key",
                    "a primary key cannot be null",
                    "remove \"null\" from its type",
                    "nullable key",
                );
            }
            let generation = match (options.generated, &member.ty) {
                (Some(Generated::Client), _) => KeyGeneration::Client,
                (Some(Generated::Uuid) | None, Type::Uuid) => KeyGeneration::Uuid,
                (Some(Generated::Identity) | None, Type::Integer(_)) => KeyGeneration::Identity,
                (None, Type::String(_)) => KeyGeneration::Client,
                (Some(generated), ty) => {
                    self.error(
                        key,
                        true,
                        "prefiq::lower::key_generation",
                        format!(
                            "`generated: {generated:?}` does not fit a key of this type ({})",
                            describe(ty)
                        ),
                        "use `uuid` with `format: uuid`, `identity` with integers, or `client`",
                        "here",
                    );
                    KeyGeneration::Client
                }
                (None, ty) => {
                    self.error(at, true, "prefiq::lower::key_type", format!("a primary key must be a uuid, an integer or a string, not {}", describe(ty)), "use `type: string, format: uuid` (generated by the server) or `type: integer`", "key type");
                    KeyGeneration::Client
                }
            };
            return FieldRole::PrimaryKey(generation);
        }
        let Some(server) = options.server else {
            return FieldRole::Data;
        };
        let (label, role, fits) = match server {
            ServerValue::CreatedAt => (
                "created-at",
                FieldRole::CreatedAt,
                member.ty == Type::DateTime,
            ),
            ServerValue::UpdatedAt => (
                "updated-at",
                FieldRole::UpdatedAt,
                member.ty == Type::DateTime,
            ),
            ServerValue::Version => (
                "version",
                FieldRole::Version,
                matches!(member.ty, Type::Integer(_)),
            ),
            ServerValue::Owner => (
                "owner",
                FieldRole::Owner,
                member.ty == Type::Uuid && member.nullable,
            ),
        };
        if !fits {
            let wanted = match role {
                FieldRole::Version => "`type: integer`",
                FieldRole::Owner => "`type: [string, \"null\"], format: uuid`",
                _ => "`type: string, format: date-time`",
            };
            self.error(
                key,
                true,
                "prefiq::lower::server_type",
                format!("a `server: {label}` field must be {wanted}"),
                format!("change the field's type to {wanted}"),
                "wrong type",
            );
        }
        if let Some(other) = seen.get(label) {
            self.error(
                key,
                true,
                "prefiq::lower::server_twice",
                format!("`{other}` is already the `server: {label}` field"),
                "keep one",
                "second",
            );
        }
        seen.insert(label, member.name.clone());
        role
    }

    fn check_storage_options(&mut self, at: &Loc, member: &Member, options: &FieldOptions) {
        let key = at.child("x-prefiq");
        let array_of_scalars = matches!(&member.ty, Type::Array(a) if a.items.is_scalar());
        if options.filterable && member.ty.is_json() && !array_of_scalars {
            self.error(
                &key,
                true,
                "prefiq::lower::filterable",
                format!(
                    "`{}` holds structured JSON and cannot be filterable",
                    member.name
                ),
                "filter on scalar fields, or on arrays of scalars (the `cs` operator)",
                "not filterable",
            );
        }
        if options.sortable && member.ty.is_json() {
            self.error(
                &key,
                true,
                "prefiq::lower::sortable",
                format!("`{}` holds JSON and cannot be sortable", member.name),
                "sort by scalar fields",
                "not sortable",
            );
        }
        if (options.unique || options.index) && member.ty.is_json() {
            self.error(
                &key,
                true,
                "prefiq::lower::json_index",
                format!(
                    "`{}` holds JSON and cannot be unique or indexed",
                    member.name
                ),
                "index scalar fields",
                "not indexable",
            );
        }
        if (options.precision.is_some() || options.scale.is_some())
            && !matches!(member.ty, Type::Decimal(_))
        {
            self.error(
                &key,
                true,
                "prefiq::lower::decimal_options",
                "`precision` and `scale` apply to `format: decimal` only",
                "remove them, or make the field a decimal",
                "here",
            );
        }
        if options.generated.is_some() && !options.primary_key {
            self.error(
                &key,
                true,
                "prefiq::lower::key_generation",
                "`generated` applies to the primary key only",
                "remove it",
                "here",
            );
        }
    }

    fn indexes(
        &mut self,
        root: &Loc,
        table: &str,
        fields: &[Field],
        primary_key: usize,
        options: &EntityOptions,
    ) -> Vec<Index> {
        let mut indexes: Vec<Index> = Vec::new();
        let add = |indexes: &mut Vec<Index>,
                   columns: Vec<String>,
                   unique: bool,
                   json: bool,
                   name: Option<String>| {
            if indexes
                .iter()
                .any(|i| i.columns == columns && (i.unique || !unique))
            {
                return;
            }
            indexes.retain(|i| !(i.columns == columns && !i.unique && unique));
            let name = name.unwrap_or_else(|| {
                index_name(
                    table,
                    &columns,
                    if unique {
                        "key"
                    } else if json {
                        "gin"
                    } else {
                        "idx"
                    },
                )
            });
            indexes.push(Index {
                name,
                columns,
                unique,
                json,
            });
        };
        let pending = std::mem::take(&mut self.pending_indexes);
        for (index, unique, explicit) in pending {
            let Some(field) = fields.get(index) else {
                continue;
            };
            if index == primary_key {
                continue;
            }
            if unique {
                add(&mut indexes, vec![field.column.clone()], true, false, None);
            }
            if explicit {
                add(&mut indexes, vec![field.column.clone()], false, false, None);
            }
        }
        for (position, spec) in options.indexes.iter().enumerate() {
            let mut columns = Vec::new();
            for (i, name) in spec.fields.iter().enumerate() {
                match fields.iter().find(|f| &f.member.name == name) {
                    Some(field) if field.member.ty.is_json() => {
                        let at = root
                            .child("x-prefiq")
                            .child("indexes")
                            .child(&position.to_string())
                            .child("fields")
                            .child(&i.to_string());
                        self.error(
                            &at,
                            false,
                            "prefiq::lower::json_index",
                            format!("`{name}` holds JSON and cannot be indexed"),
                            "index scalar fields",
                            "JSON field",
                        );
                    }
                    Some(field) => columns.push(field.column.clone()),
                    None => {
                        let at = root
                            .child("x-prefiq")
                            .child("indexes")
                            .child(&position.to_string())
                            .child("fields")
                            .child(&i.to_string());
                        let known: Vec<&str> =
                            fields.iter().map(|f| f.member.name.as_str()).collect();
                        let help = names::closest(name, &known)
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| format!("fields: {}", known.join(", ")));
                        self.error(
                            &at,
                            false,
                            "prefiq::lower::index_field",
                            format!("index over unknown field `{name}`"),
                            help,
                            "unknown field",
                        );
                    }
                }
            }
            if columns.len() == spec.fields.len() {
                add(&mut indexes, columns, spec.unique, false, spec.name.clone());
            }
        }
        // Filters, sorts and foreign keys are indexed so that no list request scans a table.
        for (index, field) in fields.iter().enumerate() {
            if index == primary_key {
                continue;
            }
            let covered = indexes
                .iter()
                .any(|i| i.columns.first() == Some(&field.column));
            if covered {
                continue;
            }
            if matches!(&field.member.ty, Type::Array(_)) && field.filterable {
                add(&mut indexes, vec![field.column.clone()], false, true, None);
            } else if field.member.ty.is_scalar()
                && (field.filterable || field.sortable || field.references.is_some())
            {
                add(&mut indexes, vec![field.column.clone()], false, false, None);
            }
        }
        indexes
    }

    fn check_entity_collisions(&mut self, entities: &[Entity]) {
        for (i, a) in entities.iter().enumerate() {
            for b in &entities[..i] {
                let root = Loc {
                    file: self
                        .files
                        .iter()
                        .position(|f| f.path() == a.source)
                        .unwrap_or(0),
                    pointer: String::new(),
                };
                for (what, x, y) in [
                    ("table", &a.table, &b.table),
                    ("URL segment", &a.plural, &b.plural),
                    ("snake_case name", &a.snake, &b.snake),
                ] {
                    if x == y {
                        self.error(
                            &root,
                            false,
                            "prefiq::lower::entity_collision",
                            format!(
                                "entities `{}` and `{}` have the same {what} `{x}`",
                                b.name, a.name
                            ),
                            "set `x-prefiq: {table: ..., plural: ...}` or rename one entity",
                            "collides",
                        );
                    }
                }
            }
        }
    }

    fn resolve_references(&mut self, entities: &mut [Entity]) {
        let keys: BTreeMap<String, Type> = entities
            .iter()
            .map(|e| (e.name.clone(), e.key().member.ty.clone()))
            .collect();
        for entity in entities.iter_mut() {
            let file = self
                .files
                .iter()
                .position(|f| f.path() == entity.source)
                .unwrap_or(0);
            for field in &mut entity.fields {
                let Some(reference) = &field.references else {
                    continue;
                };
                let at = Loc {
                    file,
                    pointer: format!(
                        "/properties/{}/x-prefiq/references",
                        crate::load::spans::escape(&field.member.name)
                    ),
                };
                match keys.get(&reference.entity) {
                    None => {
                        let known: Vec<&str> = keys.keys().map(String::as_str).collect();
                        let help = names::closest(&reference.entity, &known)
                            .map(|c| format!("did you mean `{c}`?"))
                            .unwrap_or_else(|| {
                                format!("entities of this app: {}", known.join(", "))
                            });
                        self.error(
                            &at,
                            false,
                            "prefiq::lower::unknown_entity",
                            format!(
                                "`{}` references an unknown entity `{}`",
                                field.member.name, reference.entity
                            ),
                            help,
                            "unknown entity",
                        );
                        field.references = None;
                    }
                    Some(key)
                        if std::mem::discriminant(key)
                            != std::mem::discriminant(&field.member.ty) =>
                    {
                        self.error(
                            &at,
                            false,
                            "prefiq::lower::reference_type",
                            format!(
                                "`{}` is {} but the key of {} is {}",
                                field.member.name,
                                describe(&field.member.ty),
                                reference.entity,
                                describe(key)
                            ),
                            format!(
                                "give `{}` the type of {}'s primary key",
                                field.member.name, reference.entity
                            ),
                            "type mismatch",
                        );
                        field.references = None;
                    }
                    Some(_)
                        if reference.on_delete == OnDelete::SetNull
                            && !field.is_nullable_column() =>
                    {
                        self.error(
                            &at,
                            false,
                            "prefiq::lower::set_null",
                            format!(
                                "`on-delete: set-null` needs `{}` to be nullable",
                                field.member.name
                            ),
                            "make the field optional or nullable, or choose cascade or restrict",
                            "not nullable",
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// Boxes members whose type contains the struct itself, so that Rust types have a size.
    fn box_recursive_members(&mut self) {
        let direct = |ty: &Type| -> Option<String> {
            match ty {
                Type::Object { name } | Type::Union { name } => Some(name.clone()),
                _ => None,
            }
        };
        let edges: BTreeMap<String, Vec<String>> = self
            .types
            .iter()
            .map(|(name, ty)| {
                let targets = match ty {
                    NamedType::Struct(s) => {
                        s.members.iter().filter_map(|m| direct(&m.ty)).collect()
                    }
                    NamedType::Union(u) => {
                        u.variants.iter().filter_map(|v| direct(&v.ty)).collect()
                    }
                    NamedType::Enum(_) | NamedType::Derived(_) => vec![],
                };
                (name.clone(), targets)
            })
            .collect();
        let reaches = |from: &str, to: &str| -> bool {
            let mut stack = vec![from.to_owned()];
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.extend(edges.get(&next).cloned().unwrap_or_default());
                }
            }
            false
        };
        let names: Vec<String> = self.types.keys().cloned().collect();
        for name in names {
            if let Some(NamedType::Struct(s)) = self.types.get(&name) {
                let boxed: Vec<bool> = s
                    .members
                    .iter()
                    .map(|m| direct(&m.ty).is_some_and(|t| reaches(&t, &name)))
                    .collect();
                if let Some(NamedType::Struct(s)) = self.types.get_mut(&name) {
                    for (member, boxed) in s.members.iter_mut().zip(boxed) {
                        member.boxed = boxed;
                    }
                }
            }
        }
    }
}

fn describe(ty: &Type) -> &'static str {
    match ty {
        Type::String(_) => "a string",
        Type::Integer(_) => "an integer",
        Type::Number(_) => "a number",
        Type::Decimal(_) => "a decimal",
        Type::Boolean => "a boolean",
        Type::Uuid => "a uuid",
        Type::Date => "a date",
        Type::DateTime => "a date-time",
        Type::Enum { .. } => "an enum",
        Type::Object { .. } | Type::Entity { .. } => "an object",
        Type::Union { .. } => "a union",
        Type::Array(_) => "an array",
        Type::Map { .. } => "a map",
        Type::Any => "free-form JSON",
    }
}

/// `<table>_<columns>_<suffix>`, shortened with a hash to PostgreSQL's 63-byte limit.
pub(crate) fn index_name(table: &str, columns: &[String], suffix: &str) -> String {
    let name = format!("{table}_{}_{suffix}", columns.join("_"));
    if name.len() <= 63 {
        return name;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}_{hash}_{suffix}", &name[..63 - 10 - suffix.len()])
}

/// The diagnostic of a member that takes the name or column of a field the server keeps.
struct Reserved {
    code: &'static str,
    message: &'static str,
    fix: &'static str,
}

const VERSION_RESERVED: Reserved = Reserved {
    code: "prefiq::lower::version_reserved",
    message: "`version` is the row version the server keeps for every entity",
    fix: "mark it `x-prefiq: {server: version}` (an integer), or rename this field",
};

const OWNER_RESERVED: Reserved = Reserved {
    code: "prefiq::lower::owner_reserved",
    message: "`owner_id` holds the owner of each row of an entity with `rows: owner`",
    fix: "mark it `x-prefiq: {server: owner}` (`type: [string, \"null\"], format: uuid`), or rename this field",
};

/// A field the server keeps and no schema declares, stored in `column`.
fn server_field(
    column: &str,
    ty: Type,
    nullable: bool,
    role: FieldRole,
    description: &str,
) -> Field {
    let storage = Storage::of(&ty);
    Field {
        member: Member {
            name: column.into(),
            rust: column.into(),
            ty,
            required: true,
            nullable,
            boxed: false,
            default: None,
            description: Some(description.into()),
            deprecated: false,
            examples: vec![],
        },
        column: column.into(),
        storage,
        check: None,
        role,
        filterable: false,
        sortable: false,
        references: None,
        stable_id: None,
        renamed_from: None,
        backfill: None,
        renamed_values: vec![],
        secret: false,
        scope: Scope::Tenant,
    }
}

/// The row version every writable entity keeps: 1 when created, one more at every update.
fn version_field() -> Field {
    let ty = Type::Integer(NumberType {
        bits: 64,
        ..NumberType::default()
    });
    server_field(
        "version",
        ty,
        false,
        FieldRole::Version,
        "The row version: 1 when created, one more at every update. Sent as the ETag.",
    )
}

/// The owner of each row of an entity with `rows: owner`.
fn owner_field() -> Field {
    let mut field = server_field(
        "owner_id",
        Type::Uuid,
        true,
        FieldRole::Owner,
        "The user who created it: only they (and callers granted every row) see it. Null for rows made by service clients.",
    );
    field.filterable = true;
    field
}

/// The indexes of a table, with the tenant first where rows belong to a tenant: a value is
/// unique within its tenant, and every query filters by tenant.
fn tenant_indexes(table: &str, tenancy: Tenancy, mut indexes: Vec<Index>) -> Vec<Index> {
    if tenancy == Tenancy::Tenant {
        for index in indexes.iter_mut().filter(|i| i.unique) {
            index.columns.insert(0, TENANT_COLUMN.to_owned());
        }
        indexes.insert(
            0,
            Index {
                name: index_name(table, &[TENANT_COLUMN.to_owned()], "idx"),
                columns: vec![TENANT_COLUMN.to_owned()],
                unique: false,
                json: false,
            },
        );
    }
    indexes
}

/// The actions each role grants on an entity: as declared (sorted, once each), or by default a
/// member's every action and a viewer's reads.
fn entity_grants(
    declared: Option<&BTreeMap<String, Vec<GrantAction>>>,
) -> BTreeMap<String, Vec<String>> {
    match declared {
        Some(grants) => grants
            .iter()
            .map(|(role, actions)| {
                let mut actions: Vec<GrantAction> = actions.clone();
                actions.sort();
                actions.dedup();
                (
                    role.clone(),
                    actions.iter().map(|a| a.as_str().to_owned()).collect(),
                )
            })
            .collect(),
        None => BTreeMap::from([
            (
                "member".to_owned(),
                ["read", "create", "update", "delete"]
                    .map(String::from)
                    .to_vec(),
            ),
            ("viewer".to_owned(), vec!["read".to_owned()]),
        ]),
    }
}
