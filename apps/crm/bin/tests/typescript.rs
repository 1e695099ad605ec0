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
            // The sources import @prefiq/frontend, whose files live in resources/frontend:
            // paths under out/ follow the repository's.
            .arg("--rootDir")
            .arg(repo_root())
            .arg("--outDir")
            .arg(out.path()),
    );
    // @prefiq/frontend's client entry, compiled on its own: what a published package ships, and
    // proof that it needs nothing but itself (no React, no DOM library of ours).
    let library = repo_root().join("resources/frontend/src");
    run_ok(
        Command::new(tsc())
            .args(["--strict", "--target", "ES2022", "--module", "NodeNext"])
            .args(["--moduleResolution", "NodeNext", "--lib", "ES2022,DOM"])
            .arg("--rootDir")
            .arg(&library)
            .arg("--outDir")
            .arg(out.path().join("resources/frontend/src"))
            .arg(library.join("client.ts")),
    );
    node_modules_for(out.path());
    let tests = [
        out.path().join("apps/crm/src/tests/client.test.js"),
        out.path().join("apps/crm/src/tests/rules.test.js"),
        out.path().join("apps/crm/src/tests/validate.test.js"),
        out.path().join("apps/crm/src/tests/hooks.test.js"),
    ];
    let base = server.base.clone();
    let token = server.token.clone();
    let output = tokio::task::spawn_blocking(move || {
        output(
            Command::new("node")
                .arg("--test")
                .args(&tests)
                .env("PREFIQ_BASE_URL", base)
                .env("PREFIQ_TOKEN", token)
                .env("PREFIQ_RULE_CASES", src.join("tests/rules.cases.json"))
                .env(
                    "PREFIQ_VALIDATE_CASES",
                    src.join("tests/validate.cases.json"),
                )
                .env(
                    "PREFIQ_FORMAT_CASES",
                    repo_root().join("runtime/src/format.cases.json"),
                )
                .env(
                    "PREFIQ_LOGIC_CASES",
                    repo_root().join("runtime/src/rules.cases.json"),
                ),
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
    // The corpus's size, for whoever runs this with --nocapture.
    for line in text
        .lines()
        .filter(|l| l.contains("refused by the browser"))
    {
        eprintln!("{}", line.trim());
    }
    assert!(
        text.contains("# pass 16") && text.contains("# fail 0"),
        "all sixteen Node tests ran:\n{text}"
    );
    server.stop().await;
}

/// `out/node_modules` for the compiled tests: the packages installed in .ci/ (json-logic-js,
/// React, TanStack Query), and @prefiq/frontend's client entry as compiled JavaScript, the way a
/// published package ships it (in the repository its entries are TypeScript, which Node does
/// not run).
fn node_modules_for(out: &std::path::Path) {
    let modules = out.join("node_modules");
    let installed = repo_root().join(".ci/node_modules");
    for entry in std::fs::read_dir(&installed).expect(".ci/node_modules") {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "@prefiq" {
            continue;
        }
        std::fs::create_dir_all(&modules).unwrap();
        std::os::unix::fs::symlink(entry.path(), modules.join(&name)).unwrap();
    }
    let library = modules.join("@prefiq/frontend");
    std::fs::create_dir_all(&library).unwrap();
    std::os::unix::fs::symlink(out.join("resources/frontend/src"), library.join("src")).unwrap();
    std::fs::write(
        library.join("package.json"),
        r#"{"type": "module", "exports": {"./client": "./src/client.js"}}"#,
    )
    .unwrap();
}
