//! The minijinja templates for everything that is not Rust (SQL, TypeScript). The built-in ones
//! come from the `prefiq-templates` crate; the load stage reads a project's overrides, and this
//! module only compiles text it is given.

use minijinja::Environment;
use serde::Serialize;

use crate::diag::Diagnostic;

use prefiq_templates::BUILTIN;

/// A template of the project (or of one app) that replaces a built-in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateOverride {
    /// The built-in template it replaces, as in `ts/client.ts.jinja`.
    pub name: String,
    /// Its path relative to the project root.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// The built-in template names, and where a project's overrides of them live under `folder`.
pub fn override_paths(folder: &str) -> impl Iterator<Item = (&'static str, String)> + '_ {
    BUILTIN
        .iter()
        .map(move |(name, _)| (*name, format!("{folder}/{name}")))
}

/// A template environment: the built-in templates, each replaced by a file of the same name in
/// the project's `templates/` folder or the app's `apps/<app>/templates/` folder, if there is one.
#[derive(Clone, Debug)]
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

    /// These templates with `overrides` in place of the built-in ones they name.
    pub fn with_overrides(
        mut self,
        overrides: &[TemplateOverride],
    ) -> Result<Templates, Diagnostic> {
        for found in overrides {
            let builtin = BUILTIN.iter().find(|(name, _)| *name == found.name);
            if builtin.is_some_and(|(_, text)| *text == found.text) {
                continue; // Prefiq's own repository holds the built-ins themselves
            }
            if let Err(error) = self
                .env
                .add_template_owned(found.name.clone(), found.text.clone())
            {
                return Err(self.located(&found.name, &found.path, &found.text, &error));
            }
            self.sources.retain(|(n, _, _)| *n != found.name);
            self.sources
                .push((found.name.clone(), found.path.clone(), found.text.clone()));
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
