//! Notifications: what Cortex tells people, in the app (a [`Notification`] row per recipient,
//! counted by the bell) and by e-mail (SMTP, rendered from `resources/templates/email/`), as
//! each person chose per kind and channel.
//!
//! - [`notify`] runs in the transaction of what caused it: the in-app row is written there and
//!   the e-mail is a job enqueued there, so a rolled-back cause tells nobody, and a failing SMTP
//!   server is retried with the queue's backoff and never holds a request up.
//! - Each [`Kind`] names its channels; a person turns a channel of an optional kind off
//!   ([`set_preference`]); a missing choice is "on". Invitations and password resets are not
//!   optional and go by e-mail only.
//! - A password link is a one-time secret stored as its SHA-256, made when its e-mail is sent
//!   (the job's payload holds no secret), used once, and ending with the user's other
//!   credentials when it sets their password.
//!
//! [`Notification`]: cortex_types::Notification

use std::sync::Arc;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prefiq_runtime::db::DbError;
use prefiq_runtime::deps::serde::{Deserialize, Serialize};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::events::Delivered;
use prefiq_runtime::jobs::{self, Failure, Job, JobContext, Registry};
use prefiq_runtime::{Db, Executor, SqlValue, Tx};
use serde_json::{Value, json};

use crate::identity::{self, sql};
use crate::messages::{Email, Messages};

/// How a notification reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A row of `notifications`, under the bell.
    InApp,
    /// An e-mail, when Cortex has an SMTP server.
    Email,
}

impl Channel {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "in_app",
            Channel::Email => "email",
        }
    }

    /// The channel named `name`.
    pub fn parse(name: &str) -> Option<Channel> {
        [Channel::InApp, Channel::Email]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
}

/// A kind of notification.
#[derive(Debug)]
pub struct Kind {
    /// Its name, as stored.
    pub name: &'static str,
    /// What it tells, for the preferences page.
    pub label: &'static str,
    /// The channels it goes by.
    pub channels: &'static [Channel],
    /// Whether people may turn it off.
    pub optional: bool,
}

/// Every kind of notification Cortex sends.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "webhook_disabled",
        label: "A webhook of your tenant was disabled after failed deliveries (administrators)",
        channels: &[Channel::InApp, Channel::Email],
        optional: true,
    },
    Kind {
        name: "invitation",
        label: "An invitation to set your password and sign in",
        channels: &[Channel::Email],
        optional: false,
    },
    Kind {
        name: "password_reset",
        label: "A link to reset your password, when you ask for one",
        channels: &[Channel::Email],
        optional: false,
    },
];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Where e-mail goes out: an SMTP server, the sender, and the base of the links in messages.
pub struct Mail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold the SMTP password: never shown.
        f.debug_struct("Mail")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mail {
    /// Mail through the server at `url` (`smtp://host:port` in the clear, `smtp://…?tls=required`
    /// with STARTTLS, `smtps://` with TLS from the start; `user:password@` to log in), from
    /// `from`, with links under `public_url`.
    pub fn new(url: &str, from: &str, public_url: &str) -> Result<Mail, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                format!("PREFIQ_SMTP_URL is not an SMTP URL (smtp://host:port, smtps://…): {e}")
            })?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from.parse::<Mailbox>().map_err(|e| {
            format!("PREFIQ_MAIL_FROM `{from}` is not an address (`Name <a@b.example>`): {e}")
        })?;
        Ok(Mail {
            transport,
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends `email` to `to`, with its text and HTML parts.
    pub async fn send(&self, to: &str, email: &Email) -> Result<(), String> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|e| format!("`{to}` is not an address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused the message: {e}"))
    }
}

/// How notifications go out: by e-mail too when there is an SMTP server.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    /// The SMTP server, if Cortex has one.
    pub mail: Option<Arc<Mail>>,
}

impl Notifier {
    /// Whether e-mail goes out.
    pub fn mails(&self) -> bool {
        self.mail.is_some()
    }
}

/// One person to tell.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The user.
    pub id: Uuid,
    /// Their tenant.
    pub tenant: Uuid,
    /// Their e-mail address.
    pub email: String,
}

/// What to tell.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Its kind (one of [`KINDS`]).
    pub kind: &'static str,
    /// One line.
    pub title: String,
    /// More, if there is more.
    pub body: Option<String>,
    /// A path of this site to see more.
    pub link: Option<String>,
}

/// The job that sends one e-mail: the notice, rendered when it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
pub struct SendEmail {
    /// The address.
    pub to: String,
    /// The template under `email/`.
    pub template: String,
    /// What it is rendered with.
    pub context: Value,
}

impl Job for SendEmail {
    const KIND: &'static str = "email";
}

/// What a password link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde", rename_all = "snake_case")]
pub enum Purpose {
    /// A new user's first password.
    Invitation,
    /// A forgotten password.
    Reset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Invitation => "invitation",
            Purpose::Reset => "reset",
        }
    }

    /// How long its link works.
    pub fn lifetime(self) -> chrono::Duration {
        match self {
            Purpose::Invitation => chrono::Duration::days(7),
            Purpose::Reset => chrono::Duration::hours(1),
        }
    }
}

/// The job that makes a one-time password link and e-mails it. The secret is made when it
/// runs, so that no job payload holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
pub struct SendPasswordLink {
    /// The user.
    pub user_id: Uuid,
    /// What for.
    pub purpose: Purpose,
    /// Who invited them (for an invitation).
    pub inviter: Option<String>,
}

impl Job for SendPasswordLink {
    const KIND: &'static str = "password_link";
}

/// Whether `user` is told of `kind` by `channel`: their choice, or yes.
pub async fn wants(
    tx: &mut impl Executor,
    user: Uuid,
    kind: &Kind,
    channel: Channel,
) -> Result<bool, DbError> {
    if !kind.channels.contains(&channel) {
        return Ok(false);
    }
    if !kind.optional {
        return Ok(true);
    }
    let statement = sql(
        tx,
        "SELECT enabled FROM cortex_notification_preferences WHERE user_id = $1 AND kind = $2 AND channel = $3",
    );
    let row = tx
        .fetch_optional(
            statement,
            vec![
                SqlValue::Uuid(user),
                SqlValue::Text(kind.name.to_owned()),
                SqlValue::Text(channel.as_str().to_owned()),
            ],
        )
        .await?;
    Ok(match row {
        Some(row) => row.req(0)?,
        None => true,
    })
}

/// What `user` chose, as `(kind, channel, told)` for every channel of every optional kind.
pub async fn preferences(
    tx: &mut impl Executor,
    user: Uuid,
) -> Result<Vec<(&'static Kind, Channel, bool)>, DbError> {
    let mut out = Vec::new();
    for kind in KINDS.iter().filter(|k| k.optional) {
        for channel in kind.channels {
            out.push((kind, *channel, wants(tx, user, kind, *channel).await?));
        }
    }
    Ok(out)
}

/// Records whether `user` is told of `kind` by `channel` (under the user's own tenant, whichever
/// they act in); an error names what cannot be chosen.
pub async fn set_preference(
    tx: &mut impl Executor,
    user: Uuid,
    kind: &str,
    channel: &str,
    enabled: bool,
) -> Result<(), String> {
    let found = self::kind(kind).ok_or_else(|| format!("`{kind}` is not a notification kind"))?;
    let channel = Channel::parse(channel)
        .filter(|c| found.channels.contains(c))
        .ok_or_else(|| format!("`{kind}` does not go by `{channel}`"))?;
    if !found.optional {
        return Err(format!("`{kind}` cannot be turned off"));
    }
    let statement = sql(
        tx,
        "INSERT INTO cortex_notification_preferences (user_id, tenant_id, kind, channel, enabled) \
         SELECT $1, tenant_id, $2, $3, $4 FROM users WHERE id = $1 \
         ON CONFLICT (user_id, kind, channel) DO UPDATE SET enabled = excluded.enabled, tenant_id = excluded.tenant_id",
    );
    tx.execute(
        statement,
        vec![
            SqlValue::Uuid(user),
            SqlValue::Text(found.name.to_owned()),
            SqlValue::Text(channel.as_str().to_owned()),
            SqlValue::Bool(enabled),
        ],
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Tells `to` of `notice` in the transaction `tx` (of the server, in the recipient's tenant),
/// by each channel they want: the in-app row now, the e-mail as a job.
pub async fn notify(
    tx: &mut Tx,
    notifier: &Notifier,
    to: &Recipient,
    notice: &Notice,
) -> Result<(), DbError> {
    let kind = kind(notice.kind).ok_or_else(|| {
        DbError::Internal(format!("`{}` is not a notification kind", notice.kind))
    })?;
    if wants(tx, to.id, kind, Channel::InApp).await? {
        let now = prefiq_runtime::db::now();
        let statement = sql(
            tx,
            "INSERT INTO notifications (id, tenant_id, owner_id, kind, title, body, link, \"read\", created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1)",
        );
        tx.execute(
            statement,
            vec![
                SqlValue::Uuid(Uuid::now_v7()),
                SqlValue::Uuid(to.tenant),
                SqlValue::Uuid(to.id),
                SqlValue::Text(kind.name.to_owned()),
                SqlValue::Text(notice.title.chars().take(200).collect()),
                SqlValue::text(
                    notice
                        .body
                        .as_deref()
                        .map(|b| b.chars().take(2000).collect::<String>())
                        .as_deref(),
                ),
                SqlValue::text(notice.link.as_deref()),
                SqlValue::Bool(false),
                SqlValue::DateTime(now),
            ],
        )
        .await?;
    }
    if notifier.mails() && wants(tx, to.id, kind, Channel::Email).await? {
        let job = SendEmail {
            to: to.email.clone(),
            template: "notice".into(),
            context: json!({
                "title": notice.title,
                "body": notice.body,
                "link": notice.link,
            }),
        };
        jobs::enqueue(tx, "cortex", &job).await?;
    }
    Ok(())
}

/// How many of `user`'s notifications in `tenant` are unread.
pub async fn unread(tx: &mut impl Executor, user: Uuid, tenant: Uuid) -> Result<i64, DbError> {
    let statement = sql(
        tx,
        "SELECT count(*) FROM notifications WHERE owner_id = $1 AND tenant_id = $2 AND NOT \"read\"",
    );
    tx.fetch_one(
        statement,
        vec![SqlValue::Uuid(user), SqlValue::Uuid(tenant)],
    )
    .await?
    .req(0)
}

/// One of a person's notifications, as the bell's page lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its id.
    pub id: Uuid,
    /// Its kind.
    pub kind: String,
    /// One line.
    pub title: String,
    /// More.
    pub body: Option<String>,
    /// Where to see more.
    pub link: Option<String>,
    /// Whether it was read.
    pub read: bool,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The latest `limit` notifications of `user` in `tenant` (only the unread ones with
/// `unread_only`), newest first.
pub async fn latest(
    tx: &mut impl Executor,
    user: Uuid,
    tenant: Uuid,
    limit: i64,
    unread_only: bool,
) -> Result<Vec<Listed>, DbError> {
    let statement = sql(
        tx,
        if unread_only {
            "SELECT id, kind, title, body, link, \"read\", created_at FROM notifications \
             WHERE owner_id = $1 AND tenant_id = $2 AND NOT \"read\" ORDER BY created_at DESC, id DESC LIMIT $3"
        } else {
            "SELECT id, kind, title, body, link, \"read\", created_at FROM notifications \
             WHERE owner_id = $1 AND tenant_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3"
        },
    );
    let rows = tx
        .fetch_all(
            statement,
            vec![
                SqlValue::Uuid(user),
                SqlValue::Uuid(tenant),
                SqlValue::Int(limit),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Listed {
                id: row.req(0)?,
                kind: row.req(1)?,
                title: row.req(2)?,
                body: row.opt(3)?,
                link: row.opt(4)?,
                read: row.req(5)?,
                created_at: row.req(6)?,
            })
        })
        .collect()
}

/// Marks the notification `id` of `user` in `tenant` read; whether it was theirs.
pub async fn mark_read(
    tx: &mut impl Executor,
    user: Uuid,
    tenant: Uuid,
    id: Uuid,
) -> Result<bool, DbError> {
    let statement = sql(
        tx,
        "UPDATE notifications SET \"read\" = $1, updated_at = $2, version = version + 1 \
         WHERE id = $3 AND owner_id = $4 AND tenant_id = $5 AND NOT \"read\"",
    );
    let changed = tx
        .execute(
            statement,
            vec![
                SqlValue::Bool(true),
                SqlValue::DateTime(prefiq_runtime::db::now()),
                SqlValue::Uuid(id),
                SqlValue::Uuid(user),
                SqlValue::Uuid(tenant),
            ],
        )
        .await?;
    Ok(changed == 1)
}

/// Marks every notification of `user` in `tenant` read; how many were not.
pub async fn read_all(tx: &mut impl Executor, user: Uuid, tenant: Uuid) -> Result<u64, DbError> {
    let statement = sql(
        tx,
        "UPDATE notifications SET \"read\" = $1, updated_at = $2, version = version + 1 \
         WHERE owner_id = $3 AND tenant_id = $4 AND NOT \"read\"",
    );
    tx.execute(
        statement,
        vec![
            SqlValue::Bool(true),
            SqlValue::DateTime(prefiq_runtime::db::now()),
            SqlValue::Uuid(user),
            SqlValue::Uuid(tenant),
        ],
    )
    .await
}

/// The active administrators of `tenant`.
pub async fn administrators(
    tx: &mut impl Executor,
    tenant: Uuid,
) -> Result<Vec<Recipient>, DbError> {
    let statement = sql(
        tx,
        "SELECT id, email, roles FROM users WHERE tenant_id = $1 AND active ORDER BY email",
    );
    let rows = tx
        .fetch_all(statement, vec![SqlValue::Uuid(tenant)])
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let roles: Vec<String> = row.opt_json(2)?.unwrap_or_default();
        if roles.iter().any(|r| r == "admin") {
            out.push(Recipient {
                id: row.req(0)?,
                tenant,
                email: row.req(1)?,
            });
        }
    }
    Ok(out)
}

/// A new one-time link for `user` (of `tenant`): its secret, which only the e-mail carries.
pub async fn create_link(
    tx: &mut impl Executor,
    user: Uuid,
    tenant: Uuid,
    purpose: Purpose,
) -> Result<(String, chrono::DateTime<chrono::Utc>), DbError> {
    let secret = identity::new_secret();
    let now = prefiq_runtime::db::now();
    let expires = now + purpose.lifetime();
    // One link works at a time: a new one (a retried e-mail, a second request) ends the last.
    let statement = sql(
        tx,
        "UPDATE cortex_password_links SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
    );
    tx.execute(
        statement,
        vec![
            SqlValue::DateTime(now),
            SqlValue::Uuid(user),
            SqlValue::Text(purpose.as_str().to_owned()),
        ],
    )
    .await?;
    let statement = sql(
        tx,
        "INSERT INTO cortex_password_links (token_hash, user_id, tenant_id, purpose, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    );
    tx.execute(
        statement,
        vec![
            SqlValue::Text(identity::digest(&secret)),
            SqlValue::Uuid(user),
            SqlValue::Uuid(tenant),
            SqlValue::Text(purpose.as_str().to_owned()),
            SqlValue::DateTime(now),
            SqlValue::DateTime(expires),
        ],
    )
    .await?;
    Ok((secret, expires))
}

/// The user a link still works for (unused, not expired, the user active), without using it.
pub async fn link_user(tx: &mut impl Executor, secret: &str) -> Result<Option<Uuid>, DbError> {
    let statement = sql(
        tx,
        "SELECT l.user_id FROM cortex_password_links l JOIN users u ON u.id = l.user_id \
         WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > $2 AND u.active",
    );
    let row = tx
        .fetch_optional(
            statement,
            vec![
                SqlValue::Text(identity::digest(secret)),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await?;
    row.map(|r| r.req(0)).transpose()
}

/// Uses a link: its user, once; every other link of theirs ends with it.
pub async fn use_link(tx: &mut impl Executor, secret: &str) -> Result<Option<Uuid>, DbError> {
    let Some(user) = link_user(tx, secret).await? else {
        return Ok(None);
    };
    let now = prefiq_runtime::db::now();
    let statement = sql(
        tx,
        "UPDATE cortex_password_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    );
    let used = tx
        .execute(
            statement,
            vec![
                SqlValue::DateTime(now),
                SqlValue::Text(identity::digest(secret)),
            ],
        )
        .await?;
    if used != 1 {
        return Ok(None); // another request used it first
    }
    let statement = sql(
        tx,
        "UPDATE cortex_password_links SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
    );
    tx.execute(
        statement,
        vec![SqlValue::DateTime(now), SqlValue::Uuid(user)],
    )
    .await?;
    Ok(Some(user))
}

/// How many reset links `user` was sent in the last hour.
pub async fn recent_resets(tx: &mut impl Executor, user: Uuid) -> Result<i64, DbError> {
    let statement = sql(
        tx,
        "SELECT count(*) FROM cortex_password_links WHERE user_id = $1 AND purpose = 'reset' AND created_at > $2",
    );
    let row = tx
        .fetch_one(
            statement,
            vec![
                SqlValue::Uuid(user),
                SqlValue::DateTime(prefiq_runtime::db::now() - chrono::Duration::hours(1)),
            ],
        )
        .await?;
    row.req(0)
}

/// The handlers of Cortex's notification jobs and subscribers, sending with `notifier`.
pub fn jobs(notifier: Notifier) -> Registry {
    let emails = notifier.clone();
    let links = notifier.clone();
    Registry::new()
        .on(move |ctx: JobContext, job: SendEmail| send_email(ctx, job, emails.clone()))
        .on(move |ctx: JobContext, job: SendPasswordLink| send_link(ctx, job, links.clone()))
        .on_event(
            "notify_administrators",
            move |ctx: JobContext, event: Delivered<cortex_types::WebhookDisabled>| {
                webhook_disabled(ctx, event, notifier.clone())
            },
        )
}

/// The templates, signed with `tenant`'s `branding.name`.
async fn messages(db: &Db, tenant: Uuid) -> Result<Messages, Failure> {
    let mut tx = identity::read(db).await?;
    let branding = crate::settings::get(&mut tx, tenant, "branding.name").await;
    tx.end_read();
    Messages::new(branding.as_str().unwrap_or("Cortex"))
        .map_err(|e| Failure::Discard(format!("the templates do not load: {e}")))
}

fn no_mail() -> Failure {
    Failure::Discard("Cortex has no SMTP server (PREFIQ_SMTP_URL) to send e-mail with".into())
}

async fn send_email(ctx: JobContext, job: SendEmail, notifier: Notifier) -> Result<(), Failure> {
    let mail = notifier.mail.ok_or_else(no_mail)?;
    let mut context = job.context;
    if let Some(link) = context.get("link").and_then(Value::as_str) {
        let url = format!("{}{link}", mail.public_url);
        context["url"] = Value::String(url);
    } else {
        context["url"] = Value::Null;
    }
    let email = messages(&ctx.db, ctx.tenant)
        .await?
        .email(&job.template, &context)
        .map_err(|e| {
            Failure::Discard(format!(
                "the e-mail `{}` does not render: {e}",
                job.template
            ))
        })?;
    mail.send(&job.to, &email).await.map_err(Failure::Retry)
}

async fn send_link(
    ctx: JobContext,
    job: SendPasswordLink,
    notifier: Notifier,
) -> Result<(), Failure> {
    let mail = notifier.mail.ok_or_else(no_mail)?;
    let mut tx = identity::write(&ctx.db).await?;
    let Some(user) = crate::generated::user::find(&mut tx, &job.user_id).await? else {
        return Ok(()); // deleted since
    };
    if !user.active {
        return Ok(());
    }
    let tenant = crate::generated::tenant::find(&mut tx, &user.tenant_id)
        .await?
        .map(|t| t.name)
        .unwrap_or_default();
    let (secret, expires) = create_link(&mut tx, user.id, user.tenant_id, job.purpose).await?;
    tx.commit().await?;
    // Committed first: a link whose e-mail fails is never known to anyone, and expires.
    let url = format!("{}/password?token={secret}", mail.public_url);
    let expires_at = expires.format("%Y-%m-%d %H:%M UTC").to_string();
    let messages = messages(&ctx.db, user.tenant_id).await?;
    let email = match job.purpose {
        Purpose::Invitation => messages.email(
            "invitation",
            &json!({
                "inviter": job.inviter.as_deref().unwrap_or("An administrator"),
                "tenant": tenant,
                "url": url,
                "expires_at": expires_at,
            }),
        ),
        Purpose::Reset => messages.email(
            "password_reset",
            &json!({"name": user.name, "url": url, "expires_at": expires_at}),
        ),
    }
    .map_err(|e| Failure::Discard(format!("the e-mail does not render: {e}")))?;
    mail.send(&user.email, &email).await.map_err(Failure::Retry)
}

/// Tells the administrators of the webhook's tenant that it was disabled.
async fn webhook_disabled(
    ctx: JobContext,
    event: Delivered<cortex_types::WebhookDisabled>,
    notifier: Notifier,
) -> Result<(), Failure> {
    let mut tx = ctx.db.begin(&ctx.principal).await?;
    let notice = Notice {
        kind: "webhook_disabled",
        title: format!("A webhook to {} was disabled", event.data.url),
        body: Some(event.data.reason.clone()),
        link: Some(format!("/admin/cortex/webhooks/{}", event.data.webhook_id)),
    };
    for admin in administrators(&mut tx, ctx.tenant).await? {
        notify(&mut tx, &notifier, &admin, &notice).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Each person's own notifications and choices over the API, whatever their roles grant:
/// `GET /api/cortex/me/notifications` (`?unread=true`, `?limit=`), `POST
/// /api/cortex/me/notifications/read` (`{"ids": [...]}`, or every one without `ids`), and
/// `GET`/`PUT /api/cortex/me/notification-preferences`. What the apps' bells call.
pub fn api(db: Db) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/cortex/me/notifications", get(api_list))
        .route("/api/cortex/me/notifications/read", post(api_read))
        .route(
            "/api/cortex/me/notification-preferences",
            get(api_preferences).put(api_choose),
        )
        .with_state(db)
}

type ApiResult = Result<axum::Json<Value>, prefiq_runtime::Problem>;

/// The person calling, with their tenant: service clients have no notifications.
fn person(ctx: &prefiq_runtime::RequestContext) -> Result<(Uuid, Uuid), prefiq_runtime::Problem> {
    ctx.principal
        .user
        .map(|user| (user, ctx.principal.tenant))
        .ok_or_else(|| prefiq_runtime::Problem::forbidden("only people have notifications"))
}

fn listed(notice: &Listed) -> Value {
    json!({
        "id": notice.id,
        "kind": notice.kind,
        "title": notice.title,
        "body": notice.body,
        "link": notice.link,
        "read": notice.read,
        "created_at": notice.created_at,
    })
}

async fn api_list(
    axum::extract::State(db): axum::extract::State<Db>,
    ctx: prefiq_runtime::RequestContext,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> ApiResult {
    let (user, tenant) = person(&ctx)?;
    let mut limit = 20;
    let mut unread_only = false;
    for (key, value) in form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("limit", n) => {
                limit = n
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (0..=100).contains(n))
                    .ok_or_else(|| {
                        prefiq_runtime::Problem::bad_request(
                            "`limit` is a whole number from 0 to 100",
                        )
                    })?;
            }
            ("unread", "true") => unread_only = true,
            ("unread", "false") => unread_only = false,
            (other, _) => {
                return Err(prefiq_runtime::Problem::bad_request(format!(
                    "`{other}` is not a parameter here: use `limit` and `unread`"
                )));
            }
        }
    }
    // As the caller: row-level security keeps the statement to their tenant, and the statement
    // to their own rows.
    let mut tx = db
        .begin_read(&ctx.principal)
        .await
        .map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    let unread = unread(&mut tx, user, tenant).await;
    let items = latest(&mut tx, user, tenant, limit, unread_only).await;
    tx.end_read();
    let (unread, items) = (
        unread.map_err(|e| prefiq_runtime::Problem::unavailable(&e))?,
        items.map_err(|e| prefiq_runtime::Problem::unavailable(&e))?,
    );
    let items: Vec<Value> = items.iter().map(listed).collect();
    Ok(axum::Json(json!({"items": items, "unread": unread})))
}

async fn api_read(
    axum::extract::State(db): axum::extract::State<Db>,
    ctx: prefiq_runtime::RequestContext,
    body: axum::body::Bytes,
) -> ApiResult {
    let (user, tenant) = person(&ctx)?;
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            prefiq_runtime::Problem::bad_request(format!("the body is not JSON: {e}"))
        })?
    };
    let ids: Option<Vec<Uuid>> = match body.get("ids") {
        None | Some(Value::Null) => None,
        Some(ids) => Some(serde_json::from_value(ids.clone()).map_err(|_| {
            prefiq_runtime::Problem::bad_request("`ids` is an array of notification ids (UUIDs)")
        })?),
    };
    let mut tx = db
        .begin(&ctx.principal)
        .await
        .map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    let done: Result<i64, DbError> = async {
        match ids {
            // Another person's id changes nothing: each statement names the caller.
            Some(ids) => {
                for id in ids.iter().take(1000) {
                    mark_read(&mut tx, user, tenant, *id).await?;
                }
            }
            None => {
                read_all(&mut tx, user, tenant).await?;
            }
        }
        unread(&mut tx, user, tenant).await
    }
    .await;
    let left = done.map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    tx.commit()
        .await
        .map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    Ok(axum::Json(json!({"unread": left})))
}

async fn api_preferences(
    axum::extract::State(db): axum::extract::State<Db>,
    ctx: prefiq_runtime::RequestContext,
) -> ApiResult {
    let (user, _) = person(&ctx)?;
    let mut tx = identity::read(&db)
        .await
        .map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    let chosen = preferences(&mut tx, user).await;
    tx.end_read();
    let chosen = chosen.map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    let items: Vec<Value> = chosen
        .iter()
        .map(|(kind, channel, enabled)| {
            json!({"kind": kind.name, "label": kind.label, "channel": channel.as_str(), "enabled": enabled})
        })
        .collect();
    Ok(axum::Json(json!({"items": items})))
}

async fn api_choose(
    axum::extract::State(db): axum::extract::State<Db>,
    ctx: prefiq_runtime::RequestContext,
    body: axum::body::Bytes,
) -> ApiResult {
    #[derive(Deserialize)]
    #[serde(crate = "prefiq_runtime::deps::serde", deny_unknown_fields)]
    struct Choice {
        kind: String,
        channel: String,
        enabled: bool,
    }
    #[derive(Deserialize)]
    #[serde(crate = "prefiq_runtime::deps::serde", deny_unknown_fields)]
    struct Choices {
        items: Vec<Choice>,
    }
    let (user, _) = person(&ctx)?;
    let choices: Choices = serde_json::from_slice(&body).map_err(|e| {
        prefiq_runtime::Problem::bad_request(format!(
            "the body is `{{\"items\": [{{\"kind\", \"channel\", \"enabled\"}}]}}`: {e}"
        ))
    })?;
    let mut tx = identity::write(&db)
        .await
        .map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    for (i, choice) in choices.items.iter().enumerate() {
        set_preference(&mut tx, user, &choice.kind, &choice.channel, choice.enabled)
            .await
            .map_err(|why| {
                prefiq_runtime::Problem::unprocessable(vec![prefiq_runtime::FieldError {
                    pointer: format!("/items/{i}"),
                    detail: why,
                    keyword: None,
                }])
            })?;
    }
    tx.commit()
        .await
        .map_err(|e| prefiq_runtime::Problem::unavailable(&e))?;
    api_preferences(axum::extract::State(db), ctx).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_goes_by_a_channel_and_only_optional_kinds_can_be_turned_off() {
        for kind in KINDS {
            assert!(!kind.channels.is_empty(), "{}", kind.name);
            assert!(
                prefiq_grammar::is_event_name(kind.name),
                "{} is a snake_case name",
                kind.name
            );
        }
        assert!(!kind("invitation").unwrap().optional);
        assert_eq!(Channel::parse("in_app"), Some(Channel::InApp));
        assert_eq!(Channel::parse("sms"), None);
    }

    #[test]
    fn a_bad_smtp_url_or_sender_is_a_clear_error() {
        let error = Mail::new("http://mail.example", "a@b.example", "http://x").unwrap_err();
        assert!(error.contains("PREFIQ_SMTP_URL"), "{error}");
        let error = Mail::new("smtp://127.0.0.1:2525", "not an address", "http://x").unwrap_err();
        assert!(error.contains("PREFIQ_MAIL_FROM"), "{error}");
        let mail = Mail::new(
            "smtp://user:hunter2@127.0.0.1:2525",
            "Cortex <cortex@b.example>",
            "http://x/",
        )
        .unwrap();
        assert!(!format!("{mail:?}").contains("hunter2"));
    }
}
