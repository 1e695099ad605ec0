//! The design tokens (`resources/design/tokens.json`) become CSS custom properties, a typed
//! TypeScript module and a Tailwind v4 theme (`resources/design/generated/`), and real consumers
//! take each: `tsc --strict` the module (and refuses a token that does not exist), Tailwind's CLI
//! the theme.

use std::process::Command;

use prefiq_testkit::tools::{output, repo_root, run_ok, tool, tsc};

fn generated(name: &str) -> String {
    let path = repo_root().join("resources/design/generated").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tokens() -> serde_json::Value {
    let path = repo_root().join("resources/design/tokens.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_token_is_a_custom_property_with_its_dark_value_where_it_has_one() {
    let css = generated("tokens.css");
    let (light, dark) = css
        .split_once("@media (prefers-color-scheme: dark)")
        .expect("dark overrides");
    let mut themed = 0;
    for (group, members) in tokens().as_object().unwrap() {
        let Some(members) = members.as_object().filter(|_| !group.starts_with('$')) else {
            continue;
        };
        for (name, value) in members {
            let light_value = value.get("light").unwrap_or(value);
            let light_value = light_value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| light_value.to_string());
            assert!(
                light.contains(&format!("--{group}-{name}: {light_value};")),
                "{group}.{name} in tokens.css"
            );
            if let Some(dark_value) = value.get("dark").and_then(|v| v.as_str()) {
                themed += 1;
                // Under the system's preference, and when a page chooses dark.
                assert_eq!(
                    dark.matches(&format!("--{group}-{name}: {dark_value};"))
                        .count(),
                    2,
                    "{group}.{name} in the dark rules"
                );
            }
        }
    }
    assert!(themed >= 15, "the colours have dark values ({themed})");
}

#[test]
fn tsc_strict_takes_the_typed_tokens_and_refuses_an_unknown_one() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("tokens.ts"), generated("tokens.ts")).unwrap();
    let config = r#"{"compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true, "noEmit": true, "noUnusedLocals": true}, "files": ["tokens.ts", "use.ts"]}"#;
    std::fs::write(scratch.path().join("tsconfig.json"), config).unwrap();
    let consumer = |body: &str| {
        std::fs::write(
            scratch.path().join("use.ts"),
            format!("import {{ cssVar, tokenValue, tokens }} from \"./tokens.js\";\n{body}\n"),
        )
        .unwrap();
        output(
            Command::new(tsc())
                .arg("-p")
                .arg(scratch.path().join("tsconfig.json")),
        )
    };
    let ok = consumer(
        "export const primary: string = cssVar(\"color\", \"primary\");\n\
         export const dark: string = tokenValue(\"color\", \"bg\", \"dark\");\n\
         export const space: string = tokens.space[\"4\"].light;",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let typo = consumer("export const nope: string = cssVar(\"color\", \"primray\");");
    assert!(!typo.status.success(), "an unknown token must not compile");
    assert!(
        String::from_utf8_lossy(&typo.stdout).contains("primray"),
        "{}",
        String::from_utf8_lossy(&typo.stdout)
    );
}

#[test]
fn tailwind_makes_utilities_from_the_theme() {
    // Inside .ci/ so that `@import "tailwindcss"` resolves from its node_modules.
    let scratch = tempfile::tempdir_in(repo_root().join(".ci")).unwrap();
    let theme = repo_root().join("resources/design/generated/theme.css");
    std::fs::write(
        scratch.path().join("in.css"),
        format!(
            "@import \"tailwindcss\";\n@import \"{}\";\n@source \"./page.html\";\n",
            theme.display()
        ),
    )
    .unwrap();
    std::fs::write(
        scratch.path().join("page.html"),
        r#"<div class="bg-primary text-danger border-border p-4 text-sm rounded-md font-body shadow-card"></div>"#,
    )
    .unwrap();
    let out = scratch.path().join("out.css");
    run_ok(
        Command::new(tool("node_modules/.bin/tailwindcss"))
            .current_dir(scratch.path())
            .args(["-i", "in.css", "-o"])
            .arg(&out),
    );
    let css = std::fs::read_to_string(&out).unwrap();
    for (utility, declaration) in [
        (".bg-primary", "background-color: var(--color-primary)"),
        (".text-danger", "color: var(--color-danger)"),
        (".p-4", "padding: var(--spacing-4)"),
        (".text-sm", "font-size: var(--text-sm)"),
        (".rounded-md", "border-radius: var(--radius-md)"),
        (".font-body", "font-family: var(--font-body)"),
    ] {
        let rule = css
            .split(&format!("{utility} {{"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {utility} in:\n{css}"));
        assert!(
            rule.split('}').next().unwrap().contains(declaration),
            "{utility}: {declaration}"
        );
    }
    assert!(
        css.contains("--color-primary: #2f56d6"),
        "the theme's values"
    );
    assert!(css.contains(":root[data-theme=\"dark\"]"), "the dark theme");
}
