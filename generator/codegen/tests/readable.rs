//! Generated files are read in reviews and editors: every line of every generated file in the
//! repository (the apps, Cortex, the golden project, the design tokens, the meta-schema) keeps to
//! `prefiq_codegen::format::MAX_LINE` columns, unless a string literal alone makes it longer, and
//! generated Rust writes integers as a person would (`3`, not `3usize`).

use std::path::{Path, PathBuf};

/// Every generated file in the repository, with its text.
fn generated_files() -> Vec<(PathBuf, String)> {
    let repo = &Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for top in [
        "apps",
        "cortex",
        "generator/tests/golden",
        "resources",
        "schemas",
    ] {
        let walk = walkdir::WalkDir::new(repo.join(top))
            .into_iter()
            .filter_entry(|e| {
                let name = e.file_name().to_string_lossy();
                !matches!(
                    name.as_ref(),
                    "node_modules" | "target" | "dist" | ".prefiq"
                )
            });
        for entry in walk
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            if prefiq_codegen::output::is_generated(&text) {
                let path = entry.path().strip_prefix(repo).unwrap().to_path_buf();
                files.push((path, text));
            }
        }
    }
    files
}

/// Every line of generated Rust whose code (what precedes a `//` comment) `bad` flags, as
/// `path:line: text`; fails unless more than 20 generated Rust files were read.
fn rust_lines_where(bad: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut checked = 0;
    for (path, text) in generated_files() {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        checked += 1;
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or(line);
            if bad(code) {
                found.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(checked > 20, "only {checked} generated Rust files found");
    found
}

#[test]
fn generated_rust_has_no_suffixed_integer_literals() {
    let suffixed =
        regex::Regex::new(r"\b[0-9]+(usize|isize|u128|i128|u64|i64|u32|i32|u16|i16|u8|i8)\b")
            .unwrap();
    let found = rust_lines_where(|code| suffixed.is_match(code));
    assert!(found.is_empty(), "suffixed literals:\n{}", found.join("\n"));
}

/// prettyplease lays out calls but prints a macro's body as it gets it, so generated Rust builds
/// its lists with `Vec::from([...])`; and "none" is `None`, never an empty string.
#[test]
fn generated_rust_has_no_macro_built_lists_and_no_empty_string_for_none() {
    let found =
        rust_lines_where(|code| code.contains("vec![") || code.trim_end().ends_with(": \"\","));
    assert!(found.is_empty(), "found:\n{}", found.join("\n"));
}

#[test]
fn every_generated_line_fits_unless_a_string_literal_makes_it_long() {
    let mut checked = 0;
    let mut long = Vec::new();
    for (path, text) in generated_files() {
        checked += 1;
        for (number, line) in text.lines().enumerate() {
            if !prefiq_codegen::format::fits(line) {
                long.push(format!(
                    "{}:{}: {} columns: {}…",
                    path.display(),
                    number + 1,
                    line.chars().count(),
                    line.chars().take(100).collect::<String>()
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} generated files found");
    assert!(
        long.is_empty(),
        "{} long lines:\n{}",
        long.len(),
        long.join("\n")
    );
}
