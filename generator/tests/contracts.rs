//! Tools nobody on this project wrote accept what the generator emits: both OpenAPI documents of
//! every committed app pass openapi-spec-validator and `redocly lint`, `@asyncapi/parser`
//! accepts every AsyncAPI document, `tsc --strict` accepts the TypeScript, and ESLint (with
//! typescript-eslint and the rules of hooks) every frontend.

use std::path::{Path, PathBuf};
use std::process::Command;

use prefiq_testkit::tools::{
    self as tools, openapi_spec_validator, redocly, repo_root, run_ok, tool, tsc,
};

/// Every committed app: the real ones and the golden showcase.
fn apps() -> Vec<PathBuf> {
    let root = repo_root();
    let mut apps: Vec<PathBuf> = Vec::new();
    for parent in [root.join("apps"), root.join("generator/tests/golden/apps")] {
        for entry in std::fs::read_dir(&parent)
            .expect("an apps folder")
            .filter_map(Result::ok)
        {
            if entry.path().join("core/openapi.json").exists() {
                apps.push(entry.path());
            }
        }
    }
    apps.sort();
    assert!(apps.len() >= 2, "{apps:?}");
    apps
}

fn documents(app: &Path) -> [PathBuf; 2] {
    [
        app.join("core/openapi.json"),
        app.join("core/openapi-3.0.json"),
    ]
}

#[test]
fn openapi_spec_validator_accepts_both_documents() {
    for app in apps() {
        for document in documents(&app) {
            run_ok(Command::new(openapi_spec_validator()).arg(&document));
        }
    }
}

#[test]
fn redocly_lint_finds_no_errors() {
    for app in apps() {
        let output = run_ok(
            Command::new(redocly())
                .arg("lint")
                .args(documents(&app))
                .args(["--format", "summary"])
                .env("NO_COLOR", "1"),
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("error")),
            "{text}"
        );
    }
}

#[test]
fn the_asyncapi_parser_accepts_every_event_document() {
    tool("node_modules/@asyncapi/parser");
    tools::link_node_modules(&repo_root());
    let mut documents: Vec<PathBuf> = apps()
        .iter()
        .map(|app| app.join("core/asyncapi.json"))
        .collect();
    documents.push(repo_root().join("cortex/core/asyncapi.json"));
    let output = run_ok(
        Command::new("node")
            .arg(repo_root().join("generator/tests/asyncapi.mjs"))
            .args(&documents),
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for document in &documents {
        let parsed = format!("{}: AsyncAPI 3.0.0", document.display());
        assert!(text.contains(&parsed), "{parsed} missing:\n{text}");
    }
    // The CRM's declared event is there beside its entities' own.
    assert!(
        text.contains("crm/core/asyncapi.json: AsyncAPI 3.0.0, 13 channels"),
        "{text}"
    );
}

#[test]
fn tsc_strict_accepts_every_client() {
    for app in apps() {
        run_ok(
            Command::new(tsc())
                .args(["--strict", "--noEmit", "-p"])
                .arg(app.join("src/tsconfig.json")),
        );
    }
}

#[test]
fn eslint_accepts_every_frontend_and_the_shared_components() {
    let root = repo_root();
    tools::link_node_modules(&root);
    let mut command = Command::new(tool("node_modules/.bin/eslint"));
    command
        .arg("--config")
        .arg(root.join("resources/frontend/eslint.config.js"))
        .args(["--max-warnings", "0"])
        .args(apps().into_iter().map(|app| app.join("src")))
        .arg(root.join("cortex/src"))
        .arg(root.join("resources/frontend/src"))
        .arg(root.join("resources/frontend/tests"))
        .arg(root.join("resources/frontend/testing"))
        .current_dir(&root);
    run_ok(&mut command);
}

/// The unit tests of every frontend (`vitest run` in its `src/`): the scaffolded screen tests of
/// each entity, and what an app adds; and those of the shared components. The golden project's frontend is here too: its groups share
/// member labels with top-level fields.
#[test]
fn vitest_passes_every_frontends_unit_tests() {
    let root = repo_root();
    tools::link_node_modules(&root);
    let frontends = apps().into_iter().map(|app| app.join("src")).chain([
        root.join("cortex/src"),
        root.join("generator/tests/golden/apps/showcase/src"),
        root.join("resources/frontend"),
    ]);
    for src in frontends {
        let mut command = Command::new(tool("node_modules/.bin/vitest"));
        command.args(["run", "--reporter=dot"]).current_dir(&src);
        run_ok(&mut command);
    }
}

/// The frontends as the pnpm workspace users get (`pnpm-workspace.yaml`, the root
/// `package.json` and the committed `pnpm-lock.yaml`): in a copy of just those files, pnpm 12
/// installs from the lock without changing it, and every package type-checks, passes its unit
/// tests and (each app) builds its bundle, and the whole lints clean.
#[test]
fn the_pnpm_workspace_installs_type_checks_tests_and_builds_every_frontend() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<String> = [
        "package.json",
        "pnpm-workspace.yaml",
        "pnpm-lock.yaml",
        "resources/frontend",
        "resources/design/generated",
        "cortex/src",
        "cortex/core/types/ts",
    ]
    .map(str::to_owned)
    .to_vec();
    // The project's own apps (the golden project's is not in the workspace).
    let names: Vec<String> = apps()
        .iter()
        .filter(|app| app.parent() == Some(root.join("apps").as_path()))
        .map(|app| app.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 2, "{names:?}");
    for name in &names {
        paths.push(format!("apps/{name}/src"));
        paths.push(format!("apps/{name}/core/types/ts"));
    }
    let copy = format!(
        "set -o pipefail; tar -C '{}' --exclude=node_modules --exclude=dist -cf - {} | tar -C '{}' -xf -",
        root.display(),
        paths.join(" "),
        dir.path().display()
    );
    run_ok(Command::new("bash").args(["-c", &copy]));
    let pnpm = tool("node_modules/.bin/pnpm");
    run_ok(
        Command::new(&pnpm)
            .args(["install", "--frozen-lockfile", "--reporter=append-only"])
            .current_dir(dir.path()),
    );
    for script in ["typecheck", "test", "build"] {
        run_ok(
            Command::new(&pnpm)
                .args(["-r", "run", script])
                .current_dir(dir.path()),
        );
    }
    run_ok(
        Command::new(&pnpm)
            .args(["run", "lint"])
            .current_dir(dir.path()),
    );
    for name in &names {
        let page = dir.path().join(format!("apps/{name}/src/dist/index.html"));
        assert!(page.is_file(), "pnpm -r run build made {}", page.display());
    }
}

#[test]
fn the_30_rendition_is_a_30_document_for_the_openapiv3_crate() {
    for app in apps() {
        let text = std::fs::read_to_string(app.join("core/openapi-3.0.json")).unwrap();
        if let Err(error) = serde_json::from_str::<openapiv3::OpenAPI>(&text) {
            panic!("{}: {error}", app.display());
        }
    }
}

#[test]
fn the_30_rendition_follows_what_progenitor_needs() {
    for app in apps() {
        let text = std::fs::read_to_string(app.join("core/openapi-3.0.json")).unwrap();
        let document: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(document["openapi"], "3.0.3");
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k != "parameters")
            {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    !responses.contains_key("default"),
                    "{method} {path}: no `default` response"
                );
                let mut error_types = std::collections::BTreeSet::new();
                for (status, response) in responses {
                    let response = match response.get("$ref").and_then(|r| r.as_str()) {
                        Some(r) => document.pointer(&r[1..]).unwrap().clone(),
                        None => response.clone(),
                    };
                    if let Some(content) = response.get("content").and_then(|c| c.as_object()) {
                        assert_eq!(
                            content.keys().collect::<Vec<_>>(),
                            vec!["application/json"],
                            "{method} {path} {status}"
                        );
                        if !status.starts_with('2') {
                            error_types.insert(content["application/json"]["schema"].to_string());
                        }
                    }
                }
                assert!(
                    error_types.len() <= 1,
                    "{method} {path}: one error type, not {error_types:?}"
                );
            }
        }
    }
}
