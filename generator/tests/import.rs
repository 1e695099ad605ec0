//! `prefiq openapi-ts` on documents nobody wrote for Prefiq: the GitHub REST API (from
//! @octokit/openapi, thousands of operations) and an app's own 3.1 document. Both must import
//! without error and give TypeScript that `tsc --strict` accepts.

use std::path::Path;
use std::process::Command;

use prefiq_testkit::tools::{repo_root, run_ok, tool, tsc};

fn import_and_typecheck(document: &Path, out: &Path) -> String {
    let output = run_ok(
        Command::new(env!("CARGO_BIN_EXE_prefiq"))
            .arg("openapi-ts")
            .arg(document)
            .arg("--out")
            .arg(out),
    );
    let summary = String::from_utf8_lossy(&output.stderr).into_owned();
    run_ok(
        Command::new(tsc())
            .args([
                "--strict",
                "--noEmit",
                "--skipLibCheck",
                "--target",
                "ES2022",
                "--module",
                "NodeNext",
                "--moduleResolution",
                "NodeNext",
                "--lib",
                "ES2022,DOM",
            ])
            .arg(out.join("client.ts")),
    );
    summary
}

#[test]
fn the_github_api_imports_and_typechecks() {
    let document = tool("node_modules/@octokit/openapi/generated/api.github.com.json");
    let out = tempfile::tempdir().unwrap();
    let summary = import_and_typecheck(&document, out.path());
    let operations: usize = summary
        .split("openapi-ts: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(operations > 1000, "{summary}");
    let client = std::fs::read_to_string(out.path().join("client.ts")).unwrap();
    assert!(
        client.contains("export function reposGet("),
        "operationIds become function names"
    );
}

#[test]
fn an_apps_own_document_round_trips_through_the_importer() {
    let out = tempfile::tempdir().unwrap();
    let summary = import_and_typecheck(&repo_root().join("apps/crm/core/openapi.json"), out.path());
    assert!(summary.contains("25 operations"), "{summary}");
    let types = std::fs::read_to_string(out.path().join("types.ts")).unwrap();
    assert!(
        types.contains("export type DealStage = \"lead\" | \"qualified\""),
        "enums stay string-literal unions"
    );
}
