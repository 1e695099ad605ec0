//! Schemathesis fuzzes the live CRM service from its OpenAPI document: every operation, at
//! least 100 examples each, positive and negative, plus stateful sequences along the links.
//! No response may be a server error or break its documented schema.

use std::process::Command;

use prefiq_testkit::tools::schemathesis;
use prefiq_testkit::{Backend, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let server = Server::start(
        Backend::Sqlite,
        "crm",
        app_crm::generated::MIGRATIONS,
        |db| app_crm::router(app_crm::services::Service::new(db.clone()), db),
    )
    .await;
    let schema = format!("{}/openapi.json", server.base);
    // A fixed seed keeps CI reproducible; set PREFIQ_SCHEMATHESIS_SEED to explore other inputs.
    let seed = std::env::var("PREFIQ_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261125".to_owned());
    // Schemathesis keeps a cache folder in its working directory; keep it out of the repository.
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_path_buf();
    let authorization = format!("Authorization: Bearer {}", server.token);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis())
            .current_dir(cwd)
            .args(["run", &schema])
            .args(["--header", &authorization])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--max-examples", "100", "--seed", &seed, "--workers", "2"])
            .args(["--generation-database", "none", "--no-color"])
            .output()
    })
    .await
    .unwrap()
    .expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Vec<&str> = text
        .lines()
        .rev()
        .take(25)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(
        output.status.success(),
        "Schemathesis found failures:\n{text}"
    );
    // Every generated and custom operation, and /healthz.
    let operations = app_crm::generated::OPERATIONS + 1;
    assert!(
        text.contains(&format!("Tested: {operations}")),
        "every operation was tested:\n{}",
        summary.join("\n")
    );
    assert!(!text.contains(" failed"), "{}", summary.join("\n"));
    eprintln!("{}", summary.join("\n"));
    server.stop().await;
}
