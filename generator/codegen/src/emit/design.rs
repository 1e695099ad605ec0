//! The design tokens of `resources/design/tokens.json`, the one theme file of Cortex's admin UI
//! and of every app's frontend, made into `resources/design/generated/`:
//! - `tokens.css`: CSS custom properties (`color.primary` is `--color-primary`), light by
//!   default, dark under `prefers-color-scheme: dark` or `data-theme="dark"`;
//! - `tokens.ts`: the same values as a typed module, and `cssVar` to name a property;
//! - `theme.css`: a Tailwind v4 `@theme` (Tailwind's namespaces: `font.size-sm` is `--text-sm`,
//!   `space.4` is `--spacing-4`), with the same dark overrides.
//!
//! A token is a string or a number, or `{light, dark}` when the themes differ.

use serde_json::{Map, Value};

use crate::diag::Diagnostic;
use crate::load::SourceFile;
use crate::output::GeneratedFile;

/// The token file, relative to the project root.
pub const TOKENS: &str = "resources/design/tokens.json";

/// Where its outputs go.
pub const GENERATED: &str = "resources/design/generated";

/// The themes a token may tell apart; the first is the default.
const THEMES: [&str; 2] = ["light", "dark"];

/// One token: its group and name, and its value per theme (`None` where a theme uses light's).
struct Token {
    group: String,
    name: String,
    light: String,
    dark: Option<String>,
}

impl Token {
    fn property(&self) -> String {
        format!("--{}-{}", self.group, self.name)
    }

    /// Its name in Tailwind's theme namespaces.
    fn tailwind_property(&self) -> String {
        match (self.group.as_str(), self.name.strip_prefix("size-")) {
            ("font", Some(size)) => format!("--text-{size}"),
            ("space", _) => format!("--spacing-{}", self.name),
            _ => self.property(),
        }
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() && !text.contains([';', '{', '}']) => {
            Some(text.clone())
        }
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The tokens of `file`, or a located diagnostic for each one that is not a token.
fn tokens(file: &SourceFile) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut tokens = Vec::new();
    let mut diagnostics = Vec::new();
    let mut report = |pointer: &str, message: String, help: &str| {
        diagnostics.push(file.diag(
            Diagnostic::error("prefiq::design::token", message).with_help(help),
            pointer,
            true,
            "here",
        ));
    };
    let Some(Value::Object(groups)) = &file.value else {
        if file.value.is_some() {
            report(
                "",
                "the design tokens are a map of groups".into(),
                "write `{\"color\": {\"primary\": \"#2f56d6\"}}`",
            );
        }
        return (tokens, diagnostics);
    };
    for (group, members) in groups.iter().filter(|(key, _)| !key.starts_with('$')) {
        let at = format!("/{group}");
        let Some(members) = members.as_object().filter(|_| is_name(group)) else {
            report(
                &at,
                format!("`{group}` is not a group of tokens"),
                "a group has a lower-case name (letters, digits, dashes) and holds a map of tokens",
            );
            continue;
        };
        for (name, value) in members {
            let at = format!("{at}/{name}");
            if !is_name(name) {
                report(
                    &at,
                    format!("`{name}` is not a token name"),
                    "use lower-case letters, digits and dashes: it becomes a CSS custom property",
                );
                continue;
            }
            let (light, dark) = match value {
                Value::Object(themes) => (themes.get(THEMES[0]).and_then(scalar), themed(themes)),
                other => (scalar(other), Ok(None)),
            };
            match (light, dark) {
                (Some(light), Ok(dark)) => tokens.push(Token {
                    group: group.clone(),
                    name: name.clone(),
                    light,
                    dark,
                }),
                (_, Err(key)) => report(
                    &format!("{at}/{key}"),
                    format!("`{key}` is not a theme"),
                    "a token's themes are `light` and `dark`",
                ),
                (None, _) => report(
                    &at,
                    format!("`{group}.{name}` is not a token value"),
                    "give a string or a number (without `;`, `{` or `}`), or `{light: …, dark: …}`",
                ),
            }
        }
    }
    (tokens, diagnostics)
}

/// The dark value of a themed token, or the key that is not a theme.
fn themed(themes: &Map<String, Value>) -> Result<Option<String>, String> {
    if let Some(key) = themes.keys().find(|k| !THEMES.contains(&k.as_str())) {
        return Err(key.clone());
    }
    Ok(themes.get(THEMES[1]).and_then(scalar))
}

/// One declaration per token: its light value, or (`dark`) its dark value where it has one.
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

/// The generated files of the token file, or the problems with it (then no file).
pub fn files(file: &SourceFile) -> Result<Vec<GeneratedFile>, Vec<Diagnostic>> {
    let (tokens, diagnostics) = tokens(file);
    if !diagnostics.is_empty() || file.value.is_none() {
        return Err(diagnostics);
    }
    let css = format!(
        ":root {{\n{}\n}}\n\n{}",
        declarations(&tokens, Token::property, false, "  "),
        dark_rules(&tokens, Token::property)
    );
    let theme = format!(
        "/* Tailwind v4: `@import \"tailwindcss\"; @import \"./theme.css\";` gives utilities such as\n   bg-primary, text-sm, p-4, rounded-md and shadow-card from the design tokens. */\n@theme {{\n{}\n}}\n\n{}",
        declarations(&tokens, Token::tailwind_property, false, "  "),
        dark_rules(&tokens, Token::tailwind_property)
    );
    Ok(vec![
        GeneratedFile::new(format!("{GENERATED}/tokens.css"), TOKENS, &css),
        GeneratedFile::new(
            format!("{GENERATED}/tokens.ts"),
            TOKENS,
            &typescript(&tokens),
        ),
        GeneratedFile::new(format!("{GENERATED}/theme.css"), TOKENS, &theme),
    ])
}
