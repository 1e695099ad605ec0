//! `cargo xtask new-app NAME`: a new app with the bin/core/src layout, an example schema, fixtures, rules,
//! tests and a README, generated and built, ready for `prefiq dev --app NAME`. The project is
//! complete after it: regenerated as a whole (Cortex's registry of apps includes the new one),
//! the frontend in `pnpm-lock.yaml`, the app and Cortex built, and `prefiq codegen --check` clean.
//!
//! The app is assembled in `target/` and moved into `apps/` in one rename, so a watcher never
//! sees half of it; if generation or the build fails, the folder is removed again and nothing is
//! left behind. The files come from `resources/scaffold/`, with `__APP__`-style placeholders
//! replaced by plain string substitution (a template engine would add nothing here).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Names an app may not take: Rust keywords, and names the project or its routes already use.
const RESERVED: &[&str] = &[
    // Rust keywords, strict and reserved (an app name becomes a module and crate name).
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    // Crates every Rust program sees.
    "core",
    "std",
    "alloc",
    "proc_macro",
    "test",
    // This project's own crates, folders and top-level routes.
    "prefiq",
    "runtime",
    "cortex",
    "xtask",
    "generator",
    "templates",
    "schemas",
    "resources",
    "docs",
    "apps",
    "app",
    "api",
    "admin",
    "openapi",
    "healthz",
    "generated",
    "services",
    "target",
    "types",
    "client",
];

/// Why `name` cannot be a new app of the project at `root`, if it cannot.
pub(crate) fn refusal(root: &Path, name: &str) -> Option<String> {
    let suggestion = {
        let mut snake = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 && !snake.ends_with('_') {
                snake.push('_');
            }
            match c {
                '-' | ' ' | '.' => snake.push('_'),
                c => snake.push(c.to_ascii_lowercase()),
            }
        }
        snake
    };
    let valid = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !valid {
        let hint = if suggestion != name && !suggestion.is_empty() {
            format!("; try `{suggestion}`")
        } else {
            String::new()
        };
        return Some(format!(
            "`{name}` is not a valid app name: use 1 to 40 lower-case letters, digits and single \
             underscores, starting with a letter (it becomes a crate, a Rust module and the URL \
             prefix /api/{name}/){hint}"
        ));
    }
    if RESERVED.contains(&name) {
        return Some(format!(
            "`{name}` is reserved (a Rust keyword or a name this project already uses); pick \
             another, such as `{name}_app`"
        ));
    }
    let folder = root.join("apps").join(name);
    if folder.exists() {
        return Some(format!(
            "apps/{name} already exists; `prefiq codegen --app {name}` regenerates an existing app"
        ));
    }
    let squash = |s: &str| s.replace(['_', '-'], "").to_lowercase();
    let crates = |app: &str| {
        let base = format!("app_{}", app.replace('-', "_"));
        [
            base.clone(),
            format!("{base}_types"),
            format!("{base}_client"),
        ]
    };
    let ours = crates(name);
    for entry in std::fs::read_dir(root.join("apps")).into_iter().flatten() {
        let Ok(entry) = entry else { continue };
        let other = entry.file_name().to_string_lossy().into_owned();
        if other.starts_with('.') {
            continue;
        }
        if squash(&other) == squash(name) {
            return Some(format!(
                "`{name}` collides with the existing app `{other}` after case conversion \
                 (both read `{}`); pick a more distinct name",
                squash(name)
            ));
        }
        if let Some(clash) = crates(&other).iter().find(|c| ours.contains(c)) {
            return Some(format!(
                "`{name}` would make a crate named `{clash}`, which app `{other}` already has; \
                 pick another name"
            ));
        }
    }
    None
}

fn fill(text: &str, name: &str) -> String {
    let title = {
        let mut chars = name.replace('_', " ").chars().collect::<Vec<_>>();
        if let Some(first) = chars.first_mut() {
            *first = first.to_ascii_uppercase();
        }
        chars.into_iter().collect::<String>()
    };
    let title = if name == "lms" {
        "LMS".to_owned()
    } else {
        title
    };
    text.replace("__APP__", name)
        .replace("__TITLE__", &title)
        .replace("__PACKAGE__", &format!("app-{name}"))
        .replace("__CRATE__", &format!("app_{name}"))
}

/// Writes the app's hand-edited files into `folder` (which becomes `apps/<name>`).
fn assemble(root: &Path, name: &str, folder: &Path) -> std::io::Result<()> {
    let scaffold = root.join("resources/scaffold");
    let example = scaffold
        .join("examples")
        .join(if name == "lms" { "lms" } else { "default" });
    let copy_filled = |from: &Path, to: &Path| -> std::io::Result<()> {
        std::fs::create_dir_all(to.parent().expect("a parent folder"))?;
        std::fs::write(to, fill(&std::fs::read_to_string(from)?, name))
    };
    for (from, to) in [
        ("schema", "core/schema"),
        ("fixtures", "core/fixtures"),
        ("validation", "core/validation"),
    ] {
        for entry in std::fs::read_dir(example.join(from))? {
            let entry = entry?;
            copy_filled(&entry.path(), &folder.join(to).join(entry.file_name()))?;
        }
    }
    copy_filled(
        &example.join("tests/api.rs"),
        &folder.join("bin/tests/api.rs"),
    )?;
    copy_filled(&scaffold.join("README.md.in"), &folder.join("README.md"))?;
    Ok(())
}

/// The dependencies the example tests need, added to the manifest `prefiq codegen` scaffolded.
const DEV_DEPENDENCIES: &str = "\n[dev-dependencies]\nprefiq-testkit.workspace = true\nserde_json.workspace = true\ntokio.workspace = true\n";

pub(crate) fn run(args: &[&str]) -> ExitCode {
    let [name] = args else {
        eprintln!("usage: cargo xtask new-app NAME    (for example: cargo xtask new-app lms)");
        return ExitCode::from(2);
    };
    let root = crate::root();
    if let Some(why) = refusal(&root, name) {
        eprintln!("error: cannot create app `{name}`: {why}");
        eprintln!("nothing was created");
        return ExitCode::from(2);
    }
    // Built before the app exists: a bin/ folder without its manifest (made by codegen) would
    // stop cargo from loading the workspace.
    if !crate::run("cargo", &["build", "--quiet", "-p", "prefiq"]) {
        eprintln!("error: the generator does not build; nothing was created");
        return ExitCode::FAILURE;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let prefiq = target.join("debug/prefiq").to_string_lossy().into_owned();
    let staging: PathBuf = root
        .join("target")
        .join(format!(".new-app-{name}-{}", std::process::id()));
    let folder = root.join("apps").join(name);
    let _ = std::fs::remove_dir_all(&staging);
    let made = assemble(&root, name, &staging)
        .and_then(|()| std::fs::create_dir_all(root.join("apps")))
        .and_then(|()| std::fs::rename(&staging, &folder));
    if let Err(error) = made {
        let _ = std::fs::remove_dir_all(&staging);
        eprintln!("error: cannot write apps/{name}: {error}; nothing was created");
        return ExitCode::FAILURE;
    }
    let roll_back = |why: &str| {
        let _ = std::fs::remove_dir_all(&folder);
        // What codegen wrote outside the app (Cortex's registry of apps) follows it out.
        let _ = crate::run(&prefiq, &["codegen"]);
        eprintln!("error: {why}; apps/{name} was removed again, nothing is left behind");
        ExitCode::FAILURE
    };
    // The whole project, not the new app alone: Cortex's registry of installed apps gains it
    // too, so Cortex serves it and `prefiq codegen --check` is clean right after.
    if !crate::run(&prefiq, &["codegen"]) {
        return roll_back("`prefiq codegen` failed on the new app");
    }
    // The example tests are formatted for a short name; keep them tidy for a long one too.
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(folder.join("bin/tests/api.rs"))
        .status();
    let manifest = folder.join("bin/Cargo.toml");
    let appended = std::fs::read_to_string(&manifest)
        .and_then(|text| std::fs::write(&manifest, format!("{text}{DEV_DEPENDENCIES}")));
    if appended.is_err() {
        return roll_back("`prefiq codegen` made no bin/Cargo.toml");
    }
    if !lock_frontend(&root) {
        return roll_back("pnpm could not add the new frontend to pnpm-lock.yaml");
    }
    let package = format!("app-{name}");
    if !crate::run(
        "cargo",
        &[
            "build", "--quiet", "-p", &package, "--tests", "-p", "cortex",
        ],
    ) {
        return roll_back(&format!(
            "the new crate {package} or Cortex with it does not build"
        ));
    }
    if !crate::run(&prefiq, &["codegen", "--check"]) {
        return roll_back("`prefiq codegen --check` is not clean after the new app");
    }
    println!(
        "\ncreated apps/{name}: {} entities, fixtures, rules, tests and a README.\n\nnext:",
        std::fs::read_dir(folder.join("core/schema"))
            .map(|d| d.count())
            .unwrap_or(0)
    );
    for (command, what) in [
        (
            format!("cargo run -p prefiq -- dev --app {name}"),
            "serve it, regenerated and restarted on every save",
        ),
        (
            format!("cargo test -p {package}"),
            "its tests, on SQLite and PostgreSQL",
        ),
        (
            format!("apps/{name}/core/schema/"),
            "the entities, to make your own",
        ),
    ] {
        println!("  {command:<44} {what}");
    }
    ExitCode::SUCCESS
}

/// Adds the frontends of the pnpm workspace that the lock file lacks (the new app's) to
/// `pnpm-lock.yaml`, with the pnpm the project pins (installed under `.ci/` if it is missing), so
/// that `pnpm install --frozen-lockfile` holds. Nothing is installed into the workspace.
fn lock_frontend(root: &Path) -> bool {
    let pnpm = root.join(".ci/node_modules/.bin/pnpm");
    if !pnpm.exists() && !crate::run("npm", &["ci", "--prefix", ".ci", "--no-audit", "--no-fund"]) {
        return false;
    }
    crate::run(
        &pnpm.to_string_lossy(),
        &["install", "--lockfile-only", "--ignore-scripts"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(apps: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for app in apps {
            std::fs::create_dir_all(dir.path().join("apps").join(app).join("core/schema")).unwrap();
        }
        dir
    }

    #[test]
    fn good_names_pass() {
        let dir = project(&["crm"]);
        for name in ["lms", "billing", "hr2", "field_service"] {
            assert_eq!(refusal(dir.path(), name), None, "{name}");
        }
    }

    #[test]
    fn bad_names_are_refused_with_a_reason() {
        let dir = project(&["crm", "field_service"]);
        let cases = [
            ("", "not a valid app name"),
            ("Billing", "try `billing`"),
            ("my-app", "try `my_app`"),
            ("2fa", "not a valid app name"),
            ("a__b", "not a valid app name"),
            ("type", "reserved"),
            ("cortex", "reserved"),
            ("crm", "already exists"),
            (
                "fieldservice",
                "collides with the existing app `field_service`",
            ),
            ("crm_types", "crate named `app_crm_types`"),
        ];
        for (name, reason) in cases {
            let why = refusal(dir.path(), name).unwrap_or_else(|| panic!("{name} passed"));
            assert!(why.contains(reason), "{name}: {why}");
        }
    }

    #[test]
    fn the_lms_example_is_the_committed_lms_app() {
        // apps/lms was made by `cargo xtask new-app lms`; its tests run in CI, so the scaffold
        // they came from must not drift from it.
        let root = crate::root();
        let dir = tempfile::tempdir().unwrap();
        assemble(&root, "lms", dir.path()).unwrap();
        let mut compared = 0;
        for entry in walk(dir.path()) {
            let relative = entry.strip_prefix(dir.path()).unwrap();
            let committed = std::fs::read_to_string(root.join("apps/lms").join(relative))
                .unwrap_or_else(|e| panic!("apps/lms/{}: {e}", relative.display()));
            assert_eq!(
                std::fs::read_to_string(&entry).unwrap(),
                committed,
                "apps/lms/{} differs from resources/scaffold",
                relative.display()
            );
            compared += 1;
        }
        assert_eq!(
            compared, 7,
            "three schemas, fixtures, rules, tests and the README"
        );
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            fill(
                "__TITLE__: __PACKAGE__ uses __CRATE__ at /api/__APP__",
                "field_service"
            ),
            "Field service: app-field_service uses app_field_service at /api/field_service"
        );
        assert_eq!(fill("__TITLE__", "lms"), "LMS");
    }
}
