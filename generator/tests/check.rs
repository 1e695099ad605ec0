//! `prefiq codegen` and `prefiq codegen --check` on a copy of the CRM app: every kind of stale
//! output is caught, hand-written files are never touched, and unchanged files are not rewritten.

use std::path::{Path, PathBuf};
use std::process::Command;

use prefiq::write::{self, Finding, Scope};

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let schema = repo.join("apps/crm/core/schema");
    let target = dir.path().join("apps/crm/core/schema");
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(schema).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
    }
    dir
}

fn prefiq(root: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_prefiq"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn findings(root: &Path) -> Vec<Finding> {
    let generation = prefiq::generate(root, None);
    write::check(root, &generation.output, &Scope::of(root, None))
}

fn kinds(root: &Path) -> Vec<(String, String)> {
    findings(root)
        .iter()
        .map(|f| (f.kind().to_owned(), f.path().to_owned()))
        .collect()
}

#[test]
fn a_fresh_project_generates_and_then_checks_clean() {
    let dir = project();
    let (code, text) = prefiq(dir.path(), &["codegen"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("written"), "{text}");
    assert!(
        dir.path().join("apps/crm/bin/src/services/mod.rs").exists(),
        "the service stub is scaffolded"
    );
    let (code, text) = prefiq(dir.path(), &["codegen", "--check"]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn check_reports_stale_missing_orphaned_and_hand_edited_files() {
    let dir = project();
    let root = dir.path();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);

    // Stale: the schema changed.
    let deal = root.join("apps/crm/core/schema/deal.yaml");
    let text = std::fs::read_to_string(&deal)
        .unwrap()
        .replace("maxLength: 500", "maxLength: 400");
    std::fs::write(&deal, text).unwrap();
    // Missing: a generated file was deleted.
    std::fs::remove_file(root.join("apps/crm/bin/src/generated/service.rs")).unwrap();
    // Hand-edited: a generated file was changed without changing the schema.
    let company = root.join("apps/crm/bin/src/generated/company.rs");
    let edited = std::fs::read_to_string(&company).unwrap().replacen(
        "pub const WRITABLE",
        "pub const WRITABLE_EDITED",
        1,
    );
    std::fs::write(&company, edited).unwrap();
    // Orphaned: generated once, no longer produced.
    let orphan = root.join("apps/crm/bin/src/generated/old.rs");
    std::fs::write(
        &orphan,
        prefiq::output::GeneratedFile::new("old.rs", "apps/crm/core/schema", "pub fn old() {}\n")
            .contents,
    )
    .unwrap();

    let found = kinds(root);
    for expected in [
        ("stale", "apps/crm/core/openapi.json"),
        ("stale", "apps/crm/bin/src/generated/schemas.json"),
        ("missing", "apps/crm/bin/src/generated/service.rs"),
        ("hand-edited", "apps/crm/bin/src/generated/company.rs"),
        ("orphaned", "apps/crm/bin/src/generated/old.rs"),
    ] {
        assert!(
            found.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not in {found:#?}"
        );
    }
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("hand-edited")
            && text.contains("orphaned")
            && text.contains("\"maxLength\": 500"),
        "{text}"
    );
    assert!(
        text.contains("run `prefiq codegen`"),
        "--check says how to fix it: {text}"
    );

    // Writing refuses to discard the hand edit, and then writes nothing at all.
    let (code, text) = prefiq(root, &["codegen"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        !root.join("apps/crm/bin/src/generated/service.rs").exists(),
        "a refused run writes nothing"
    );
    // --force discards it, writes the rest and deletes the orphan.
    let (code, text) = prefiq(root, &["codegen", "--force"]);
    assert_eq!(code, 0, "{text}");
    assert!(!orphan.exists());
    assert!(findings(root).is_empty());
}

#[test]
fn files_without_the_header_are_never_overwritten_or_deleted() {
    let dir = project();
    let root = dir.path();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    let mine = root.join("apps/crm/bin/src/generated/deal.rs");
    std::fs::write(&mine, "// my own file\n").unwrap();
    let also_mine = root.join("apps/crm/bin/src/generated/notes.rs");
    std::fs::write(&also_mine, "// notes\n").unwrap();
    let services = root.join("apps/crm/bin/src/services/mod.rs");
    std::fs::write(&services, "// hand-written\n").unwrap();

    assert!(kinds(root).contains(&(
        "not generated".to_owned(),
        "apps/crm/bin/src/generated/deal.rs".to_owned()
    )));
    for args in [&["codegen"][..], &["codegen", "--force"][..]] {
        let (code, text) = prefiq(root, args);
        assert_eq!(code, 1, "{text}");
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "// my own file\n");
    }
    assert_eq!(std::fs::read_to_string(&also_mine).unwrap(), "// notes\n");
    assert_eq!(
        std::fs::read_to_string(&services).unwrap(),
        "// hand-written\n",
        "scaffolds are written once"
    );
}

#[test]
fn an_orphan_that_is_no_longer_text_is_kept_unless_forced() {
    let dir = project();
    let root = dir.path();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    // Generated once, then saved by someone in another encoding: the header is intact, the
    // rest is not UTF-8. It is not ours as we left it, so only --force may delete it.
    let orphan = root.join("apps/crm/bin/src/generated/old.rs");
    let mut bytes =
        prefiq::output::GeneratedFile::new("old.rs", "apps/crm/core/schema", "pub fn old() {}\n")
            .contents
            .into_bytes();
    bytes.extend_from_slice(b"// caf\xe9\n");
    std::fs::write(&orphan, &bytes).unwrap();

    let (code, text) = prefiq(root, &["codegen"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("apps/crm/bin/src/generated/old.rs"), "{text}");
    assert_eq!(std::fs::read(&orphan).unwrap(), bytes);
    assert_eq!(prefiq(root, &["codegen", "--force"]).0, 0);
    assert!(!orphan.exists());
}

#[test]
fn unchanged_files_are_not_rewritten() {
    let dir = project();
    let root = dir.path();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    let file = root.join("apps/crm/bin/src/generated/deal.rs");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let (code, text) = prefiq(root, &["codegen"]);
    assert_eq!(code, 0);
    assert!(text.contains(" 0 written"), "{text}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn a_run_with_errors_writes_nothing() {
    let dir = project();
    let root = dir.path();
    let deal = root.join("apps/crm/core/schema/deal.yaml");
    let text = std::fs::read_to_string(&deal)
        .unwrap()
        .replace("format: date\n", "format: dat\n");
    std::fs::write(&deal, text).unwrap();
    let (code, text) = prefiq(root, &["codegen"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("unknown format `dat`") && text.contains("deal.yaml:"),
        "{text}"
    );
    let written: Vec<PathBuf> = walkdir::WalkDir::new(root.join("apps/crm"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| !p.to_string_lossy().contains("core/schema"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
    let (code, json) = prefiq(root, &["--message-format", "json", "codegen"]);
    assert_eq!(code, 1);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["code"], "prefiq::lower::unknown_format");
    assert_eq!(first["file"], "apps/crm/core/schema/deal.yaml");
}

#[test]
fn a_schema_edit_changes_the_api() {
    let dir = project();
    let root = dir.path();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    let before_ts = std::fs::read_to_string(root.join("apps/crm/core/types/ts/index.ts")).unwrap();
    let company = root.join("apps/crm/core/schema/company.yaml");
    let text = std::fs::read_to_string(&company).unwrap().replace(
        "  website:\n",
        "  vat_number:\n    type: [string, \"null\"]\n    maxLength: 20\n    x-prefiq: {filterable: true}\n  website:\n",
    );
    std::fs::write(&company, text).unwrap();
    let (code, text) = prefiq(root, &["codegen"]);
    assert_eq!(code, 0, "{text}");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert!(read("apps/crm/core/openapi.json").contains("vat_number"));
    assert!(read("apps/crm/bin/src/generated/company.rs").contains("\"vat_number\""));
    assert!(read("apps/crm/core/types/rust/src/generated/company.rs").contains("pub vat_number"));
    // The database change is a new migration, made on request; until then --check says so.
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 1);
    assert!(text.contains("unmigrated"), "{text}");
    let (code, text) = prefiq(root, &["migrate", "diff", "add_vat_number"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        read("apps/crm/bin/migrations/postgres/0002_add_vat_number.sql")
            .contains("ADD COLUMN \"vat_number\" text")
    );
    assert!(
        read("apps/crm/bin/src/generated/mod.rs").contains("0002_add_vat_number.sql"),
        "the binary embeds it"
    );
    // Every client and document moves with the schema (the Rust client is built from the 3.0
    // rendition by its build script).
    assert!(read("apps/crm/core/types/ts/index.ts").contains("vat_number?: string | null;"));
    assert!(read("apps/crm/core/openapi-3.0.json").contains("vat_number"));
    // And --check catches any one of them left behind.
    std::fs::write(root.join("apps/crm/core/types/ts/index.ts"), before_ts).unwrap();
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 1);
    assert!(text.contains("apps/crm/core/types/ts/index.ts"), "{text}");
}

#[test]
fn a_project_or_app_template_replaces_the_built_in_one() {
    let dir = project();
    let root = dir.path();
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/ts/rules.ts.jinja"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("templates/ts")).unwrap();
    std::fs::write(
        root.join("templates/ts/rules.ts.jinja"),
        format!("// house style\n{builtin}"),
    )
    .unwrap();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    let rules = std::fs::read_to_string(root.join("apps/crm/src/services/rules.ts")).unwrap();
    assert!(
        rules.contains("// house style"),
        "the project override is used"
    );

    std::fs::create_dir_all(root.join("apps/crm/templates/ts")).unwrap();
    std::fs::write(
        root.join("apps/crm/templates/ts/rules.ts.jinja"),
        format!("// crm style\n{builtin}"),
    )
    .unwrap();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    let rules = std::fs::read_to_string(root.join("apps/crm/src/services/rules.ts")).unwrap();
    assert!(
        rules.contains("// crm style") && !rules.contains("// house style"),
        "the app override wins"
    );

    std::fs::write(
        root.join("apps/crm/templates/ts/rules.ts.jinja"),
        "line one\n{% for x in %}\n",
    )
    .unwrap();
    let (code, text) = prefiq(root, &["codegen"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("apps/crm/templates/ts/rules.ts.jinja:2:1"),
        "the diagnostic names the template file and line: {text}"
    );
}

/// `--check` answers from the manifest while the inputs keep their fingerprint and every file
/// its digest; anything else sends it back to a full comparison, which finds the difference.
#[test]
fn the_up_to_date_shortcut_never_hides_a_difference() {
    let dir = project();
    let root = dir.path();
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    let manifest = std::fs::read_to_string(root.join("apps/crm/core/codegen.sum")).unwrap();
    assert!(
        manifest.contains("file ") && manifest.contains("inputs "),
        "{manifest}"
    );
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 0, "{text}");

    // A generated file swapped for another generated text (its own digest is valid) is stale.
    let company = root.join("apps/crm/core/types/rust/src/generated/company.rs");
    let current = std::fs::read_to_string(&company).unwrap();
    let older = prefiq::output::GeneratedFile::new(
        "apps/crm/core/types/rust/src/generated/company.rs",
        "apps/crm/core/schema",
        "pub struct Company;\n",
    );
    std::fs::write(&company, &older.contents).unwrap();
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("stale") && text.contains("company.rs"),
        "{text}"
    );
    std::fs::write(&company, current).unwrap();
    assert_eq!(prefiq(root, &["codegen", "--check"]).0, 0);

    // Settings and templates are inputs: changing them is a change, even without a new output.
    let settings = root.join("prefiq.toml");
    std::fs::write(&settings, "# a comment\n").unwrap();
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("apps/crm/core/codegen.sum"), "{text}");
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    assert_eq!(prefiq(root, &["codegen", "--check"]).0, 0);
    std::fs::create_dir_all(root.join("templates/ts")).unwrap();
    let builtin = prefiq_templates_rules();
    std::fs::write(
        root.join("templates/ts/rules.ts.jinja"),
        format!("{builtin}\n// ours\n"),
    )
    .unwrap();
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("apps/crm/src/services/rules.ts"), "{text}");

    // A new migration file is an input too.
    assert_eq!(prefiq(root, &["codegen"]).0, 0);
    let stray = root.join("apps/crm/bin/migrations/postgres/0002_by_hand.sql");
    std::fs::write(&stray, "SELECT 1;\n").unwrap();
    std::fs::write(
        root.join("apps/crm/bin/migrations/sqlite/0002_by_hand.sql"),
        "SELECT 1;\n",
    )
    .unwrap();
    let (code, text) = prefiq(root, &["codegen", "--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("0002_by_hand.sql"),
        "the binary must embed it: {text}"
    );
}

/// The built-in `ts/rules.ts.jinja`, as the repository holds it.
fn prefiq_templates_rules() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(repo.join("templates/ts/rules.ts.jinja")).unwrap()
}
