//! TypeScript output: the types of an app (`core/types/ts/index.ts`), a fetch-only client, its
//! rules and validators (`src/services/`), TanStack Query hooks and the screens' description of
//! each entity. Type expressions are decided here; the files come from `templates/ts/`. One
//! module per file written, as `emit/rust/` has one per crate.

mod client;
mod components;
mod hooks;
mod rules;
mod types;
mod validate;

use crate::diag::Diagnostic;
use crate::ir::App;
use crate::templates::Templates;

pub(crate) use client::core;

/// Where the client imports the types from (relative to `src/services/`).
const TYPES_FROM_CLIENT: &str = "../../core/types/ts/index.js";

/// A comment block, with `*/` made harmless.
fn doc(lines: &[String], indent: &str) -> String {
    let lines: Vec<String> = lines
        .iter()
        .flat_map(|l| {
            if l.is_empty() {
                vec![String::new()]
            } else {
                l.lines().map(str::to_owned).collect::<Vec<_>>()
            }
        })
        .collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return String::new();
    }
    let escape = |l: &str| l.replace("*/", "*\\/");
    if lines.len() == 1 {
        return format!("{indent}/** {} */\n", escape(lines[0].trim()));
    }
    let mut out = format!("{indent}/**\n");
    for line in lines {
        out.push_str(&format!("{indent} * {}\n", escape(line.trim_end())).replace(" * \n", " *\n"));
    }
    out.push_str(&format!("{indent} */\n"));
    out
}

/// How to render TypeScript.
pub(crate) struct TsOptions<'a> {
    /// Where the client imports the types from.
    pub types_path: &'a str,
    /// Where the client imports its request helper from: [`RUNTIME`] in a project, `./core.js`
    /// for a client that carries its own ([`core`]).
    pub runtime: &'a str,
}

/// The React-free entry of the frontend library, which every generated service file imports.
pub(crate) const RUNTIME: &str = "@prefiq/frontend/client";

/// The frontend library's main entry (components, sessions), which the screens import.
pub(crate) const LIBRARY: &str = "@prefiq/frontend";

/// The TypeScript of an app: `(types, client)`.
pub(crate) fn render(
    app: &App,
    templates: &Templates,
    options: &TsOptions,
) -> Result<(String, String), Diagnostic> {
    let items = types::items(app);
    let types = templates.render(
        "ts/types.ts.jinja",
        serde_json::json!({ "app": app.name, "types": items, "events": types::events(app) }),
    )?;
    let client = client::render(app, templates, options, &items)?;
    Ok((types, client))
}

/// The TypeScript files of the app of `context`: `(path, contents)`.
pub(crate) fn emit(context: &super::Context) -> Result<Vec<(String, String)>, Diagnostic> {
    let (app, templates) = (context.app, context.templates);
    let (types, client) = render(
        app,
        templates,
        &TsOptions {
            types_path: TYPES_FROM_CLIENT,
            runtime: RUNTIME,
        },
    )?;
    let root = crate::ir::app_root(&app.name);
    Ok(vec![
        (format!("{root}/core/types/ts/index.ts"), types),
        (format!("{root}/src/services/client.ts"), client),
        (
            format!("{root}/src/services/rules.ts"),
            rules::rules(app, templates)?,
        ),
        (
            format!("{root}/src/services/validate.ts"),
            validate::validators(app, context.schemas, templates)?,
        ),
        (
            format!("{root}/src/hooks/generated.ts"),
            hooks::hooks(app, templates)?,
        ),
        (
            format!("{root}/src/components/generated.tsx"),
            components::components(app, templates)?,
        ),
    ])
}
