//! The error corpus: each folder under `tests/errors/` is a project with a broken schema. The
//! rendered diagnostics are snapshots, so a reader sees exactly what a user would, and no case may
//! produce output.

use std::path::Path;

use prefiq_codegen::diag::{self, RenderOptions};

fn render(case: &Path) -> (String, bool, usize, bool) {
    let generation = prefiq_codegen::generate(case, None);
    let located = generation
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .all(|d| {
            d.location()
                .is_some_and(|(file, line, _)| !file.is_empty() && line > 0)
        });
    let rendered: String = generation
        .diagnostics
        .iter()
        .map(|d| {
            diag::render(
                d,
                RenderOptions {
                    color: false,
                    width: 100,
                },
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    (
        rendered,
        generation.has_errors(),
        generation.output.files.len(),
        located,
    )
}

fn cases() -> Vec<std::path::PathBuf> {
    let mut cases: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors"))
            .expect("tests/errors exists")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
    cases.sort();
    cases
}

#[test]
fn every_broken_schema_gets_a_located_diagnostic_and_no_output() {
    let cases = cases();
    assert!(cases.len() >= 19, "the corpus lost cases: {cases:?}");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let (rendered, has_errors, files, located) = render(&case);
        if name == "reserved_words" {
            assert!(
                !has_errors,
                "reserved words must generate working code:\n{rendered}"
            );
            assert!(files > 0);
        } else {
            assert!(has_errors, "{name}: expected an error, got:\n{rendered}");
            assert_eq!(files, 0, "{name}: a run with errors produces no files");
            // Every error names its file, line and column.
            assert!(
                located,
                "{name}: an error without file and line in\n{rendered}"
            );
            assert!(
                rendered.contains("help:"),
                "{name}: every diagnostic says how to fix it:\n{rendered}"
            );
        }
        insta::assert_snapshot!(name, rendered);
    }
}

#[test]
fn several_problems_are_reported_in_one_run() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors/several_problems");
    let generation = prefiq_codegen::generate(&case, None);
    let codes: Vec<&str> = generation.diagnostics.iter().map(|d| d.code).collect();
    for expected in [
        "prefiq::lower::unknown_format",
        "prefiq::lower::unresolved_ref",
        "prefiq::lower::no_primary_key",
        "prefiq::lower::unknown_entity",
        "prefiq::lower::no_effect",
    ] {
        assert!(
            codes.contains(&expected),
            "{expected} missing from {codes:?}"
        );
    }
}

#[test]
fn json_diagnostics_carry_file_line_column_and_pointer() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors/unknown_format");
    let generation = prefiq_codegen::generate(&case, None);
    let json = generation.diagnostics[0].to_json();
    assert_eq!(json["file"], "apps/t/core/schema/widget.yaml");
    assert_eq!(json["line"], 6);
    assert_eq!(json["column"], 35);
    assert_eq!(json["pointer"], "/properties/contact/format");
    assert_eq!(json["code"], "prefiq::lower::unknown_format");
    assert!(json["help"].as_str().unwrap().contains("email"));
}
