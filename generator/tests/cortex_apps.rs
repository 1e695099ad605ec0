//! Installing an app in Cortex is listing it under `[cortex] apps` in prefiq.toml (or, with no
//! list, creating it under apps/) and running `prefiq codegen`; removing it is the reverse. The
//! generated `cortex-apps` crate follows, `--check` notices when it has not, and a list that
//! names a missing app is an error that writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn prefiq(root: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_prefiq"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn app(root: &Path, name: &str) {
    let dir = root.join(format!("apps/{name}/core/schema"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("note.yaml"),
        "title: Note\ntype: object\nx-prefiq: {}\nrequired: [text]\nproperties:\n  id: {type: string, format: uuid, readOnly: true, x-prefiq: {primary-key: true}}\n  text: {type: string, maxLength: 100}\n",
    )
    .unwrap();
}

#[test]
fn apps_are_installed_and_removed_through_prefiq_toml() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("cortex/core/schema")).unwrap();
    std::fs::copy(
        repo().join("cortex/core/schema/tenant.yaml"),
        root.join("cortex/core/schema/tenant.yaml"),
    )
    .unwrap();
    let runtime = repo().join("runtime");
    let config = |apps: Option<&str>| {
        let mut text = format!("[runtime]\npath = \"{}\"\n", runtime.display());
        if let Some(apps) = apps {
            text.push_str(&format!("\n[cortex]\napps = [{apps}]\n"));
        }
        std::fs::write(root.join("prefiq.toml"), text).unwrap();
    };
    app(root, "alpha");
    app(root, "beta");
    let lib = || std::fs::read_to_string(root.join("cortex/apps/src/lib.rs")).unwrap();
    let manifest = || std::fs::read_to_string(root.join("cortex/apps/Cargo.toml")).unwrap();

    // No list: every app is installed.
    config(None);
    let (ok, text) = prefiq(root, &["codegen"]);
    assert!(ok, "{text}");
    assert!(
        lib().contains("app_alpha::generated::CATALOG")
            && lib().contains("app_beta::generated::CATALOG")
    );
    assert!(manifest().contains("app-beta = { path = \"../../apps/beta/bin\" }"));

    // Listing only alpha removes beta; until codegen runs, --check says so.
    config(Some("\"alpha\""));
    let (ok, text) = prefiq(root, &["codegen", "--check"]);
    assert!(!ok, "the stale cortex-apps crate is noticed:\n{text}");
    let (ok, text) = prefiq(root, &["codegen"]);
    assert!(ok, "{text}");
    assert!(lib().contains("app_alpha"));
    assert!(
        !lib().contains("app_beta") && !manifest().contains("app-beta"),
        "beta is removed"
    );
    let (ok, text) = prefiq(root, &["codegen", "--check"]);
    assert!(ok, "{text}");

    // Installing it again is listing it again.
    config(Some("\"alpha\", \"beta\""));
    assert!(prefiq(root, &["codegen"]).0);
    assert!(lib().contains("app_beta::generated::CATALOG"));
    let order = lib();
    assert!(
        order.find("app_alpha").unwrap() < order.find("app_beta").unwrap(),
        "in the listed order"
    );

    // A list that names a missing app is an error, and nothing is written.
    config(Some("\"alpha\", \"gamma\""));
    let before = lib();
    let (ok, text) = prefiq(root, &["codegen"]);
    assert!(!ok);
    assert!(
        text.contains("installs `gamma` in Cortex, but there is no apps/gamma/core/schema/"),
        "{text}"
    );
    assert_eq!(lib(), before);

    // Without a list, a new app folder is installed by the next codegen.
    config(None);
    app(root, "gamma");
    assert!(prefiq(root, &["codegen"]).0);
    assert!(lib().contains("app_gamma::generated::CATALOG"));
    // ... and deleting its folder removes it.
    std::fs::remove_dir_all(root.join("apps/gamma")).unwrap();
    assert!(prefiq(root, &["codegen"]).0);
    assert!(!lib().contains("app_gamma"));
}
