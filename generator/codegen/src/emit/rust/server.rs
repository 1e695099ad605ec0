//! The server crate's generated modules: router, handlers, repository SQL, the service trait,
//! and the embedded schemas, OpenAPI document and migrations.
//!
//! Every handler that writes opens one transaction and hands it to the hooks and the service;
//! it commits only when everything succeeded. Every repository write checks the row against the
//! entity's schema first, whoever built it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{CrateNames, Roots, ident, rust_type};
use crate::diag::Diagnostic;
use crate::ir::{
    App, CrudAction, Entity, Field, FieldRole, KeyGeneration, Operation, OperationParamKind,
    ResponseBody, Storage, Type,
};
use crate::names;
use crate::sql::{Dialect, quote as quote_sql};

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

/// Each statement as `[postgres, sqlite]`.
struct Statements {
    insert: [String; 2],
    select: [String; 2],
    select_for_update: [String; 2],
    update: [String; 2],
    delete: [String; 2],
}

fn statements(entity: &Entity) -> Statements {
    let table = quote_sql(&entity.table);
    let columns: Vec<String> = entity.fields.iter().map(|f| quote_sql(&f.column)).collect();
    let returning = columns.join(", ");
    let key = quote_sql(&entity.key().column);
    let version = quote_sql(&entity.version().column);
    let inserted: Vec<&Field> = entity
        .fields
        .iter()
        .filter(|f| f.role != FieldRole::PrimaryKey(KeyGeneration::Identity))
        .collect();
    let updated: Vec<&Field> = entity
        .fields
        .iter()
        .filter(|f| f.role == FieldRole::Data || f.role == FieldRole::UpdatedAt)
        .collect();
    let per_dialect =
        |make: &dyn Fn(Dialect) -> String| [make(Dialect::Postgres), make(Dialect::Sqlite)];
    let select = |d: Dialect| {
        format!(
            "SELECT {returning} FROM {table} WHERE {key} = {}",
            d.placeholder(1)
        )
    };
    Statements {
        insert: per_dialect(&|d| {
            let names: Vec<String> = inserted.iter().map(|f| quote_sql(&f.column)).collect();
            let values: Vec<String> = (1..=inserted.len()).map(|n| d.placeholder(n)).collect();
            format!(
                "INSERT INTO {table} ({}) VALUES ({}) RETURNING {returning}",
                names.join(", "),
                values.join(", ")
            )
        }),
        select: per_dialect(&select),
        // SQLite has no row locks: a writing transaction holds the database's write lock from
        // its start (`BEGIN IMMEDIATE`).
        select_for_update: per_dialect(&|d| match d {
            Dialect::Postgres => format!("{} FOR UPDATE", select(d)),
            Dialect::Sqlite => select(d),
        }),
        update: per_dialect(&|d| {
            let sets: Vec<String> = updated
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{} = {}", quote_sql(&f.column), d.placeholder(i + 1)))
                .collect();
            let n = updated.len();
            format!(
                "UPDATE {table} SET {}, {version} = {version} + 1 WHERE {key} = {} AND {version} = {} RETURNING {returning}",
                sets.join(", "),
                d.placeholder(n + 1),
                d.placeholder(n + 2)
            )
        }),
        delete: per_dialect(&|d| {
            format!(
                "DELETE FROM {table} WHERE {key} = {} AND {version} = {}",
                d.placeholder(1),
                d.placeholder(2)
            )
        }),
    }
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
        quote!(::std::boxed::Box::new(#value))
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
            quote!(::prefiq_runtime::SqlValue::text(::std::option::Option::Some(&#source.#name)))
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
        _ => quote!(::std::string::String),
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
        tokens
    });
    let primary_key = entity.primary_key;
    let uniques = entity.indexes.iter().filter(|i| i.unique).map(|i| {
        let name = &i.name;
        let columns = &i.columns;
        quote!((#name, &[#(#columns),*]))
    });
    let foreign_keys = entity.fields.iter().filter_map(|f| {
        let reference = f.references.as_ref()?;
        let name = &reference.constraint;
        let column = &f.column;
        let target = &reference.entity;
        Some(quote!((#name, #column, #target)))
    });
    quote! {
        /// The table, for list queries and constraint errors.
        pub static TABLE: TableMeta = TableMeta {
            entity: #entity_name,
            table: #table_name,
            columns: &[#(#columns),*],
            primary_key: #primary_key,
            uniques: &[#(#uniques),*],
            foreign_keys: &[#(#foreign_keys),*],
        };
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
        /// Reads a row in `TABLE.columns` order.
        pub fn read(row: &Row) -> ::std::result::Result<#model, DbError> {
            #binding = #model::new(#(#required),*);
            #(#optional)*
            ::std::result::Result::Ok(model)
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
    let entity_name = &entity.name;
    let snake = &entity.snake;
    let key_ty = key_type(entity);
    let key_field = ident(&entity.key().member.rust);
    let version_field = ident(&entity.version().member.rust);
    let statements = statements(entity);
    let [insert_pg, insert_sqlite] = &statements.insert;
    let [select_pg, select_sqlite] = &statements.select;
    let [lock_pg, lock_sqlite] = &statements.select_for_update;
    let [update_pg, update_sqlite] = &statements.update;
    let [delete_pg, delete_sqlite] = &statements.delete;
    let table = table_meta(app, entity);
    let read = reader(entity, &model);

    let input = quote!(input);
    let mut insert_params = Vec::new();
    for field in &entity.fields {
        insert_params.push(match field.role {
            FieldRole::PrimaryKey(KeyGeneration::Identity) => continue,
            FieldRole::PrimaryKey(KeyGeneration::Uuid) => quote!(::prefiq_runtime::SqlValue::Uuid(
                ::prefiq_runtime::deps::uuid::Uuid::now_v7()
            )),
            FieldRole::CreatedAt | FieldRole::UpdatedAt => {
                quote!(::prefiq_runtime::SqlValue::DateTime(now))
            }
            FieldRole::Version => quote!(::prefiq_runtime::SqlValue::Int(1)),
            FieldRole::PrimaryKey(KeyGeneration::Client) | FieldRole::Data => {
                bind_field(field, &input)
            }
        });
    }
    let update_params: Vec<TokenStream> = entity
        .fields
        .iter()
        .filter(|f| f.role == FieldRole::Data || f.role == FieldRole::UpdatedAt)
        .map(|f| {
            if f.role == FieldRole::UpdatedAt {
                quote!(::prefiq_runtime::SqlValue::DateTime(now))
            } else {
                bind_field(f, &input)
            }
        })
        .collect();
    let stamps = |roles: &[FieldRole]| entity.fields.iter().any(|f| roles.contains(&f.role));
    let now = quote!(let now = ::prefiq_runtime::db::now(););
    let insert_now = if stamps(&[FieldRole::CreatedAt, FieldRole::UpdatedAt]) {
        now.clone()
    } else {
        quote!()
    };
    let update_now = if stamps(&[FieldRole::UpdatedAt]) {
        now
    } else {
        quote!()
    };
    let writable: Vec<&str> = entity.writable().map(|f| f.member.name.as_str()).collect();
    let read_only: Vec<&str> = entity
        .fields
        .iter()
        .filter(|f| !f.is_writable())
        .map(|f| f.member.name.as_str())
        .collect();

    let collection = &entity.collection_path;
    let hook = |verb: &str| format_ident!("{verb}_{snake}");
    let (before_create, after_create) = (hook("before_create"), hook("after_create"));
    let (before_update, after_update) = (hook("before_update"), hook("after_update"));
    let (before_delete, after_delete) = (hook("before_delete"), hook("after_delete"));
    let validator = |suffix: &str| format_ident!("{snake}_{suffix}");
    let (create_validator, patch_validator, replace_validator) = (
        validator("create"),
        validator("patch"),
        validator("replace"),
    );
    let module_doc = format!(
        " The {entity_name} routes and repository, from {}.",
        entity.source
    );
    let not_found = format!("no {entity_name} has the id `{{}}`");

    quote! {
        #![doc = #module_doc]

        use ::prefiq_runtime::Problem;
        use ::prefiq_runtime::db::{DbError, Executor, Row};
        use ::prefiq_runtime::meta::{ColumnKind, ColumnMeta, TableMeta};
        use ::prefiq_runtime::deps::axum;
        use ::prefiq_runtime::http::{Created, IfMatch, JsonBody, NoContent, PathKey, QueryPairs, RequestContext, Tagged};
        use ::prefiq_runtime::list::{ListQuery, Page};

        use super::{AppState, #service};
        use ::#types::{#model, #create};

        #table

        /// Members a client may send (the rest are set by the server).
        pub const WRITABLE: &[&str] = &[#(#writable),*];
        /// Members only the server sets.
        pub const READ_ONLY: &[&str] = &[#(#read_only),*];

        const INSERT: [&str; 2] = [#insert_pg, #insert_sqlite];
        const SELECT: [&str; 2] = [#select_pg, #select_sqlite];
        const SELECT_FOR_UPDATE: [&str; 2] = [#lock_pg, #lock_sqlite];
        const UPDATE: [&str; 2] = [#update_pg, #update_sqlite];
        const DELETE: [&str; 2] = [#delete_pg, #delete_sqlite];

        #read

        fn problem(error: DbError) -> Problem {
            error.into_problem(&TABLE)
        }

        /// The row `input` would store, checked against the schema: whoever built it, a row that
        /// breaks the schema is never written.
        fn check(input: &#create) -> ::std::result::Result<(), DbError> {
            let validators = super::validators().map_err(|e| DbError::Invalid(::std::vec![::prefiq_runtime::FieldError {
                pointer: ::std::string::String::new(),
                detail: e.to_string(),
                keyword: ::std::option::Option::None,
            }]))?;
            validators.#replace_validator.check_row(input)
        }

        /// Inserts a row, after checking it against the schema.
        pub async fn insert(db: &mut impl Executor, input: &#create) -> ::std::result::Result<#model, DbError> {
            check(input)?;
            #insert_now
            let params = ::std::vec![#(#insert_params),*];
            let sql = db.pick(INSERT[0], INSERT[1]);
            read(&db.fetch_one(sql, params).await?)
        }

        /// Finds a row by key.
        pub async fn find(db: &mut impl Executor, key: &#key_ty) -> ::std::result::Result<::std::option::Option<#model>, DbError> {
            let params = ::std::vec![::prefiq_runtime::db::ToSql::to_sql(key)];
            let sql = db.pick(SELECT[0], SELECT[1]);
            db.fetch_optional(sql, params).await?.as_ref().map(read).transpose()
        }

        /// Finds a row by key and keeps anyone else from changing it until the transaction ends.
        pub async fn find_for_update(db: &mut impl Executor, key: &#key_ty) -> ::std::result::Result<::std::option::Option<#model>, DbError> {
            let params = ::std::vec![::prefiq_runtime::db::ToSql::to_sql(key)];
            let sql = db.pick(SELECT_FOR_UPDATE[0], SELECT_FOR_UPDATE[1]);
            db.fetch_optional(sql, params).await?.as_ref().map(read).transpose()
        }

        /// Writes `input` over the row if it is still at `version`, after checking it against the
        /// schema; `None` if the row moved on or is gone.
        pub async fn update(db: &mut impl Executor, key: &#key_ty, version: i64, input: &#create) -> ::std::result::Result<::std::option::Option<#model>, DbError> {
            check(input)?;
            #update_now
            let params = ::std::vec![#(#update_params,)* ::prefiq_runtime::db::ToSql::to_sql(key), ::prefiq_runtime::SqlValue::Int(version)];
            let sql = db.pick(UPDATE[0], UPDATE[1]);
            db.fetch_optional(sql, params).await?.as_ref().map(read).transpose()
        }

        /// Deletes the row if it is still at `version`; whether it did.
        pub async fn delete(db: &mut impl Executor, key: &#key_ty, version: i64) -> ::std::result::Result<bool, DbError> {
            let params = ::std::vec![::prefiq_runtime::db::ToSql::to_sql(key), ::prefiq_runtime::SqlValue::Int(version)];
            let sql = db.pick(DELETE[0], DELETE[1]);
            ::std::result::Result::Ok(db.execute(sql, params).await? == 1)
        }

        fn missing(key: &#key_ty) -> Problem {
            Problem::not_found(::std::format!(#not_found, key))
        }

        /// `GET` on the collection.
        pub async fn list_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            QueryPairs(pairs): QueryPairs,
        ) -> ::std::result::Result<axum::Json<Page<#model>>, Problem> {
            let query = ListQuery::parse(&TABLE, &pairs)?;
            let page = query.run(&mut state.db.clone(), &TABLE, read).await.map_err(problem)?;
            ::std::result::Result::Ok(axum::Json(page))
        }

        /// `POST` on the collection: the hooks and the insert share one transaction.
        pub async fn create_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            ctx: RequestContext,
            JsonBody(body): JsonBody,
        ) -> ::std::result::Result<Created<#model>, Problem> {
            state.validators.#create_validator.check(&body)?;
            let mut input: #create = ::prefiq_runtime::validate::decode(body)?;
            let mut tx = state.db.begin().await?;
            state.service.#before_create(&ctx, &mut tx, &mut input).await?;
            let row = insert(&mut tx, &input).await.map_err(problem)?;
            state.service.#after_create(&ctx, &mut tx, &row).await?;
            tx.commit().await.map_err(problem)?;
            ::std::result::Result::Ok(Created {
                location: ::std::format!("{}/{}", #collection, row.#key_field),
                version: row.#version_field,
                body: row,
            })
        }

        /// `GET` on an item.
        pub async fn get_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            PathKey(key): PathKey,
        ) -> ::std::result::Result<Tagged<#model>, Problem> {
            let key: #key_ty = ::prefiq_runtime::http::parse_key(&key, #entity_name)?;
            let row = find(&mut state.db.clone(), &key).await.map_err(problem)?.ok_or_else(|| missing(&key))?;
            ::std::result::Result::Ok(Tagged { version: row.#version_field, body: row })
        }

        /// `PATCH` on an item: a JSON merge patch, applied to the row locked for the transaction,
        /// so that no concurrent update is lost.
        pub async fn update_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            ctx: RequestContext,
            PathKey(key): PathKey,
            precondition: IfMatch,
            JsonBody(patch): JsonBody,
        ) -> ::std::result::Result<Tagged<#model>, Problem> {
            state.validators.#patch_validator.check(&patch)?;
            let key: #key_ty = ::prefiq_runtime::http::parse_key(&key, #entity_name)?;
            let mut tx = state.db.begin().await?;
            let current = find_for_update(&mut tx, &key).await.map_err(problem)?.ok_or_else(|| missing(&key))?;
            precondition.check(current.#version_field)?;
            let mut merged = ::prefiq_runtime::patch::writable_members(&current, WRITABLE)?;
            ::prefiq_runtime::patch::merge_patch(&mut merged, &patch);
            state.validators.#replace_validator.check(&merged)?;
            let mut input: #create = ::prefiq_runtime::validate::decode(merged)?;
            state.service.#before_update(&ctx, &mut tx, &current, &mut input).await?;
            let row = update(&mut tx, &key, current.#version_field, &input).await.map_err(problem)?
                .ok_or_else(::prefiq_runtime::patch::contended)?;
            state.service.#after_update(&ctx, &mut tx, &row).await?;
            tx.commit().await.map_err(problem)?;
            ::std::result::Result::Ok(Tagged { version: row.#version_field, body: row })
        }

        /// `DELETE` on an item.
        pub async fn delete_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            ctx: RequestContext,
            PathKey(key): PathKey,
            precondition: IfMatch,
        ) -> ::std::result::Result<NoContent, Problem> {
            let key: #key_ty = ::prefiq_runtime::http::parse_key(&key, #entity_name)?;
            let mut tx = state.db.begin().await?;
            let current = find_for_update(&mut tx, &key).await.map_err(problem)?.ok_or_else(|| missing(&key))?;
            precondition.check(current.#version_field)?;
            state.service.#before_delete(&ctx, &mut tx, &current).await?;
            if !delete(&mut tx, &key, current.#version_field).await.map_err(problem)? {
                return ::std::result::Result::Err(::prefiq_runtime::patch::contended());
            }
            state.service.#after_delete(&ctx, &mut tx, &current).await?;
            tx.commit().await.map_err(problem)?;
            ::std::result::Result::Ok(NoContent)
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
    let mut items = Vec::new();
    for operation in app.custom() {
        let response = format_ident!("{}Response", operation.type_prefix);
        let method = format_ident!("{}", operation.rust);
        let handler = format_ident!("{}_handler", operation.rust);
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
                    let ty = rust_type(ty, &roots);
                    variants.push(quote!(#[doc = #doc] #variant(#ty)));
                    arms.push(quote!(Self::#variant(body) => (axum::http::StatusCode::from_u16(#status).unwrap_or(axum::http::StatusCode::OK), axum::Json(body)).into_response()));
                    quote!(Self::#variant(_))
                }
                ResponseBody::Problem => {
                    variants.push(quote!(#[doc = #doc] #variant(::prefiq_runtime::Problem)));
                    arms.push(quote!(Self::#variant(problem) => problem.with_status(#status).into_response()));
                    quote!(Self::#variant(_))
                }
            };
            if r.is_success() {
                successes.push(pattern);
            }
        }
        let response_doc = format!(" Every response `{}` declares.", operation.id);
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
        let mut extractors = vec![
            quote!(axum::extract::State(state): axum::extract::State<super::AppState<S>>),
            quote!(ctx: ::prefiq_runtime::RequestContext),
        ];
        let mut steps = Vec::new();
        let mut args = Vec::new();
        let specs_item = if let Some(params_type) = &operation.params_type {
            let params_type = format_ident!("{}", params_type);
            extractors.push(quote!(::prefiq_runtime::http::PathParams(path): ::prefiq_runtime::http::PathParams));
            extractors.push(quote!(::prefiq_runtime::http::QueryPairs(query): ::prefiq_runtime::http::QueryPairs));
            steps.push(quote! {
                let params = ::prefiq_runtime::params::collect(#specs_name, &path, &query, &ctx.headers);
                state.validators.#params_validator.check(&params).map_err(::prefiq_runtime::params::invalid)?;
                let params: ::#types::#params_type = ::prefiq_runtime::validate::decode(params).map_err(::prefiq_runtime::params::invalid)?;
            });
            args.push(quote!(params));
            quote!(pub static #specs_name: &[::prefiq_runtime::params::ParamSpec] = &[#(#specs),*];)
        } else {
            quote!()
        };
        if let Some(body) = &operation.body {
            let body_type = rust_type(&body.ty, &roots);
            extractors.push(
                quote!(::prefiq_runtime::http::JsonBody(body): ::prefiq_runtime::http::JsonBody),
            );
            steps.push(quote! {
                state.validators.#body_validator.check(&body)?;
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
            " `{} {}`: validates the inputs, then calls [`{service}::{}`] in a transaction that \
             commits only if it returns a success.",
            operation.method, operation.path, operation.rust
        );
        let success_check = if successes.is_empty() {
            quote!(false)
        } else {
            quote!(::std::matches!(self, #(#successes)|*))
        };
        items.push(quote! {
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

            #specs_item

            #[doc = #handler_doc]
            pub async fn #handler<S: #service>(#(#extractors),*) -> ::std::result::Result<#response, ::prefiq_runtime::Problem> {
                #(#steps)*
                let mut tx = state.db.#begin().await?;
                let response = state.service.#method(&ctx, &mut tx, #(#args),*).await?;
                if response.is_success() {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                ::std::result::Result::Ok(response)
            }
        });
    }
    quote! {
        //! Custom operations from the app's OpenAPI fragments: a typed response per operation,
        //! and handlers that validate every input, then run the service in one transaction.
        use ::prefiq_runtime::deps::axum;

        use super::#service;

        #(#items)*
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
                fn #method(&self, ctx: &RequestContext, tx: &mut Tx, #(#args),*) -> impl ::std::future::Future<Output = ::std::result::Result<super::operations::#response, Problem>> + Send;
            }
        })
        .collect()
}

fn service_trait(app: &App, crates: &CrateNames, service: &syn::Ident) -> TokenStream {
    let types = crates.types_ident();
    let mut methods = Vec::new();
    let mut imports = Vec::new();
    for entity in &app.entities {
        let model = format_ident!("{}", entity.name);
        let create = format_ident!("{}", entity.types.create);
        imports.push(quote!(#model));
        imports.push(quote!(#create));
        let snake = &entity.snake;
        let name = &entity.name;
        let hook = |verb: &str, args: TokenStream, uses: TokenStream, text: String| {
            let method = format_ident!("{verb}_{snake}");
            quote! {
                #[doc = #text]
                fn #method(&self, ctx: &RequestContext, tx: &mut Tx, #args) -> impl ::std::future::Future<Output = ::std::result::Result<(), Problem>> + Send {
                    let _ = (ctx, tx, #uses);
                    async { ::std::result::Result::Ok(()) }
                }
            }
        };
        methods.push(hook(
            "before_create",
            quote!(input: &mut #create),
            quote!(input),
            format!(" Runs before a {name} is inserted, in the insert's transaction: change `input`, or refuse with a problem."),
        ));
        methods.push(hook(
            "after_create",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after a {name} was inserted, in the same transaction: a problem undoes the insert."),
        ));
        methods.push(hook("before_update", quote!(current: &#model, next: &mut #create), quote!(current, next), format!(" Runs before a {name} is updated, in the update's transaction: `next` is the merged state; change it, or refuse with a problem.")));
        methods.push(hook(
            "after_update",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after a {name} was updated, in the same transaction: a problem undoes the update."),
        ));
        methods.push(hook(
            "before_delete",
            quote!(current: &#model),
            quote!(current),
            format!(" Runs before a {name} is deleted, in the delete's transaction; refuse with a problem to keep it."),
        ));
        methods.push(hook(
            "after_delete",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after a {name} was deleted, in the same transaction: a problem undoes the delete."),
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
        }
    }
}

/// The routes of the app, one `.route(path, ...)` per path in operation order.
fn routes(app: &App) -> Vec<TokenStream> {
    let mut by_path: Vec<(&str, Vec<TokenStream>)> = Vec::new();
    for operation in &app.operations {
        let handler = match &operation.kind {
            crate::ir::OperationKind::Crud { entity, action } => {
                let Some(entity) = app.entity(entity) else {
                    continue;
                };
                let module = format_ident!("{}", entity.snake);
                let name = format_ident!(
                    "{}_handler",
                    match action {
                        CrudAction::List => "list",
                        CrudAction::Create => "create",
                        CrudAction::Get => "get",
                        CrudAction::Update => "update",
                        CrudAction::Delete => "delete",
                    }
                );
                quote!(#module::#name::<S>)
            }
            crate::ir::OperationKind::Custom => {
                let name = format_ident!("{}_handler", operation.rust);
                quote!(operations::#name::<S>)
            }
        };
        let method = format_ident!("{}", operation.method.lower());
        let route = quote!(#method(#handler));
        match by_path.iter_mut().find(|(path, _)| *path == operation.path) {
            Some((_, methods)) => methods.push(route),
            None => by_path.push((&operation.path, vec![route])),
        }
    }
    by_path
        .into_iter()
        .map(|(path, methods)| {
            let mut chain = methods.into_iter();
            let first = chain.next().unwrap_or_default();
            let rest = chain.map(|m| quote!(.#m));
            quote!(.route(#path, axum::routing::#first #(#rest)*))
        })
        .collect()
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
    for entity in &app.entities {
        let module = format_ident!("{}", entity.snake);
        for (suffix, definition) in [
            ("create", &entity.types.create),
            ("patch", &entity.types.patch),
            ("replace", &entity.types.replace),
        ] {
            let field = format_ident!("{}_{}", entity.snake, suffix);
            let doc = format!(" Checks `{definition}` bodies.");
            validator_fields
                .push(quote!(#[doc = #doc] pub #field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#field: ::prefiq_runtime::validate::Validator::new(&document, #definition, #module::READ_ONLY)?));
        }
    }
    for operation in app.custom() {
        let (params_field, body_field) = operation_validators(operation);
        if let Some(definition) = &operation.params_type {
            validator_fields.push(quote!(#[doc = " Checks the parameters of a custom operation."] pub #params_field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#params_field: ::prefiq_runtime::validate::Validator::new(&document, #definition, &[])?));
        }
        if operation.body.is_some() {
            let definition = crate::emit::schema::body_definition(operation);
            validator_fields.push(quote!(#[doc = " Checks the body of a custom operation."] pub #body_field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#body_field: ::prefiq_runtime::validate::Validator::new(&document, #definition, &[])?));
        }
    }
    let routes = routes(app);
    let openapi_route = format!("{}/openapi.json", app.base_path);
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

        use ::prefiq_runtime::deps::axum;

        /// The app's name and migrations, for `prefiq_runtime::serve::main`.
        pub static APP: ::prefiq_runtime::serve::AppSpec = ::prefiq_runtime::serve::AppSpec {
            name: #app_name,
            migrations: MIGRATIONS,
        };

        /// The SQL migrations, in order.
        pub const MIGRATIONS: &[::prefiq_runtime::migrate::Migration] = &[#(#migrations),*];

        /// The OpenAPI 3.1 document.
        pub const OPENAPI: &str = include_str!("../../../core/openapi.json");

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
            pub fn new() -> ::std::result::Result<Self, ::prefiq_runtime::validate::SchemaError> {
                let document = ::prefiq_runtime::validate::document(SCHEMAS)?;
                ::std::result::Result::Ok(Self { #(#validator_inits,)* })
            }
        }

        static VALIDATORS: ::std::sync::LazyLock<::std::result::Result<Validators, ::prefiq_runtime::validate::SchemaError>> =
            ::std::sync::LazyLock::new(Validators::new);

        /// The validators, compiled on first use; [`router`] compiles them at start-up.
        pub fn validators() -> ::std::result::Result<&'static Validators, &'static ::prefiq_runtime::validate::SchemaError> {
            VALIDATORS.as_ref()
        }

        /// What every handler receives.
        pub struct AppState<S> {
            /// The hand-written service.
            pub service: ::std::sync::Arc<S>,
            /// The database.
            pub db: ::prefiq_runtime::Db,
            /// Request validators.
            pub validators: &'static Validators,
        }

        impl<S> ::std::clone::Clone for AppState<S> {
            fn clone(&self) -> Self {
                Self { service: self.service.clone(), db: self.db.clone(), validators: self.validators }
            }
        }

        async fn openapi() -> impl axum::response::IntoResponse {
            ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
        }

        /// The app's routes under its base path, plus `/openapi.json`.
        pub fn router<S: #service>(service: S, db: ::prefiq_runtime::Db) -> ::std::result::Result<axum::Router, ::prefiq_runtime::validate::SchemaError> {
            let validators = validators().map_err(::std::clone::Clone::clone)?;
            let state = AppState { service: ::std::sync::Arc::new(service), db, validators };
            ::std::result::Result::Ok(axum::Router::new()
                #(#routes)*
                .route("/openapi.json", axum::routing::get(openapi))
                .route(#openapi_route, axum::routing::get(openapi))
                .with_state(state))
        }
    }
}

/// The files under `src/generated/`: `(path, tokens)`.
pub fn emit(app: &App, crates: &CrateNames) -> Result<Vec<(String, TokenStream)>, Diagnostic> {
    let service = format_ident!("{}Service", names::pascal(&app.name));
    let mut files = vec![
        (
            "src/generated/mod.rs".to_owned(),
            root_module(app, &service),
        ),
        (
            "src/generated/service.rs".to_owned(),
            service_trait(app, crates, &service),
        ),
    ];
    for entity in &app.entities {
        files.push((
            format!("src/generated/{}.rs", entity.snake),
            entity_module(app, entity, crates, &service),
        ));
    }
    if app.custom().next().is_some() {
        files.push((
            "src/generated/operations.rs".to_owned(),
            operations_module(app, crates, &service),
        ));
    }
    Ok(files)
}
