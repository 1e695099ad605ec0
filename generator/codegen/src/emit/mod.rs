//! Stage 4, `emit`: the [`Ir`](crate::ir::Ir) → files in memory.
//!
//! Every emitter is a function of an app's IR, the project's settings and its templates. None
//! reads a file, and none calls another stage: the session hands them what they need.

mod asyncapi;
mod cortex;
pub mod design;
mod openapi;
mod openapi30;
pub(crate) mod rust;
pub(crate) mod ts;

use crate::config::ProjectConfig;
use crate::diag::Diagnostic;
use crate::ir::App;
use crate::output::{GeneratedFile, Output, Scaffold, pretty_json};
use crate::templates::Templates;

pub use rust::Formatter;

/// The files of the whole project that belong to no app: the meta-schema of `x-prefiq`, and
/// `design`, the files of the design tokens (see [`design::files`]).
pub fn project(design: &[GeneratedFile]) -> Output {
    let mut output = Output::default();
    output.files.push(GeneratedFile::new(
        crate::vocab::META_SCHEMA_PATH,
        "generator/codegen/src/vocab.rs",
        &pretty_json(&crate::vocab::meta_schema()),
    ));
    output.files.extend(design.iter().cloned());
    output
}

/// What every emitter of an app is given. Emitters read nothing else: no file, no other stage.
pub struct Context<'a> {
    /// The app.
    pub app: &'a App,
    /// Its JSON Schema document ([`crate::schemas::document`]), made once per run.
    pub schemas: &'a serde_json::Value,
    /// The project's settings.
    pub config: &'a ProjectConfig,
    /// Its templates, overrides applied.
    pub templates: &'a Templates,
    /// The formatter of generated Rust.
    pub formatter: &'a Formatter,
}

/// An emitter: adds its files and scaffolds to the output.
pub type Emitter = fn(&Context, &mut Output) -> Result<(), Diagnostic>;

/// Every emitter of an app, by what it makes. They run side by side, the largest first.
pub const EMITTERS: &[(&str, Emitter)] = &[
    ("rust crates", rust::emit),
    ("openapi documents", documents),
    ("typescript", typescript),
    ("frontend scaffolds", frontend_scaffolds),
    ("cortex apps", cortex::emit),
];

/// Every generated file and first-run scaffold of the app of `context`.
pub fn app(context: &Context) -> Result<Output, Diagnostic> {
    let results: Vec<Result<Output, Diagnostic>> = std::thread::scope(|scope| {
        let running: Vec<_> = EMITTERS
            .iter()
            .map(|(name, emitter)| {
                let handle = rust::spawn_scoped(scope, move || {
                    let mut output = Output::default();
                    emitter(context, &mut output).map(|()| output)
                });
                (name, handle)
            })
            .collect();
        running
            .into_iter()
            .map(|(name, handle)| {
                handle.join().unwrap_or_else(|_| {
                    Err(Diagnostic::error(
                        "prefiq::emit",
                        format!("internal error: the {name} emitter panicked"),
                    ))
                })
            })
            .collect()
    });
    let mut output = Output::default();
    for result in results {
        let mut part = result?;
        output.files.append(&mut part.files);
        output.scaffolds.append(&mut part.scaffolds);
    }
    output.sort();
    Ok(output)
}

/// The API documents: OpenAPI 3.1 and its 3.0 rendition, and the schemas the server validates
/// with.
fn documents(context: &Context, output: &mut Output) -> Result<(), Diagnostic> {
    let app = context.app;
    let root = crate::ir::app_root(&app.name);
    let schema_dir = format!("{root}/core/schema");
    // Each document is printed and dropped before the next is built: large apps make large trees.
    let openapi = openapi::document(app);
    output.files.push(GeneratedFile::new(
        format!("{root}/core/openapi.json"),
        &schema_dir,
        &pretty_json(&openapi),
    ));
    let openapi30 = openapi30::document(openapi);
    output.files.push(GeneratedFile::new(
        format!("{root}/core/openapi-3.0.json"),
        &schema_dir,
        &pretty_json(&openapi30),
    ));
    drop(openapi30);
    output.files.push(GeneratedFile::new(
        format!("{root}/core/asyncapi.json"),
        &schema_dir,
        &pretty_json(&asyncapi::document(app)),
    ));
    output.files.push(GeneratedFile::new(
        format!("{root}/bin/src/generated/schemas.json"),
        &schema_dir,
        &pretty_json(context.schemas),
    ));
    Ok(())
}

/// The TypeScript: types, client, rules, validators, hooks and the screens' descriptions.
fn typescript(context: &Context, output: &mut Output) -> Result<(), Diagnostic> {
    let schema_dir = format!("{}/core/schema", crate::ir::app_root(&context.app.name));
    for (path, contents) in ts::emit(context)? {
        output
            .files
            .push(GeneratedFile::new(path, &schema_dir, &contents));
    }
    Ok(())
}

/// The frontend's pages, build and settings, written once: the team owns them from then on.
fn frontend_scaffolds(context: &Context, output: &mut Output) -> Result<(), Diagnostic> {
    let root = crate::ir::app_root(&context.app.name);
    output.scaffolds.push(Scaffold {
        path: format!("{root}/src/tsconfig.json"),
        contents: TSCONFIG.to_owned(),
    });
    let root_up = "../".repeat(root.matches('/').count() + 2);
    let values = serde_json::json!({
        "app": context.app.name,
        "library": crate::emit::ts::LIBRARY,
        "root_up": root_up,
    });
    for (template, path) in [
        ("ts/app/App.tsx.jinja", "src/app/App.tsx"),
        ("ts/app/main.tsx.jinja", "src/app/main.tsx"),
        ("ts/app/index.html.jinja", "src/index.html"),
        ("ts/app/vite.config.ts.jinja", "src/vite.config.ts"),
        ("ts/app/app.css.jinja", "src/styles/app.css"),
        ("ts/app/package.json.jinja", "src/package.json"),
        (
            "ts/app/screens.spec.tsx.jinja",
            "src/tests/screens.spec.tsx",
        ),
    ] {
        output.scaffolds.push(Scaffold {
            path: format!("{root}/{path}"),
            contents: context.templates.render(template, values.clone())?,
        });
    }
    Ok(())
}

/// The TypeScript settings of an app's `src/` (a scaffold: yours to change).
const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022", "DOM"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "noUnusedLocals": true,
    "noUnusedParameters": true,
    "exactOptionalPropertyTypes": false,
    "skipLibCheck": true,
    "jsx": "react-jsx",
    "outDir": "dist",
    "types": ["node"]
  },
  "include": ["services/**/*.ts", "hooks/**/*.ts", "components/**/*.tsx", "app/**/*.tsx", "tests/**/*.ts", "tests/**/*.tsx", "../core/types/ts/**/*.ts"]
}
"#;
