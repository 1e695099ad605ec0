//! The minijinja templates for everything that is not Rust (SQL, TypeScript, Markdown).
//! Built-in templates live in the repository's `templates/` folder and are compiled in.

use minijinja::Environment;
use serde::Serialize;

use crate::diag::Diagnostic;

/// Built-in templates: `(name, source)`.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "migration.sql.jinja",
        include_str!("../../../templates/migration.sql.jinja"),
    ),
    (
        "ts/types.ts.jinja",
        include_str!("../../../templates/ts/types.ts.jinja"),
    ),
    (
        "ts/client.ts.jinja",
        include_str!("../../../templates/ts/client.ts.jinja"),
    ),
    (
        "ts/core.ts.jinja",
        include_str!("../../../templates/ts/core.ts.jinja"),
    ),
];

/// A template environment.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Result<Templates, Diagnostic> {
        let mut env = Environment::new();
        for (name, source) in BUILTIN {
            env.add_template(name, source)
                .map_err(|e| template_error(name, &e))?;
        }
        Ok(Templates { env })
    }

    /// Renders `name` with `context`; the result ends with exactly one newline.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, Diagnostic> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| template_error(name, &e))?;
        let mut text = template
            .render(minijinja::Value::from(minijinja::value::Serde(&context)))
            .map_err(|e| template_error(name, &e))?;
        while text.ends_with("\n\n") {
            text.pop();
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}

fn template_error(name: &str, error: &minijinja::Error) -> Diagnostic {
    let line = error
        .line()
        .map(|l| format!(" line {l}"))
        .unwrap_or_default();
    Diagnostic::error(
        "prefiq::emit::template",
        format!("template `{name}`{line}: {error}"),
    )
    .with_help("fix the template; see templates/ for the built-in version")
}
