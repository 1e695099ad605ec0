//! Generated files are read in reviews and editors: every line of every generated file in the
//! repository (the apps, Cortex, the golden project, the design tokens, the meta-schema) keeps to
//! `prefiq_codegen::format::MAX_LINE` columns, unless a string literal alone makes it longer.

use std::path::Path;

#[test]
fn every_generated_line_fits_unless_a_string_literal_makes_it_long() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut checked = 0;
    let mut long = Vec::new();
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
            if !prefiq_codegen::output::is_generated(&text) {
                continue;
            }
            checked += 1;
            for (number, line) in text.lines().enumerate() {
                if !prefiq_codegen::format::fits(line) {
                    long.push(format!(
                        "{}:{}: {} columns: {}…",
                        entry.path().strip_prefix(repo).unwrap().display(),
                        number + 1,
                        line.chars().count(),
                        line.chars().take(100).collect::<String>()
                    ));
                }
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
