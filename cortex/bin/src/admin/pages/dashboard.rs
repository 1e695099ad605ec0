//! The dashboard: the installed apps and the latest audit entries.

use askama::Template;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;

use super::audit::{Activity, entries};
use super::{Layout, Shared, Visitor, layout, plural_label, render};

/// An app's tile on the dashboard.
struct AppTile {
    name: String,
    version: String,
    entities: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    apps: Vec<AppTile>,
    recent: Vec<Activity>,
}

pub(super) async fn dashboard(State(admin): State<Shared>, visitor: Visitor) -> Response {
    let mut apps = Vec::new();
    for catalog in &admin.catalogs {
        let mut entities = Vec::new();
        for entity in catalog.entities {
            let reply = admin
                .call(
                    &visitor.principal,
                    Method::GET,
                    &format!("{}?limit=1&count=exact", entity.collection),
                    None,
                    None,
                )
                .await;
            if reply.status.is_success() {
                entities.push((
                    plural_label(entity),
                    format!("/admin/{}/{}", catalog.name, entity.plural),
                    reply.body["total"].to_string(),
                ));
            }
        }
        if !entities.is_empty() {
            apps.push(AppTile {
                name: catalog.name.to_owned(),
                version: catalog.version.to_owned(),
                entities,
            });
        }
    }
    let recent = entries(&admin, &visitor, "limit=10")
        .await
        .map(|(items, _)| items)
        .unwrap_or_default();
    let page = DashboardPage {
        layout: layout(&admin, &visitor, "Dashboard"),
        apps,
        recent,
    };
    render(&page)
}
