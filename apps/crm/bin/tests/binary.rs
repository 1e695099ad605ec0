//! The app binary itself: `cargo run -p app-crm` serves on SQLite with no database set-up,
//! verifies the access tokens of a Cortex through a configured key set, refuses to start with
//! no keys (or with checks off in production), and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use prefiq_runtime::auth::{KeySet, SigningKey};
use prefiq_testkit::Identity;

/// A key, and its key set as `PREFIQ_JWT_KEYS` takes it.
fn keys() -> (SigningKey, String) {
    let key = SigningKey::generate("cortex-1");
    let set = serde_json::to_string(&KeySet {
        keys: vec![key.public().clone()],
    })
    .unwrap();
    (key, set)
}

/// Runs the binary with `env` until it exits; its status and standard error.
fn refused(env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut command = Command::new(env!("CARGO_BIN_EXE_app-crm"));
    command
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("PREFIQ_JWT_KEYS")
        .env_remove("PREFIQ_JWKS_URL")
        .env_remove("PREFIQ_AUTH")
        .env_remove("PREFIQ_ENV");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_binary_refuses_to_start_open_by_accident() {
    let (ok, stderr) = refused(&[]);
    assert!(!ok, "no keys, no start");
    assert!(
        stderr.contains("PREFIQ_JWT_KEYS") && stderr.contains("PREFIQ_AUTH=off"),
        "the error says what to set: {stderr}"
    );
    let (ok, stderr) = refused(&[("PREFIQ_AUTH", "off"), ("PREFIQ_ENV", "production")]);
    assert!(!ok, "checks off is refused in production");
    assert!(stderr.contains("refused in production"), "{stderr}");
    let (ok, stderr) = refused(&[("PREFIQ_JWT_KEYS", "{\"keys\": []}")]);
    assert!(!ok, "an empty key set verifies nothing");
    assert!(stderr.contains("no keys"), "{stderr}");
}

#[tokio::test]
async fn the_binary_serves_on_sqlite_with_no_setup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (key, set) = keys();
    let mut child = Command::new(env!("CARGO_BIN_EXE_app-crm"))
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("PREFIQ_AUTH")
        .env("PREFIQ_JWT_KEYS", &set)
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a first line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    let openapi: serde_json::Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/crm/companies"]["post"].is_object());
    let anonymous = client
        .post(format!("{base}/api/crm/companies"))
        .json(&serde_json::json!({ "name": "Binary Co" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "nothing is open by default");
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let reader = prefiq_testkit::sign(
        &key,
        &Identity::user(prefiq_runtime::auth::DEFAULT_TENANT, &["crm.company.read"]),
    );
    let forbidden = client
        .post(format!("{base}/api/crm/companies"))
        .bearer_auth(&reader)
        .json(&serde_json::json!({ "name": "Binary Co" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403, "reading is not creating");
    let created = client
        .post(format!("{base}/api/crm/companies"))
        .bearer_auth(prefiq_testkit::sign(&key, &Identity::admin()))
        .json(&serde_json::json!({ "name": "Binary Co" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let stranger = prefiq_testkit::sign(&SigningKey::generate("cortex-1"), &Identity::admin());
    let unknown = client
        .get(format!("{base}/api/crm/companies"))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        401,
        "a token signed by another key is refused"
    );
    assert!(
        dir.path().join(".prefiq/crm.db").exists(),
        "the default database is an SQLite file under .prefiq/"
    );

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("the binary exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

/// Starts the binary on `url`; returns the child and its base URL once it listens.
fn start(url: &str) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_app-crm"))
        .args(["--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", url)
        .env("PREFIQ_JWT_KEYS", keys().1)
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a first line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("did not start: {line:?}"))
        .to_owned();
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_starting_at_once_on_postgres_migrate_once_and_both_serve() {
    let (database, url) = prefiq_testkit::Database::create(prefiq_testkit::Backend::Postgres).await;
    let (first, second) = {
        let url_a = url.clone();
        let url_b = url.clone();
        let a = std::thread::spawn(move || start(&url_a));
        let b = std::thread::spawn(move || start(&url_b));
        (a.join().unwrap(), b.join().unwrap())
    };
    let client = reqwest::Client::new();
    for (_, base) in [&first, &second] {
        assert_eq!(
            client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let db = prefiq_runtime::Db::connect(&url, &prefiq_runtime::db::PoolOptions::default())
        .await
        .unwrap();
    let rows = db
        .fetch_all(
            "SELECT version FROM _prefiq_migrations WHERE app = 'crm'",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        app_crm::generated::MIGRATIONS.len(),
        "each migration recorded once"
    );
    db.close().await;
    for (mut child, _) in [first, second] {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(child.wait().unwrap().success());
    }
    database.drop().await;
}

/// Starts the binary on SQLite in `dir` with `env`; returns the child and its base URL.
fn start_in(dir: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_app-crm"));
    command
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PREFIQ_AUTH")
        .env("PREFIQ_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a first line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("did not start: {line:?}"))
        .to_owned();
    (child, base)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success(), "a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_partial_connections_do_not_stop_real_requests() {
    use tokio::io::AsyncWriteExt;
    // This test holds 2,000 sockets of its own.
    prefiq_runtime::serve::raise_open_files_limit();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (key, set) = keys();
    let (child, base) = start_in(dir.path(), &[("PREFIQ_JWT_KEYS", &set)]);
    let address = base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("the server accepts another connection");
        stream.write_all(b"GET /healthz HT").await.unwrap();
        idle.push(stream);
    }
    // That the answers come is asserted, not how fast: a busy two-core machine can take any
    // time. (The timeout only keeps a server that never answers from hanging the test.)
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let token = prefiq_testkit::sign(&key, &Identity::admin());
    for _ in 0..3 {
        let health = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("with 2,000 partial requests held open, /healthz answers");
        assert_eq!(health.status(), 200);
        let list = client
            .get(format!("{base}/api/crm/companies?limit=5"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("with 2,000 partial requests held open, a list answers");
        assert_eq!(list.status(), 200);
    }
    drop(idle);
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_bodies_are_cut_off_at_their_timeouts() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (key, set) = keys();
    let token = prefiq_testkit::sign(&key, &Identity::admin());
    let (child, base) = start_in(
        dir.path(),
        &[
            ("PREFIQ_JWT_KEYS", &set),
            ("PREFIQ_HEADER_TIMEOUT", "1"),
            ("PREFIQ_BODY_TIMEOUT", "1"),
        ],
    );
    let address = base.trim_start_matches("http://").to_owned();
    // A request line that never ends: the connection is closed once the header timeout passes.
    let mut partial = tokio::net::TcpStream::connect(&address).await.unwrap();
    partial.write_all(b"GET /healthz HT").await.unwrap();
    // (Closed means the read ends: at end of stream, or with a reset.)
    let mut answer = Vec::new();
    let _closed = tokio::time::timeout(Duration::from_secs(5), partial.read_to_end(&mut answer))
        .await
        .expect("closed within the header timeout, not held open");
    // A body that never arrives: 408 problem+json once the body timeout passes, then closed.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "POST /api/crm/companies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na"
    );
    slow.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("answered within the body timeout, not held open")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408") && text.contains("application/problem+json"),
        "a slow body is cut off with a problem: {text}"
    );
    stop(child);
}

/// What a container needs of the binary: a migration-only run (the deployment's migration job),
/// the database URL from a mounted secret file, and a healthcheck that needs no curl.
#[test]
fn the_binary_migrates_alone_reads_its_database_url_from_a_file_and_probes_itself() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let secret = dir.path().join("database-url");
    std::fs::write(&secret, "sqlite:deployed.db\n").unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_app-crm"));
        command
            .args(args)
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("PREFIQ_AUTH")
            .env("PREFIQ_LOG", "warn");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("the binary runs")
    };
    let secret_path = secret.to_str().unwrap();

    // --migrate-only applies the migrations to the database the file names, and exits.
    let migrated = run(&["--migrate-only"], &[("DATABASE_URL_FILE", secret_path)]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("crm: migrations applied"));
    assert!(
        dir.path().join("deployed.db").exists(),
        "the file's database was migrated"
    );
    assert!(
        !dir.path().join(".prefiq/crm.db").exists(),
        "not the default database"
    );

    // An empty or missing secret file is an error that names the setting, not a default.
    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let empty = run(&["--migrate-only"], &[("DATABASE_URL_FILE", "empty")]);
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("DATABASE_URL_FILE"));

    // --probe answers 0 against a serving server and 1 against a port nobody listens on.
    let (child, base) = start_in(
        dir.path(),
        &[("DATABASE_URL_FILE", secret_path), ("PREFIQ_AUTH", "off")],
    );
    let bind = base.trim_start_matches("http://");
    let healthy = run(&["--probe", "--bind", bind], &[]);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    stop(child);
    let gone = run(&["--probe", "--bind", bind], &[]);
    assert!(!gone.status.success(), "nothing listens there any more");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("unhealthy"));
}

/// Requests hyper refuses before any service runs (a malformed header line, a bad or repeated
/// `Content-Length`) are answered with problem+json like every other error, and the server
/// keeps serving.
#[test]
fn requests_the_http_parser_refuses_get_problem_json() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (child, base) = start_in(dir.path(), &[("PREFIQ_AUTH", "off")]);
    let address = base.trim_start_matches("http://").to_owned();
    let send = |raw: &[u8]| -> String {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(raw).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    for raw in [
        &b"POST /api/crm/companies HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"[..],
        b"GET /api/crm/companies HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n",
        b"POST /api/crm/companies HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    ] {
        let answer = send(raw);
        let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
        assert!(head.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(head.contains("content-type: application/problem+json"), "{answer}");
        let problem: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(problem["status"], 400);
        assert!(problem["detail"].as_str().unwrap().contains("HTTP/1.1"));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len(), "the length matches the body");
    }
    let healthy = send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(healthy.starts_with("HTTP/1.1 200 "), "{healthy}");
    stop(child);
}

/// With `PREFIQ_AUTH=off` the documents the server serves tell the truth: nothing requires a
/// credential, and their description says so first, so a contract tester sending no token
/// finds the server doing what its document says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_off_the_served_document_requires_nothing() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (child, base) = start_in(dir.path(), &[("PREFIQ_AUTH", "off")]);
    let client = reqwest::Client::new();
    for path in ["/openapi.json", "/api/crm/openapi.json"] {
        let document: serde_json::Value = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            document.get("security").is_none(),
            "{path}: no global requirement"
        );
        for (route, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    operation.get("security").is_none(),
                    "{path}: {method} {route} requires nothing"
                );
            }
        }
        let description = document["info"]["description"].as_str().unwrap();
        assert!(
            description.starts_with(prefiq_runtime::serve::AUTH_OFF_WARNING),
            "{path}: {description}"
        );
    }
    let anonymous = client
        .get(format!("{base}/api/crm/companies"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 200, "what the document promises");
    stop(child);
    // With authentication on, the same document requires a bearer token.
    let (key, set) = keys();
    let _ = key;
    let (child, base) = start_in(dir.path(), &[("PREFIQ_JWT_KEYS", &set)]);
    let document: serde_json::Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
            || document["paths"]["/api/crm/companies"]["get"]["security"].is_array(),
        "bearer auth is required"
    );
    stop(child);
}
