//! The server crate's generated modules: router, handlers, repository SQL, the service trait,
//! and the embedded schemas, OpenAPI document and migrations.
//!
//! Every handler that writes opens one transaction and hands it to the hooks and the service;
//! it commits only when everything succeeded. Every repository write checks the row against the
//! entity's schema first, whoever built it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{CrateNames, Roots, ident, rust_type};
use crate::ir::{
    App, CrudAction, Entity, Field, FieldRole, KeyGeneration, Operation, OperationParamKind,
    ResponseBody, RowScope, Scope, Storage, TENANT_COLUMN, Tenancy, Type,
};
use crate::names;

/// The runtime's `ColumnKind` of a stored value.
fn column_kind(storage: &Storage) -> TokenStream {
    let kind = match storage {
        Storage::Boolean => quote!(Bool),
        Storage::Int32 => quote!(Int32),
        Storage::Int64 => quote!(Int),
        Storage::Float64 => quote!(Float),
        Storage::Text => quote!(Text),
        Storage::Uuid => quote!(Uuid),
        Storage::Date => quote!(Date),
        Storage::Timestamp => quote!(DateTime),
        Storage::Numeric { .. } => quote!(Decimal),
        Storage::Json => quote!(Json),
    };
    quote!(ColumnKind::#kind)
}

/// Reads column `index` of a row into the field's Rust type.
fn read_column(field: &Field, index: usize) -> TokenStream {
    let optional = field.is_nullable_column();
    let method = match (&field.member.ty, optional) {
        (Type::Enum { .. }, false) => quote!(req_enum),
        (Type::Enum { .. }, true) => quote!(opt_enum),
        (ty, false) if ty.is_json() => quote!(req_json),
        (ty, true) if ty.is_json() => quote!(opt_json),
        (_, false) => quote!(req),
        (_, true) => quote!(opt),
    };
    let value = quote!(row.#method(#index)?);
    if field.member.boxed {
        quote!(Box::new(#value))
    } else {
        value
    }
}

/// Binds a field of `source` (`input`) as a parameter.
fn bind_field(field: &Field, source: &TokenStream) -> TokenStream {
    let name = ident(&field.member.rust);
    let optional = field.is_nullable_column();
    match &field.member.ty {
        Type::Enum { .. } if optional => {
            quote!(::prefiq_runtime::SqlValue::text(#source.#name.as_ref()))
        }
        Type::Enum { .. } => {
            quote!(::prefiq_runtime::SqlValue::text(Some(&#source.#name)))
        }
        ty if ty.is_json() => quote!(::prefiq_runtime::SqlValue::json(&#source.#name)),
        _ => quote!(::prefiq_runtime::db::ToSql::to_sql(&#source.#name)),
    }
}

/// The Rust type of an entity's key.
fn key_type(entity: &Entity) -> TokenStream {
    match &entity.key().member.ty {
        Type::Uuid => quote!(::prefiq_runtime::deps::uuid::Uuid),
        Type::Integer(n) if n.bits == 32 => quote!(i32),
        Type::Integer(_) => quote!(i64),
        _ => quote!(String),
    }
}

/// `TABLE`: what the list query builder and the constraint errors know of the table.
fn table_meta(app: &App, entity: &Entity) -> TokenStream {
    let entity_name = &entity.name;
    let table_name = &entity.table;
    let columns = entity.fields.iter().map(|f| {
        let field = &f.member.name;
        let column = &f.column;
        let kind = column_kind(&f.storage);
        let mut tokens = quote!(ColumnMeta::new(#field, #column, #kind));
        if f.is_nullable_column() {
            tokens.extend(quote!(.nullable()));
        }
        if f.filterable {
            tokens.extend(quote!(.filterable()));
        }
        if f.sortable {
            tokens.extend(quote!(.sortable()));
        }
        if let Type::Array(a) = &f.member.ty {
            if a.items.is_scalar() {
                let kind = column_kind(&Storage::of(&a.items));
                tokens.extend(quote!(.items(#kind)));
            }
        }
        if let Type::Enum { name } = &f.member.ty {
            if let Some(e) = app.enum_type(name) {
                let values = e.values.iter().map(|v| &v.value);
                tokens.extend(quote!(.values(&[#(#values),*])));
            }
        }
        match f.role {
            FieldRole::PrimaryKey(KeyGeneration::Identity) => tokens.extend(quote!(.database())),
            FieldRole::PrimaryKey(_)
            | FieldRole::CreatedAt
            | FieldRole::Version
            | FieldRole::Owner => {
                tokens.extend(quote!(.on_insert()));
            }
            FieldRole::Data | FieldRole::UpdatedAt => {}
        }
        if f.secret {
            tokens.extend(quote!(.secret()));
        }
        if f.scope == Scope::Platform {
            tokens.extend(quote!(.platform()));
        }
        if let Storage::Numeric {
            scale: Some(scale), ..
        } = &f.storage
        {
            tokens.extend(quote!(.scale(#scale)));
        }
        tokens
    });
    // The tenant column comes last: no client reads or writes it.
    let tenant_column = (entity.tenancy == Tenancy::Tenant)
        .then(|| quote!(ColumnMeta::new("", #TENANT_COLUMN, ColumnKind::Uuid).on_insert()));
    let columns = columns.chain(tenant_column);
    let tenant = match entity.tenancy {
        Tenancy::Tenant => {
            let index = entity.fields.len();
            quote!(Some(#index))
        }
        Tenancy::Global => quote!(None),
    };
    let owner = match entity.owner {
        Some(index) => quote!(Some(#index)),
        None => quote!(None),
    };
    let tenant_member = match entity.tenant_member {
        Some(index) => quote!(Some(#index)),
        None => quote!(None),
    };
    let app_name = &app.name;
    // Every table that refers to this one with `on-delete: set-null` or `cascade`: the
    // repository does what the clause says, so that each row it touches is versioned and audited.
    let referrers: Vec<TokenStream> = app
        .entities
        .iter()
        .flat_map(|other| {
            other.fields.iter().filter_map(move |f| {
                let reference = f.references.as_ref()?;
                let on_delete = match reference.on_delete {
                    crate::ir::OnDelete::SetNull => quote!(::prefiq_runtime::meta::OnDelete::SetNull),
                    crate::ir::OnDelete::Cascade => quote!(::prefiq_runtime::meta::OnDelete::Cascade),
                    _ => return None,
                };
                (reference.entity == entity.name).then_some((other, f, on_delete))
            })
        })
        .map(|(other, f, on_delete)| {
            let table = &other.table;
            let column = &f.column;
            let version = &other.version().column;
            let updated = match other.fields.iter().find(|f| f.role == FieldRole::UpdatedAt) {
                Some(u) => {
                    let c = &u.column;
                    quote!(Some(#c))
                }
                None => quote!(None),
            };
            let tenant = other.tenancy == Tenancy::Tenant;
            let module = format_ident!("{}", other.snake);
            quote!(::prefiq_runtime::meta::ReferrerMeta {
                table: #table, column: #column, version: #version, updated_at: #updated, tenant: #tenant,
                on_delete: #on_delete, meta: &super::#module::TABLE, writable: super::#module::WRITABLE,
            })
        })
        .collect();
    let primary_key = entity.primary_key;
    let version = entity
        .fields
        .iter()
        .position(|f| f.role == FieldRole::Version)
        .unwrap_or(entity.primary_key);
    let uniques = entity.indexes.iter().filter(|i| i.unique).map(|i| {
        let name = &i.name;
        let columns = &i.columns;
        quote!((#name, &[#(#columns),*]))
    });
    let foreign_keys = entity.fields.iter().filter_map(|f| {
        let reference = f.references.as_ref()?;
        let target = app.entity(&reference.entity)?;
        let name = &reference.constraint;
        let column = &f.column;
        let target_entity = &target.name;
        let target_table = &target.table;
        let target_column = &target.key().column;
        let tenant = target.tenancy == Tenancy::Tenant;
        Some(quote!(::prefiq_runtime::meta::ForeignKeyMeta {
            constraint: #name,
            column: #column,
            entity: #target_entity,
            table: #target_table,
            target: #target_column,
            tenant: #tenant,
        }))
    });
    quote! {
        /// The table, for list queries and constraint errors.
        pub static TABLE: TableMeta = TableMeta {
            entity: #entity_name,
            table: #table_name,
            columns: &[#(#columns),*],
            primary_key: #primary_key,
            version: #version,
            uniques: &[#(#uniques),*],
            foreign_keys: &[#(#foreign_keys),*],
            app: #app_name,
            tenant: #tenant,
            tenant_member: #tenant_member,
            owner: #owner,
            referrers: &[#(#referrers),*],
        };
    }
}

/// `ACCESS`: the permissions of the entity's routes, from its operations in the IR.
fn access(app: &App, entity: &Entity) -> TokenStream {
    let permission = |action: CrudAction| match app.crud_operation(&entity.name, action) {
        Some(operation) => {
            let permission = &operation.access.permission;
            quote!(Some(#permission))
        }
        None => quote!(None),
    };
    let read = permission(CrudAction::Get);
    let create = permission(CrudAction::Create);
    let update = permission(CrudAction::Update);
    let delete = permission(CrudAction::Delete);
    let all_rows = match app
        .crud_operation(&entity.name, CrudAction::List)
        .map(|o| &o.access.rows)
    {
        Some(RowScope::Owner { all_rows }) => quote!(Some(#all_rows)),
        Some(RowScope::All) | None => quote!(None),
    };
    let writes = scope(entity.scope);
    quote! {
        /// The permissions of the routes.
        pub static ACCESS: crud::Access = crud::Access {
            read: #read,
            create: #create,
            update: #update,
            delete: #delete,
            all_rows: #all_rows,
            writes: #writes,
        };
    }
}

/// The runtime's name of `scope`.
fn scope(scope: Scope) -> TokenStream {
    match scope {
        Scope::Tenant => quote!(::prefiq_runtime::auth::Scope::Tenant),
        Scope::Platform => quote!(::prefiq_runtime::auth::Scope::Platform),
    }
}

/// `read`: a row into the model, through its constructor so that the model's field list is
/// named in one place.
fn reader(entity: &Entity, model: &syn::Ident) -> TokenStream {
    let mut required = Vec::new();
    let mut optional = Vec::new();
    for (index, field) in entity.fields.iter().enumerate() {
        let value = read_column(field, index);
        if field.is_model_optional() || field.is_model_nullable() {
            let name = ident(&field.member.rust);
            optional.push(quote!(model.#name = #value;));
        } else {
            required.push(value);
        }
    }
    let binding = if optional.is_empty() {
        quote!(let model)
    } else {
        quote!(let mut model)
    };
    quote! {
        fn read(row: &Row) -> Result<#model, DbError> {
            #binding = #model::new(#(#required),*);
            #(#optional)*
            Ok(model)
        }
    }
}

/// The name of an entity's [`Resource`](prefiq_runtime::crud::Resource) type: `DealResource`.
fn resource(entity: &Entity) -> syn::Ident {
    format_ident!("{}Resource", entity.name)
}

/// `stamp` when `used`, else `_stamp`: the name of a write's stamp parameter.
fn stamp_name(used: bool) -> syn::Ident {
    if used {
        format_ident!("stamp")
    } else {
        format_ident!("_stamp")
    }
}

/// Whether the entity has a field of one of `roles`.
fn has_role(entity: &Entity, roles: &[FieldRole]) -> bool {
    entity.fields.iter().any(|f| roles.contains(&f.role))
}

/// The parameters of an entity's insert statement, in column order (an identity key is the
/// database's), and the name of the stamp parameter they use.
fn insert_params(entity: &Entity) -> (Vec<TokenStream>, syn::Ident) {
    let input = quote!(input);
    let mut params = Vec::new();
    for field in &entity.fields {
        params.push(match field.role {
            FieldRole::PrimaryKey(KeyGeneration::Identity) => continue,
            FieldRole::PrimaryKey(KeyGeneration::Uuid) => quote!(::prefiq_runtime::SqlValue::Uuid(
                ::prefiq_runtime::deps::uuid::Uuid::now_v7()
            )),
            FieldRole::CreatedAt | FieldRole::UpdatedAt => {
                quote!(::prefiq_runtime::SqlValue::DateTime(stamp.now))
            }
            FieldRole::Version => quote!(::prefiq_runtime::SqlValue::Int(1)),
            FieldRole::Owner => quote!(::prefiq_runtime::db::ToSql::to_sql(&stamp.user)),
            FieldRole::PrimaryKey(KeyGeneration::Client) | FieldRole::Data => {
                bind_field(field, &input)
            }
        });
    }
    if entity.tenancy == Tenancy::Tenant {
        params.push(quote!(::prefiq_runtime::SqlValue::Uuid(stamp.tenant)));
    }
    let stamp = stamp_name(
        entity.tenancy == Tenancy::Tenant
            || has_role(
                entity,
                &[FieldRole::CreatedAt, FieldRole::UpdatedAt, FieldRole::Owner],
            ),
    );
    (params, stamp)
}

/// The parameters of an entity's update statement before the key and the version: its data
/// fields and `updated_at`, in column order; and the name of the stamp parameter.
fn update_params(entity: &Entity) -> (Vec<TokenStream>, syn::Ident) {
    let input = quote!(input);
    let params = entity
        .fields
        .iter()
        .filter(|f| f.role == FieldRole::Data || f.role == FieldRole::UpdatedAt)
        .map(|f| {
            if f.role == FieldRole::UpdatedAt {
                quote!(::prefiq_runtime::SqlValue::DateTime(stamp.now))
            } else {
                bind_field(f, &input)
            }
        })
        .collect();
    (
        params,
        stamp_name(has_role(entity, &[FieldRole::UpdatedAt])),
    )
}

/// The methods of `crud::Hooks` for an entity, each forwarding to the service's hook of the
/// same verb for that entity (`before_create` → `before_create_deal`).
fn hook_forwarders(entity: &Entity, model: &syn::Ident, create: &syn::Ident) -> [TokenStream; 6] {
    [
        ("before_create", quote!(input: &mut #create), quote!(input)),
        ("after_create", quote!(row: &#model), quote!(row)),
        ("before_update", quote!(current: &#model, next: &mut #create), quote!(current, next)),
        ("after_update", quote!(row: &#model), quote!(row)),
        ("before_delete", quote!(current: &#model), quote!(current)),
        ("after_delete", quote!(row: &#model), quote!(row)),
    ]
    .map(|(verb, params, args)| {
        let method = format_ident!("{verb}");
        let hook = format_ident!("{verb}_{}", entity.snake);
        quote! {
            fn #method(&self, ctx: &RequestContext, tx: &mut Tx, #params) -> impl ::std::future::Future<Output = Result<(), Problem>> + Send {
                self.0.#hook(ctx, tx, #args)
            }
        }
    })
}

/// What every entity's module has, read-only or not: its table, its permissions, its
/// `Resource` and the functions that read it.
fn reading_items(app: &App, entity: &Entity) -> TokenStream {
    let model = format_ident!("{}", entity.name);
    let resource = resource(entity);
    let key_ty = key_type(entity);
    let key_field = ident(&entity.key().member.rust);
    let version_field = ident(&entity.version().member.rust);
    let table = table_meta(app, entity);
    let read = reader(entity, &model);
    let access = access(app, entity);
    let collection = &entity.collection_path;
    let resource_doc = format!(
        " The {} entity, for the routes and repository of [`crud`].",
        entity.name
    );
    // A read-only entity keeps no version: its rows never change through Prefiq, so each one's
    // ETag is `"1"`.
    let version = if entity.fields.iter().any(|f| f.role == FieldRole::Version) {
        quote!(model.#version_field)
    } else {
        quote!({
            let _ = model;
            1
        })
    };
    quote! {
        #table

        #access

        #[doc = #resource_doc]
        #[derive(Debug)]
        pub struct #resource;

        impl Resource for #resource {
            type Model = #model;
            type Key = #key_ty;
            const TABLE: &'static TableMeta = &TABLE;
            const ACCESS: &'static crud::Access = &ACCESS;
            const COLLECTION: &'static str = #collection;

            #read

            fn key(model: &#model) -> String {
                model.#key_field.to_string()
            }

            fn version(model: &#model) -> i64 {
                #version
            }

            fn statements() -> &'static crud::Statements {
                static STATEMENTS: ::std::sync::OnceLock<crud::Statements> = ::std::sync::OnceLock::new();
                STATEMENTS.get_or_init(|| crud::Statements::of(&TABLE))
            }
        }

        /// Reads a row in `TABLE.columns` order.
        pub fn read(row: &Row) -> Result<#model, DbError> {
            #resource::read(row)
        }

        /// Finds a row of the caller's tenant by key.
        pub async fn find(db: &mut impl Executor, key: &#key_ty) -> Result<Option<#model>, DbError> {
            crud::find::<#resource>(db, key).await
        }
    }
}

fn entity_module(
    app: &App,
    entity: &Entity,
    crates: &CrateNames,
    service: &syn::Ident,
) -> TokenStream {
    let types = crates.types_ident();
    let model = format_ident!("{}", entity.name);
    let create = format_ident!("{}", entity.types.create);
    let resource = resource(entity);
    let snake = format_ident!("{}", entity.snake);
    let key_ty = key_type(entity);

    let (insert_params, insert_stamp) = insert_params(entity);
    let (update_params, update_stamp) = update_params(entity);
    let writable: Vec<&str> = entity.writable().map(|f| f.member.name.as_str()).collect();
    let read_only: Vec<&str> = entity
        .fields
        .iter()
        .filter(|f| !f.is_writable())
        .map(|f| f.member.name.as_str())
        .collect();
    let hooks = hook_forwarders(entity, &model, &create);
    let reading = reading_items(app, entity);
    let module_doc = format!(
        " The {} routes and repository, from {}.",
        entity.name, entity.source
    );

    if entity.read_only {
        return quote! {
            #![doc = #module_doc]

            use ::prefiq_runtime::crud::{self, Resource};
            use ::prefiq_runtime::db::{DbError, Executor, Row};
            use ::prefiq_runtime::meta::{ColumnKind, ColumnMeta, TableMeta};

            use ::#types::#model;

            /// Its data members, which the audit entries of rows a cascade removes show.
            pub const WRITABLE: &[&str] = &[#(#writable),*];

            #reading
        };
    }

    quote! {
        #![doc = #module_doc]

        use ::prefiq_runtime::crud::{self, Resource, Writable};
        use ::prefiq_runtime::db::{DbError, Executor, Row};
        use ::prefiq_runtime::meta::{ColumnKind, ColumnMeta, TableMeta};
        use ::prefiq_runtime::{Problem, RequestContext, SqlValue, Tx};

        use super::{Handlers, #service};
        use ::#types::{#model, #create};

        /// Members a client may send (the rest are set by the server).
        pub const WRITABLE: &[&str] = &[#(#writable),*];
        /// Members only the server sets.
        pub const READ_ONLY: &[&str] = &[#(#read_only),*];

        #reading

        impl Writable for #resource {
            type Create = #create;
            const WRITABLE: &'static [&'static str] = WRITABLE;

            fn insert_params(input: &#create, #insert_stamp: &crud::Stamp) -> Vec<SqlValue> {
                Vec::from([#(#insert_params),*])
            }

            fn update_params(input: &#create, #update_stamp: &crud::Stamp) -> Vec<SqlValue> {
                Vec::from([#(#update_params),*])
            }

            fn validators() -> Result<&'static crud::EntityValidators, &'static ::prefiq_runtime::validate::SchemaError> {
                super::validators().map(|v| &v.#snake)
            }
        }

        impl<S: #service> crud::Hooks<#resource> for Handlers<S> {
            #(#hooks)*
        }

        /// Inserts a row for the transaction's caller (in its tenant), after checking it against
        /// the schema, and appends the audit entry.
        pub async fn insert(db: &mut impl Executor, input: &#create) -> Result<#model, DbError> {
            crud::insert::<#resource>(db, input).await
        }

        /// Finds a row of the caller's tenant by key and keeps anyone else from changing it until
        /// the transaction ends.
        pub async fn find_for_update(db: &mut impl Executor, key: &#key_ty) -> Result<Option<#model>, DbError> {
            crud::find_for_update::<#resource>(db, key).await
        }

        /// Writes `input` over `current` (as read with [`find_for_update`]) if it is still at
        /// its version, after checking it against the schema, and appends the audit entry;
        /// `None` if the row moved on or is gone.
        pub async fn update(db: &mut impl Executor, current: &#model, input: &#create) -> Result<Option<#model>, DbError> {
            crud::update::<#resource>(db, current, input).await
        }

        /// Deletes `current` if it is still at its version, and appends the audit entry; whether
        /// it did.
        pub async fn delete(db: &mut impl Executor, current: &#model) -> Result<bool, DbError> {
            crud::delete::<#resource>(db, current).await
        }
    }
}

fn server_roots(crates: &CrateNames) -> Roots {
    let types = crates.types_ident();
    Roots {
        named: quote!(::#types),
        deps: quote!(::prefiq_runtime::deps),
    }
}

fn param_shape(ty: &Type) -> TokenStream {
    let item = |ty: &Type| match ty {
        Type::Integer(_) => quote!(Integer),
        Type::Number(_) => quote!(Number),
        Type::Boolean => quote!(Boolean),
        // Decimals sent as numbers are read as numbers; everything else is text.
        Type::Decimal(d) if d.as_number => quote!(Number),
        _ => quote!(String),
    };
    match ty {
        Type::Array(a) => {
            let inner = item(&a.items);
            quote!(::prefiq_runtime::params::ParamShape::Array(::prefiq_runtime::params::ParamItem::#inner))
        }
        other => {
            let inner = item(other);
            quote!(::prefiq_runtime::params::ParamShape::#inner)
        }
    }
}

/// The validators of a custom operation: `(parameters, body)`.
fn operation_validators(operation: &Operation) -> (syn::Ident, syn::Ident) {
    (
        format_ident!("{}_params", operation.rust),
        format_ident!("{}_body", operation.rust),
    )
}

/// The response enum, parameter specs and handler of each custom operation.
fn operations_module(app: &App, crates: &CrateNames, service: &syn::Ident) -> TokenStream {
    let roots = server_roots(crates);
    let types = crates.types_ident();
    let items = app
        .custom()
        .map(|operation| operation_items(app, operation, &roots, &types, service));
    quote! {
        //! Custom operations from the app's OpenAPI fragments: a typed response per operation,
        //! and handlers that validate every input, then run the service in one transaction.
        use ::prefiq_runtime::deps::axum;

        use super::#service;

        #(#items)*
    }
}

/// The typed response of a custom operation: an enum with a variant per declared status, whether
/// it is a success, and how it becomes an HTTP response (an entity body carries its `ETag`).
fn response_enum(app: &App, operation: &Operation, roots: &Roots) -> TokenStream {
    let response = format_ident!("{}Response", operation.type_prefix);
    let mut variants = Vec::new();
    let mut arms = Vec::new();
    let mut successes = Vec::new();
    for r in operation.declared() {
        let variant = format_ident!("{}", r.name);
        let status = r.status;
        let doc = format!(" {status}: {}", r.description);
        let pattern = match &r.body {
            ResponseBody::Empty => {
                variants.push(quote!(#[doc = #doc] #variant));
                arms.push(quote!(Self::#variant => axum::http::StatusCode::from_u16(#status).unwrap_or(axum::http::StatusCode::OK).into_response()));
                quote!(Self::#variant)
            }
            ResponseBody::Json { ty } => {
                let entity = match ty {
                    Type::Entity { name } => app.entity(name),
                    _ => None,
                };
                let ty = rust_type(ty, roots);
                variants.push(quote!(#[doc = #doc] #variant(#ty)));
                // One entity in the body: its version is the ETag, as on the CRUD routes.
                let arm = match entity {
                    Some(entity) => {
                        let version = ident(&entity.version().member.rust);
                        quote!(Self::#variant(body) => (
                            axum::http::StatusCode::from_u16(#status).unwrap_or(axum::http::StatusCode::OK),
                            [(axum::http::header::ETAG, ::std::format!("\"{}\"", body.#version))],
                            axum::Json(body),
                        ).into_response())
                    }
                    None => {
                        quote!(Self::#variant(body) => (axum::http::StatusCode::from_u16(#status).unwrap_or(axum::http::StatusCode::OK), axum::Json(body)).into_response())
                    }
                };
                arms.push(arm);
                quote!(Self::#variant(_))
            }
            ResponseBody::Problem => {
                variants.push(quote!(#[doc = #doc] #variant(::prefiq_runtime::Problem)));
                arms.push(
                    quote!(Self::#variant(problem) => problem.with_status(#status).into_response()),
                );
                quote!(Self::#variant(_))
            }
        };
        if r.is_success() {
            successes.push(pattern);
        }
    }
    let response_doc = format!(" Every response `{}` declares.", operation.id);
    let success_check = if successes.is_empty() {
        quote!(false)
    } else {
        quote!(::std::matches!(self, #(#successes)|*))
    };
    quote! {
        #[doc = #response_doc]
        #[derive(Debug)]
        pub enum #response {
            #(#variants,)*
        }

        impl #response {
            /// Whether the status is 2xx: the operation's transaction commits only then.
            pub fn is_success(&self) -> bool {
                #success_check
            }
        }

        impl axum::response::IntoResponse for #response {
            fn into_response(self) -> axum::response::Response {
                match self {
                    #(#arms,)*
                }
            }
        }
    }
}

/// A custom operation's response type, its parameters' specification and its handler.
fn operation_items(
    app: &App,
    operation: &Operation,
    roots: &Roots,
    types: &syn::Ident,
    service: &syn::Ident,
) -> TokenStream {
    let response = format_ident!("{}Response", operation.type_prefix);
    let method = format_ident!("{}", operation.rust);
    let handler = format_ident!("{}_handler", operation.rust);
    let response_enum = response_enum(app, operation, roots);
    let specs = operation.params.iter().map(|p| {
        let name = &p.name;
        let location = match p.kind {
            OperationParamKind::Path => quote!(Path),
            OperationParamKind::Query => quote!(Query),
            OperationParamKind::Header => quote!(Header),
        };
        let shape = param_shape(&p.ty);
        quote!(::prefiq_runtime::params::ParamSpec { name: #name, location: ::prefiq_runtime::params::ParamIn::#location, shape: #shape })
    });
    let specs_name = format_ident!("{}_PARAMS", operation.rust.to_ascii_uppercase());
    let (params_validator, body_validator) = operation_validators(operation);
    // The inputs it uses, out of what the route read (see `prefiq_runtime::operation`).
    let mut inputs = vec![quote!(ctx)];
    let mut steps = Vec::new();
    let mut args = Vec::new();
    let specs_item = if let Some(params_type) = &operation.params_type {
        let params_type = format_ident!("{}", params_type);
        inputs.extend([quote!(path), quote!(query)]);
        steps.push(quote! {
            let params = ::prefiq_runtime::params::collect(#specs_name, &path, &query, &ctx.headers);
            validators.#params_validator.check(&params).map_err(::prefiq_runtime::params::invalid)?;
            let params: ::#types::#params_type = ::prefiq_runtime::validate::decode(params).map_err(::prefiq_runtime::params::invalid)?;
        });
        args.push(quote!(params));
        quote!(pub static #specs_name: &[::prefiq_runtime::params::ParamSpec] = &[#(#specs),*];)
    } else {
        quote!()
    };
    if let Some(body) = &operation.body {
        let body_type = rust_type(&body.ty, roots);
        inputs.push(quote!(body));
        steps.push(quote! {
            validators.#body_validator.check(&body)?;
            let body: #body_type = ::prefiq_runtime::validate::decode(body)?;
        });
        args.push(quote!(body));
    }
    let begin = if operation.writes() {
        quote!(begin)
    } else {
        quote!(begin_read)
    };
    let handler_doc = format!(
        " `{} {}`: checks the permission `{}`, validates the inputs, then calls \
         [`{service}::{}`] in a transaction that commits only if it returns a success.",
        operation.method, operation.path, operation.access.permission, operation.rust
    );
    let permission = &operation.access.permission;
    let access_scope = scope(operation.access.scope);
    quote! {
        #response_enum

        #specs_item

        #[doc = #handler_doc]
        pub async fn #handler<S: #service>(
            state: ::prefiq_runtime::crud::AppState<super::Handlers<S>>,
            ::prefiq_runtime::operation::Input { #(#inputs,)* .. }: ::prefiq_runtime::operation::Input,
        ) -> Result<#response, ::prefiq_runtime::Problem> {
            ctx.require_in(#access_scope, #permission)?;
            let validators = super::validators().map_err(|e| ::prefiq_runtime::Problem::internal(e))?;
            #(#steps)*
            let mut tx = state.db.#begin(&ctx.principal).await?;
            let response = state.service.0.#method(&ctx, &mut tx, #(#args),*).await?;
            if response.is_success() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(response)
        }
    }
}

fn operation_methods(app: &App, crates: &CrateNames) -> Vec<TokenStream> {
    let roots = server_roots(crates);
    let types = crates.types_ident();
    app.custom()
        .map(|operation| {
            let method = format_ident!("{}", operation.rust);
            let response = format_ident!("{}Response", operation.type_prefix);
            let mut args = Vec::new();
            if let Some(params_type) = &operation.params_type {
                let params_type = format_ident!("{}", params_type);
                args.push(quote!(params: ::#types::#params_type));
            }
            if let Some(body) = &operation.body {
                let body_type = rust_type(&body.ty, &roots);
                args.push(quote!(body: #body_type));
            }
            let mut docs = vec![format!(" {}", operation.summary.clone().unwrap_or_else(|| operation.id.clone()))];
            docs.push(String::new());
            docs.push(format!(" `{} {}` (operation `{}`).", operation.method, operation.path, operation.id));
            if let Some(description) = &operation.description {
                docs.push(String::new());
                docs.extend(description.lines().map(|l| format!(" {l}")));
            }
            if !operation.tags.is_empty() {
                docs.push(format!(" Tags: {}.", operation.tags.join(", ")));
            }
            if let Some(security) = &operation.security {
                docs.push(format!(" Security: `{security}`."));
            }
            docs.push(String::new());
            docs.push(" It runs in `tx`, which commits only if it returns a success: any other response, an".to_owned());
            docs.push(" error or a panic undoes every write it made. Return a declared response; return".to_owned());
            docs.push(" `Err(problem)` only for failures outside the contract (an unreachable database, a bug).".to_owned());
            quote! {
                #(#[doc = #docs])*
                fn #method(&self, ctx: &RequestContext, tx: &mut Tx, #(#args),*) -> impl ::std::future::Future<Output = Result<super::operations::#response, Problem>> + Send;
            }
        })
        .collect()
}

fn service_trait(app: &App, crates: &CrateNames, service: &syn::Ident) -> TokenStream {
    let types = crates.types_ident();
    let mut methods = Vec::new();
    let mut imports = Vec::new();
    // A read-only entity has no writes to hook.
    for entity in app.entities.iter().filter(|e| !e.read_only) {
        let model = format_ident!("{}", entity.name);
        let create = format_ident!("{}", entity.types.create);
        imports.push(quote!(#model));
        imports.push(quote!(#create));
        let snake = &entity.snake;
        let a_name = crate::names::a(&entity.name);
        let hook = |verb: &str, args: TokenStream, uses: TokenStream, text: String| {
            let method = format_ident!("{verb}_{snake}");
            quote! {
                #[doc = #text]
                fn #method(&self, ctx: &RequestContext, tx: &mut Tx, #args) -> impl ::std::future::Future<Output = Result<(), Problem>> + Send {
                    let _ = (ctx, tx, #uses);
                    async { Ok(()) }
                }
            }
        };
        methods.push(hook(
            "before_create",
            quote!(input: &mut #create),
            quote!(input),
            format!(" Runs before {a_name} is inserted, in the insert's transaction: change `input`, or refuse with a problem."),
        ));
        methods.push(hook(
            "after_create",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after {a_name} was inserted, in the same transaction: a problem undoes the insert."),
        ));
        methods.push(hook("before_update", quote!(current: &#model, next: &mut #create), quote!(current, next), format!(" Runs before {a_name} is updated, in the update's transaction: `next` is the merged state; change it, or refuse with a problem.")));
        methods.push(hook(
            "after_update",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after {a_name} was updated, in the same transaction: a problem undoes the update."),
        ));
        methods.push(hook(
            "before_delete",
            quote!(current: &#model),
            quote!(current),
            format!(" Runs before {a_name} is deleted, in the delete's transaction; refuse with a problem to keep it."),
        ));
        methods.push(hook(
            "after_delete",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after {a_name} was deleted, in the same transaction: a problem undoes the delete."),
        ));
    }
    let operation_methods = operation_methods(app, crates);
    let doc = if app.custom().next().is_none() {
        format!(
            " The {} app's service. Implement it in `services/`; every hook has a default.",
            app.name
        )
    } else {
        format!(
            " The {} app's service. Implement it in `services/`: the custom operations are required, the hooks have defaults.",
            app.name
        )
    };
    let imports = if imports.is_empty() {
        quote!()
    } else {
        quote!(use ::#types::{#(#imports),*};)
    };
    quote! {
        //! The service trait that generated handlers call and the team implements.
        use ::prefiq_runtime::{Problem, RequestContext, Tx};
        #imports

        #[doc = #doc]
        pub trait #service: Send + Sync + 'static {
            #(#methods)*
            #(#operation_methods)*

            /// The handlers and schedules of the app's jobs, which the workers of its server
            /// (and of Cortex) run: none unless you say, as in
            /// `Registry::new().on(send_invoice).cron("nightly", "0 3 * * *", Cleanup {})?`.
            fn jobs() -> ::prefiq_runtime::jobs::Registry
            where
                Self: Sized,
            {
                ::prefiq_runtime::jobs::Registry::new()
            }
        }
    }
}

/// The routes of the app: each entity's five through `crud::routes`, then the custom
/// operations, one `.route(path, ...)` per path.
fn routes(app: &App) -> Vec<TokenStream> {
    let mut routes: Vec<TokenStream> = app
        .entities
        .iter()
        .map(|entity| {
            let module = format_ident!("{}", entity.snake);
            let resource = resource(entity);
            if entity.read_only {
                quote!(let router = crud::read_routes::<#module::#resource, Handlers<S>>(router, &state);)
            } else {
                quote!(let router = crud::routes::<#module::#resource, Handlers<S>>(router, &state);)
            }
        })
        .collect();
    let mut by_path: Vec<(&str, Vec<TokenStream>)> = Vec::new();
    for operation in app.custom() {
        let handler = format_ident!("{}_handler", operation.rust);
        let method = format_ident!("{}", operation.method.as_str());
        let takes = match (operation.params_type.is_some(), operation.body.is_some()) {
            (false, false) => quote!(Nothing),
            (true, false) => quote!(Params),
            (false, true) => quote!(Body),
            (true, true) => quote!(ParamsAndBody),
        };
        let route = quote!(::prefiq_runtime::operation::route(
            axum::routing::MethodFilter::#method,
            ::prefiq_runtime::operation::Takes::#takes,
            ::prefiq_runtime::operation::handle(state.clone(), operations::#handler::<S>),
        ));
        match by_path.iter_mut().find(|(path, _)| *path == operation.path) {
            Some((_, methods)) => methods.push(route),
            None => by_path.push((&operation.path, vec![route])),
        }
    }
    routes.extend(by_path.into_iter().map(|(path, methods)| {
        let mut chain = methods.into_iter();
        let first = chain.next().unwrap_or_default();
        let rest = chain.map(|m| quote!(.merge(#m)));
        quote!(let router = router.route(#path, #first #(#rest)*);)
    }));
    routes
}

/// `CATALOG`: what a host (Cortex) needs to know of the app, from the IR: its entities, and
/// every permission its operations check with the roles granted it by default.
fn catalog(app: &App, service: &syn::Ident) -> TokenStream {
    let app_name = &app.name;
    let mut seen = std::collections::BTreeSet::new();
    let mut permissions = Vec::new();
    let mut add =
        |name: &str, entity: Option<&str>, action: &str, roles: &[String], level: Scope| {
            if seen.insert(name.to_owned()) {
                let entity = match entity {
                    Some(e) => quote!(Some(#e)),
                    None => quote!(None),
                };
                let level = scope(level);
                permissions.push(quote!(::prefiq_runtime::catalog::Permission {
                name: #name, entity: #entity, action: #action, roles: &[#(#roles),*], scope: #level
            }));
            }
        };
    for operation in &app.operations {
        let (entity, action) = match &operation.kind {
            crate::ir::OperationKind::Crud { entity, action } => {
                (Some(entity.as_str()), action.verb())
            }
            crate::ir::OperationKind::Custom => (None, operation.id.as_str()),
        };
        add(
            &operation.access.permission,
            entity,
            action,
            &operation.access.default_roles,
            operation.access.scope,
        );
        if let RowScope::Owner { all_rows } = &operation.access.rows {
            let entity = entity.and_then(|e| app.entity(e));
            let roles: Vec<String> = entity
                .map(|e| {
                    e.grants
                        .iter()
                        .filter(|(_, actions)| actions.iter().any(|a| a == "all-rows"))
                        .map(|(role, _)| role.clone())
                        .collect()
                })
                .unwrap_or_default();
            add(
                all_rows,
                entity.map(|e| e.name.as_str()),
                "all-rows",
                &roles,
                Scope::Tenant,
            );
        }
    }
    let entities = app.entities.iter().map(|e| {
        let module = format_ident!("{}", e.snake);
        let (name, plural, collection) = (&e.name, &e.plural, &e.collection_path);
        let description = match e.description.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => quote!(Some(#text)),
            _ => quote!(None),
        };
        let (model, create, patch) = (&e.name, &e.types.create, &e.types.patch);
        let read_only = e.read_only;
        let label = crate::names::capital(&e.snake.replace('_', " "));
        quote!(::prefiq_runtime::catalog::EntityInfo {
            name: #name, label: #label, plural: #plural, collection: #collection, description: #description,
            schemas: [#model, #create, #patch], table: &#module::TABLE, read_only: #read_only,
        })
    });
    quote! {
        /// What a host needs to know of the app: its entities and permissions.
        pub static CATALOG: ::prefiq_runtime::catalog::AppCatalog = ::prefiq_runtime::catalog::AppCatalog {
            name: #app_name,
            version: env!("CARGO_PKG_VERSION"),
            migrations: MIGRATIONS,
            openapi: OPENAPI,
            entities: &[#(#entities),*],
            permissions: &[#(#permissions),*],
            jobs: <crate::services::Service as #service>::jobs,
        };
    }
}

fn root_module(app: &App, service: &syn::Ident) -> TokenStream {
    let modules: Vec<_> = app
        .entities
        .iter()
        .map(|e| format_ident!("{}", e.snake))
        .collect();
    let app_name = &app.name;
    let mut validator_fields = Vec::new();
    let mut validator_inits = Vec::new();
    for entity in app.entities.iter().filter(|e| !e.read_only) {
        let module = format_ident!("{}", entity.snake);
        let types = &entity.types;
        let (create, patch, replace) = (&types.create, &types.patch, &types.replace);
        let doc = format!(
            " Checks `{}` bodies, merged patches and every row written.",
            entity.name
        );
        validator_fields.push(quote!(#[doc = #doc] pub #module: crud::EntityValidators));
        validator_inits.push(quote!(#module: crud::EntityValidators::new(&document, [#create, #patch, #replace], #module::READ_ONLY)?));
    }
    for operation in app.custom() {
        let (params_field, body_field) = operation_validators(operation);
        if let Some(definition) = &operation.params_type {
            validator_fields.push(quote!(#[doc = " Checks the parameters of a custom operation."] pub #params_field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#params_field: ::prefiq_runtime::validate::Validator::new(&document, #definition, &[])?));
        }
        if operation.body.is_some() {
            let definition = crate::schemas::body_definition(operation);
            validator_fields.push(quote!(#[doc = " Checks the body of a custom operation."] pub #body_field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#body_field: ::prefiq_runtime::validate::Validator::new(&document, #definition, &[])?));
        }
    }
    let routes = routes(app);
    let openapi_route = format!("{}/openapi.json", app.base_path);
    let asyncapi_route = format!("{}/asyncapi.json", app.base_path);
    let operation_count = app.operations.len();
    let listed: Vec<(i64, String)> = if app.migrations.is_empty() {
        vec![(1, "initial".to_owned())]
    } else {
        app.migrations.clone()
    };
    let migrations = listed.iter().map(|(version, name)| {
        let file = format!("{version:04}_{name}.sql");
        let postgres = format!("../../migrations/postgres/{file}");
        let sqlite = format!("../../migrations/sqlite/{file}");
        quote! {
            ::prefiq_runtime::migrate::Migration::embedded(#version, #name, include_str!(#postgres), include_str!(#sqlite))
        }
    });
    let catalog = catalog(app, service);
    let operations_module = if app.custom().next().is_none() {
        quote!()
    } else {
        quote!(
            pub mod operations;
        )
    };
    quote! {
        //! The generated part of the app: routes, handlers, repositories, the service trait, and the
        //! embedded schemas, OpenAPI document and migrations. Regenerate with `prefiq codegen`.

        #(pub mod #modules;)*
        #operations_module
        mod service;

        pub use service::#service;

        use ::prefiq_runtime::crud;
        use ::prefiq_runtime::deps::axum;

        /// The app's name and migrations, for `prefiq_runtime::serve::main`.
        pub static APP: ::prefiq_runtime::serve::AppSpec = ::prefiq_runtime::serve::AppSpec {
            name: #app_name,
            migrations: MIGRATIONS,
            jobs: <crate::services::Service as #service>::jobs,
        };

        /// The SQL migrations, in order.
        pub const MIGRATIONS: &[::prefiq_runtime::migrate::Migration] = &[#(#migrations),*];

        #catalog

        /// The OpenAPI 3.1 document.
        pub const OPENAPI: &str = include_str!("../../../core/openapi.json");

        /// The AsyncAPI 3.0 document of the events the app publishes.
        pub const ASYNCAPI: &str = include_str!("../../../core/asyncapi.json");

        /// The JSON Schemas request bodies and written rows are checked against.
        pub const SCHEMAS: &str = include_str!("schemas.json");

        /// How many operations the router serves (five per entity, plus the custom ones).
        pub const OPERATIONS: usize = #operation_count;

        /// Compiled validators: of request bodies and parameters, and of every row written.
        #[derive(Debug)]
        pub struct Validators {
            #(#validator_fields,)*
        }

        impl Validators {
            /// Compiles every validator from [`SCHEMAS`].
            pub fn new() -> Result<Self, ::prefiq_runtime::validate::SchemaError> {
                let document = ::prefiq_runtime::validate::document(SCHEMAS)?;
                Ok(Self { #(#validator_inits,)* })
            }
        }

        static VALIDATORS: ::std::sync::LazyLock<Result<Validators, ::prefiq_runtime::validate::SchemaError>> =
            ::std::sync::LazyLock::new(Validators::new);

        /// The validators, compiled on first use; [`router`] compiles them at start-up.
        pub fn validators() -> Result<&'static Validators, &'static ::prefiq_runtime::validate::SchemaError> {
            VALIDATORS.as_ref()
        }

        /// The app's service as the generated handlers call it: each entity's hooks are wired to
        /// its methods.
        #[derive(Debug)]
        pub struct Handlers<S>(pub S);

        async fn openapi() -> impl axum::response::IntoResponse {
            ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
        }

        async fn asyncapi() -> impl axum::response::IntoResponse {
            ([(axum::http::header::CONTENT_TYPE, "application/json")], ASYNCAPI)
        }

        /// The app's routes under its base path, plus `/openapi.json` and `/asyncapi.json`: the
        /// app served alone.
        pub fn router<S: #service>(service: S, db: ::prefiq_runtime::Db) -> Result<axum::Router, ::prefiq_runtime::validate::SchemaError> {
            Ok(routes(service, db)?
                .route("/openapi.json", axum::routing::get(openapi))
                .route("/asyncapi.json", axum::routing::get(asyncapi)))
        }

        /// The app's routes, all under its base path (with its documents at
        /// `<base>/openapi.json` and `<base>/asyncapi.json`): what a host that serves many apps
        /// mounts.
        pub fn routes<S: #service>(service: S, db: ::prefiq_runtime::Db) -> Result<axum::Router, ::prefiq_runtime::validate::SchemaError> {
            validators().map_err(::std::clone::Clone::clone)?;
            let state = crud::AppState { service: ::std::sync::Arc::new(Handlers(service)), db };
            let router = axum::Router::new();
            #(#routes)*
            Ok(router
                .route(#openapi_route, axum::routing::get(openapi))
                .route(#asyncapi_route, axum::routing::get(asyncapi))
                .with_state(state))
        }
    }
}

/// One file of the server crate.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part {
    /// `mod.rs`: router, validators, embedded documents and migrations.
    Mod,
    /// `service.rs`: the service trait.
    Service,
    /// An entity's file, by index.
    Entity(usize),
    /// `operations.rs`: the custom operations.
    Operations,
}

/// The files of `app`'s server crate.
pub(super) fn parts(app: &App) -> Vec<Part> {
    let mut parts = vec![Part::Mod, Part::Service];
    parts.extend((0..app.entities.len()).map(Part::Entity));
    if app.custom().next().is_some() {
        parts.push(Part::Operations);
    }
    parts
}

/// A file: `(path under the crate, tokens)`.
pub(super) fn render(app: &App, crates: &CrateNames, part: Part) -> (String, TokenStream) {
    let service = format_ident!("{}Service", names::pascal(&app.name));
    match part {
        Part::Mod => (
            "src/generated/mod.rs".to_owned(),
            root_module(app, &service),
        ),
        Part::Service => (
            "src/generated/service.rs".to_owned(),
            service_trait(app, crates, &service),
        ),
        Part::Entity(index) => {
            let entity = &app.entities[index];
            (
                format!("src/generated/{}.rs", entity.snake),
                entity_module(app, entity, crates, &service),
            )
        }
        Part::Operations => (
            "src/generated/operations.rs".to_owned(),
            operations_module(app, crates, &service),
        ),
    }
}
