//! Operations: every route an app serves, CRUD and custom alike, with everything a server,
//! a client or a document needs to know about it.

use serde::Serialize;
use serde_json::Value;

use crate::Type;

/// One route of an app.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    /// The `operationId`, as in `winDeal` or `listCompanies`.
    pub id: String,
    /// The Rust method name, as in `win_deal`.
    pub rust: String,
    /// The prefix of the names made for it, as in `WinDeal` (`WinDealParams`, `WinDealResponse`).
    pub type_prefix: String,
    /// The HTTP method.
    pub method: Method,
    /// The path template, as in `/api/crm/deals/{id}/win`.
    pub path: String,
    /// A generated CRUD route, or a custom operation.
    pub kind: OperationKind,
    /// `summary`.
    pub summary: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `deprecated`.
    pub deprecated: bool,
    /// `security`, as written in the fragment.
    pub security: Option<Value>,
    /// Who may call it and which rows it may touch.
    pub access: Access,
    /// Path, query and header parameters.
    pub params: Vec<OperationParam>,
    /// The type holding every parameter (custom operations with parameters only).
    pub params_type: Option<String>,
    /// The request body.
    pub body: Option<OperationBody>,
    /// Every response, by status: the declared ones and the errors the handler adds.
    pub responses: Vec<OperationResponse>,
    /// The file it came from (the entity's schema, for CRUD routes).
    pub source: String,
}

impl Operation {
    /// The CRUD action, for a generated route.
    pub fn crud_action(&self) -> Option<CrudAction> {
        match &self.kind {
            OperationKind::Crud { action, .. } => Some(*action),
            OperationKind::Custom => None,
        }
    }

    /// The success responses.
    pub fn successes(&self) -> impl Iterator<Item = &OperationResponse> {
        self.responses.iter().filter(|r| r.is_success())
    }

    /// The responses the operation declares (for a custom operation: what its service returns).
    pub fn declared(&self) -> impl Iterator<Item = &OperationResponse> {
        self.responses
            .iter()
            .filter(|r| r.origin == ResponseOrigin::Declared)
    }

    /// Whether it changes data (anything but `GET`).
    pub fn writes(&self) -> bool {
        self.method != Method::Get
    }
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// Every method, in the order OpenAPI lists them.
    pub const ALL: [Method; 5] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];

    /// `GET`, `POST`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// `get`, `post`, ...: the key of an OpenAPI path item, and axum's routing function.
    pub fn lower(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
        }
    }

    /// The method whose [`lower`](Method::lower) name is `name`.
    pub fn from_lower(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.lower() == name)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an operation comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OperationKind {
    /// A route generated for an entity.
    Crud {
        /// The entity.
        entity: String,
        /// Which of its routes.
        action: CrudAction,
    },
    /// An operation declared in an OpenAPI fragment and implemented by the app's service.
    Custom,
}

/// The generated routes of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrudAction {
    /// `GET` on the collection.
    List,
    /// `POST` on the collection.
    Create,
    /// `GET` on an item.
    Get,
    /// `PATCH` on an item.
    Update,
    /// `DELETE` on an item.
    Delete,
}

impl CrudAction {
    /// Every action, in route order.
    pub const ALL: [CrudAction; 5] = [
        CrudAction::List,
        CrudAction::Create,
        CrudAction::Get,
        CrudAction::Update,
        CrudAction::Delete,
    ];

    /// `list`, `create`, ...: the last part of a permission.
    pub fn as_str(self) -> &'static str {
        match self {
            CrudAction::List => "list",
            CrudAction::Create => "create",
            CrudAction::Get => "get",
            CrudAction::Update => "update",
            CrudAction::Delete => "delete",
        }
    }

    /// The permission the action needs: listing and getting are both `read`.
    pub fn verb(self) -> &'static str {
        match self {
            CrudAction::List | CrudAction::Get => "read",
            CrudAction::Create => "create",
            CrudAction::Update => "update",
            CrudAction::Delete => "delete",
        }
    }
}

/// Who may call an operation, and which rows it may touch. The slot Cortex fills: the
/// permission is always set; grants and row scope come from the schemas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// The permission a caller needs: `<app>.<entity>.<verb>` for CRUD routes (as in
    /// `crm.deal.update`), `<app>.<operationId>` for custom operations (as in `crm.winDeal`).
    pub permission: String,
    /// Roles granted the permission by default.
    pub default_roles: Vec<String>,
    /// Which rows the operation may see.
    pub rows: RowScope,
    /// Who may call it at all: [`crate::Scope::Platform`] operations only platform operators,
    /// whatever a tenant's roles grant.
    pub scope: crate::Scope,
}

/// Which rows an operation may see or change, within the caller's tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowScope {
    /// Every row of the tables it touches.
    All,
    /// The caller's own rows, unless it holds `permission` (`<app>.<entity>.all-rows`).
    Owner {
        /// The permission that lifts the rule.
        all_rows: String,
    },
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

impl OperationParamKind {
    /// `path`, `query` or `header`, as OpenAPI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationParamKind::Path => "path",
            OperationParamKind::Query => "query",
            OperationParamKind::Header => "header",
        }
    }
}

/// What a parameter means to the generated handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum ParamRole {
    /// An input of a custom operation, handed to the service.
    Input,
    /// The primary key of the row, in the path.
    Key,
    /// Rows per page.
    Limit,
    /// Where the page starts.
    Cursor,
    /// Whether to count the matching rows.
    Count,
    /// The sort keys.
    Sort,
    /// A filter on a field.
    Filter {
        /// The field.
        field: String,
    },
    /// A group of conditions of which one must hold.
    Or,
    /// The `If-Match` precondition.
    IfMatch,
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
    /// What it means to the handler.
    #[serde(flatten)]
    pub role: ParamRole,
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

impl OperationParam {
    /// The member it becomes in its operation's parameters type.
    pub fn member(&self) -> crate::Member {
        crate::Member {
            name: self.name.clone(),
            rust: self.rust.clone(),
            ty: self.ty.clone(),
            required: self.required,
            nullable: false,
            boxed: false,
            default: self.default.clone(),
            description: self.description.clone(),
            deprecated: false,
            examples: vec![],
        }
    }
}

/// The request body of an operation.
#[derive(Debug, Clone, Serialize)]
pub struct OperationBody {
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Type,
    /// Its media type: `application/json`, or `application/merge-patch+json` for a patch.
    pub media_type: String,
    /// `description`.
    pub description: Option<String>,
    /// The rules of `core/validation/` it must keep, for a custom operation's body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::Rule>,
}

/// Who decided that an operation gives a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseOrigin {
    /// The operation: a CRUD route's success, or any response a fragment declares.
    Declared,
    /// Prefiq's handlers: the standard errors (bad input, conflicts, 500), shared by every
    /// operation that can give them.
    Standard,
}

/// A header of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseHeader {
    /// The row version, for `If-Match`.
    ETag,
    /// The URL of a new resource.
    Location,
}

/// One response of an operation.
#[derive(Debug, Clone, Serialize)]
pub struct OperationResponse {
    /// The status code.
    pub status: u16,
    /// The status name, as in `NotFound`: the variant of the operation's response type.
    pub name: String,
    /// `description`.
    pub description: String,
    /// What the body is.
    pub body: ResponseBody,
    /// Who decided that the operation gives it.
    pub origin: ResponseOrigin,
    /// The headers it carries.
    pub headers: Vec<ResponseHeader>,
}

impl OperationResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
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
    /// An RFC 9457 problem; a 422's lists every invalid member.
    Problem,
}

impl ResponseBody {
    /// The schema of a problem with `status`: `ValidationProblem` for 422, `Problem` otherwise.
    pub fn problem_schema(status: u16) -> &'static str {
        if status == 422 {
            "ValidationProblem"
        } else {
            "Problem"
        }
    }
}
