//! The generated frontend in a real browser: Vite builds apps/crm/src, `vite preview` serves it
//! in front of the CRM server on SQLite, and apps/crm/src/tests/browser.e2e.mjs drives Debian's
//! headless Chromium with playwright-core through a list, a form and a conflicting edit.
//! Screenshots are kept under target/e2e/crm-frontend/ as test artifacts.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prefiq_testkit::tools::{output, repo_root, run_ok, tool};
use prefiq_testkit::{Backend, Server};

/// A child process stopped when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_frontend_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium package (`apt-get install chromium`; .ci/run does) or set CHROMIUM"
    );
    let vite = tool("node_modules/.bin/vite");
    prefiq_testkit::tools::link_node_modules(&repo_root());
    let server = Server::start(
        Backend::Sqlite,
        "crm",
        app_crm::generated::MIGRATIONS,
        |db| app_crm::router(app_crm::services::Service::new(db.clone()), db),
    )
    .await;
    let src = repo_root().join("apps/crm/src");
    let dist = tempfile::tempdir().expect("a build folder");
    run_ok(
        Command::new(&vite)
            .arg("build")
            .current_dir(&src)
            .env("PREFIQ_OUT_DIR", dist.path()),
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let _preview = Running(
        Command::new(&vite)
            .args(["preview", "--host", "127.0.0.1", "--strictPort", "--port"])
            .arg(port.to_string())
            .current_dir(&src)
            .env("PREFIQ_OUT_DIR", dist.path())
            .env("PREFIQ_API", &server.base)
            .stdout(Stdio::null())
            .spawn()
            .expect("vite preview starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "vite preview did not listen on {base}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let screenshots = repo_root().join("target/e2e/crm-frontend");
    let _ = std::fs::remove_dir_all(&screenshots);
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
