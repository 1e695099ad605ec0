//! The roles and the permissions each grants.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{
    Admin, Layout, Shared, SignedForm, Visitor, layout, message_page, query_param, render,
};

/// A permission's row in the grants matrix: per role, `(role, granted, role has everything)`.
struct GrantRow {
    permission: String,
    cells: Vec<(String, bool, bool)>,
}

#[derive(Template)]
#[template(path = "grants.html")]
struct GrantsPage {
    layout: Layout,
    roles: Vec<String>,
    rows: Vec<GrantRow>,
    csrf: String,
    message: String,
    /// `platform` when the platform's default roles are shown, else empty (the tenant's own).
    scope: String,
    /// The tenant whose roles are shown.
    tenant: String,
}

/// The permissions a role may be granted: a tenant's, never the platform's (which only a
/// platform operator holds, whatever roles say).
fn every_permission(admin: &Admin) -> Vec<(String, String)> {
    admin
        .catalogs
        .iter()
        .flat_map(|c| c.permissions.iter())
        .filter(|p| p.scope == prefiq_runtime::auth::Scope::Tenant)
        .map(|p| (p.name.to_owned(), p.action.to_owned()))
        .collect()
}

/// Which roles the grants page edits: the visitor's tenant's, or with `platform` (operators
/// only) the platform's defaults, which new tenants copy.
fn roles_query(visitor: &Visitor, platform: bool) -> String {
    let tenant = if platform {
        "is.null".to_owned()
    } else {
        format!("eq.{}", visitor.session.tenant)
    };
    format!("/api/cortex/roles?limit=1000&sort=name&tenant_id={tenant}")
}

async fn grants_page(
    admin: &Admin,
    visitor: &Visitor,
    platform: bool,
    message: String,
) -> Response {
    if platform && !visitor.principal.operator {
        return (
            StatusCode::FORBIDDEN,
            message_page(
                "Forbidden",
                "The platform's default roles are a platform operator's to change.",
            ),
        )
            .into_response();
    }
    let permissions = every_permission(admin);
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &roles_query(visitor, platform),
            None,
            None,
        )
        .await;
    if !reply.status.is_success() {
        return (reply.status, message_page("Not allowed", &reply.detail())).into_response();
    }
    let roles: Vec<(String, Vec<String>)> = reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|role| {
            (
                role["name"].as_str().unwrap_or_default().to_owned(),
                role["permissions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .collect();
    let rows = permissions
        .iter()
        .map(|(permission, _)| GrantRow {
            permission: permission.clone(),
            cells: roles
                .iter()
                .map(|(name, granted)| {
                    (
                        name.clone(),
                        granted
                            .iter()
                            .any(|g| prefiq_runtime::auth::permission_matches(g, permission)),
                        name == "admin",
                    )
                })
                .collect(),
        })
        .collect();
    let layout = layout(admin, visitor, "Roles and grants");
    render(&GrantsPage {
        tenant: if platform {
            "every new tenant".into()
        } else {
            layout.tenant.clone()
        },
        layout,
        roles: roles.into_iter().map(|r| r.0).collect(),
        rows,
        csrf: visitor.session.csrf.clone(),
        message,
        scope: if platform {
            "platform".into()
        } else {
            String::new()
        },
    })
}

pub(super) async fn grants(
    State(admin): State<Shared>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Response {
    let platform = query_param(&query, "scope").as_deref() == Some("platform");
    grants_page(&admin, &visitor, platform, String::new()).await
}

pub(super) async fn save_grants(
    State(admin): State<Shared>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let platform = form
        .get("scope")
        .and_then(|v| v.first())
        .is_some_and(|s| s == "platform");
    if platform && !visitor.principal.operator {
        return grants_page(&admin, &visitor, platform, String::new()).await;
    }
    let known: Vec<String> = every_permission(&admin).into_iter().map(|p| p.0).collect();
    let checked: Vec<(String, String)> = form
        .get("grant")
        .into_iter()
        .flatten()
        .filter_map(|g| g.split_once('|'))
        .map(|(role, permission)| (role.to_owned(), permission.to_owned()))
        .collect();
    let reply = admin
        .call(
            &visitor.principal,
            Method::GET,
            &roles_query(&visitor, platform),
            None,
            None,
        )
        .await;
    let mut changed = 0;
    let mut failures = Vec::new();
    if !reply.status.is_success() {
        failures.push(reply.detail());
    }
    for role in reply.body["items"].as_array().into_iter().flatten() {
        let name = role["name"].as_str().unwrap_or_default();
        if name == "admin" {
            continue;
        }
        let current: Vec<String> = role["permissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        // Grants the matrix does not show (wildcards, other permissions) stay.
        let mut next: Vec<String> = current
            .iter()
            .filter(|p| !known.contains(p))
            .cloned()
            .collect();
        next.extend(
            checked
                .iter()
                .filter(|(r, _)| r == name)
                .map(|(_, p)| p.clone())
                .filter(|p| known.contains(p)),
        );
        next.sort();
        next.dedup();
        let mut before = current.clone();
        before.sort();
        if before == next {
            continue;
        }
        let id = role["id"].as_str().unwrap_or_default();
        let tag = format!("\"{}\"", role["version"]);
        let result = admin
            .call(
                &visitor.principal,
                Method::PATCH,
                &format!("/api/cortex/roles/{id}"),
                Some(&serde_json::json!({ "permissions": next })),
                Some(&tag),
            )
            .await;
        if result.status.is_success() {
            changed += 1;
        } else {
            failures.push(format!("{name}: {}", result.detail()));
        }
    }
    let message = if failures.is_empty() {
        format!("Saved: {changed} role(s) changed.")
    } else {
        format!("Not all saved: {}", failures.join("; "))
    };
    grants_page(&admin, &visitor, platform, message).await
}
