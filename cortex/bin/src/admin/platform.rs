//! The platform's own pages: OAuth clients, signing keys and the jobs of every app. Only
//! platform operators see or use them; to anyone else they are a 403, whatever their tenant's
//! roles grant.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use prefiq_runtime::deps::uuid::Uuid;

use super::pages::{Layout, layout};
use super::{Admin, SignedForm, Visitor, render};
use crate::oauth::{self, ClientListing};

type Shared = Arc<Admin>;

/// The platform's pages.
pub(super) fn routes(admin: Shared) -> Router {
    Router::new()
        .route("/admin/clients", get(clients).post(register))
        .route("/admin/clients/{id}/revoke", post(revoke))
        .route("/admin/keys", get(keys))
        .route("/admin/jobs", get(jobs))
        .route("/admin/jobs/{app}/{id}/retry", post(retry_job))
        .route("/admin/jobs/{app}/{id}/run-again", post(run_job_again))
        .route("/admin/jobs/{app}/{id}/cancel", post(cancel_job))
        .with_state(admin)
}

/// The visitor of a platform page, as a handler's argument: a platform operator, or the 403
/// page for anyone else, whatever their tenant's roles grant.
struct Operator(Visitor);

impl FromRequestParts<Shared> for Operator {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        admin: &Shared,
    ) -> Result<Self, Response> {
        let visitor = Visitor::from_request_parts(parts, admin).await?;
        if !visitor.principal.operator {
            return Err(not_an_operator());
        }
        Ok(Operator(visitor))
    }
}

/// A form sent to a platform page: by a platform operator, with the session's anti-forgery
/// token (checked by [`SignedForm`]).
struct OperatorForm(SignedForm);

impl FromRequest<Shared> for OperatorForm {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        admin: &Shared,
    ) -> Result<Self, Response> {
        let form = SignedForm::from_request(request, admin).await?;
        if !form.visitor.principal.operator {
            return Err(not_an_operator());
        }
        Ok(OperatorForm(form))
    }
}

fn not_an_operator() -> Response {
    (
        StatusCode::FORBIDDEN,
        super::message_page(
            "Forbidden",
            "This page is for platform operators: a tenant's roles never open it.",
        ),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "clients.html")]
struct ClientsPage {
    layout: Layout,
    clients: Vec<ClientListing>,
    csrf: String,
    created: String,
    secret: String,
    error: String,
}

async fn clients_page(
    admin: &Admin,
    visitor: &Visitor,
    created: (String, String),
    error: String,
) -> Response {
    let clients = crate::identity::as_server(&admin.db, async |tx| oauth::clients(tx).await)
        .await
        .unwrap_or_default();
    render(&ClientsPage {
        layout: layout(admin, visitor, "OAuth clients"),
        clients,
        csrf: visitor.session.csrf.clone(),
        created: created.0,
        secret: created.1,
        error,
    })
}

async fn clients(State(admin): State<Shared>, Operator(visitor): Operator) -> Response {
    clients_page(&admin, &visitor, Default::default(), String::new()).await
}

/// Registers a client: a confidential one for a service (client credentials, in a tenant with
/// roles), or a public one (PKCE) with the paths of this server it may be sent back to.
async fn register(
    State(admin): State<Shared>,
    OperatorForm(SignedForm {
        visitor,
        fields: form,
    }): OperatorForm,
) -> Response {
    let field = |name: &str| {
        form.get(name)
            .and_then(|v| v.first())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let name = field("name");
    let public = field("public") == "on";
    let list = |name: &str| -> Vec<String> {
        field(name)
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let redirect_uris = list("redirect_uris");
    let roles = list("roles");
    let tenant = match field("tenant") {
        t if t.is_empty() => Ok(prefiq_runtime::auth::DEFAULT_TENANT),
        t => t
            .parse::<Uuid>()
            .map_err(|_| "The tenant is not a tenant id."),
    };
    let problem = if name.is_empty() || name.chars().count() > 100 {
        Some("Name the client (1 to 100 characters).".to_owned())
    } else if public && redirect_uris.is_empty() {
        Some("A public client needs at least one redirect URI.".to_owned())
    } else {
        tenant.err().map(str::to_owned)
    };
    if let Some(problem) = problem {
        return clients_page(&admin, &visitor, Default::default(), problem).await;
    }
    let tenant = tenant.unwrap_or(prefiq_runtime::auth::DEFAULT_TENANT);
    let made = async {
        let mut tx = admin
            .db
            .begin(&visitor.principal)
            .await
            .map_err(|e| e.to_string())?;
        let made = oauth::create_client(&mut tx, &name, tenant, &roles, &redirect_uris, public)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(made)
    }
    .await;
    match made {
        Ok((id, secret)) => {
            clients_page(
                &admin,
                &visitor,
                (id, secret.unwrap_or_default()),
                String::new(),
            )
            .await
        }
        Err(why) => clients_page(&admin, &visitor, Default::default(), why).await,
    }
}

async fn revoke(
    State(admin): State<Shared>,
    Path(id): Path<String>,
    OperatorForm(_): OperatorForm,
) -> Response {
    let _ =
        crate::identity::as_server(&admin.db, async |tx| oauth::revoke_client(tx, &id).await).await;
    Redirect::to("/admin/clients").into_response()
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    layout: Layout,
    /// `(kid, signs new tokens)`.
    keys: Vec<(String, bool)>,
}

/// The keys tokens are verified with, and the one they are signed with. The keys themselves
/// come from the deployment's secrets (`PREFIQ_SIGNING_KEY`), never from the database.
async fn keys(State(admin): State<Shared>, Operator(visitor): Operator) -> Response {
    let signing = admin.tokens.key.kid().to_owned();
    render(&KeysPage {
        layout: layout(&admin, &visitor, "Signing keys"),
        keys: admin
            .tokens
            .keys
            .keys
            .iter()
            .map(|k| (k.kid.clone(), k.kid == signing))
            .collect(),
    })
}

/// A cron schedule on the jobs page.
struct ScheduleRow {
    app: String,
    name: String,
    expression: String,
    kind: String,
    last: String,
    next: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    csrf: String,
    /// The state the list shows, or empty for every state.
    state: String,
    counts: Vec<prefiq_runtime::jobs::Count>,
    jobs: Vec<prefiq_runtime::jobs::JobSummary>,
    schedules: Vec<ScheduleRow>,
    error: String,
}

/// The jobs page: how many jobs each app's queues hold in each state, the newest jobs (the
/// dead letters with `?state=discarded`) with retry and cancel, and every cron schedule with
/// its last and next tick.
async fn jobs(
    State(admin): State<Shared>,
    Operator(visitor): Operator,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    use prefiq_runtime::jobs;
    let state = query.get("state").and_then(|s| jobs::State::parse(s));
    let now = prefiq_runtime::db::now();
    let read = async {
        let counts = jobs::counts(&admin.db).await?;
        let listed = jobs::recent(&admin.db, state, 100).await?;
        let ticks = jobs::last_ticks(&admin.db).await?;
        Ok::<_, prefiq_runtime::db::DbError>((counts, listed, ticks))
    }
    .await;
    let (counts, listed, ticks, error) = match read {
        Ok((c, l, t)) => (c, l, t, String::new()),
        Err(error) => (
            Vec::new(),
            Vec::new(),
            Default::default(),
            format!("The jobs could not be read: {error}"),
        ),
    };
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "never".into())
    };
    let mut schedules = Vec::new();
    for (app, registry) in crate::server::registries(&Default::default()) {
        for schedule in registry.schedules(now) {
            let last = ticks.get(&(app.to_owned(), schedule.name.clone())).copied();
            schedules.push(ScheduleRow {
                app: app.to_owned(),
                last: when(last),
                next: when(schedule.next),
                name: schedule.name,
                expression: schedule.expression,
                kind: schedule.kind,
            });
        }
    }
    render(&JobsPage {
        layout: layout(&admin, &visitor, "Jobs"),
        csrf: visitor.session.csrf.clone(),
        state: state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        counts,
        jobs: listed,
        schedules,
        error,
    })
}

/// Runs a discarded or cancelled job again.
async fn retry_job(
    State(admin): State<Shared>,
    Path((app, id)): Path<(String, Uuid)>,
    OperatorForm(_): OperatorForm,
) -> Response {
    let _ = prefiq_runtime::jobs::retry(&admin.db, &app, id).await;
    Redirect::to("/admin/jobs").into_response()
}

/// Cancels a job that waits.
async fn cancel_job(
    State(admin): State<Shared>,
    Path((app, id)): Path<(String, Uuid)>,
    OperatorForm(_): OperatorForm,
) -> Response {
    let _ = prefiq_runtime::jobs::cancel(&admin.db, &app, id).await;
    Redirect::to("/admin/jobs").into_response()
}

/// Runs a completed job once more: a webhook delivery sent again.
async fn run_job_again(
    State(admin): State<Shared>,
    Path((app, id)): Path<(String, Uuid)>,
    OperatorForm(_): OperatorForm,
) -> Response {
    let _ = prefiq_runtime::jobs::run_again(&admin.db, &app, id).await;
    Redirect::to("/admin/jobs").into_response()
}
