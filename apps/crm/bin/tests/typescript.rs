//! The generated TypeScript: `tsc --strict` accepts it, and a Node test (node:test) drives the
//! live CRM service through the generated client.

use std::process::Command;

use prefiq_testkit::tools::{output, repo_root, run_ok, tsc};
use prefiq_testkit::{Backend, Server};

#[test]
fn tsc_strict_accepts_the_types_and_the_client() {
    let project = repo_root().join("apps/crm/src/tsconfig.json");
    run_ok(
        Command::new(tsc())
            .args(["--strict", "--noEmit", "-p"])
            .arg(&project),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_client_drives_the_live_service() {
    let server = Server::start(
        Backend::Sqlite,
        "crm",
        app_crm::generated::MIGRATIONS,
        |db| app_crm::router(app_crm::services::Service::new(db.clone()), db),
    )
    .await;
    let src = repo_root().join("apps/crm/src");
    let out =
        tempfile::tempdir_in(&src).expect("a build folder inside src/ (for its package.json)");
    run_ok(
        Command::new(tsc())
            .arg("-p")
            .arg(src.join("tsconfig.json"))
            .arg("--outDir")
            .arg(out.path()),
    );
    let test = out.path().join("src/tests/client.test.js");
    let base = server.base.clone();
    let token = server.token.clone();
    let output = tokio::task::spawn_blocking(move || {
        output(
            Command::new("node")
                .arg("--test")
                .arg(&test)
                .env("PREFIQ_BASE_URL", base)
                .env("PREFIQ_TOKEN", token),
        )
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the Node test failed:\n{text}");
    assert!(
        text.contains("# pass 7"),
        "all seven Node tests ran:\n{text}"
    );
    server.stop().await;
}
