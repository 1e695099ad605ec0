//! The `cortex-apps` crate: the apps Cortex runs, from `prefiq.toml`. Cortex's server depends on
//! it and on nothing app-specific, so installing an app is adding it to `[cortex] apps` (or
//! creating it, when the list is left to default) and running `prefiq codegen`.

use crate::config::ProjectConfig;
use crate::diag::Diagnostic;
use crate::ir::{App, CORTEX, app_root, crate_name};
use crate::output::{GeneratedFile, Output};

/// The crate, when the app of `context` is Cortex's own; nothing otherwise.
pub(super) fn emit(context: &super::Context, output: &mut Output) -> Result<(), Diagnostic> {
    let source = format!("{}/core/schema", app_root(&context.app.name));
    for (path, text) in files(context.app, context.config) {
        output.files.push(GeneratedFile::new(path, &source, &text));
    }
    Ok(())
}

/// The crate's files, `(path, contents)`, when `app` is Cortex's own; none otherwise.
fn files(app: &App, config: &ProjectConfig) -> Vec<(String, String)> {
    if app.name != CORTEX {
        return Vec::new();
    }
    let dir = format!("{}/apps", app_root(CORTEX));
    let installed = config.installed();
    let mut manifest = String::from(
        "[package]\nname = \"cortex-apps\"\ndescription = \"The apps Cortex runs, from prefiq.toml.\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\n",
    );
    for name in installed {
        manifest.push_str(&format!(
            "{} = {{ path = \"../../{}/bin\" }}\n",
            crate_name(name),
            app_root(name)
        ));
    }
    manifest.push_str(&super::rust::runtime_dependency(config, 2));
    manifest.push('\n');
    let mut lib = String::from(
        "//! The apps Cortex runs, in the order of `[cortex] apps` in prefiq.toml (every app under\n\
         //! apps/ when it is not set). Each is served through its own service, made with\n\
         //! `services::Service::new`.\n\n\
         use prefiq_runtime::catalog::Installed;\n\n\
         /// Every installed app.\n\
         pub static INSTALLED: &[Installed] = &[\n",
    );
    for name in installed {
        let krate = crate_name(name).replace('-', "_");
        lib.push_str(&format!(
            "    Installed {{\n        catalog: &{krate}::generated::CATALOG,\n        router: |db| {{\n            let service = {krate}::services::Service::new(db.clone());\n            Ok({krate}::generated::routes(service, db)?)\n        }},\n    }},\n"
        ));
    }
    lib.push_str("];\n");
    vec![
        (format!("{dir}/Cargo.toml"), manifest),
        (format!("{dir}/src/lib.rs"), lib),
    ]
}
