//! The server crate's generated modules: router, handlers, repository SQL, the service trait,
//! and the embedded schemas, OpenAPI document and migrations.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{CrateNames, Roots, ident, rust_type};
use crate::diag::Diagnostic;
use crate::emit::openapi::operation_ids;
use crate::emit::sql::{Dialect, check_name, foreign_key_name, quote as quote_sql};
use crate::ir::{App, Entity, Field, FieldRole, KeyGeneration, Type};
use crate::lower::names;

/// The runtime's `ColumnKind` of a type.
fn column_kind(ty: &Type) -> TokenStream {
    let kind = match ty {
        Type::Boolean => quote!(Bool),
        Type::Integer(n) if n.bits == 32 => quote!(Int32),
        Type::Integer(_) => quote!(Int),
        Type::Number(_) => quote!(Float),
        Type::String(_) | Type::Enum { .. } => quote!(Text),
        Type::Uuid => quote!(Uuid),
        Type::Date => quote!(Date),
        Type::DateTime => quote!(DateTime),
        Type::Decimal(_) => quote!(Decimal),
        _ => quote!(Json),
    };
    quote!(ColumnKind::#kind)
}

struct Statements {
    insert: [String; 2],
    select: [String; 2],
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
        select: per_dialect(&|d| {
            format!(
                "SELECT {returning} FROM {table} WHERE {key} = {}",
                d.placeholder(1)
            )
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

fn entity_module(
    app: &App,
    entity: &Entity,
    crates: &CrateNames,
    service: &syn::Ident,
) -> TokenStream {
    let types = crates.types_ident();
    let model = format_ident!("{}", entity.name);
    let create = format_ident!("{}Create", entity.name);
    let entity_name = &entity.name;
    let table_name = &entity.table;
    let snake = &entity.snake;
    let key_ty = match &entity.key().member.ty {
        Type::Uuid => quote!(::prefiq_runtime::deps::uuid::Uuid),
        Type::Integer(n) if n.bits == 32 => quote!(i32),
        Type::Integer(_) => quote!(i64),
        _ => quote!(::std::string::String),
    };
    let key_field = ident(&entity.key().member.rust);
    let version_field = ident(&entity.version().member.rust);
    let statements = statements(entity);
    let [insert_pg, insert_sqlite] = &statements.insert;
    let [select_pg, select_sqlite] = &statements.select;
    let [update_pg, update_sqlite] = &statements.update;
    let [delete_pg, delete_sqlite] = &statements.delete;

    let columns = entity.fields.iter().map(|f| {
        let field = &f.member.name;
        let column = &f.column;
        let kind = column_kind(&f.member.ty);
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
                let kind = column_kind(&a.items);
                tokens.extend(quote!(.items(#kind)));
            }
        }
        if let Type::Enum { name } = &f.member.ty {
            if let Some(crate::ir::NamedType::Enum(e)) = app.types.get(name) {
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
        let name = foreign_key_name(entity, f);
        let column = &f.column;
        let target = &reference.entity;
        Some(quote!((#name, #column, #target)))
    });
    let _ = check_name;

    let reads = entity.fields.iter().enumerate().map(|(i, f)| {
        let name = ident(&f.member.rust);
        let value = read_column(f, i);
        quote!(#name: #value)
    });

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
    let insert_now = if stamps(&[FieldRole::CreatedAt, FieldRole::UpdatedAt]) {
        quote!(let now = now();)
    } else {
        quote!()
    };
    let update_now = if stamps(&[FieldRole::UpdatedAt]) {
        quote!(let now = now();)
    } else {
        quote!()
    };
    let now_fn = if stamps(&[FieldRole::CreatedAt, FieldRole::UpdatedAt]) {
        quote! {
            fn now() -> ::prefiq_runtime::deps::chrono::DateTime<::prefiq_runtime::deps::chrono::Utc> {
                ::prefiq_runtime::db::now()
            }
        }
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

    let collection = format!("/api/{}/{}", app.name, entity.plural);
    let before_create = format_ident!("before_create_{}", snake);
    let after_create = format_ident!("after_create_{}", snake);
    let before_update = format_ident!("before_update_{}", snake);
    let after_update = format_ident!("after_update_{}", snake);
    let before_delete = format_ident!("before_delete_{}", snake);
    let after_delete = format_ident!("after_delete_{}", snake);
    let create_validator = format_ident!("{}_create", snake);
    let patch_validator = format_ident!("{}_patch", snake);
    let replace_validator = format_ident!("{}_replace", snake);
    let module_doc = format!(
        " The {entity_name} routes and repository, from {}.",
        entity.source
    );
    let not_found = format!("no {entity_name} has the id `{{}}`");

    quote! {
        #![doc = #module_doc]

        use ::prefiq_runtime::Problem;
        use ::prefiq_runtime::db::{ColumnKind, Db, DbError, Row};
        use ::prefiq_runtime::meta::{ColumnMeta, TableMeta};
        use ::prefiq_runtime::deps::axum;
        use ::prefiq_runtime::http::{Created, IfMatch, JsonBody, NoContent, PathKey, QueryPairs, RequestContext, Tagged};
        use ::prefiq_runtime::list::{ListQuery, Page};

        use super::{AppState, #service};
        use ::#types::{#model, #create};

        /// The table, for list queries and constraint errors.
        pub static TABLE: TableMeta = TableMeta {
            entity: #entity_name,
            table: #table_name,
            columns: &[#(#columns),*],
            primary_key: #primary_key,
            uniques: &[#(#uniques),*],
            foreign_keys: &[#(#foreign_keys),*],
        };

        /// Members a client may send (the rest are set by the server).
        pub const WRITABLE: &[&str] = &[#(#writable),*];
        /// Members only the server sets.
        pub const READ_ONLY: &[&str] = &[#(#read_only),*];

        const INSERT: [&str; 2] = [#insert_pg, #insert_sqlite];
        const SELECT: [&str; 2] = [#select_pg, #select_sqlite];
        const UPDATE: [&str; 2] = [#update_pg, #update_sqlite];
        const DELETE: [&str; 2] = [#delete_pg, #delete_sqlite];

        fn sql(db: &Db, statement: [&'static str; 2]) -> &'static str {
            db.pick(statement[0], statement[1])
        }

        /// Reads a row in `TABLE.columns` order.
        pub fn read(row: &Row) -> ::std::result::Result<#model, DbError> {
            ::std::result::Result::Ok(#model { #(#reads,)* })
        }

        fn problem(error: DbError) -> Problem {
            error.into_problem(&TABLE)
        }

        #now_fn

        /// Inserts a row.
        pub async fn insert(db: &Db, input: &#create) -> ::std::result::Result<#model, DbError> {
            #insert_now
            let params = ::std::vec![#(#insert_params),*];
            read(&db.fetch_one(sql(db, INSERT), params).await?)
        }

        /// Finds a row by key.
        pub async fn find(db: &Db, key: &#key_ty) -> ::std::result::Result<::std::option::Option<#model>, DbError> {
            let params = ::std::vec![::prefiq_runtime::db::ToSql::to_sql(key)];
            db.fetch_optional(sql(db, SELECT), params).await?.as_ref().map(read).transpose()
        }

        /// Writes `input` over the row if it is still at `version`; `None` if it moved on or is gone.
        pub async fn update(db: &Db, key: &#key_ty, version: i64, input: &#create) -> ::std::result::Result<::std::option::Option<#model>, DbError> {
            #update_now
            let params = ::std::vec![#(#update_params,)* ::prefiq_runtime::db::ToSql::to_sql(key), ::prefiq_runtime::SqlValue::Int(version)];
            db.fetch_optional(sql(db, UPDATE), params).await?.as_ref().map(read).transpose()
        }

        /// Deletes the row if it is still at `version`; whether it did.
        pub async fn delete(db: &Db, key: &#key_ty, version: i64) -> ::std::result::Result<bool, DbError> {
            let params = ::std::vec![::prefiq_runtime::db::ToSql::to_sql(key), ::prefiq_runtime::SqlValue::Int(version)];
            ::std::result::Result::Ok(db.execute(sql(db, DELETE), params).await? == 1)
        }

        async fn current(db: &Db, key: &#key_ty) -> ::std::result::Result<#model, Problem> {
            find(db, key).await.map_err(problem)?.ok_or_else(|| Problem::not_found(::std::format!(#not_found, key)))
        }

        /// `GET` on the collection.
        pub async fn list_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            QueryPairs(pairs): QueryPairs,
        ) -> ::std::result::Result<axum::Json<Page<#model>>, Problem> {
            let query = ListQuery::parse(&TABLE, &pairs)?;
            let page = query.run(&state.db, &TABLE, read).await.map_err(problem)?;
            ::std::result::Result::Ok(axum::Json(page))
        }

        /// `POST` on the collection.
        pub async fn create_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            ctx: RequestContext,
            JsonBody(body): JsonBody,
        ) -> ::std::result::Result<Created<#model>, Problem> {
            state.validators.#create_validator.check(&body)?;
            let mut input: #create = ::prefiq_runtime::validate::decode(body)?;
            state.service.#before_create(&ctx, &mut input).await?;
            let row = insert(&state.db, &input).await.map_err(problem)?;
            state.service.#after_create(&ctx, &row).await?;
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
            let row = current(&state.db, &key).await?;
            ::std::result::Result::Ok(Tagged { version: row.#version_field, body: row })
        }

        /// `PATCH` on an item: a JSON merge patch, applied to the current row under optimistic locking.
        pub async fn update_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            ctx: RequestContext,
            PathKey(key): PathKey,
            precondition: IfMatch,
            JsonBody(patch): JsonBody,
        ) -> ::std::result::Result<Tagged<#model>, Problem> {
            state.validators.#patch_validator.check(&patch)?;
            let key: #key_ty = ::prefiq_runtime::http::parse_key(&key, #entity_name)?;
            for attempt in 0..::prefiq_runtime::patch::ATTEMPTS {
                ::prefiq_runtime::patch::backoff(attempt).await;
                let current = current(&state.db, &key).await?;
                precondition.check(current.#version_field)?;
                let mut merged = ::prefiq_runtime::patch::writable_members(&current, WRITABLE)?;
                ::prefiq_runtime::patch::merge_patch(&mut merged, &patch);
                state.validators.#replace_validator.check(&merged)?;
                let mut input: #create = ::prefiq_runtime::validate::decode(merged)?;
                state.service.#before_update(&ctx, &current, &mut input).await?;
                if let ::std::option::Option::Some(row) = update(&state.db, &key, current.#version_field, &input).await.map_err(problem)? {
                    state.service.#after_update(&ctx, &row).await?;
                    return ::std::result::Result::Ok(Tagged { version: row.#version_field, body: row });
                }
                // Someone else wrote the row in between: read it again, and with `If-Match` fail with 412.
            }
            ::std::result::Result::Err(::prefiq_runtime::patch::contended())
        }

        /// `DELETE` on an item.
        pub async fn delete_handler<S: #service>(
            axum::extract::State(state): axum::extract::State<AppState<S>>,
            ctx: RequestContext,
            PathKey(key): PathKey,
            precondition: IfMatch,
        ) -> ::std::result::Result<NoContent, Problem> {
            let key: #key_ty = ::prefiq_runtime::http::parse_key(&key, #entity_name)?;
            for attempt in 0..::prefiq_runtime::patch::ATTEMPTS {
                ::prefiq_runtime::patch::backoff(attempt).await;
                let current = current(&state.db, &key).await?;
                precondition.check(current.#version_field)?;
                state.service.#before_delete(&ctx, &current).await?;
                if delete(&state.db, &key, current.#version_field).await.map_err(problem)? {
                    state.service.#after_delete(&ctx, &current).await?;
                    return ::std::result::Result::Ok(NoContent);
                }
            }
            ::std::result::Result::Err(::prefiq_runtime::patch::contended())
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

/// The response enum, parameter specs and handler of each custom operation.
fn operations_module(app: &App, crates: &CrateNames, service: &syn::Ident) -> TokenStream {
    use crate::ir::{OperationParamKind, ResponseBody};
    use crate::lower::operations::status_name;
    let roots = server_roots(crates);
    let types = crates.types_ident();
    let mut items = Vec::new();
    for operation in &app.operations {
        let prefix = names::pascal(&operation.id);
        let response = format_ident!("{prefix}Response");
        let method = format_ident!("{}", operation.rust);
        let handler = format_ident!("{}_handler", operation.rust);
        let mut variants = Vec::new();
        let mut arms = Vec::new();
        for r in &operation.responses {
            let variant = format_ident!("{}", status_name(r.status));
            let status = r.status;
            let doc = format!(" {status}: {}", r.description);
            match &r.body {
                ResponseBody::Empty => {
                    variants.push(quote!(#[doc = #doc] #variant));
                    arms.push(quote!(Self::#variant => axum::http::StatusCode::from_u16(#status).unwrap_or(axum::http::StatusCode::OK).into_response()));
                }
                ResponseBody::Json { ty } => {
                    let ty = rust_type(ty, &roots);
                    variants.push(quote!(#[doc = #doc] #variant(#ty)));
                    arms.push(quote!(Self::#variant(body) => (axum::http::StatusCode::from_u16(#status).unwrap_or(axum::http::StatusCode::OK), axum::Json(body)).into_response()));
                }
                ResponseBody::Problem => {
                    variants.push(quote!(#[doc = #doc] #variant(::prefiq_runtime::Problem)));
                    arms.push(quote!(Self::#variant(problem) => problem.with_status(#status).into_response()));
                }
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
        let has_params = !operation.params.is_empty();
        let params_validator = format_ident!("{}_params", operation.rust);
        let body_validator = format_ident!("{}_body", operation.rust);
        let params_type = format_ident!("{prefix}Params");
        let mut extractors = vec![
            quote!(axum::extract::State(state): axum::extract::State<super::AppState<S>>),
            quote!(ctx: ::prefiq_runtime::RequestContext),
        ];
        let mut steps = Vec::new();
        let mut args = Vec::new();
        if has_params {
            extractors.push(quote!(::prefiq_runtime::http::PathParams(path): ::prefiq_runtime::http::PathParams));
            extractors.push(quote!(::prefiq_runtime::http::QueryPairs(query): ::prefiq_runtime::http::QueryPairs));
            steps.push(quote! {
                let params = ::prefiq_runtime::params::collect(#specs_name, &path, &query, &ctx.headers);
                state.validators.#params_validator.check(&params).map_err(::prefiq_runtime::params::invalid)?;
                let params: ::#types::#params_type = ::prefiq_runtime::validate::decode(params).map_err(::prefiq_runtime::params::invalid)?;
            });
            args.push(quote!(params));
        }
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
        let specs_item = if has_params {
            quote!(pub static #specs_name: &[::prefiq_runtime::params::ParamSpec] = &[#(#specs),*];)
        } else {
            quote!()
        };
        let handler_doc = format!(
            " `{} {}`: validates the inputs, then calls [`{service}::{}`].",
            operation.method, operation.path, operation.rust
        );
        items.push(quote! {
            #[doc = #response_doc]
            #[derive(Debug)]
            pub enum #response {
                #(#variants,)*
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
                state.service.#method(&ctx, #(#args),*).await
            }
        });
    }
    quote! {
        //! Custom operations from the app's OpenAPI fragments: a typed response per operation,
        //! and handlers that validate every input before the service runs.
        use ::prefiq_runtime::deps::axum;

        use super::#service;

        #(#items)*
    }
}

fn operation_methods(app: &App, crates: &CrateNames) -> Vec<TokenStream> {
    let roots = server_roots(crates);
    let types = crates.types_ident();
    app.operations
        .iter()
        .map(|operation| {
            let prefix = names::pascal(&operation.id);
            let method = format_ident!("{}", operation.rust);
            let response = format_ident!("{prefix}Response");
            let params_type = format_ident!("{prefix}Params");
            let mut args = Vec::new();
            if !operation.params.is_empty() {
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
            docs.push(" Return a declared response; return `Err(problem)` only for failures outside the".to_owned());
            docs.push(" contract (an unreachable database, a bug): they are sent as they are.".to_owned());
            quote! {
                #(#[doc = #docs])*
                fn #method(&self, ctx: &RequestContext, #(#args),*) -> impl ::std::future::Future<Output = ::std::result::Result<super::operations::#response, Problem>> + Send;
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
        let create = format_ident!("{}Create", entity.name);
        imports.push(quote!(#model));
        imports.push(quote!(#create));
        let snake = &entity.snake;
        let name = &entity.name;
        let hook = |verb: &str, args: TokenStream, uses: TokenStream, text: String| {
            let method = format_ident!("{verb}_{snake}");
            quote! {
                #[doc = #text]
                fn #method(&self, ctx: &RequestContext, #args) -> impl ::std::future::Future<Output = ::std::result::Result<(), Problem>> + Send {
                    let _ = (ctx, #uses);
                    async { ::std::result::Result::Ok(()) }
                }
            }
        };
        methods.push(hook(
            "before_create",
            quote!(input: &mut #create),
            quote!(input),
            format!(" Runs before a {name} is inserted: change `input`, or refuse with a problem."),
        ));
        methods.push(hook(
            "after_create",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after a {name} was inserted."),
        ));
        methods.push(hook("before_update", quote!(current: &#model, next: &mut #create), quote!(current, next), format!(" Runs before a {name} is updated: `next` is the merged state; change it, or refuse with a problem.")));
        methods.push(hook(
            "after_update",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after a {name} was updated."),
        ));
        methods.push(hook(
            "before_delete",
            quote!(current: &#model),
            quote!(current),
            format!(" Runs before a {name} is deleted; refuse with a problem to keep it."),
        ));
        methods.push(hook(
            "after_delete",
            quote!(row: &#model),
            quote!(row),
            format!(" Runs after a {name} was deleted."),
        ));
    }
    let operation_methods = operation_methods(app, crates);
    let doc = if app.operations.is_empty() {
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
    quote! {
        //! The service trait that generated handlers call and the team implements.
        use ::prefiq_runtime::{Problem, RequestContext};
        use ::#types::{#(#imports),*};

        #[doc = #doc]
        pub trait #service: Send + Sync + 'static {
            #(#methods)*
            #(#operation_methods)*
        }
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
    let mut routes = Vec::new();
    for entity in &app.entities {
        let module = format_ident!("{}", entity.snake);
        for (suffix, schema) in [
            ("create", "Create"),
            ("patch", "Patch"),
            ("replace", "Replace"),
        ] {
            let field = format_ident!("{}_{}", entity.snake, suffix);
            let definition = format!("{}{}", entity.name, schema);
            let doc = format!(" Checks `{definition}` bodies.");
            validator_fields
                .push(quote!(#[doc = #doc] pub #field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#field: ::prefiq_runtime::validate::Validator::new(&document, #definition, #module::READ_ONLY)?));
        }
        let collection = format!("/api/{}/{}", app.name, entity.plural);
        let item = format!("{collection}/{{id}}");
        routes.push(quote! {
            .route(#collection, get(#module::list_handler::<S>).post(#module::create_handler::<S>))
            .route(#item, get(#module::get_handler::<S>).patch(#module::update_handler::<S>).delete(#module::delete_handler::<S>))
        });
    }
    for operation in &app.operations {
        let prefix = names::pascal(&operation.id);
        if !operation.params.is_empty() {
            let field = format_ident!("{}_params", operation.rust);
            let definition = format!("{prefix}Params");
            validator_fields.push(quote!(#[doc = " Checks the parameters of a custom operation."] pub #field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#field: ::prefiq_runtime::validate::Validator::new(&document, #definition, &[])?));
        }
        if operation.body.is_some() {
            let field = format_ident!("{}_body", operation.rust);
            let definition = format!("{prefix}Body");
            validator_fields.push(quote!(#[doc = " Checks the body of a custom operation."] pub #field: ::prefiq_runtime::validate::Validator));
            validator_inits.push(quote!(#field: ::prefiq_runtime::validate::Validator::new(&document, #definition, &[])?));
        }
        let handler = format_ident!("{}_handler", operation.rust);
        let method = format_ident!("{}", operation.method.to_ascii_lowercase());
        let path = &operation.path;
        routes.push(quote!(.route(#path, axum::routing::#method(operations::#handler::<S>))));
    }
    let openapi_route = format!("/api/{}/openapi.json", app.name);
    let operation_count = app.entities.len() * 5 + app.operations.len();
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
            ::prefiq_runtime::migrate::Migration { version: #version, name: #name, postgres: include_str!(#postgres), sqlite: include_str!(#sqlite) }
        }
    });
    let operations_module = if app.operations.is_empty() {
        quote!()
    } else {
        quote!(
            pub mod operations;
        )
    };
    let _ = operation_ids;
    quote! {
        //! The generated part of the app: routes, handlers, repositories, the service trait, and the
        //! embedded schemas, OpenAPI document and migrations. Regenerate with `prefiq codegen`.

        #(pub mod #modules;)*
        #operations_module
        mod service;

        pub use service::#service;

        use ::prefiq_runtime::deps::axum;
        use axum::routing::get;

        /// The app's name and migrations, for `prefiq_runtime::serve::main`.
        pub static APP: ::prefiq_runtime::serve::AppSpec = ::prefiq_runtime::serve::AppSpec {
            name: #app_name,
            migrations: MIGRATIONS,
        };

        /// The SQL migrations, in order.
        pub const MIGRATIONS: &[::prefiq_runtime::migrate::Migration] = &[#(#migrations),*];

        /// The OpenAPI 3.1 document.
        pub const OPENAPI: &str = include_str!("../../../core/openapi.json");

        /// The JSON Schemas request bodies are validated against.
        pub const SCHEMAS: &str = include_str!("schemas.json");

        /// How many operations the router serves (five per entity, plus the custom ones).
        pub const OPERATIONS: usize = #operation_count;

        /// Compiled request validators, built once at start-up.
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

        /// What every handler receives.
        pub struct AppState<S> {
            /// The hand-written service.
            pub service: ::std::sync::Arc<S>,
            /// The database.
            pub db: ::prefiq_runtime::Db,
            /// Request validators.
            pub validators: ::std::sync::Arc<Validators>,
        }

        impl<S> ::std::clone::Clone for AppState<S> {
            fn clone(&self) -> Self {
                Self { service: self.service.clone(), db: self.db.clone(), validators: self.validators.clone() }
            }
        }

        async fn openapi() -> impl axum::response::IntoResponse {
            ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
        }

        /// The app's routes under `/api/<app>/`, plus `/openapi.json`.
        pub fn router<S: #service>(service: S, db: ::prefiq_runtime::Db) -> ::std::result::Result<axum::Router, ::prefiq_runtime::validate::SchemaError> {
            let state = AppState { service: ::std::sync::Arc::new(service), db, validators: ::std::sync::Arc::new(Validators::new()?) };
            ::std::result::Result::Ok(axum::Router::new()
                #(#routes)*
                .route("/openapi.json", get(openapi))
                .route(#openapi_route, get(openapi))
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
    if !app.operations.is_empty() {
        files.push((
            "src/generated/operations.rs".to_owned(),
            operations_module(app, crates, &service),
        ));
    }
    Ok(files)
}
