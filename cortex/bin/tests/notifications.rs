//! Notifications under Cortex on SQLite and PostgreSQL, against a real SMTP server (`aiosmtpd`
//! from PyPI, started here; each message is read back with Python's own e-mail parser):
//! - a new user is invited by e-mail while the SMTP server is down, without holding the request
//!   up; the invitation is retried and arrives once the server is up; its one-time link sets a
//!   password, once;
//! - a forgotten password is reset by a link e-mailed to the account, with the same answer for
//!   an e-mail that has none, and the reset ends the user's sessions;
//! - a disabled webhook tells its tenant's administrators in the app and by e-mail, as each
//!   chose per channel, and nobody else; each marks theirs read, and changes nothing more.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::{Principal, Sql, events};
use prefiq_testkit::{Backend, tools};
use serde_json::{Value, json};

use crate::common::{self, Cortex, MAIL_FROM, browser, hidden, page, submit, until};

/// Every message the server receives is written to `<dir>/<n>.json` as `{to, from, subject,
/// text, html}`, parsed by the standard library's e-mail parser.
const SMTP_SINK: &str = r#"
import json, pathlib, sys
from email import message_from_bytes, policy
from aiosmtpd.controller import Controller

out, port = pathlib.Path(sys.argv[1]), int(sys.argv[2])

class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        part = lambda kind: (message.get_body((kind,)) or {}).get_content() if message.get_body((kind,)) else None
        record = {
            "to": envelope.rcpt_tos,
            "from": str(message["from"]),
            "subject": str(message["subject"]),
            "text": part("plain"),
            "html": part("html"),
        }
        n = len(list(out.glob("*.json")))
        tmp = out / f"{n:04}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.rename(out / f"{n:04}.json")
        return "250 OK"

controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"#;

/// A local SMTP server, stopped when dropped.
struct Smtp {
    child: Child,
    dir: tempfile::TempDir,
}

impl Smtp {
    fn start(port: u16) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(tools::tool(".venv/bin/python"))
            .args(["-c", SMTP_SINK])
            .arg(dir.path())
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "aiosmtpd starts");
        Smtp { child, dir }
    }

    fn messages(&self) -> Vec<Value> {
        messages_in(self.dir.path())
    }

    /// The messages to `to` once there are `count`, in the order received.
    async fn wait_for(&self, to: &str, count: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let found: Vec<Value> = self
                .messages()
                .into_iter()
                .filter(|m| m["to"] == json!([to]))
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {count} messages to {to}: {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn messages_in(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The link to this Cortex in a message's text part, as a path.
fn link(cortex: &Cortex, message: &Value) -> String {
    let text = message["text"].as_str().unwrap();
    let start = text
        .find(&cortex.base)
        .expect("the message links to Cortex");
    let url: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url[cortex.base.len()..].to_owned()
}

/// Sets a password through the page a link leads to; the final reply.
async fn choose_password(cortex: &Cortex, path: &str, password: &str) -> common::Reply {
    let b = browser();
    let form = page(cortex, &b, path).await.expect(200);
    let csrf = hidden(&form.text, "csrf").unwrap();
    let token = hidden(&form.text, "token").unwrap();
    let differ = submit(
        cortex,
        &b,
        "/password",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", password),
            ("confirm", "something else entirely"),
        ],
    )
    .await
    .expect(422);
    assert!(
        differ.text.contains("The two passwords differ"),
        "{}",
        differ.text
    );
    let csrf = hidden(&differ.text, "csrf").unwrap();
    submit(
        cortex,
        &b,
        "/password",
        &[
            ("csrf", &csrf),
            ("token", &token),
            ("password", password),
            ("confirm", password),
        ],
    )
    .await
}

/// Publishes `cortex.webhook_disabled` in `tenant`, as a failing webhook does.
async fn disable_a_webhook(cortex: &Cortex, tenant: Uuid, url: &str) {
    let mut tx = cortex
        .db
        .begin(&Arc::new(Principal::system(tenant)))
        .await
        .unwrap();
    let event = cortex_types::WebhookDisabled::new(
        Uuid::now_v7(),
        url.to_owned(),
        "disabled after 10 failed deliveries in a row; the last: 500".into(),
    );
    events::publish(&mut tx, "cortex", &event).await.unwrap();
    tx.commit().await.unwrap();
}

async fn unread(cortex: &Cortex, token: &str) -> Value {
    cortex
        .get("/api/cortex/me/notifications", token)
        .await
        .expect(200)
        .body
}

async fn people_are_invited_reset_and_notified_by_email_and_in_the_app(backend: Backend) {
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let cortex = Cortex::start_mailing(backend, &smtp_url).await;
    let mail = cortex::notifications::Mail::new(&smtp_url, MAIL_FROM, &cortex.base).unwrap();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let running = cortex::server::start_workers(
        cortex::server::Work {
            workers: 2,
            lease: 30,
            notifier: cortex::notifications::Notifier {
                mail: Some(Arc::new(mail)),
            },
            ..Default::default()
        },
        &cortex.db,
        &stopping,
    );

    // The SMTP server is down: the user is made at once, and their invitation waits.
    let a = cortex.tenant("mail-a").await;
    let asked = Instant::now();
    let nadia = cortex
        .post(
            "/api/cortex/users",
            &cortex.admin_token,
            &json!({"email": "nadia@mail.example", "name": "Nadia", "tenant_id": a, "roles": ["member"]}),
        )
        .await
        .expect(201);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "no request waits for SMTP"
    );
    let attempts = until("a failed attempt to send the invitation", async || {
        let rows = cortex
            .owner
            .clone()
            .fetch_all(
                Sql::new("SELECT attempt FROM prefiq_jobs WHERE kind = 'password_link' AND state = 'available'"),
                vec![],
            )
            .await
            .unwrap();
        let attempt: i32 = rows.first()?.req(0).unwrap();
        (attempt >= 1).then_some(attempt)
    })
    .await;
    assert!(attempts >= 1);
    let smtp = Smtp::start(port);
    let invitation = smtp.wait_for("nadia@mail.example", 1).await.remove(0);
    assert_eq!(invitation["from"], MAIL_FROM);
    assert_eq!(
        invitation["subject"], "Administrator invited you to mail-a on Cortex",
        "{invitation}"
    );
    let html = invitation["html"].as_str().unwrap();
    assert!(
        html.starts_with("<!doctype html>") && html.contains("Accept the invitation"),
        "{html}"
    );
    let path = link(&cortex, &invitation);
    assert!(path.starts_with("/password?token="), "{path}");
    // No password yet, so no way in but the link; the link sets one, once.
    let set = choose_password(&cortex, &path, "nadia's first password")
        .await
        .expect(200);
    assert!(set.text.contains("Your password is set"), "{}", set.text);
    let signed = browser();
    cortex
        .sign_in(&signed, "nadia@mail.example", "nadia's first password")
        .await
        .expect(303);
    let used = page(&cortex, &browser(), &path).await.expect(410);
    assert!(used.text.contains("expired or was used"), "{}", used.text);
    let nadia_id = nadia.body["id"].as_str().unwrap().to_owned();
    let audit = cortex
        .owner
        .clone()
        .fetch_all(
            Sql::built(format!(
                "SELECT changes, tenant_id FROM prefiq_audit WHERE entity_id = '{nadia_id}' AND action = 'update'"
            )),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        audit.len(),
        1,
        "the new password is in the audit log of the user's tenant"
    );
    let changes: Value = audit[0].opt_json(0).unwrap().unwrap();
    assert_eq!(changes["password"]["to"], prefiq_runtime::audit::REDACTED);
    assert_eq!(audit[0].req::<Uuid>(1).unwrap(), a);

    // A reset: the same answer with or without an account; the link ends every session.
    let reset_answer = async |email: &str| {
        let b = browser();
        let form = page(&cortex, &b, "/password/forgot").await.expect(200);
        let csrf = hidden(&form.text, "csrf").unwrap();
        let reply = submit(
            &cortex,
            &b,
            "/password/forgot",
            &[("csrf", &csrf), ("email", email)],
        )
        .await
        .expect(200);
        let start = reply.text.find("<p class=\"alert success\"").unwrap();
        reply.text[start..start + 200].to_owned()
    };
    let known = reset_answer("NADIA@mail.example").await;
    let unknown = reset_answer("nobody@mail.example").await;
    assert_eq!(
        known, unknown,
        "whether an e-mail has an account is not told"
    );
    let reset = smtp.wait_for("nadia@mail.example", 2).await.remove(1);
    assert_eq!(reset["subject"], "Reset your password on Cortex", "{reset}");
    choose_password(&cortex, &link(&cortex, &reset), "nadia's second password")
        .await
        .expect(200);
    let ended = page(&cortex, &signed, "/admin").await.expect(303);
    assert!(
        ended.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/login"),
        "the reset ended the session it did not start"
    );
    cortex
        .sign_in(&browser(), "nadia@mail.example", "nadia's first password")
        .await
        .expect(401);
    cortex
        .sign_in(&browser(), "nadia@mail.example", "nadia's second password")
        .await
        .expect(303);
    // A forged form sends nothing.
    submit(
        &cortex,
        &browser(),
        "/password/forgot",
        &[("csrf", "forged"), ("email", "nadia@mail.example")],
    )
    .await
    .expect(403);

    // A webhook disabled in tenant A tells A's administrators, and nobody else.
    let (_, alice) = cortex.user("alice@mail.example", a, &["admin"]).await;
    let (_, member) = cortex.user("member@mail.example", a, &["member"]).await;
    let b = cortex.tenant("mail-b").await;
    let (_, bob) = cortex.user("bob@mail.example", b, &["admin"]).await;
    disable_a_webhook(&cortex, a, "https://hooks.example/one").await;
    let told = until("alice's notification", async || {
        let mine = unread(&cortex, &alice).await;
        (mine["unread"] == 1).then_some(mine)
    })
    .await;
    let notice = &told["items"][0];
    assert_eq!(notice["kind"], "webhook_disabled");
    assert_eq!(
        notice["title"],
        "A webhook to https://hooks.example/one was disabled"
    );
    assert!(
        notice["link"]
            .as_str()
            .unwrap()
            .starts_with("/admin/cortex/webhooks/")
    );
    let emailed = smtp
        .wait_for("alice@mail.example", 2)
        .await
        .into_iter()
        .find(|m| m["subject"] == "A webhook to https://hooks.example/one was disabled")
        .expect("alice is e-mailed too");
    assert!(
        emailed["text"]
            .as_str()
            .unwrap()
            .contains("10 failed deliveries")
    );
    for other in [&member, &bob] {
        assert_eq!(
            unread(&cortex, other).await,
            json!({"items": [], "unread": 0})
        );
    }

    // Only `read` is the recipient's to change, and only the server makes notifications.
    let id = notice["id"].as_str().unwrap();
    let patched = cortex
        .call(
            reqwest::Method::PATCH,
            &format!("/api/cortex/notifications/{id}"),
            &alice,
            Some(&json!({"title": "forged", "read": true})),
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        (&patched.body["title"], &patched.body["read"]),
        (&notice["title"], &json!(true))
    );
    let made = cortex
        .post(
            "/api/cortex/notifications",
            &alice,
            &json!({"kind": "webhook_disabled", "title": "forged"}),
        )
        .await
        .expect(403);
    assert!(
        made.body["detail"]
            .as_str()
            .unwrap()
            .contains("made by the server")
    );
    cortex
        .call(
            reqwest::Method::PATCH,
            &format!("/api/cortex/notifications/{id}"),
            &bob,
            Some(&json!({"read": false})),
            None,
        )
        .await
        .expect(404);

    // Alice turns e-mail off for it: the next one is in the app only.
    let chosen = cortex
        .call(
            reqwest::Method::PUT,
            "/api/cortex/me/notification-preferences",
            &alice,
            Some(&json!({"items": [{"kind": "webhook_disabled", "channel": "email", "enabled": false}]})),
            None,
        )
        .await
        .expect(200);
    assert!(
        chosen.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["channel"] == "email" && p["enabled"] == false),
        "{}",
        chosen.text
    );
    cortex
        .call(
            reqwest::Method::PUT,
            "/api/cortex/me/notification-preferences",
            &alice,
            Some(&json!({"items": [{"kind": "password_reset", "channel": "email", "enabled": false}]})),
            None,
        )
        .await
        .expect(422);
    let before = smtp.messages().len();
    disable_a_webhook(&cortex, a, "https://hooks.example/two").await;
    until("alice's second notification", async || {
        (unread(&cortex, &alice).await["unread"] == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        smtp.messages()[before..]
            .iter()
            .all(|m| m["to"] != json!(["alice@mail.example"])),
        "no e-mail once turned off: {:?}",
        smtp.messages()
    );

    // The bell in the admin UI counts it; the page marks every one read.
    let ui = browser();
    cortex
        .sign_in(&ui, "alice@mail.example", common::ADMIN_PASSWORD)
        .await
        .expect(303);
    let dashboard = page(&cortex, &ui, "/admin").await.expect(200);
    assert!(
        dashboard
            .text
            .contains("<span class=\"count\" id=\"unread\">1</span>"),
        "{}",
        dashboard.text
    );
    let listed = page(&cortex, &ui, "/admin/notifications").await.expect(200);
    assert!(
        listed
            .text
            .contains("https://hooks.example/two was disabled")
    );
    let csrf = hidden(&listed.text, "csrf").unwrap();
    submit(
        &cortex,
        &ui,
        "/admin/notifications/read",
        &[("csrf", &csrf)],
    )
    .await
    .expect(303);
    assert_eq!(unread(&cortex, &alice).await["unread"], 0);
    let after = page(&cortex, &ui, "/admin").await.expect(200);
    assert!(!after.text.contains("id=\"unread\""), "the bell is quiet");

    let _ = stop.send(true);
    for task in running {
        task.await.unwrap();
    }
    drop(smtp);
    cortex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_people_are_invited_reset_and_notified_by_email_and_in_the_app() {
    people_are_invited_reset_and_notified_by_email_and_in_the_app(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_people_are_invited_reset_and_notified_by_email_and_in_the_app() {
    people_are_invited_reset_and_notified_by_email_and_in_the_app(Backend::Postgres).await;
}
