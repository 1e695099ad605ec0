//! The generated routes of every entity, lowered once into [`Operation`]s: their ids, paths,
//! parameters, bodies and responses, and the names of the types derived from the entity.

use crate::ir::{
    Access, ArrayType, CrudAction, Entity, EntityTypes, Field, Method, NumberType, Operation,
    OperationBody, OperationKind, OperationParam, OperationParamKind, OperationResponse, ParamRole,
    ResponseBody, ResponseHeader, ResponseOrigin, RowScope, Scope, StringType, Type, status_name,
};

use std::collections::BTreeMap;

use prefiq_grammar::ValueKind;

use crate::ir::NamedType;
use crate::names::{pascal, rust_field};

/// The names of the types derived from an entity.
pub(super) fn entity_types(name: &str, plural: &str) -> EntityTypes {
    EntityTypes {
        create: format!("{name}Create"),
        patch: format!("{name}Patch"),
        replace: format!("{name}Replace"),
        page: format!("{name}Page"),
        query: format!("List{}Query", pascal(plural)),
    }
}

/// Sets the entity's paths under the app's `base` path.
pub(super) fn place(entity: &mut Entity, base: &str) {
    entity.collection_path = format!("{base}/{}", entity.plural);
    entity.item_path = format!("{}/{{id}}", entity.collection_path);
}

/// The operation id of an entity's route: `listCompanies`, `createCompany`, ...
pub(super) fn operation_id(entity: &Entity, action: CrudAction) -> String {
    match action {
        CrudAction::List => format!("list{}", pascal(&entity.plural)),
        CrudAction::Create => format!("create{}", entity.name),
        CrudAction::Get => format!("get{}", entity.name),
        CrudAction::Update => format!("update{}", entity.name),
        CrudAction::Delete => format!("delete{}", entity.name),
    }
}

/// The errors Prefiq's handlers give, each described once; every operation refers to these.
pub(super) fn standard_response(status: u16) -> OperationResponse {
    let description = match status {
        400 => "The request is malformed: bad JSON, or a bad query parameter.",
        404 => "No such resource (for a list: no page has this cursor).",
        409 => {
            "The change conflicts with stored data: a unique value is taken, or a reference is broken; or the first request with this `Idempotency-Key` is still running (retry after `Retry-After`)."
        }
        412 => "`If-Match` names a version that is no longer current.",
        413 => "The body is larger than the server accepts.",
        415 => "The body is not JSON.",
        401 => "No valid access token was sent: send `Authorization: Bearer <token>`.",
        403 => "The caller's roles do not grant the operation's permission.",
        422 => {
            "The body breaks the schema, or the `Idempotency-Key` was used for a different request; `errors` lists each invalid member."
        }
        _ => "The server failed; quote the `x-request-id` header when reporting it.",
    };
    OperationResponse {
        status,
        name: status_name(status),
        description: description.to_owned(),
        body: ResponseBody::Problem,
        origin: ResponseOrigin::Standard,
        headers: Vec::new(),
    }
}

fn success(
    status: u16,
    description: String,
    body: ResponseBody,
    headers: Vec<ResponseHeader>,
) -> OperationResponse {
    OperationResponse {
        status,
        name: status_name(status),
        description,
        body,
        origin: ResponseOrigin::Declared,
        headers,
    }
}

fn param(name: &str, kind: OperationParamKind, role: ParamRole, ty: Type) -> OperationParam {
    OperationParam {
        name: name.to_owned(),
        rust: rust_field(name),
        kind,
        role,
        required: kind == OperationParamKind::Path,
        ty,
        default: None,
        description: None,
    }
}

fn text() -> Type {
    Type::String(StringType::default())
}

/// What a filter on `field` accepts, for its parameter's description.
fn filter_description(
    entity: &Entity,
    field: &Field,
    grammar: &prefiq_grammar::Field<'_>,
) -> String {
    let operators: Vec<String> = prefiq_grammar::Operator::ALL
        .into_iter()
        .filter(|op| op.applies(grammar.kind, grammar.nullable, grammar.items))
        .map(|op| format!("`{}` ({})", op.name(), op.meaning()))
        .collect();
    format!(
        "Filter {} by `{}`: `op.value`, where op is {}. Repeat the parameter (at most {} times) for conditions that must all hold.",
        entity.plural,
        field.member.name,
        operators.join(", "),
        prefiq_grammar::MAX_PER_FIELD
    )
}

/// How a field's filter values are written, or `None` for a field holding structured JSON.
fn value_kind<'a>(
    ty: &'a Type,
    enums: &'a BTreeMap<String, Vec<&'a str>>,
) -> Option<ValueKind<'a>> {
    Some(match ty {
        Type::Integer(n) if n.bits == 32 => ValueKind::Int32,
        Type::Integer(_) => ValueKind::Int64,
        Type::Number(_) => ValueKind::Float,
        Type::Decimal(_) => ValueKind::Decimal,
        Type::Boolean => ValueKind::Bool,
        Type::Uuid => ValueKind::Uuid,
        Type::Date => ValueKind::Date,
        Type::DateTime => ValueKind::DateTime,
        Type::String(_) => ValueKind::Text,
        Type::Enum { name } => ValueKind::Enum(enums.get(name)?.as_slice()),
        _ => return None,
    })
}

/// A filter field's grammar: its kind, whether it may be null, and its items' kind if an array.
fn grammar_field<'a>(
    field: &'a Field,
    enums: &'a BTreeMap<String, Vec<&'a str>>,
) -> Option<prefiq_grammar::Field<'a>> {
    let (kind, items) = match &field.member.ty {
        Type::Array(a) => (ValueKind::Text, Some(value_kind(&a.items, enums)?)),
        ty => (value_kind(ty, enums)?, None),
    };
    Some(prefiq_grammar::Field {
        name: &field.member.name,
        kind,
        nullable: field.is_nullable_column(),
        items,
    })
}

fn patterned(pattern: String) -> Type {
    Type::String(StringType {
        pattern: Some(pattern),
        ..StringType::default()
    })
}

fn list_params(entity: &Entity, types: &BTreeMap<String, NamedType>) -> Vec<OperationParam> {
    let enums: BTreeMap<String, Vec<&str>> = types
        .iter()
        .filter_map(|(name, t)| match t {
            NamedType::Enum(e) => Some((
                name.clone(),
                e.values.iter().map(|v| v.value.as_str()).collect(),
            )),
            _ => None,
        })
        .collect();
    let limit = Type::Integer(NumberType {
        bits: 32,
        minimum: Some(1.into()),
        maximum: Some(1000.into()),
        ..NumberType::default()
    });
    let mut params = vec![
        OperationParam {
            default: Some(50.into()),
            description: Some("Rows per page, 1 to 1000.".into()),
            ..param("limit", OperationParamKind::Query, ParamRole::Limit, limit)
        },
        OperationParam {
            description: Some(
                "The `next_cursor` of the previous page; one this API did not make is a 404."
                    .into(),
            ),
            ..param(
                "cursor",
                OperationParamKind::Query,
                ParamRole::Cursor,
                patterned(prefiq_grammar::CURSOR.to_owned()),
            )
        },
        OperationParam {
            description: Some("`exact` to add the number of matching rows as `total`.".into()),
            ..param("count", OperationParamKind::Query, ParamRole::Count, text())
        },
    ];
    let sortable: Vec<&str> = entity
        .fields
        .iter()
        .filter(|f| f.sortable)
        .map(|f| f.member.name.as_str())
        .collect();
    params.push(OperationParam {
        description: Some(format!(
            "Comma-separated sort keys, `-` for descending (NULLs last). Sortable: {}. The primary key breaks ties.",
            if sortable.is_empty() {
                "none".to_owned()
            } else {
                sortable.join(", ")
            }
        )),
        ..param(
            "sort",
            OperationParamKind::Query,
            ParamRole::Sort,
            patterned(prefiq_grammar::sort(&sortable)),
        )
    });
    let mut filterable = Vec::new();
    for field in entity.fields.iter().filter(|f| f.filterable) {
        let Some(grammar) = grammar_field(field, &enums) else {
            continue;
        };
        filterable.push(grammar);
        let values = Type::Array(Box::new(ArrayType {
            items: patterned(prefiq_grammar::filter(
                grammar.kind,
                grammar.nullable,
                grammar.items,
                prefiq_grammar::Bound::Counted,
            )),
            items_nullable: false,
            min_items: None,
            max_items: Some(prefiq_grammar::MAX_PER_FIELD as u64),
            unique_items: false,
        }));
        params.push(OperationParam {
            rust: field.member.rust.clone(),
            description: Some(filter_description(entity, field, &grammar)),
            ..param(
                &field.member.name,
                OperationParamKind::Query,
                ParamRole::Filter {
                    field: field.member.name.clone(),
                },
                values,
            )
        });
    }
    if !filterable.is_empty() {
        params.push(OperationParam {
            description: Some(format!(
                "A group of 1 to {} conditions of which one must hold: `or=(field.op.value,field.op.value)`; text values with `,` `(` or `)` are quoted (`\"a,b\"`); an `in` list or a set in a group holds at most {} values.",
                prefiq_grammar::MAX_OR,
                prefiq_grammar::MAX_OR_LIST
            )),
            ..param(
                "or",
                OperationParamKind::Query,
                ParamRole::Or,
                patterned(prefiq_grammar::or_group(&filterable)),
            )
        });
    }
    params
}

/// Who may call the route of `entity` that does `verb`, and which rows it sees.
fn access(app: &str, entity: &Entity, verb: &str) -> Access {
    Access {
        permission: format!("{app}.{}.{verb}", entity.snake),
        default_roles: entity
            .grants
            .iter()
            .filter(|(_, actions)| actions.iter().any(|a| a == verb))
            .map(|(role, _)| role.clone())
            .collect(),
        rows: match entity.owner {
            Some(_) => RowScope::Owner {
                all_rows: all_rows_permission(app, entity),
            },
            None => RowScope::All,
        },
        // Reading is a tenant's business (the rows it sees are another matter); writing a
        // platform entity is the platform's.
        scope: if verb == "read" {
            Scope::Tenant
        } else {
            entity.scope
        },
    }
}

/// The permission to see and change every row of an entity whose rows belong to their owner.
pub(crate) fn all_rows_permission(app: &str, entity: &Entity) -> String {
    format!("{app}.{}.all-rows", entity.snake)
}

/// The five routes of an entity of the app `app`; `types` holds the enums its filters name.
pub(super) fn operations(
    app: &str,
    entity: &Entity,
    types: &BTreeMap<String, NamedType>,
) -> Vec<Operation> {
    let key = OperationParam {
        rust: "id".into(),
        description: Some(format!(
            "The {}'s `{}`.",
            entity.name,
            entity.key().member.name
        )),
        ..param(
            "id",
            OperationParamKind::Path,
            ParamRole::Key,
            entity.key().member.ty.clone(),
        )
    };
    let if_match = OperationParam {
        description: Some(
            "The ETag last read; the request fails with 412 if the row changed since.".into(),
        ),
        ..param(
            "If-Match",
            OperationParamKind::Header,
            ParamRole::IfMatch,
            Type::String(StringType {
                pattern: Some(crate::ir::ETAG_LIST_PATTERN.to_owned()),
                ..StringType::default()
            }),
        )
    };
    let model = Type::Entity {
        name: entity.name.clone(),
    };
    let named = |name: &str| Type::Object {
        name: name.to_owned(),
    };
    let json = |ty: Type| ResponseBody::Json { ty };
    let body = |ty: Type, media: &str| OperationBody {
        ty,
        media_type: media.to_owned(),
        description: None,
        rules: Vec::new(),
    };
    CrudAction::ALL
        .into_iter()
        .filter(|action| !entity.read_only || matches!(action, CrudAction::List | CrudAction::Get))
        .map(|action| {
            let id = operation_id(entity, action);
            let (method, path, summary, description, params, request, success_response, errors) =
                match action {
                    CrudAction::List => (
                        Method::Get,
                        &entity.collection_path,
                        format!("List {}", entity.plural),
                        Some("Keyset-paginated: follow `next_cursor` until it is null."),
                        list_params(entity, types),
                        None,
                        success(
                            200,
                            format!("A page of {}.", entity.plural),
                            json(named(&entity.types.page)),
                            vec![],
                        ),
                        &[400, 404, 500][..],
                    ),
                    CrudAction::Create => (
                        Method::Post,
                        &entity.collection_path,
                        format!("Create {}", crate::names::a(&entity.name)),
                        None,
                        vec![],
                        Some(body(named(&entity.types.create), "application/json")),
                        success(
                            201,
                            format!("The new {}.", entity.name),
                            json(model.clone()),
                            vec![ResponseHeader::ETag, ResponseHeader::Location],
                        ),
                        &[400, 409, 413, 415, 422, 500][..],
                    ),
                    CrudAction::Get => (
                        Method::Get,
                        &entity.item_path,
                        format!("Get {}", crate::names::a(&entity.name)),
                        None,
                        vec![key.clone()],
                        None,
                        success(
                            200,
                            format!("The {}.", entity.name),
                            json(model.clone()),
                            vec![ResponseHeader::ETag],
                        ),
                        &[404, 500][..],
                    ),
                    CrudAction::Update => (
                        Method::Patch,
                        &entity.item_path,
                        format!("Update {}", crate::names::a(&entity.name)),
                        Some("A JSON merge patch (RFC 7386). Send `If-Match` with the ETag you read to be sure nobody changed it meanwhile (412 otherwise)."),
                        vec![key.clone(), if_match.clone()],
                        Some(body(named(&entity.types.patch), "application/merge-patch+json")),
                        success(
                            200,
                            format!("The updated {}.", entity.name),
                            json(model.clone()),
                            vec![ResponseHeader::ETag],
                        ),
                        &[400, 404, 409, 412, 413, 415, 422, 500][..],
                    ),
                    CrudAction::Delete => (
                        Method::Delete,
                        &entity.item_path,
                        format!("Delete {}", crate::names::a(&entity.name)),
                        None,
                        vec![key.clone(), if_match.clone()],
                        None,
                        success(204, "Deleted.".into(), ResponseBody::Empty, vec![]),
                        &[400, 404, 409, 412, 422, 500][..],
                    ),
                };
            let mut responses = vec![success_response];
            let mut errors = errors.to_vec();
            errors.extend([401, 403]);
            errors.sort_unstable();
            responses.extend(errors.iter().map(|s| standard_response(*s)));
            Operation {
                rust: rust_field(&id),
                type_prefix: pascal(&id),
                id,
                method,
                path: path.clone(),
                kind: OperationKind::Crud {
                    entity: entity.name.clone(),
                    action,
                },
                summary: Some(summary),
                description: description.map(str::to_owned),
                tags: vec![entity.name.clone()],
                deprecated: false,
                security: None,
                access: access(app, entity, action.verb()),
                params,
                params_type: None,
                body: request,
                responses,
                source: entity.source.clone(),
            }
        })
        .collect()
}
