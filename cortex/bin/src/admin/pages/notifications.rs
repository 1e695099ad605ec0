//! The bell's page: the visitor's notifications in the tenant they act in, marked read one by
//! one or all at once, and what they are told by which channel.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use prefiq_runtime::deps::uuid::Uuid;

use crate::identity;
use crate::notifications::{self, Channel, KINDS, Listed};

use super::{Admin, Layout, Shared, SignedForm, Visitor, layout, render};

/// The most notifications the page lists.
const LISTED: i64 = 100;

/// One channel of one kind, in the preferences table.
struct Cell {
    /// Whether the kind goes by it.
    offered: bool,
    /// The checkbox's name, `<kind>:<channel>`.
    name: String,
    /// The channel, in words.
    channel: &'static str,
    /// Whether the visitor is told so.
    on: bool,
}

/// One optional kind, in the preferences table.
struct Preference {
    label: &'static str,
    cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    layout: Layout,
    notices: Vec<Listed>,
    preferences: Vec<Preference>,
    mails: bool,
    csrf: String,
    saved: String,
    error: String,
}

const CHANNELS: [(Channel, &str); 2] = [
    (Channel::InApp, "in the app"),
    (Channel::Email, "by e-mail"),
];

async fn page(admin: &Admin, visitor: &Visitor, saved: &str, error: &str) -> Response {
    let (user, tenant) = (visitor.session.user.id, visitor.session.tenant);
    let read = async {
        // The notifications as the visitor (row-level security binds them to the tenant they
        // act in), their choices as the server.
        let mut tx = admin.db.begin_read(&visitor.principal).await?;
        let notices = notifications::latest(&mut tx, user, tenant, LISTED, false).await;
        tx.end_read();
        let chosen = identity::as_server(&admin.db, async |tx| {
            notifications::preferences(tx, user).await
        })
        .await?;
        Ok::<_, prefiq_runtime::db::DbError>((notices?, chosen))
    }
    .await;
    let Ok((notices, chosen)) = read else {
        return super::message_page("Unavailable", "The database cannot be reached; try again.")
            .into_response();
    };
    let preferences = KINDS
        .iter()
        .filter(|k| k.optional)
        .map(|kind| Preference {
            label: kind.label,
            cells: CHANNELS
                .iter()
                .map(|(channel, words)| Cell {
                    offered: kind.channels.contains(channel),
                    name: format!("{}:{}", kind.name, channel.as_str()),
                    channel: words,
                    on: chosen
                        .iter()
                        .any(|(k, c, on)| k.name == kind.name && c == channel && *on),
                })
                .collect(),
        })
        .collect();
    render(&NotificationsPage {
        layout: layout(admin, visitor, "Notifications"),
        notices,
        preferences,
        mails: admin.notifier.mails(),
        csrf: visitor.session.csrf.clone(),
        saved: saved.to_owned(),
        error: error.to_owned(),
    })
}

/// `work` in a transaction of the visitor's, committed when it succeeds.
async fn as_visitor<T>(
    admin: &Admin,
    visitor: &Visitor,
    work: impl AsyncFnOnce(&mut prefiq_runtime::Tx) -> Result<T, prefiq_runtime::db::DbError>,
) -> Result<T, prefiq_runtime::db::DbError> {
    let mut tx = admin.db.begin(&visitor.principal).await?;
    let out = work(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn notifications_page(State(admin): State<Shared>, visitor: Visitor) -> Response {
    page(&admin, &visitor, "", "").await
}

pub(super) async fn read_one(
    State(admin): State<Shared>,
    Path(id): Path<Uuid>,
    SignedForm { visitor, .. }: SignedForm,
) -> Response {
    let (user, tenant) = (visitor.session.user.id, visitor.session.tenant);
    // Another person's id changes nothing: the statement names the visitor.
    let _ = as_visitor(&admin, &visitor, async |tx| {
        notifications::mark_read(tx, user, tenant, id).await
    })
    .await;
    Redirect::to("/admin/notifications").into_response()
}

pub(super) async fn read_all(
    State(admin): State<Shared>,
    SignedForm { visitor, .. }: SignedForm,
) -> Response {
    let (user, tenant) = (visitor.session.user.id, visitor.session.tenant);
    let _ = as_visitor(&admin, &visitor, async |tx| {
        notifications::read_all(tx, user, tenant).await
    })
    .await;
    Redirect::to("/admin/notifications").into_response()
}

pub(super) async fn save_preferences(
    State(admin): State<Shared>,
    SignedForm {
        visitor,
        fields: form,
    }: SignedForm,
) -> Response {
    let user = &visitor.session.user;
    // An unchecked box is not sent: every channel of every optional kind is set, on or off.
    let saved: Result<(), String> = async {
        let mut tx = identity::write(&admin.db)
            .await
            .map_err(|e| e.to_string())?;
        for kind in KINDS.iter().filter(|k| k.optional) {
            for channel in kind.channels {
                let on = form.contains_key(&format!("{}:{}", kind.name, channel.as_str()));
                notifications::set_preference(&mut tx, user.id, kind.name, channel.as_str(), on)
                    .await?;
            }
        }
        tx.commit().await.map_err(|e| e.to_string())
    }
    .await;
    match saved {
        Ok(()) => page(&admin, &visitor, "Saved: you are told as chosen below.", "").await,
        Err(_) => {
            page(
                &admin,
                &visitor,
                "",
                "Your choices could not be saved; try again.",
            )
            .await
        }
    }
}
