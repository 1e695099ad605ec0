//! The `cortex` binary: `cargo run -p cortex` serves on SQLite with no set-up and prints a
//! one-time administrator password once; production refuses to start without a signing key;
//! `admin create` and `token create` work from the command line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn cortex(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cortex"));
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PREFIQ_SIGNING_KEY")
        .env_remove("PREFIQ_ADMIN_EMAIL")
        .env_remove("PREFIQ_ADMIN_PASSWORD")
        .env_remove("PREFIQ_ENV")
        .env("PREFIQ_LOG", "warn");
    command
}

#[test]
fn production_refuses_to_start_without_a_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = cortex(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .env("PREFIQ_ENV", "production")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PREFIQ_SIGNING_KEY"), "{stderr}");
    assert!(
        !dir.path().join(".prefiq/cortex.db").exists(),
        "nothing was made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_on_sqlite_needs_no_set_up_and_prints_a_one_time_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cortex(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("it listens")
        .to_owned();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "graceful shutdown:\n{stderr}"
    );
    let password = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("the one-time password is printed")
        .to_owned();
    assert!(stderr.contains("admin@localhost"));
    assert!(
        dir.path().join(".prefiq/cortex.db").exists(),
        "the embedded default is SQLite"
    );
    assert!(
        dir.path().join(".prefiq/cortex-signing.key").exists(),
        "a development key was made"
    );
    // The password is shown once only, and works.
    let mut again = cortex(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(again.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_again = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .get(format!("{base_again}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = login.find(marker).unwrap() + marker.len();
    let csrf = &login[start..start + login[start..].find('"').unwrap()];
    let signed = client
        .post(format!("{base_again}/login"))
        .form(&[
            ("csrf", csrf),
            ("email", "admin@localhost"),
            ("password", password.as_str()),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303, "the one-time password signs in");
    let _ = base;
    let _ = Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status();
    let mut stderr_again = String::new();
    again
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr_again)
        .unwrap();
    again.wait().unwrap();
    assert!(
        !stderr_again.contains(&password),
        "the password is never shown again"
    );
    assert!(!stderr_again.contains("password:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_and_token_create_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut create = cortex(dir.path())
        .args([
            "admin",
            "create",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let created = create.wait_with_output().unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
    let short = cortex(dir.path())
        .args([
            "admin",
            "create",
            "--email",
            "x@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(!short.status.success(), "an empty password is refused");
    let token = cortex(dir.path())
        .args([
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ci",
            "--expires-in",
            "30d",
        ])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("pfq_"), "{token}");
    let unknown = cortex(dir.path())
        .args([
            "token",
            "create",
            "--email",
            "nobody@example.com",
            "--name",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    // The server accepts the token; with PREFIQ_ADMIN_* unset it made no second administrator.
    let mut server = cortex(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let me = client
        .get(format!("{base}/api/cortex/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["permissions"], serde_json::json!(["*"]));
    let users: serde_json::Value = client
        .get(format!("{base}/api/cortex/users?count=exact"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        users["total"], 1,
        "only the administrator the command line made"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    server.wait().unwrap();
}

/// What the deployment runs: `cortex migrate` (the migration job) in production, with the
/// database URL and signing key from mounted secret files, then `serve` from the same files,
/// and `cortex probe` as the container healthcheck.
#[test]
fn the_migration_job_and_the_healthcheck_run_in_production_from_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("database-url"), "sqlite:deployed.db\n").unwrap();
    let key = cortex(dir.path())
        .args(["key", "generate"])
        .output()
        .unwrap();
    assert!(key.status.success());
    std::fs::write(dir.path().join("signing-key"), &key.stdout).unwrap();
    let production = |command: &mut Command| {
        command
            .env("PREFIQ_ENV", "production")
            .env("DATABASE_URL_FILE", "database-url")
            .env("PREFIQ_SIGNING_KEY_FILE", "signing-key")
            .env("PREFIQ_PUBLIC_URL", "https://id.example.com");
    };

    // Production names its issuer: an https public URL, never one made up or taken from a
    // request's Host.
    for (url, says) in [
        (None, "needs PREFIQ_PUBLIC_URL"),
        (Some("http://id.example.com"), "must be https in production"),
        (
            Some("http://127.0.0.1.example.com:8080"),
            "must be https in production",
        ),
        (Some("https://id.example.com/?next=x"), "no query"),
    ] {
        let mut serve = cortex(dir.path());
        production(&mut serve);
        match url {
            Some(url) => serve.env("PREFIQ_PUBLIC_URL", url),
            None => serve.env_remove("PREFIQ_PUBLIC_URL"),
        };
        let refused = serve
            .args(["--bind", "127.0.0.1:0", "serve"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{url:?} is refused");
        assert!(stderr.contains(says), "{url:?}: {stderr}");
    }

    let mut migrate = cortex(dir.path());
    production(&mut migrate);
    let migrated = migrate.arg("migrate").output().unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(dir.path().join("deployed.db").exists());
    assert!(
        !dir.path().join(".prefiq").exists(),
        "no development key, no default database"
    );

    let mut serve = cortex(dir.path());
    production(&mut serve);
    let mut child = serve
        .args(["--bind", "127.0.0.1:0", "--no-migrate", "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let bind = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("it listens: {line:?}"))
        .to_owned();
    let probe = |bind: &str| {
        cortex(dir.path())
            .args(["--bind", bind, "probe"])
            .output()
            .unwrap()
    };
    let healthy = probe(&bind);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let gone = probe(&bind);
    assert!(!gone.status.success(), "nothing listens any more");

    // A secret file that is not there stops the start, naming the setting.
    let mut missing = cortex(dir.path());
    missing.env("PREFIQ_SIGNING_KEY_FILE", "nowhere");
    let refused = missing.arg("migrate").output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PREFIQ_SIGNING_KEY_FILE"));
}

/// Starts `cortex` with `args` in `dir`; its base URL once it listens (none for a worker, once
/// it says it runs jobs).
fn started(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    let mut child = cortex(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = match line.trim().strip_prefix("listening on ") {
        Some(base) => base.to_owned(),
        None => {
            assert_eq!(line.trim(), "cortex: running jobs", "unexpected first line");
            String::new()
        }
    };
    (child, base)
}

fn terminate(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success(), "a clean shutdown");
}

/// Wins a new CRM deal through Cortex; the deal's id.
async fn won_deal(base: &str, token: &str) -> String {
    let client = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let company: serde_json::Value = post(
        "/api/crm/companies".into(),
        serde_json::json!({"name": format!("Cortex Co {}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let deal: serde_json::Value = post(
        "/api/crm/deals".into(),
        serde_json::json!({"name": "Via Cortex", "company_id": company["id"], "amount": "3.00"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = deal["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no deal: {deal}"))
        .to_owned();
    let won = post(format!("/api/crm/deals/{id}/win"), serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(won.status(), 200);
    id
}

/// The deal's activities, through Cortex.
async fn activities(base: &str, token: &str, deal: &str) -> Vec<serde_json::Value> {
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/crm/activities?deal_id=eq.{deal}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["items"].as_array().cloned().unwrap_or_default()
}

async fn task_arrives(base: &str, token: &str, deal: &str) {
    let start = std::time::Instant::now();
    loop {
        let tasks = activities(base, token, deal).await;
        if let [task] = tasks.as_slice() {
            assert_eq!(task["subject"], "Thank the customer for Via Cortex");
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "no task: {tasks:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Cortex runs the installed apps' jobs: in its own process by default, or in `cortex worker`
/// processes beside servers started with `--workers 0`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cortex_runs_the_apps_jobs_itself_or_in_a_worker_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut create = cortex(dir.path())
        .args([
            "admin",
            "create",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(create.wait().unwrap().success());
    let token = cortex(dir.path())
        .args([
            "token",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "jobs",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let (server, base) = started(dir.path(), &["--bind", "127.0.0.1:0"]);
    let deal = won_deal(&base, &token).await;
    task_arrives(&base, &token, &deal).await;
    terminate(server);

    let (server, base) = started(dir.path(), &["--bind", "127.0.0.1:0", "--workers", "0"]);
    let deal = won_deal(&base, &token).await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(
        activities(&base, &token, &deal).await.is_empty(),
        "a server with --workers 0 ran a job"
    );
    let (worker, _) = started(dir.path(), &["worker"]);
    task_arrives(&base, &token, &deal).await;
    terminate(worker);
    terminate(server);
}

/// `cortex probe --database`, a worker pod's probe: 0 when the database answers, 1 and why
/// when it does not.
#[test]
fn the_database_probe_says_whether_the_database_answers() {
    let dir = tempfile::tempdir().unwrap();
    let ok = cortex(dir.path())
        .args(["probe", "--database"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let down = cortex(dir.path())
        .args(["probe", "--database"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
        .output()
        .unwrap();
    assert!(!down.status.success());
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("127.0.0.1:1") && stderr.contains("did not answer"),
        "{stderr}"
    );
}
