//! Rust output: the model types crate and the axum server crate of an app, built with `quote!`
//! and formatted once with `prettyplease`. Manifests and first-run scaffolds are plain text.

pub mod client;
mod server;
mod types;

pub use types::param_member;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use super::{GeneratedFile, Output, Scaffold};
use crate::diag::Diagnostic;
use crate::ir::{App, Type};
use crate::load::ProjectConfig;
use crate::lower::names;

/// A Rust identifier, raw if it is a keyword.
pub fn ident(name: &str) -> Ident {
    if names::is_rust_keyword(name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// The crate names of an app: `app-crm` / `app_crm`, `app-crm-types` / `app_crm_types`.
pub struct CrateNames {
    /// The server crate's package name.
    pub server: String,
    /// The types crate's package name.
    pub types: String,
}

impl CrateNames {
    /// Names for `app`.
    pub fn of(app: &str) -> CrateNames {
        CrateNames {
            server: format!("app-{app}"),
            types: format!("app-{app}-types"),
        }
    }

    /// The types crate as a Rust path root.
    pub fn types_ident(&self) -> Ident {
        format_ident!("{}", self.types.replace('-', "_"))
    }

    /// The server crate as a Rust path root.
    pub fn server_ident(&self) -> Ident {
        format_ident!("{}", self.server.replace('-', "_"))
    }
}

/// Where generated code finds named types and third-party crates.
pub struct Roots {
    /// The prefix of named types: `crate` in the types crate, `::app_crm_types` elsewhere.
    pub named: TokenStream,
    /// The prefix of `uuid`, `chrono`, `rust_decimal`, `serde_json`: empty for direct
    /// dependencies, `::prefiq_runtime::deps` in server crates.
    pub deps: TokenStream,
}

impl Roots {
    fn dep(&self, path: TokenStream) -> TokenStream {
        let deps = &self.deps;
        if deps.is_empty() {
            quote!(::#path)
        } else {
            quote!(#deps::#path)
        }
    }
}

/// The Rust type of a value.
pub fn rust_type(ty: &Type, roots: &Roots) -> TokenStream {
    let krate = &roots.named;
    match ty {
        Type::String(_) => quote!(::std::string::String),
        Type::Integer(n) if n.bits == 32 => quote!(i32),
        Type::Integer(_) => quote!(i64),
        Type::Number(_) => quote!(f64),
        Type::Decimal(_) => roots.dep(quote!(rust_decimal::Decimal)),
        Type::Boolean => quote!(bool),
        Type::Uuid => roots.dep(quote!(uuid::Uuid)),
        Type::Date => roots.dep(quote!(chrono::NaiveDate)),
        Type::DateTime => {
            let chrono = roots.dep(quote!(chrono));
            quote!(#chrono::DateTime<#chrono::Utc>)
        }
        Type::Enum { name }
        | Type::Object { name }
        | Type::Entity { name }
        | Type::Union { name } => {
            let name = format_ident!("{}", name);
            quote!(#krate::#name)
        }
        Type::Array(a) => {
            let item = rust_type(&a.items, roots);
            if a.items_nullable {
                quote!(::std::vec::Vec<::std::option::Option<#item>>)
            } else {
                quote!(::std::vec::Vec<#item>)
            }
        }
        Type::Map { values } => {
            let value = rust_type(values, roots);
            quote!(::std::collections::BTreeMap<::std::string::String, #value>)
        }
        Type::Any => roots.dep(quote!(serde_json::Value)),
    }
}

/// Formats a token stream as a Rust file.
pub fn format(tokens: TokenStream, what: &str) -> Result<String, Diagnostic> {
    let file = syn::parse2::<syn::File>(tokens).map_err(|e| {
        Diagnostic::error(
            "prefiq::emit::rust",
            format!("internal error: the generated {what} does not parse: {e}"),
        )
        .with_help("this is a bug in Prefiq; please report it with the schema that caused it")
    })?;
    Ok(prettyplease::unparse(&file))
}

/// Dependencies the types crate needs, by what its types use.
struct TypeDeps {
    chrono: bool,
    uuid: bool,
    decimal: bool,
    decimal_float: bool,
    regex: bool,
}

fn type_deps(app: &App) -> TypeDeps {
    let mut deps = TypeDeps {
        chrono: false,
        uuid: false,
        decimal: false,
        decimal_float: false,
        regex: false,
    };
    let mut visit = |ty: &Type| {
        let mut stack = vec![ty];
        while let Some(ty) = stack.pop() {
            match ty {
                Type::Date | Type::DateTime => deps.chrono = true,
                Type::Uuid => deps.uuid = true,
                Type::Decimal(d) => {
                    deps.decimal = true;
                    deps.decimal_float |= d.as_number;
                }
                Type::String(s) if s.pattern.is_some() => deps.regex = true,
                Type::Array(a) => stack.push(&a.items),
                Type::Map { values } => stack.push(values),
                _ => {}
            }
        }
    };
    for entity in &app.entities {
        for field in &entity.fields {
            visit(&field.member.ty);
        }
    }
    for named in app.types.values() {
        match named {
            crate::ir::NamedType::Struct(s) => s.members.iter().for_each(|m| visit(&m.ty)),
            crate::ir::NamedType::Union(u) => u.variants.iter().for_each(|v| visit(&v.ty)),
            crate::ir::NamedType::Enum(_) => {}
        }
    }
    deps
}

fn runtime_dependency(config: &ProjectConfig, depth: usize) -> String {
    match &config.runtime.path {
        Some(path) if std::path::Path::new(path).is_absolute() => {
            format!("prefiq-runtime = {{ path = \"{path}\" }}")
        }
        Some(path) => format!(
            "prefiq-runtime = {{ path = \"{}{}\" }}",
            "../".repeat(depth),
            path
        ),
        None => format!("prefiq-runtime = \"{}\"", config.runtime.version),
    }
}

/// Emits the types crate, the server crate and their scaffolds.
pub fn emit(app: &App, config: &ProjectConfig, output: &mut Output) -> Result<(), Diagnostic> {
    let crates = CrateNames::of(&app.name);
    let source = format!("apps/{}/core/schema", app.name);
    let deps = type_deps(app);

    // The types crate: no web dependencies.
    let mut manifest = format!(
        "[package]\nname = \"{}\"\ndescription = \"Model types of the {} app.\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\n",
        crates.types, app.name
    );
    if deps.chrono {
        manifest.push_str("chrono = { version = \"0.4\", default-features = false, features = [\"std\", \"serde\"] }\n");
    }
    if deps.regex {
        manifest.push_str("regex = { version = \"1\", default-features = false, features = [\"std\", \"unicode-perl\", \"unicode-case\"] }\n");
    }
    if deps.decimal {
        let float = if deps.decimal_float {
            ", \"serde-with-float\""
        } else {
            ""
        };
        manifest.push_str(&format!("rust_decimal = {{ version = \"1\", default-features = false, features = [\"std\", \"serde\"{float}] }}\n"));
    }
    manifest.push_str("serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n");
    if deps.uuid {
        manifest.push_str("uuid = { version = \"1\", features = [\"serde\"] }\n");
    }
    let types_dir = format!("apps/{}/core/types/rust", app.name);
    output.files.push(GeneratedFile::new(
        format!("{types_dir}/Cargo.toml"),
        &source,
        &manifest,
    ));
    for (path, tokens) in types::emit(app)? {
        output.files.push(GeneratedFile::new(
            format!("{types_dir}/{path}"),
            &source,
            &format(tokens, &path)?,
        ));
    }

    // The server crate: generated modules under src/generated/, scaffolds around them.
    let bin = format!("apps/{}/bin", app.name);
    for (path, tokens) in server::emit(app, &crates)? {
        output.files.push(GeneratedFile::new(
            format!("{bin}/{path}"),
            &source,
            &format(tokens, &path)?,
        ));
    }
    output.scaffolds.extend(scaffolds(app, config, &crates));
    Ok(())
}

fn scaffolds(app: &App, config: &ProjectConfig, crates: &CrateNames) -> Vec<Scaffold> {
    let bin = format!("apps/{}/bin", app.name);
    let server = crates.server_ident();
    let trait_name = format!("{}Service", names::pascal(&app.name));
    let manifest = format!(
        "[package]\nname = \"{server}\"\ndescription = \"The {app} app: generated routes and hand-written services.\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         # Created once by `prefiq codegen`; yours to edit. Generated code needs the two\n\
         # dependencies below and nothing else.\n\
         [dependencies]\n{types} = {{ path = \"../core/types/rust\" }}\n{runtime}\n",
        server = crates.server,
        app = app.name,
        types = crates.types,
        runtime = runtime_dependency(config, 3),
    );
    let lib = format!(
        "//! The {app} app: routes, handlers and repositories generated from `core/schema/`,\n\
         //! and the hand-written services in `services/`.\n\n\
         #[rustfmt::skip]\npub mod generated;\npub mod services;\n\npub use generated::{{{trait_name}, router}};\n",
        app = app.name,
    );
    let main = format!(
        "//! Serves the {app} app alone: `cargo run -p {package}`.\n\n\
         fn main() -> std::process::ExitCode {{\n    \
         prefiq_runtime::serve::main({server}::generated::APP, |db| {{\n        \
         let service = {server}::services::Service::new(db.clone());\n        \
         Ok({server}::router(service, db)?)\n    \
         }})\n}}\n",
        app = app.name,
        package = crates.server,
    );
    let services = format!(
        "//! Hand-written business logic of the {app} app. `prefiq codegen` created this file once\n\
         //! and never touches it again.\n\
         //!\n\
         //! Every method of [`{trait_name}`] has a default; override the hooks you need.\n\n\
         use prefiq_runtime::Db;\n\n\
         use crate::{trait_name};\n\n\
         /// The {app} service.\n\
         #[derive(Debug, Clone)]\n\
         pub struct Service {{\n    \
         #[allow(dead_code)]\n    \
         db: Db,\n\
         }}\n\n\
         impl Service {{\n    \
         /// A service over the app's database.\n    \
         pub fn new(db: Db) -> Self {{\n        \
         Self {{ db }}\n    \
         }}\n\
         }}\n\n\
         impl {trait_name} for Service {{}}\n",
        app = app.name,
    );
    let types_lib = format!(
        "//! Model types of the {app} app, generated from `apps/{app}/core/schema/`.\n//!\n\
         //! Plain serde types with no web dependencies, for servers and clients alike.\n\n\
         #[rustfmt::skip]\nmod generated;\n\npub use generated::*;\n",
        app = app.name,
    );
    vec![
        Scaffold {
            path: format!("{bin}/Cargo.toml"),
            contents: manifest,
        },
        Scaffold {
            path: format!("{bin}/src/lib.rs"),
            contents: lib,
        },
        Scaffold {
            path: format!("{bin}/src/main.rs"),
            contents: main,
        },
        Scaffold {
            path: format!("{bin}/src/services/mod.rs"),
            contents: services,
        },
        Scaffold {
            path: format!("apps/{}/core/types/rust/src/lib.rs", app.name),
            contents: types_lib,
        },
    ]
}
