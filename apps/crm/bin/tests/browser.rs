//! The generated frontend in a real browser: Vite builds apps/crm/src, the CRM server on SQLite
//! serves the bundle at `/` (`PREFIQ_UI_DIR`, under its strict content-security policy) beside
//! the API, and apps/crm/src/tests/browser.e2e.mjs drives Debian's headless Chromium with
//! playwright-core through a list, a form and a conflicting edit. Screenshots are kept under
//! target/e2e/crm-frontend/ as test artifacts.

use std::process::Command;

use prefiq_testkit::tools::{output, repo_root, run_ok, tool};
use prefiq_testkit::{Backend, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_frontend_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium package (`apt-get install chromium`; .ci/run does) or set CHROMIUM"
    );
    let vite = tool("node_modules/.bin/vite");
    prefiq_testkit::tools::link_node_modules(&repo_root());
    let dist = tempfile::tempdir().expect("a build folder");
    run_ok(
        Command::new(&vite)
            .args(["build", "--logLevel", "warn"])
            .current_dir(repo_root().join("apps/crm/src"))
            .env("PREFIQ_OUT_DIR", dist.path()),
    );
    let ui = dist.path().to_path_buf();
    let server = Server::start(
        Backend::Sqlite,
        "crm",
        app_crm::generated::MIGRATIONS,
        move |db| {
            let api = app_crm::router(app_crm::services::Service::new(db.clone()), db)
                .map_err(|e| e.to_string())?;
            prefiq_runtime::serve::with_ui(api, &ui).map_err(|e| e.to_string())
        },
    )
    .await;
    // The page is served with its policy; an unknown path is still the API's problem.
    let page = raw_get(&server.base, "/");
    assert!(
        page.contains("content-security-policy: default-src 'self'; script-src 'self';"),
        "{page}"
    );
    let missing = raw_get(&server.base, "/nowhere");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("application/problem+json"), "{missing}");

    let screenshots = repo_root().join("target/e2e/crm-frontend");
    let _ = std::fs::remove_dir_all(&screenshots);
    let base = server.base.clone();
    let token = server.token.clone();
    let shots = screenshots.clone();
    let result = tokio::task::spawn_blocking(move || {
        output(
            Command::new("node")
                .arg(repo_root().join("apps/crm/src/tests/browser.e2e.mjs"))
                .env("TOOLS", repo_root().join(".ci/package.json"))
                .env("CHROMIUM", chromium)
                .env("BASE", base)
                .env("TOKEN", token)
                .env("SCREENSHOTS", &shots),
        )
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(result.status.success(), "the browser test failed:\n{text}");
    assert!(text.contains("ok: 5 screenshots"), "{text}");
    let kept = std::fs::read_dir(&screenshots)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(kept, 5, "five screenshots in {}", screenshots.display());
    server.stop().await;
}

/// The raw response (status line, lower-cased headers, body) of `GET path`, over a plain socket.
fn raw_get(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("the server listens");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    format!(
        "{}\r\n\r\n{body}",
        head.to_lowercase().replacen("http/1.1", "HTTP/1.1", 1)
    )
}
