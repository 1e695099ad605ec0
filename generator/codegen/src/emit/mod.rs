//! Stage 4, `emit`: the [`Ir`](crate::ir::Ir) → files in memory.
//!
//! Every emitter is a function of an app's IR, the project's settings and its templates. None
//! reads a file, and none calls another stage: the session hands them what they need.

mod cortex;
mod decimal_range;
pub mod design;
mod openapi;
mod openapi30;
pub(crate) mod rust;
pub(crate) mod schema;
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

/// Every generated file and first-run scaffold of `app`.
pub fn app(
    app: &App,
    config: &ProjectConfig,
    templates: &Templates,
    formatter: &Formatter,
) -> Result<Output, Diagnostic> {
    let mut output = Output::default();
    // The Rust crates are half of an app's emit time: make them on a second core meanwhile.
    let mut rust_output = Output::default();
    let (documents, rust) = std::thread::scope(|scope| {
        let rust = rust::spawn_scoped(scope, || {
            rust::emit(app, config, formatter, &mut rust_output)
        });
        (documents(app, templates, &mut output), rust.join())
    });
    documents?;
    rust.unwrap_or_else(|_| {
        Err(Diagnostic::error(
            "prefiq::emit::rust",
            "internal error: the Rust emitter panicked",
        ))
    })?;
    output.files.append(&mut rust_output.files);
    output.scaffolds.append(&mut rust_output.scaffolds);
    let source = format!("{}/core/schema", crate::ir::app_root(&app.name));
    for (path, text) in cortex::files(app, config) {
        output.files.push(GeneratedFile::new(path, &source, &text));
    }
    output.sort();
    Ok(output)
}

/// The API documents, the TypeScript client and their scaffolds.
fn documents(app: &App, templates: &Templates, output: &mut Output) -> Result<(), Diagnostic> {
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
        format!("{root}/bin/src/generated/schemas.json"),
        &schema_dir,
        &pretty_json(&schema::document(app)),
    ));
    for (path, contents) in ts::emit(app, templates)? {
        output
            .files
            .push(GeneratedFile::new(path, &schema_dir, &contents));
    }
    output.scaffolds.push(Scaffold {
        path: format!("{root}/src/tsconfig.json"),
        contents: TSCONFIG.to_owned(),
    });
    // The pages and the build, written once: the team owns them from then on.
    let root_up = "../".repeat(root.matches('/').count() + 2);
    let context = serde_json::json!({
        "app": app.name,
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
            contents: templates.render(template, context.clone())?,
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
