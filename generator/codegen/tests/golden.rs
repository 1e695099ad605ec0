//! Golden tests: the committed output of the real apps and of the showcase project equals what
//! the generator makes now, the IR is snapshotted, and output is byte-for-byte deterministic.

use std::path::{Path, PathBuf};

use prefiq_codegen::write::{self, Scope};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository")
}

/// The generator's golden project, beside the command line's tests (the workspace builds it).
fn golden() -> PathBuf {
    repo().join("generator/tests/golden")
}

/// Fails with every stale file and the command that fixes it (rust-analyzer's `ensure_file_contents`).
fn assert_up_to_date(root: &Path, command: &str) {
    let generation = prefiq_codegen::generate(root, None);
    let rendered: Vec<String> = generation
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    assert!(
        !generation.has_errors(),
        "{} has schema errors: {rendered:#?}",
        root.display()
    );
    let findings = write::check(root, &generation.output, &Scope::of(root, None));
    if !findings.is_empty() {
        let listing: Vec<String> = findings
            .iter()
            .map(|f| format!("{:>12} {}\n{}", f.kind(), f.path(), f.diff().unwrap_or("")))
            .collect();
        panic!(
            "generated files are out of date; run `{command}` and commit:\n{}",
            listing.join("\n")
        );
    }
}

#[test]
fn the_committed_apps_are_up_to_date() {
    assert_up_to_date(&repo(), "cargo run -p prefiq -- codegen");
}

#[test]
fn the_golden_showcase_is_up_to_date() {
    assert_up_to_date(
        &golden(),
        "cargo run -p prefiq -- --root generator/tests/golden codegen",
    );
}

#[test]
fn the_ir_of_every_app_is_stable() {
    for root in [repo(), golden()] {
        let generation = prefiq_codegen::generate(&root, None);
        let ir = generation.ir.expect("lowering ran");
        for app in &ir.apps {
            insta::assert_json_snapshot!(format!("ir_{}", app.name), app);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let relative = entry.path().strip_prefix(from).unwrap();
        if relative.components().any(|c| c.as_os_str() == "target") {
            continue;
        }
        let target = to.join(relative);
        if entry.path_is_symlink() {
            // A link to shared resources (resources/frontend), not an input of codegen.
            continue;
        }
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn output_is_deterministic_and_free_of_absolute_paths() {
    let first = prefiq_codegen::generate(&golden(), None).output.files;
    let second = prefiq_codegen::generate(&golden(), None).output.files;
    assert_eq!(first, second, "two runs, identical bytes");

    // The same schemas in another folder give the same bytes: no absolute path leaks in.
    let elsewhere = tempfile::tempdir().unwrap();
    copy_tree(&golden(), elsewhere.path());
    let moved = prefiq_codegen::generate(elsewhere.path(), None)
        .output
        .files;
    assert_eq!(first, moved);
    for file in &first {
        assert!(
            !file.contents.contains(repo().to_str().unwrap()),
            "{} contains an absolute path",
            file.path
        );
        assert!(
            !file.contents.contains('\r'),
            "{} has CR line ends",
            file.path
        );
        assert!(
            file.contents.ends_with('\n'),
            "{} lacks a final newline",
            file.path
        );
    }
}

#[test]
fn every_generated_file_has_the_header_and_a_valid_digest() {
    for file in prefiq_codegen::generate(&repo(), None).output.files {
        assert!(
            prefiq_codegen::output::is_generated(&file.contents),
            "{} has no header",
            file.path
        );
        assert!(
            prefiq_codegen::output::digest_matches(&file.contents),
            "{} has a wrong digest",
            file.path
        );
    }
}
