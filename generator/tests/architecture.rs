//! The invariants of docs/ARCHITECTURE.md, enforced rather than described: the crate graph
//! (read from `cargo metadata`, failing on a forbidden edge), templates packaged with their
//! crate, emitters that read only the IR, and a generator without process-wide state.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The workspace root.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("generator/ has a parent")
        .to_path_buf()
}

/// Package name → the names of the packages it links: normal dependencies, transitively, not
/// counting what a procedural macro uses at compile time (`serde_derive` → `syn`).
struct Graph {
    links: BTreeMap<String, BTreeSet<String>>,
    direct: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let names: BTreeMap<String, String> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let macros: BTreeSet<String> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| {
            p["targets"].as_array().into_iter().flatten().any(|t| {
                t["kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k == "proc-macro")
            })
        })
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
    {
        let from = names[node["id"].as_str().unwrap_or_default()].clone();
        let linked: BTreeSet<String> = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|kind| kind["kind"].is_null())
            })
            .map(|dep| names[dep["pkg"].as_str().unwrap_or_default()].clone())
            .filter(|name| !macros.contains(name))
            .collect();
        direct.entry(from).or_default().extend(linked);
    }
    let mut links = BTreeMap::new();
    for package in direct.keys() {
        let mut seen = BTreeSet::new();
        let mut stack = vec![package.clone()];
        while let Some(next) = stack.pop() {
            for dep in direct.get(&next).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        links.insert(package.clone(), seen);
    }
    Graph { links, direct }
}

#[test]
fn forbidden_edges_are_absent() {
    let graph = graph();
    let forbidden: &[(&str, &[&str], &str)] = &[
        (
            "prefiq-codegen",
            &[
                "prefiq-runtime",
                "tokio",
                "sqlx",
                "axum",
                "hyper",
                "reqwest",
            ],
            "the code generator is a pure library: no async runtime, no database driver, no web stack",
        ),
        (
            "prefiq-ir",
            &[
                "prefiq-codegen",
                "prefiq-runtime",
                "serde_yaml",
                "jsonschema",
                "syn",
                "minijinja",
            ],
            "the IR is data: it knows no parser, validator, template engine or runtime",
        ),
        (
            "prefiq-runtime",
            &[
                "prefiq-codegen",
                "prefiq-ir",
                "prefiq-templates",
                "prefiq",
                "syn",
                "minijinja",
            ],
            "generated servers never depend on the generator",
        ),
        (
            "prefiq-templates",
            &["prefiq-codegen", "prefiq-ir", "prefiq-runtime"],
            "templates are data",
        ),
        (
            "prefiq-grammar",
            &[
                "prefiq-codegen",
                "prefiq-ir",
                "prefiq-runtime",
                "tokio",
                "serde",
            ],
            "the query grammar is shared by the generator and the runtime, so it depends on neither",
        ),
        (
            "prefiq-check",
            &["prefiq-runtime", "prefiq-codegen", "tokio", "axum", "sqlx"],
            "the checks every types crate shares have no web, database or async dependency",
        ),
        (
            "bench-baseline",
            &[
                "prefiq-runtime",
                "prefiq-grammar",
                "prefiq-codegen",
                "app-crm",
                "app-crm-types",
                "prefiq-testkit",
                "prefiq-roundtrips",
            ],
            "the hand-written baselines share no code with what they are measured against",
        ),
        (
            "prefiq-roundtrips",
            &[
                "prefiq-runtime",
                "prefiq-testkit",
                "tokio",
                "tokio-postgres",
            ],
            "the proxy counts round trips from the wire, knowing nothing of the clients it counts",
        ),
    ];
    let mut broken = Vec::new();
    for (package, banned, why) in forbidden {
        let links = graph
            .links
            .get(*package)
            .unwrap_or_else(|| panic!("{package} is a workspace package"));
        for ban in *banned {
            if links.contains(*ban) {
                broken.push(format!("{package} → {ban}: {why}"));
            }
        }
    }
    assert!(broken.is_empty(), "forbidden edges:\n{}", broken.join("\n"));
}

/// The workspace's own packages, as `cargo metadata --no-deps` describes them.
fn workspace_packages() -> Vec<Value> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    let mut metadata: Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    match metadata["packages"].take() {
        Value::Array(packages) => packages,
        other => panic!("cargo metadata lists no packages: {other}"),
    }
}

/// Every hand-written crate takes the workspace's lints (`unreachable_pub`: what is `pub` is
/// reachable from outside its crate). Generated crates and the apps' scaffolds do not, so that
/// they compile in a workspace without them.
#[test]
fn every_hand_written_crate_takes_the_workspace_lints() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for package in &workspace_packages() {
        let manifest = std::path::PathBuf::from(package["manifest_path"].as_str().unwrap());
        let relative = manifest
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&manifest).unwrap();
        let app = relative.starts_with("apps/") || relative.starts_with("generator/tests/golden/");
        if app || text.contains("@generated") {
            continue;
        }
        checked += 1;
        if !text.contains("[lints]\nworkspace = true") {
            missing.push(relative);
        }
    }
    assert!(checked >= 10, "only {checked} hand-written crates found");
    assert!(
        missing.is_empty(),
        "without `[lints] workspace = true`: {missing:?}"
    );
}

#[test]
fn the_stages_depend_downwards_only() {
    let graph = graph();
    let direct = |package: &str| graph.direct.get(package).cloned().unwrap_or_default();
    // The IR is at the bottom: it needs only serde.
    let ir: BTreeSet<String> = direct("prefiq-ir");
    assert_eq!(
        ir,
        ["serde", "serde_json"].map(str::to_owned).into(),
        "prefiq-ir's dependencies"
    );
    assert!(
        direct("prefiq-templates").is_empty(),
        "prefiq-templates has no dependencies"
    );
    // The generator sits on the IR and the templates; the command line on the generator and
    // the runtime.
    let codegen = direct("prefiq-codegen");
    assert!(codegen.contains("prefiq-ir") && codegen.contains("prefiq-templates"));
    let cli = direct("prefiq");
    assert!(cli.contains("prefiq-codegen") && cli.contains("prefiq-runtime"));
    // Generated crates: server crates link the runtime and their types; types crates link
    // neither the runtime nor anything of the generator.
    for (package, deps) in &graph.direct {
        if package.starts_with("app-") && package.ends_with("-types") {
            for banned in [
                "prefiq-runtime",
                "prefiq-codegen",
                "prefiq-ir",
                "axum",
                "sqlx",
            ] {
                assert!(
                    !graph.links[package].contains(banned),
                    "{package} links {banned}: model types have no web or database dependency"
                );
            }
        } else if package.starts_with("app-") && !package.ends_with("-client") {
            assert!(
                deps.contains("prefiq-runtime"),
                "{package} is a server crate and links the runtime"
            );
            assert!(
                !graph.links[package].contains("prefiq-codegen"),
                "{package} links the generator"
            );
        }
    }
}

#[test]
fn the_templates_ship_inside_their_crate() {
    let output = Command::new(env!("CARGO"))
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "-p",
            "prefiq-templates",
        ])
        .current_dir(root())
        .output()
        .expect("cargo package runs");
    assert!(
        output.status.success(),
        "cargo package --list failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = String::from_utf8_lossy(&output.stdout);
    let builtin = std::fs::read_to_string(root().join("templates/src/lib.rs")).unwrap();
    let mut embedded = 0;
    for line in builtin.lines() {
        let Some(rest) = line.split("include_str!(\"../").nth(1) else {
            continue;
        };
        let file = rest.split('"').next().unwrap();
        embedded += 1;
        assert!(
            listed.lines().any(|l| l.trim() == file),
            "{file} is embedded but not packaged:\n{listed}"
        );
    }
    assert!(embedded >= 4, "found {embedded} embedded templates");
}

/// The source files of `crate_dir/src`, with their paths relative to it and the text of
/// raw strings (`r#"..."#`, the text of files the generator writes) blanked out.
fn sources(crate_dir: &str) -> Vec<(String, String)> {
    let src = root().join(crate_dir).join("src");
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&src).into_iter().flatten() {
        if entry.path().extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let mut code = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("r#\"") {
                code.push_str(&rest[..start]);
                let after = &rest[start + 3..];
                let end = after.find("\"#").map_or(after.len(), |e| e + 2);
                rest = &after[end..];
            }
            code.push_str(rest);
            let relative = entry.path().strip_prefix(&src).unwrap();
            files.push((relative.to_string_lossy().into_owned(), code));
        }
    }
    assert!(!files.is_empty(), "no sources under {}", src.display());
    files
}

/// The modules below the stages (`model`, `schemas`) use only the IR, and nothing outside
/// `emit` and `session` reaches into `emit`: the fixtures' check and `write` use what sits
/// below it, and `load` uses the model, not `migrate`.
#[test]
fn the_stages_reach_only_downwards() {
    let mut broken = Vec::new();
    for (path, code) in sources("generator/codegen") {
        let module = path.split('/').next().unwrap_or_default();
        let below = ["model.rs", "schemas"].contains(&module);
        let stages = [
            "crate::load",
            "crate::lower",
            "crate::emit",
            "crate::write",
            "crate::session",
            "crate::migrate",
            "crate::fixtures",
        ];
        for stage in stages {
            let above = below
                || (stage == "crate::emit" && !["emit", "session.rs", "lib.rs"].contains(&module))
                || (stage == "crate::migrate" && module == "load");
            if above && code.contains(stage) {
                broken.push(format!("{path} uses {stage}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn emitters_read_only_the_ir_and_only_load_and_write_touch_the_disk() {
    let mut broken = Vec::new();
    for (path, code) in sources("generator/codegen") {
        let stage = path.split('/').next().unwrap_or_default();
        if stage == "emit" {
            for other_stage in [
                "crate::load",
                "crate::lower",
                "crate::validate",
                "crate::write",
                "crate::session",
                "crate::migrate",
                "serde_yaml",
                "jsonschema",
                "std::fs",
            ] {
                if code.contains(other_stage) {
                    broken.push(format!(
                        "emit/{path} uses {other_stage}: emitters read only the IR"
                    ));
                }
            }
        }
        let disk = stage == "load" || path == "write.rs";
        if !disk && (code.contains("std::fs") || code.contains("File::open")) {
            broken.push(format!(
                "{path} touches the disk: only load reads and write writes"
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_generator_keeps_no_process_wide_state() {
    let mut broken = Vec::new();
    for crate_dir in ["generator/codegen", "generator/ir", "templates"] {
        for (path, code) in sources(crate_dir) {
            // Generated code spells its statics `::std::sync::...`; the generator's own would not.
            let own = code
                .replace("::std::sync::LazyLock", "")
                .replace("::std::sync::OnceLock", "");
            for state in [
                "OnceLock",
                "LazyLock",
                "thread_local!",
                "static mut",
                "lazy_static",
            ] {
                if own.contains(state) {
                    broken.push(format!(
                        "{crate_dir}/src/{path} holds {state}: state that a run reuses lives in a Session"
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Every committed project folder an app's generated code lives in: `apps/*`, Cortex and the
/// golden showcase.
fn app_folders() -> Vec<std::path::PathBuf> {
    let mut folders = vec![root().join("cortex")];
    for parent in ["apps", "generator/tests/golden/apps"] {
        for entry in std::fs::read_dir(root().join(parent)).unwrap() {
            let path = entry.unwrap().path();
            if path.join("core/schema").is_dir() {
                folders.push(path);
            }
        }
    }
    folders.sort();
    folders
}

/// Support code lives in one library each side, `prefiq-check` and `@prefiq/frontend`, which
/// the generated code imports; no app carries a copy of it.
#[test]
fn generated_apps_import_the_support_code_instead_of_copying_it() {
    let folders = app_folders();
    assert!(folders.len() >= 4, "{folders:?}");
    for folder in &folders {
        let name = folder.display();
        assert!(
            !folder.join("src/services/core.ts").exists(),
            "{name}: the request helper is @prefiq/frontend's, not a copy"
        );
        let validate =
            std::fs::read_to_string(folder.join("core/types/rust/src/generated/validate.rs"))
                .unwrap();
        let defines_code = ["fn ", "impl", "struct ", "trait ", "enum "]
            .iter()
            .any(|item| validate.contains(item));
        assert!(
            validate.contains("pub use ::prefiq_check::") && !defines_code,
            "{name}: validate.rs re-exports prefiq-check and holds only the app's patterns:\n{validate}"
        );
        let rules = std::fs::read_to_string(folder.join("src/services/rules.ts")).unwrap();
        assert!(
            !rules.contains("function evaluate"),
            "{name}: the rules evaluator is @prefiq/frontend's"
        );
        for generated in [
            "src/services/client.ts",
            "src/services/rules.ts",
            "src/services/validate.ts",
            "src/hooks/generated.ts",
            "src/components/generated.tsx",
        ] {
            let text = std::fs::read_to_string(folder.join(generated)).unwrap();
            assert!(
                !text.contains("resources/frontend/"),
                "{name}/{generated} imports the library by its package name, not by a path"
            );
        }
    }
}

/// Every module a TypeScript file imports or re-exports from, however its statement is laid
/// out: `import ... from "m"` (over several lines too), `export ... from "m"`, `import "m"` and
/// `import("m")` at the start of a line.
fn imports(text: &str) -> Vec<String> {
    let statement = regex::Regex::new(
        r#"(?m)^\s*(?:(?:import|export)\b[^;=]*?\bfrom|import)\s*\(?\s*["']([^"']+)["']"#,
    )
    .unwrap();
    statement
        .captures_iter(text)
        .map(|found| found[1].to_owned())
        .collect()
}

/// What a plain API client needs (`client.ts`, `rules.ts`, `validate.ts` of an app, and the
/// library's `client` entry they import) pulls in no React, no TanStack Query and no component.
#[test]
fn a_plain_api_client_needs_no_react() {
    let library = root().join("resources/frontend");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(library.join("package.json")).unwrap())
            .unwrap();
    let entry = manifest["exports"]["./client"]
        .as_str()
        .expect("@prefiq/frontend exports ./client");
    let mut pending = vec![library.join(entry).canonicalize().unwrap()];
    let mut seen = BTreeSet::new();
    for folder in app_folders() {
        for file in ["client.ts", "rules.ts", "validate.ts"] {
            pending.push(folder.join("src/services").join(file));
        }
    }
    while let Some(file) = pending.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for import in imports(&text) {
            if import.starts_with('.') {
                let target = file.parent().unwrap().join(import.replace(".js", ".ts"));
                assert!(
                    target.exists(),
                    "{}: {import} is not a TypeScript module (a component?)",
                    file.display()
                );
                pending.push(target.canonicalize().unwrap());
            } else {
                assert!(
                    import == "@prefiq/frontend/client",
                    "{} imports {import}: a plain client may import only @prefiq/frontend/client",
                    file.display()
                );
                pending.push(library.join(entry).canonicalize().unwrap());
            }
        }
    }
    assert!(
        seen.len() >= 4,
        "the walk reached the library's modules: {seen:?}"
    );
}

/// A crate whose integration tests are modules of `tests/all.rs` (one test binary, see "Where to
/// add…") builds no other file of `tests/` on its own: a file left out of `all.rs` would never be
/// compiled or run. So every file there is declared in `all.rs`, and `all` is the crate's only
/// test binary.
#[test]
fn every_test_file_is_a_module_of_its_crates_one_test_binary() {
    let mut checked = 0;
    for package in &workspace_packages() {
        let manifest = std::path::Path::new(package["manifest_path"].as_str().unwrap());
        let tests = manifest.parent().unwrap().join("tests");
        let Ok(all) = std::fs::read_to_string(tests.join("all.rs")) else {
            continue;
        };
        let name = package["name"].as_str().unwrap();
        let binaries: Vec<&str> = package["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "test"))
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(binaries, ["all"], "{name}'s test binaries");
        let declared: BTreeSet<String> = all
            .lines()
            .filter_map(|line| line.trim().strip_prefix("mod ")?.strip_suffix(';'))
            .map(str::to_owned)
            .collect();
        for entry in std::fs::read_dir(&tests).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            let is_module =
                path.extension().is_some_and(|e| e == "rs") || path.join("mod.rs").is_file();
            if is_module && module != "all" {
                assert!(
                    declared.contains(&module),
                    "{} is not declared in {}: add `mod {module};` there, or it never runs",
                    path.display(),
                    tests.join("all.rs").display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 30,
        "the test files of four crates are modules: {checked}"
    );
}

/// The hand-written functions a reader holds at once: none outside tests is longer than
/// `LIMIT` lines (formatted by rustfmt; generated code and `#[cfg(test)]` modules aside).
#[test]
fn no_hand_written_function_outgrows_a_reader() {
    const LIMIT: usize = 160;
    let mut long = Vec::new();
    let mut functions = 0;
    for package in &workspace_packages() {
        let manifest = std::path::Path::new(package["manifest_path"].as_str().unwrap());
        let src = manifest.parent().unwrap().join("src");
        for entry in walkdir::WalkDir::new(&src).into_iter().flatten() {
            let path = entry.path();
            let generated = path.components().any(|c| c.as_os_str() == "generated");
            if generated || path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap();
            if text.starts_with("// @generated") {
                continue;
            }
            let lines: Vec<&str> = text.lines().collect();
            let code = lines
                .iter()
                .position(|l| l.trim() == "#[cfg(test)]")
                .unwrap_or(lines.len());
            for (at, line) in lines[..code].iter().enumerate() {
                let Some(indent) = function_start(line) else {
                    continue;
                };
                // A declaration without a body (a trait's method) ends with `;` before any `{`.
                let opens = lines[at..code]
                    .iter()
                    .map(|l| l.trim_end())
                    .find(|l| l.ends_with('{') || l.ends_with(';'));
                if opens.is_none_or(|l| l.ends_with(';')) {
                    continue;
                }
                let end = format!("{}}}", " ".repeat(indent));
                let Some(length) = lines[at..code].iter().position(|l| *l == end) else {
                    continue;
                };
                functions += 1;
                if length + 1 > LIMIT {
                    long.push(format!(
                        "{}:{} ({} lines)",
                        path.display(),
                        at + 1,
                        length + 1
                    ));
                }
            }
        }
    }
    assert!(functions > 500, "functions found: {functions}");
    assert!(
        long.is_empty(),
        "functions longer than {LIMIT} lines; split them into named steps:\n{}",
        long.join("\n")
    );
}

/// The indentation of a line that starts a function (`fn`, with any of `pub`, `pub(crate)`,
/// `async`, `const`, `unsafe` before it).
fn function_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let mut rest = trimmed;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "async ",
        "const ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest.starts_with("fn ")
        .then_some(line.len() - trimmed.len())
}
