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

/// A template environment: the built-in templates, each replaced by a file of the same name in
/// the project's `templates/` folder or the app's `apps/<app>/templates/` folder, if there is one.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Where each overridden template came from, for diagnostics: `(name, path, text)`.
    sources: Vec<(String, String, String)>,
}

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Result<Templates, Diagnostic> {
        let mut env = Environment::new();
        for (name, source) in BUILTIN {
            env.add_template(name, source)
                .map_err(|e| template_error(name, &e))?;
        }
        Ok(Templates {
            env,
            sources: Vec::new(),
        })
    }

    /// The built-in templates with the overrides found in `folder` (relative to `root`).
    pub fn with_overrides(
        mut self,
        root: &std::path::Path,
        folder: &str,
    ) -> Result<Templates, Diagnostic> {
        for (name, builtin) in BUILTIN {
            let path = format!("{folder}/{name}");
            let Ok(text) = std::fs::read_to_string(root.join(&path)) else {
                continue;
            };
            if text == *builtin {
                continue; // the repository's own templates folder holds the built-ins themselves
            }
            if let Err(error) = self.env.add_template_owned(name.to_string(), text.clone()) {
                return Err(self.located(name, &path, &text, &error));
            }
            self.sources.retain(|(n, _, _)| n != name);
            self.sources.push((name.to_string(), path, text));
        }
        Ok(self)
    }

    fn located(&self, name: &str, path: &str, text: &str, error: &minijinja::Error) -> Diagnostic {
        let source = crate::diag::SourceText::new(path, text);
        let line = error.line().unwrap_or(1);
        let start = source.offset(line, 1);
        let end = text[start..]
            .find('\n')
            .map(|e| start + e)
            .unwrap_or(text.len());
        Diagnostic::error(
            "prefiq::emit::template",
            format!("the template override {path} is broken: {error}"),
        )
        .with_help(format!("fix it, or delete it to use the built-in `{name}`"))
        .at(&source, "", crate::diag::Span::new(start, end), "here")
    }

    /// Renders `name` with `context`; the result ends with exactly one newline.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, Diagnostic> {
        let fail = |e: minijinja::Error| match self.sources.iter().find(|(n, _, _)| n == name) {
            Some((_, path, text)) => self.located(name, path, text, &e),
            None => template_error(name, &e),
        };
        let template = self.env.get_template(name).map_err(fail)?;
        let mut text = template
            .render(minijinja::Value::from(minijinja::value::Serde(&context)))
            .map_err(fail)?;
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
