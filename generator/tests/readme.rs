//! README.md's code snippets are the tested code: each block after `<!-- snippet: FILE -->` must
//! equal the region between `// README:begin` and `// README:end` in FILE.

use prefiq_testkit::tools::repo_root;

fn region(text: &str) -> Option<String> {
    let start = text.find("README:begin")?;
    let start = start + text[start..].find('\n')? + 1;
    let end = text.find("// README:end")?;
    Some(text[start..end].trim_end().to_owned())
}

#[test]
fn readme_snippets_are_the_tested_code() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut checked = 0;
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("<!-- snippet: ") {
        rest = &rest[at + "<!-- snippet: ".len()..];
        let file = &rest[..rest.find(" -->").unwrap()];
        let fence = rest.find("```").unwrap();
        let body_start = fence + rest[fence..].find('\n').unwrap() + 1;
        let body_end = body_start + rest[body_start..].find("```").unwrap();
        let snippet = rest[body_start..body_end].trim_end();
        let source =
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let tested = region(&source).unwrap_or_else(|| panic!("{file} has no README region"));
        assert_eq!(
            snippet, tested,
            "the README snippet from {file} differs from the tested code; copy it again"
        );
        checked += 1;
    }
    assert_eq!(
        checked, 2,
        "the README shows a TypeScript and a Rust snippet"
    );
}
