//! Work after the request: winning a deal enqueues a job, in the win's transaction, that adds a
//! thank-you task to the deal under the deal's tenant; in the server's own process by default,
//! or in a separate `app-crm worker` process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prefiq_runtime::auth::{KeySet, SigningKey};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::jobs::{self, Worker, WorkerOptions};
use prefiq_testkit::{Backend, Identity, Server};
use reqwest::Method;
use serde_json::{Value, json};

/// Creates a company and a deal named `name` as the caller of `token`; the deal's id.
async fn a_deal(server: &Server, token: &str, name: &str) -> String {
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let company = server
        .send(
            Method::POST,
            "/api/crm/companies",
            Some(&json!({"name": format!("Customer {}", Uuid::now_v7())})),
            &headers,
        )
        .await
        .expect(201)
        .body;
    let deal = server
        .send(
            Method::POST,
            "/api/crm/deals",
            Some(&json!({"name": name, "company_id": company["id"], "amount": "10.00"})),
            &headers,
        )
        .await
        .expect(201)
        .body;
    deal["id"].as_str().unwrap().to_owned()
}

/// Wins deal `id` as the caller of `token`, with `body`; the reply's status.
async fn win(server: &Server, token: &str, id: &str, body: Value) -> u16 {
    let auth = format!("Bearer {token}");
    server
        .send(
            Method::POST,
            &format!("/api/crm/deals/{id}/win"),
            Some(&body),
            &[("authorization", auth.as_str())],
        )
        .await
        .status
        .as_u16()
}

/// The deal's activities, as the caller of `token` sees them.
async fn activities(server: &Server, token: &str, deal: &str) -> Vec<Value> {
    let auth = format!("Bearer {token}");
    let reply = server
        .send(
            Method::GET,
            &format!("/api/crm/activities?deal_id=eq.{deal}"),
            None,
            &[("authorization", auth.as_str())],
        )
        .await
        .expect(200);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

async fn a_won_deal_gets_its_task_from_a_job_under_its_tenant(backend: Backend) {
    let server = Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await;
    let tenant = Uuid::now_v7();
    let own = server.token(&Identity::user(tenant, &["*"]));
    let other = server.token(&Identity::user(Uuid::now_v7(), &["*"]));
    let deal = a_deal(&server, &own, "Big one").await;
    assert_eq!(win(&server, &own, &deal, json!({})).await, 200);
    let queued = jobs::list(server.serving(), "crm").await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(
        (queued[0].kind.as_str(), queued[0].tenant),
        ("thank_customer", tenant)
    );
    assert!(
        activities(&server, &own, &deal).await.is_empty(),
        "nothing ran yet"
    );
    // A win refused half-way (its note makes an activity subject beyond its schema's 200
    // characters) leaves no job.
    let long = a_deal(&server, &own, &"n".repeat(200)).await;
    assert_eq!(
        win(&server, &own, &long, json!({"note": "Signed"})).await,
        409
    );
    assert_eq!(
        jobs::list(server.serving(), "crm").await.unwrap().len(),
        1,
        "the refused win enqueued nothing"
    );

    let options = WorkerOptions {
        poll: Duration::from_millis(20),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(
        server.serving().clone(),
        "crm",
        app_crm::services::jobs(),
        options,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    let start = Instant::now();
    let tasks = loop {
        let tasks = activities(&server, &own, &deal).await;
        if !tasks.is_empty() || start.elapsed() > Duration::from_secs(10) {
            break tasks;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["subject"], "Thank the customer for Big one");
    assert_eq!(tasks[0]["kind"], "task");
    assert!(
        activities(&server, &other, &deal).await.is_empty(),
        "another tenant sees none of it"
    );
    let start = Instant::now();
    while jobs::list(server.serving(), "crm")
        .await
        .unwrap()
        .iter()
        .any(|j| j.state != "completed")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "every job completes"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.send(()).unwrap();
    running.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_a_won_deal_gets_its_task_from_a_job_under_its_tenant() {
    a_won_deal_gets_its_task_from_a_job_under_its_tenant(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_won_deal_gets_its_task_from_a_job_under_its_tenant() {
    a_won_deal_gets_its_task_from_a_job_under_its_tenant(Backend::Postgres).await;
}

/// Starts the binary with `args` in `dir`; with `listens`, returns once it listens, with its URL.
fn binary(
    dir: &std::path::Path,
    keys: &str,
    args: &[&str],
    listens: bool,
) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_app-crm"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PREFIQ_AUTH")
        .env("PREFIQ_JWT_KEYS", keys)
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a first line");
    let base = if listens {
        line.trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("did not start: {line:?}"))
            .to_owned()
    } else {
        assert_eq!(line.trim(), "crm: running jobs");
        String::new()
    };
    (child, base)
}

fn terminate(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success(), "a clean shutdown");
}

/// Wins a new deal on the server at `base`; the deal's id.
async fn won_deal(base: &str, token: &str) -> String {
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let company: Value = post(
        "/api/crm/companies",
        json!({"name": Uuid::now_v7().to_string()}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let deal: Value = post(
        "/api/crm/deals",
        json!({"name": "Worked", "company_id": company["id"], "amount": "5.00"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = deal["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no deal: {deal}"));
    let won = post(&format!("/api/crm/deals/{id}/win"), json!({}))
        .await
        .unwrap();
    assert_eq!(won.status(), 200);
    id.to_owned()
}

/// The activities of deal `id` on the server at `base`.
async fn tasks(base: &str, token: &str, id: &str) -> Vec<Value> {
    let listed: Value = reqwest::Client::new()
        .get(format!("{base}/api/crm/activities?deal_id=eq.{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["items"].as_array().cloned().unwrap_or_default()
}

/// Waits for deal `id`'s thank-you task.
async fn task_arrives(base: &str, token: &str, id: &str) {
    let start = Instant::now();
    loop {
        let tasks = tasks(base, token, id).await;
        if let [task] = tasks.as_slice() {
            assert_eq!(task["subject"], "Thank the customer for Worked");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no task yet: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_jobs_itself_or_leaves_them_to_a_worker_process() {
    let key = SigningKey::generate("cortex-1");
    let keys = serde_json::to_string(&KeySet {
        keys: vec![key.public().clone()],
    })
    .unwrap();
    let token = prefiq_testkit::sign(&key, &Identity::admin());
    // By default the server runs its app's jobs.
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = binary(dir.path(), &keys, &["--bind", "127.0.0.1:0"], true);
    let id = won_deal(&base, &token).await;
    task_arrives(&base, &token, &id).await;
    terminate(server);
    // With `--workers 0` it runs none; a `worker` process beside it on the same database does.
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = binary(
        dir.path(),
        &keys,
        &["--bind", "127.0.0.1:0", "--workers", "0"],
        true,
    );
    let id = won_deal(&base, &token).await;
    // Several of the server's polling intervals pass: it runs no job.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        tasks(&base, &token, &id).await.is_empty(),
        "the server ran a job with --workers 0"
    );
    let (worker, _) = binary(dir.path(), &keys, &["worker"], false);
    task_arrives(&base, &token, &id).await;
    terminate(worker);
    terminate(server);
}
