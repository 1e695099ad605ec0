//! Rust output: the model types crate and the axum server crate of an app, built with `quote!`
//! and formatted once with `prettyplease`. Manifests and first-run scaffolds are plain text.

mod client;
mod server;
mod types;

use std::collections::HashMap;
use std::sync::Mutex;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::config::ProjectConfig;
use crate::diag::Diagnostic;
use crate::ir::{App, Type};
use crate::names;
use crate::output::{GeneratedFile, Output, Scaffold};

/// A Rust identifier, raw if it is a keyword.
pub(crate) fn ident(name: &str) -> Ident {
    if names::is_rust_keyword(name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// The crate names of an app: `app-crm` / `app_crm`, `app-crm-types` / `app_crm_types`.
pub(crate) struct CrateNames {
    /// The server crate's package name.
    pub server: String,
    /// The types crate's package name.
    pub types: String,
}

impl CrateNames {
    /// Names for `app`.
    pub(crate) fn of(app: &str) -> CrateNames {
        CrateNames {
            server: crate::ir::crate_name(app),
            types: format!("{}-types", crate::ir::crate_name(app)),
        }
    }

    /// The types crate as a Rust path root.
    pub(crate) fn types_ident(&self) -> Ident {
        format_ident!("{}", self.types.replace('-', "_"))
    }

    /// The server crate as a Rust path root.
    pub(crate) fn server_ident(&self) -> Ident {
        format_ident!("{}", self.server.replace('-', "_"))
    }
}

/// Where generated code finds named types and third-party crates.
pub(crate) struct Roots {
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
pub(crate) fn rust_type(ty: &Type, roots: &Roots) -> TokenStream {
    let krate = &roots.named;
    match ty {
        Type::String(_) => quote!(String),
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
                quote!(Vec<Option<#item>>)
            } else {
                quote!(Vec<#item>)
            }
        }
        Type::Map { values } => {
            let value = rust_type(values, roots);
            quote!(::std::collections::BTreeMap<String, #value>)
        }
        Type::Any => roots.dep(quote!(serde_json::Value)),
    }
}

fn not_rust(what: &str, error: &syn::Error) -> Diagnostic {
    Diagnostic::error(
        "prefiq::emit::rust",
        format!("internal error: the generated {what} does not parse: {error}"),
    )
    .with_help("this is a bug in Prefiq; please report it with the schema that caused it")
}

/// Makes and formats Rust files on every core, and remembers what it formatted when asked to.
///
/// Formatting (parsing with `syn`, printing with `prettyplease`) is most of the Rust emit time.
/// Each file's tokens are made and formatted on a worker thread, straight from the token tree.
/// A [`Session`](crate::Session) that runs again (the watcher's) remembers each file by its token
/// text, so after a one-field edit only the files that changed are formatted again.
#[derive(Debug, Default)]
pub struct Formatter {
    memo: Option<Mutex<Memo>>,
}

/// A formatted file `(path, text)`, or why it could not be made.
type Made = Result<(String, String), Diagnostic>;

/// Token text and formatted text kept, in bytes: the files of a few dozen apps. Beyond it the
/// memo starts over.
const MEMO_BYTES: usize = 64 << 20;

#[derive(Debug, Default)]
struct Memo {
    formatted: HashMap<String, String>,
    bytes: usize,
}

impl Formatter {
    /// A formatter that remembers what it formatted, for sessions that run again.
    pub fn remembering() -> Formatter {
        Formatter {
            memo: Some(Mutex::default()),
        }
    }

    /// Formats one file's tokens (or finds them in the memo).
    fn format(&self, path: &str, tokens: TokenStream) -> Result<String, Diagnostic> {
        let Some(memo) = &self.memo else {
            return unparse(tokens, path);
        };
        let text = tokens.to_string();
        if let Some(known) = memo
            .lock()
            .ok()
            .and_then(|m| m.formatted.get(&text).cloned())
        {
            return Ok(known);
        }
        let formatted = unparse(tokens, path)?;
        if let Ok(mut memo) = memo.lock() {
            memo.bytes += text.len() + formatted.len();
            if memo.bytes > MEMO_BYTES {
                *memo = Memo::default();
                memo.bytes = text.len() + formatted.len();
            }
            memo.formatted.insert(text, formatted.clone());
        }
        Ok(formatted)
    }

    /// Makes the file of every job with `make` and formats it, on every core; keeps job order.
    pub fn run<J: Sync>(
        &self,
        jobs: &[J],
        make: &(dyn Fn(&J) -> (String, TokenStream) + Sync),
    ) -> Result<Vec<(String, String)>, Diagnostic> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(jobs.len())
            .max(1);
        let mut made: Vec<(usize, Made)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let next = &next;
                    spawn_scoped(scope, move || {
                        let mut done = Vec::new();
                        loop {
                            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(job) = jobs.get(index) else {
                                break;
                            };
                            let (path, tokens) = make(job);
                            let file = self.format(&path, tokens).map(|text| (path, text));
                            done.push((index, file));
                        }
                        done
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| {
                    worker.join().unwrap_or_else(|_| {
                        vec![(
                            usize::MAX,
                            Err(Diagnostic::error(
                                "prefiq::emit::rust",
                                "internal error: making or formatting generated Rust panicked",
                            )),
                        )]
                    })
                })
                .collect()
        });
        // The first error in file order, whatever the number of cores.
        made.sort_by_key(|(i, _)| *i);
        made.into_iter().map(|(_, file)| file).collect()
    }
}

/// Spawns a scoped thread with the main thread's stack size: `syn` and `prettyplease` recurse
/// once per call of a method chain, and an app's router is one chain with a call per route.
pub(crate) fn spawn_scoped<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    work: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    const STACK: usize = 8 << 20;
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn_scoped(scope, work)
        .unwrap_or_else(|error| panic!("cannot start a thread: {error}"))
}

fn unparse(tokens: TokenStream, what: &str) -> Result<String, Diagnostic> {
    let file = syn::parse2::<syn::File>(unsuffixed(tokens)).map_err(|e| not_rust(what, &e))?;
    Ok(crate::format::wrap_comments(&prettyplease::unparse(&file)))
}

/// `tokens` with integer literals as a person writes them (`3`, not the `3usize` that `quote!`
/// makes of a `usize`): the types they take come from where they are used.
fn unsuffixed(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, Literal, TokenTree};
    const SUFFIXES: [&str; 12] = [
        "usize", "isize", "u128", "i128", "u64", "i64", "u32", "i32", "u16", "i16", "u8", "i8",
    ];
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), unsuffixed(group.stream()));
                inner.set_span(group.span());
                TokenTree::Group(inner)
            }
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                let digits = SUFFIXES
                    .iter()
                    .find_map(|suffix| text.strip_suffix(suffix))
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
                match digits.and_then(|d| d.parse::<u128>().ok()) {
                    Some(value) => TokenTree::Literal(Literal::u128_unsuffixed(value)),
                    None => TokenTree::Literal(literal),
                }
            }
            other => other,
        })
        .collect()
}

/// Dependencies the types crate needs, by what its types use.
pub(super) struct TypeDeps {
    chrono: bool,
    uuid: bool,
    pub(super) decimal: bool,
    decimal_float: bool,
    regex: bool,
}

pub(super) fn type_deps(app: &App) -> TypeDeps {
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
            crate::ir::NamedType::Enum(_) | crate::ir::NamedType::Derived(_) => {}
        }
    }
    deps
}

/// The `prefiq-runtime` line of a manifest `depth` folders below the project root.
pub(crate) fn runtime_dependency(config: &ProjectConfig, depth: usize) -> String {
    support_dependency(config, depth, "prefiq-runtime", "", "")
}

/// A manifest line for one of the runtime's crates: `package` lives in `folder` under the
/// runtime (`""` for the runtime itself), found by path or by version as `prefiq.toml` says.
/// `extra` is appended inside the braces, as in `, features = ["pattern"]`.
fn support_dependency(
    config: &ProjectConfig,
    depth: usize,
    package: &str,
    folder: &str,
    extra: &str,
) -> String {
    let version = &config.runtime.version;
    let source = match &config.runtime.path {
        Some(path) => {
            let up = if std::path::Path::new(path).is_absolute() {
                String::new()
            } else {
                "../".repeat(depth)
            };
            format!("path = \"{up}{path}{folder}\"")
        }
        None => format!("version = \"{version}\""),
    };
    format!("{package} = {{ {source}{extra} }}")
}

/// Emits the types crate, the server crate, the client crate and their scaffolds.
pub(crate) fn emit(context: &super::Context, output: &mut Output) -> Result<(), Diagnostic> {
    let (app, config, formatter) = (context.app, context.config, context.formatter);
    let crates = CrateNames::of(&app.name);
    let root = crate::ir::app_root(&app.name);
    let source = format!("{root}/core/schema");
    let deps = type_deps(app);

    // The types crate: no web dependencies.
    let mut manifest = format!(
        "[package]\nname = \"{}\"\ndescription = \"Model types of the {} app.\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\n",
        crates.types, app.name
    );
    if deps.chrono {
        manifest.push_str("chrono = { version = \"0.4\", default-features = false, features = [\"std\", \"serde\"] }\n");
    }
    let features: Vec<&str> = [(deps.decimal, "\"decimal\""), (deps.regex, "\"pattern\"")]
        .into_iter()
        .filter_map(|(wanted, feature)| wanted.then_some(feature))
        .collect();
    let features = if features.is_empty() {
        String::new()
    } else {
        format!(", features = [{}]", features.join(", "))
    };
    let depth = root.split('/').count() + 3;
    manifest.push_str(&support_dependency(
        config,
        depth,
        "prefiq-check",
        "/check",
        &features,
    ));
    manifest.push('\n');
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
    let types_dir = format!("{root}/core/types/rust");
    output.files.push(GeneratedFile::new(
        format!("{types_dir}/Cargo.toml"),
        &source,
        &manifest,
    ));
    // The server crate: generated modules under src/generated/, scaffolds around them.
    let bin = format!("{root}/bin");
    enum Job {
        Types(types::Part),
        Server(server::Part),
    }
    // The app-wide files are the largest: they start first, so that no core waits for one at
    // the end.
    let (plan, parts) = types::Plan::new(app);
    let mut jobs: Vec<Job> = server::parts(app).into_iter().map(Job::Server).collect();
    jobs.extend(parts.into_iter().map(Job::Types));
    jobs.sort_by_key(|job| {
        matches!(
            job,
            Job::Server(server::Part::Entity(_)) | Job::Types(types::Part::Entity(_))
        )
    });
    let make = |job: &Job| match job {
        Job::Types(part) => {
            let (path, tokens) = plan.render(*part);
            (format!("{types_dir}/{path}"), tokens)
        }
        Job::Server(part) => {
            let (path, tokens) = server::render(app, &crates, *part);
            (format!("{bin}/{path}"), tokens)
        }
    };
    for (path, text) in formatter.run(&jobs, &make)? {
        output.files.push(GeneratedFile::new(path, &source, &text));
    }
    for (path, text) in client::files(&app.name) {
        output.files.push(GeneratedFile::new(path, &source, &text));
    }
    output.scaffolds.extend(scaffolds(app, config, &crates));
    Ok(())
}

fn scaffolds(app: &App, config: &ProjectConfig, crates: &CrateNames) -> Vec<Scaffold> {
    let root = crate::ir::app_root(&app.name);
    let bin = format!("{root}/bin");
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
        runtime = runtime_dependency(config, root.split('/').count() + 1),
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
            path: format!("{root}/core/types/rust/src/lib.rs"),
            contents: types_lib,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_keeps_order_and_the_memo_gives_the_same_bytes() {
        let jobs = [
            ("a.rs", "pub struct A { x: i32 }"),
            ("b.rs", "fn b() -> u8 { 1 + 2 }"),
            ("c.rs", "pub enum C { One, Two }"),
        ];
        let make = |job: &(&str, &str)| (job.0.to_owned(), job.1.parse::<TokenStream>().unwrap());
        let formatter = Formatter::remembering();
        let first = formatter.run(&jobs, &make).unwrap();
        let paths: Vec<&str> = first.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["a.rs", "b.rs", "c.rs"]);
        assert_eq!(first[0].1, "pub struct A {\n    x: i32,\n}\n");
        assert_eq!(first[1].1, "fn b() -> u8 {\n    1 + 2\n}\n");
        // The second run answers from the memo, with the same bytes; a one-shot formatter
        // remembers nothing and formats the same.
        let memo = formatter.memo.as_ref().unwrap();
        assert_eq!(memo.lock().unwrap().formatted.len(), 3);
        assert_eq!(formatter.run(&jobs, &make).unwrap(), first);
        assert_eq!(Formatter::default().run(&jobs, &make).unwrap(), first);
    }

    #[test]
    fn tokens_that_are_not_a_file_are_an_internal_error() {
        let make = |_: &()| ("bad.rs".to_owned(), quote!(fn));
        let error = Formatter::default().run(&[()], &make).unwrap_err();
        assert!(
            error.to_string().contains("bad.rs does not parse"),
            "{error}"
        );
    }
}
