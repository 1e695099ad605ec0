//! The design tokens of `resources/design/tokens.json`, the one theme file of Cortex's admin UI
//! and of every app's frontend, checked into [`Token`]s that `emit::design` makes into
//! `resources/design/generated/`:
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

/// The themes a token may tell apart; the first is the default.
const THEMES: [&str; 2] = ["light", "dark"];

/// Where the files of the tokens go.
pub const GENERATED: &str = "resources/design/generated";

/// One token: its group and name, and its value per theme (`None` where a theme uses light's).
pub struct Token {
    /// Its group, as in `color`.
    pub group: String,
    /// Its name in the group, as in `primary`.
    pub name: String,
    /// Its value in the light theme, the default.
    pub light: String,
    /// Its value in the dark theme, where it differs.
    pub dark: Option<String>,
}

impl Token {
    /// Its CSS custom property, as in `--color-primary`.
    pub fn property(&self) -> String {
        format!("--{}-{}", self.group, self.name)
    }

    /// Its name in Tailwind's theme namespaces.
    pub fn tailwind_property(&self) -> String {
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
fn read(file: &SourceFile) -> (Vec<Token>, Vec<Diagnostic>) {
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
/// The tokens of `file`, or the problems with it.
pub fn check(file: &SourceFile) -> Result<Vec<Token>, Vec<Diagnostic>> {
    let (tokens, diagnostics) = read(file);
    if diagnostics.is_empty() && file.value.is_some() {
        Ok(tokens)
    } else {
        Err(diagnostics)
    }
}
