//! Schemas grow without breaking the code written against them. In a scratch copy of the CRM
//! and LMS apps, every entity gains a nullable field, every nested object an optional member,
//! every enum a value and every custom operation an optional parameter. After `prefiq codegen`
//! and `prefiq migrate diff`, the workspace and its tests compile, `tsc --strict` accepts the
//! TypeScript and the frontends' unit tests pass, while not one hand-written file was touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::{Mapping, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn key(name: &str) -> Value {
    Value::String(name.to_owned())
}

/// Adds an optional member to every object schema that lists `properties`, and a value to
/// every string enum, anywhere under `node`.
fn grow(node: &mut Value, member: &str) -> usize {
    let mut changes = 0;
    match node {
        Value::Mapping(map) => {
            if let Some(Value::Sequence(values)) = map.get_mut(key("enum")) {
                if values.iter().all(|v| v.is_string() || v.is_null()) {
                    values.push(key("grown_value"));
                    changes += 1;
                }
            }
            if let Some(Value::Mapping(properties)) = map.get_mut(key("properties")) {
                let mut added = Mapping::new();
                added.insert(
                    key("type"),
                    serde_yaml::from_str("[string, \"null\"]").unwrap(),
                );
                added.insert(key("maxLength"), Value::from(100));
                properties.insert(key(member), Value::Mapping(added));
                changes += 1;
            }
            for (_, child) in map.iter_mut() {
                changes += grow(child, member);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                changes += grow(item, member);
            }
        }
        _ => {}
    }
    changes
}

/// Adds an optional query parameter to every operation of an OpenAPI fragment.
fn grow_operations(document: &mut Value) -> usize {
    let mut changes = 0;
    let Some(Value::Mapping(paths)) = document.get_mut("paths") else {
        return 0;
    };
    for (_, item) in paths.iter_mut() {
        let Value::Mapping(item) = item else { continue };
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(Value::Mapping(operation)) = item.get_mut(key(method)) else {
                continue;
            };
            let parameters = operation
                .entry(key("parameters"))
                .or_insert_with(|| Value::Sequence(Vec::new()));
            if let Value::Sequence(list) = parameters {
                list.push(
                    serde_yaml::from_str(
                        "{name: grown_hint, in: query, required: false, schema: {type: string, maxLength: 20}}",
                    )
                    .unwrap(),
                );
                changes += 1;
            }
        }
    }
    changes
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// Every file a team owns: services, tests, manifests and entry points of the server crates,
/// the TypeScript tests and the frontend's pages.
fn hand_written(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for app in ["crm", "lms"] {
        for dir in [
            format!("apps/{app}/bin/src/services"),
            format!("apps/{app}/bin/tests"),
            format!("apps/{app}/src/tests"),
            format!("apps/{app}/src/app"),
        ] {
            for entry in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten() {
                if entry.file_type().is_file() {
                    files.push((
                        entry.path().to_path_buf(),
                        std::fs::read(entry.path()).unwrap(),
                    ));
                }
            }
        }
        for file in ["bin/Cargo.toml", "bin/src/lib.rs", "bin/src/main.rs"] {
            let path = root.join(format!("apps/{app}/{file}"));
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn additive_schema_changes_break_no_hand_written_code() {
    let repo = repo();
    let dir = tempfile::tempdir().unwrap();
    // The project is `grown/` inside a Cargo workspace one level up: cargo names the artifacts of
    // a workspace's path crates by their path from its root, so `grown/apps/crm/bin` can never
    // take the place of the repository's `apps/crm/bin` in the target folder both use.
    let root = &dir.path().join("grown");
    // The apps, and a workspace like the repository's around them. The runtime and the contract
    // tools are the repository's own, reached through links.
    for app in ["crm", "lms"] {
        copy_dir(&repo.join("apps").join(app), &root.join("apps").join(app));
    }
    let manifest = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    let members_start = manifest.find("members = [").unwrap();
    let members_end = members_start + manifest[members_start..].find(']').unwrap() + 1;
    let manifest = format!(
        "{}members = [\"grown/apps/*/bin\", \"grown/apps/*/core/types/rust\", \"grown/apps/*/core/client/rust\"]{}",
        &manifest[..members_start],
        // The workspace's own crates (the runtime, the test kit) through the project's link.
        manifest[members_end..].replace("path = \"runtime", "path = \"grown/runtime")
    );
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    std::fs::write(root.join("prefiq.toml"), "[runtime]\npath = \"runtime\"\n").unwrap();
    std::os::unix::fs::symlink(repo.join("runtime"), root.join("runtime")).unwrap();
    std::os::unix::fs::symlink(repo.join(".ci"), root.join(".ci")).unwrap();
    prefiq_testkit::tools::link_node_modules(root);
    std::fs::create_dir_all(root.join("resources")).unwrap();
    std::os::unix::fs::symlink(
        repo.join("resources/frontend"),
        root.join("resources/frontend"),
    )
    .unwrap();
    let before = hand_written(root);

    // Grow every schema.
    let mut grown = 0;
    for app in ["crm", "lms"] {
        let schema = root.join(format!("apps/{app}/core/schema"));
        for entry in std::fs::read_dir(&schema).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut document: Value = serde_yaml::from_str(&text).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            grown += if name.contains(".openapi.") {
                grow_operations(&mut document) + grow(&mut document, "grown_note")
            } else {
                grow(&mut document, "grown_note")
            };
            std::fs::write(&path, serde_yaml::to_string(&document).unwrap()).unwrap();
        }
    }
    assert!(grown >= 20, "only {grown} places grew");

    let prefiq = env!("CARGO_BIN_EXE_prefiq");
    run(Command::new(prefiq).arg("--root").arg(root).arg("codegen"));
    run(Command::new(prefiq)
        .arg("--root")
        .arg(root)
        .args(["migrate", "diff", "grow"]));
    let migration = std::fs::read_dir(root.join("apps/crm/bin/migrations/postgres"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_grow.sql"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .expect("the migration of the grown schemas");
    for table in ["activities", "companies", "contacts", "deals"] {
        assert!(
            migration.contains(&format!(
                "ALTER TABLE \"{table}\" ADD COLUMN \"grown_note\""
            )),
            "the migration adds the column to {table}:\n{migration}"
        );
    }
    run(Command::new(prefiq)
        .arg("--root")
        .arg(root)
        .args(["codegen", "--check"]));
    for app in ["crm", "lms"] {
        let types =
            std::fs::read_to_string(root.join(format!("apps/{app}/core/types/ts/index.ts")))
                .unwrap();
        assert!(
            types.contains("grown_note?: string | null;"),
            "{app}'s TypeScript grew"
        );
    }

    // The workspace and every test still compile, and the TypeScript still type-checks. A
    // build, not a check: the repository's `target/` holds the dependencies its own tests were
    // built with, and a check would first check every one of them again. Only the compiler's
    // intermediate files go there (`build-dir`): the binaries a build puts at the top of its
    // target folder (`debug/app-crm`) land in the scratch one, where they cannot take the place
    // of the repository's while its tests run them.
    run(Command::new(env!("CARGO"))
        .args(["build", "--offline", "--workspace", "--tests"])
        .current_dir(dir.path())
        .env("CARGO_BUILD_BUILD_DIR", repo.join("target"))
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTFLAGS"));
    for app in ["crm", "lms"] {
        let tsconfig = root.join(format!("apps/{app}/src/tsconfig.json"));
        // `tools::tsc` also links the repository's `node_modules`, where the shared frontend
        // library the grown apps import finds React.
        run(Command::new(prefiq_testkit::tools::tsc())
            .args(["--strict", "--noEmit", "-p"])
            .arg(&tsconfig));
        // The frontend's unit tests (the scaffolded screen tests and the CRM's form tests)
        // still pass with the grown fields on every form.
        run(Command::new(repo.join(".ci/node_modules/.bin/vitest"))
            .args(["run", "--reporter=dot"])
            .current_dir(root.join(format!("apps/{app}/src"))));
    }
    assert!(
        hand_written(root) == before,
        "a hand-written file changed while the schemas grew"
    );
}
