//! The example schemas and rules `cargo xtask new-app` starts a new app from generate without a
//! warning.
//! (The LMS example is also the committed `apps/lms`, compiled and tested with the workspace.)

use std::path::Path;

#[test]
fn every_scaffold_example_generates_cleanly() {
    let repo = &Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let examples = repo.join("resources/scaffold/examples");
    let mut seen = 0;
    for example in std::fs::read_dir(&examples).unwrap() {
        let example = example.unwrap().path();
        let dir = tempfile::tempdir().unwrap();
        for (from, to) in [
            ("schema", "core/schema"),
            ("fixtures", "core/fixtures"),
            ("validation", "core/validation"),
        ] {
            let target = dir.path().join("apps/example").join(to);
            std::fs::create_dir_all(&target).unwrap();
            for file in std::fs::read_dir(example.join(from)).unwrap() {
                let file = file.unwrap();
                let text = std::fs::read_to_string(file.path()).unwrap();
                std::fs::write(
                    target.join(file.file_name()),
                    text.replace("__APP__", "example"),
                )
                .unwrap();
            }
        }
        let generation = prefiq_codegen::generate(dir.path(), None);
        assert!(
            generation.diagnostics.is_empty(),
            "{}: {:#?}",
            example.display(),
            generation.diagnostics
        );
        let document = generation
            .output
            .files
            .iter()
            .find(|f| f.path == "apps/example/core/openapi.json")
            .expect("the document");
        assert!(
            document.contents.contains("\"x-prefiq-rules\""),
            "{}: every example comes with a rule",
            example.display()
        );
        seen += 1;
    }
    assert!(seen >= 2, "the default and LMS examples");
}
