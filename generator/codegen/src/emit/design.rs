//! The files of the design tokens (see [`crate::design`]), in `resources/design/generated/`:
//! `tokens.css` (custom properties, light, dark under `prefers-color-scheme: dark` or
//! `data-theme="dark"`), `tokens.ts` (a typed module) and `theme.css` (a Tailwind v4 `@theme`).

use crate::design::{GENERATED, Token};
use crate::output::GeneratedFile;
use crate::vocab::TOKENS_PATH as TOKENS;

fn declarations(
    tokens: &[Token],
    name: impl Fn(&Token) -> String,
    dark: bool,
    indent: &str,
) -> String {
    tokens
        .iter()
        .filter_map(|t| {
            let value = if dark { t.dark.as_ref()? } else { &t.light };
            Some(format!("{indent}{}: {value};", name(t)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The dark overrides: by the system's preference unless the page chose light, or by choice.
fn dark_rules(tokens: &[Token], name: impl Fn(&Token) -> String + Copy) -> String {
    format!(
        "@media (prefers-color-scheme: dark) {{\n  :root:not([data-theme=\"light\"]) {{\n{}\n  }}\n}}\n\n:root[data-theme=\"dark\"] {{\n{}\n}}\n",
        declarations(tokens, name, true, "    "),
        declarations(tokens, name, true, "  "),
    )
}

fn typescript(tokens: &[Token]) -> String {
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for token in tokens {
        let value = |v: &str| serde_json::to_string(v).unwrap_or_default();
        let entry = format!(
            "    {}: {{ light: {}, dark: {} }},",
            serde_json::to_string(&token.name).unwrap_or_default(),
            value(&token.light),
            value(token.dark.as_deref().unwrap_or(&token.light))
        );
        match groups.last_mut() {
            Some((group, entries)) if *group == token.group => entries.push(entry),
            _ => groups.push((&token.group, vec![entry])),
        }
    }
    let body: Vec<String> = groups
        .iter()
        .map(|(group, entries)| {
            format!(
                "  {}: {{\n{}\n  }},",
                serde_json::to_string(group).unwrap_or_default(),
                entries.join("\n")
            )
        })
        .collect();
    format!(
        r#"/** A theme of the design tokens. */
export type Theme = "light" | "dark";

/** The design tokens, each with its value in every theme. Style with the CSS custom properties of
 * `tokens.css` where you can (they follow the theme); read values here where CSS cannot reach, as
 * in a chart or a canvas. */
export const tokens = {{
{}
}} as const;

/** A group of tokens, as in `"color"`. */
export type TokenGroup = keyof typeof tokens;

/** A token of `G`, as in `"primary"`. */
export type TokenName<G extends TokenGroup> = keyof (typeof tokens)[G] & string;

/** The CSS custom property of a token: `cssVar("color", "primary")` is `var(--color-primary)`. */
export function cssVar<G extends TokenGroup>(group: G, name: TokenName<G>): string {{
  return `var(--${{group}}-${{name}})`;
}}

/** A token's value in `theme`. */
export function tokenValue<G extends TokenGroup>(group: G, name: TokenName<G>, theme: Theme = "light"): string {{
  const token = tokens[group][name] as {{ light: string; dark: string }};
  return token[theme];
}}
"#,
        body.join("\n")
    )
}

/// The generated files of `tokens`.
pub fn files(tokens: &[Token]) -> Vec<GeneratedFile> {
    let css = format!(
        ":root {{\n{}\n}}\n\n{}",
        declarations(tokens, Token::property, false, "  "),
        dark_rules(tokens, Token::property)
    );
    let theme = format!(
        "/* Tailwind v4: `@import \"tailwindcss\"; @import \"./theme.css\";` gives utilities such as\n   bg-primary, text-sm, p-4, rounded-md and shadow-card from the design tokens. */\n@theme {{\n{}\n}}\n\n{}",
        declarations(tokens, Token::tailwind_property, false, "  "),
        dark_rules(tokens, Token::tailwind_property)
    );
    vec![
        GeneratedFile::new(format!("{GENERATED}/tokens.css"), TOKENS, &css),
        GeneratedFile::new(
            format!("{GENERATED}/tokens.ts"),
            TOKENS,
            &typescript(tokens),
        ),
        GeneratedFile::new(format!("{GENERATED}/theme.css"), TOKENS, &theme),
    ]
}
