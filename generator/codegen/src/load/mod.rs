//! Stage 1, `load`: find the project and its apps, read every schema file, and parse it into a
//! JSON value plus a span index. Syntax errors become diagnostics; nothing here panics.

pub mod migrations;
pub mod spans;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::config::ProjectConfig;
use crate::diag::{Diagnostic, SourceText, Span};
use crate::templates::{TemplateOverride, override_paths};
use migrations::MigrationsFolder;
pub use spans::SpanIndex;

/// What a schema file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A JSON Schema: an entity, or shared definitions.
    Schema,
    /// An OpenAPI fragment (`*.openapi.yaml`) with custom operations.
    OpenApi,
    /// A fixture pack under `core/fixtures/`: seed rows by entity name.
    Fixture,
    /// Cross-field rules under `core/validation/`.
    Validation,
    /// Declared events under `core/events/`.
    Events,
}

/// One parsed input file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path and text, for diagnostics.
    pub source: Arc<SourceText>,
    /// What it holds.
    pub kind: FileKind,
    /// The document, or `None` if it did not parse.
    pub value: Option<Value>,
    /// Where each node is.
    pub spans: SpanIndex,
}

impl SourceFile {
    /// The path relative to the project root.
    pub fn path(&self) -> &str {
        &self.source.path
    }

    /// A diagnostic located at `pointer` (on its key if `on_key`).
    pub fn diag(
        &self,
        diagnostic: Diagnostic,
        pointer: &str,
        on_key: bool,
        label: impl Into<String>,
    ) -> Diagnostic {
        diagnostic.at(
            &self.source,
            pointer,
            self.spans.span(pointer, on_key),
            label,
        )
    }
}

/// One app's inputs.
#[derive(Debug, Clone)]
pub struct AppInput {
    /// The folder name under `apps/`.
    pub name: String,
    /// Its schema files, sorted by path.
    pub files: Vec<SourceFile>,
    /// Its migrations folder.
    pub migrations: MigrationsFolder,
    /// Its own template overrides (`apps/<app>/templates/`).
    pub templates: Vec<TemplateOverride>,
    /// A hash of everything its output depends on: the generator, the project's settings and
    /// templates, and every file read for this app. Equal fingerprints make equal output.
    pub fingerprint: String,
}

/// The project: its root, settings and apps.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding `apps/`.
    pub root: PathBuf,
    /// `prefiq.toml`.
    pub config: ProjectConfig,
    /// Apps with a `core/schema/` folder, sorted by name.
    pub apps: Vec<AppInput>,
    /// The project's template overrides (`templates/`).
    pub templates: Vec<TemplateOverride>,
    /// The text of `prefiq.toml`, if there is one.
    pub config_text: Option<String>,
    /// The design tokens (`resources/design/tokens.json`), if the project has them.
    pub tokens: Option<SourceFile>,
}

/// Each input file's last parse, kept by a [`Session`](crate::Session) between runs: the
/// watcher reloads every file of an app on each save, and all but the saved one are unchanged.
#[derive(Debug, Default)]
pub struct ParseCache {
    parsed: std::collections::HashMap<String, (String, SourceFile, Vec<Diagnostic>)>,
}

impl ParseCache {
    /// [`parse`] of every `(path, text)`, in order: the last parse of a file whose text is the
    /// same, the others parsed on every core.
    fn parse_all(&mut self, texts: Vec<(String, String)>) -> Vec<(SourceFile, Vec<Diagnostic>)> {
        let mut done: Vec<Option<(SourceFile, Vec<Diagnostic>)>> = texts
            .iter()
            .map(|(path, text)| {
                let (known, file, problems) = self.parsed.get(path)?;
                (known == text).then(|| (file.clone(), problems.clone()))
            })
            .collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| done[i].is_none()).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(missing.len());
        let parsed: Vec<(usize, (SourceFile, Vec<Diagnostic>))> = if threads <= 1 {
            missing
                .iter()
                .map(|&i| (i, parse(&texts[i].0, &texts[i].1)))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|worker| {
                        let (texts, missing) = (&texts, &missing);
                        scope.spawn(move || {
                            missing
                                .iter()
                                .skip(worker)
                                .step_by(threads)
                                .map(|&i| (i, parse(&texts[i].0, &texts[i].1)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                // A worker that panicked leaves its files to this thread, so none is lost.
                workers
                    .into_iter()
                    .enumerate()
                    .flat_map(|(worker, w)| {
                        w.join().unwrap_or_else(|_| {
                            missing
                                .iter()
                                .skip(worker)
                                .step_by(threads)
                                .map(|&i| (i, parse(&texts[i].0, &texts[i].1)))
                                .collect()
                        })
                    })
                    .collect()
            })
        };
        for (i, result) in parsed {
            done[i] = Some(result);
        }
        texts
            .into_iter()
            .zip(done)
            .filter_map(|((path, text), result)| {
                let (file, problems) = result?;
                self.parsed
                    .insert(path, (text, file.clone(), problems.clone()));
                Some((file, problems))
            })
            .collect()
    }
}

/// The overrides of built-in templates found under `folder` (relative to `root`).
fn template_overrides(root: &Path, folder: &str) -> Vec<TemplateOverride> {
    override_paths(folder)
        .filter_map(|(name, path)| {
            let text = std::fs::read_to_string(root.join(&path)).ok()?;
            Some(TemplateOverride {
                name: name.to_owned(),
                path,
                text,
            })
        })
        .collect()
}

/// Finds the project root: the nearest folder, from `start` up, with `prefiq.toml` or `apps/`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("prefiq.toml").is_file() || dir.join("apps").is_dir())
        .map(Path::to_path_buf)
}

/// Whether `name` can be an app: lower-case letters, digits and `-`, starting with a letter.
pub fn is_valid_app_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The folders under `root/apps/`, sorted: every directory whose name does not start with `.`.
/// This is the one rule of what an app folder is: an app is one of them with a `core/schema/`
/// folder ([`app_names`]); the others may hold what an app left behind when its schemas went,
/// which `write` finds as orphans.
pub fn app_folders(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("apps"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The apps of the project at `root`, sorted: the [`app_folders`] with a `core/schema/` folder.
pub fn app_names(root: &Path) -> Vec<String> {
    app_folders(root)
        .into_iter()
        .filter(|name| root.join("apps").join(name).join("core/schema").is_dir())
        .collect()
}

/// Reads the project at `root`: `prefiq.toml`, template overrides, and every app (or only
/// `only`) with its schemas, fixtures and migrations.
pub fn load(root: &Path, only: Option<&str>, cache: &mut ParseCache) -> (Project, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let (mut config, config_text) = read_config(root, &mut diagnostics);
    let project_templates = template_overrides(root, "templates");
    let mut apps = Vec::new();
    let mut names = app_names(root);
    // Cortex's own entities live in cortex/, not apps/; `apps/cortex` would collide with it.
    if let Some(clash) = names.iter().position(|n| n == crate::ir::CORTEX) {
        names.remove(clash);
        diagnostics.push(
            Diagnostic::error(
                "prefiq::load::app_name",
                "`apps/cortex` collides with Cortex's own app in cortex/",
            )
            .with_help("rename the folder: `cortex` is reserved"),
        );
    }
    // The apps Cortex runs: listed in prefiq.toml, or every app.
    match &config.cortex.apps {
        Some(listed) => {
            for app in listed.iter().filter(|a| !names.contains(a)) {
                diagnostics.push(
                    Diagnostic::error(
                        "prefiq::load::cortex_app",
                        format!("prefiq.toml installs `{app}` in Cortex, but there is no apps/{app}/core/schema/"),
                    )
                    .with_help(format!("apps found: {}; remove `{app}` from [cortex] apps, or create it with `cargo xtask new-app {app}`", names.join(", "))),
                );
            }
        }
        None => config.cortex.apps = Some(names.clone()),
    }
    if root.join("cortex/core/schema").is_dir() {
        names.push(crate::ir::CORTEX.to_owned());
    }
    if let Some(only) = only {
        if !names.iter().any(|n| n == only) {
            diagnostics.push(
                Diagnostic::error(
                    "prefiq::load::unknown_app",
                    format!("there is no app `{only}` (no apps/{only}/core/schema/ folder)"),
                )
                .with_help(format!(
                    "apps found: {}",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                )),
            );
        }
        names.retain(|n| n == only);
    }
    for name in names {
        if !is_valid_app_name(&name) {
            diagnostics.push(
                Diagnostic::error("prefiq::load::app_name", format!("`apps/{name}` is not a valid app name"))
                    .with_help("app names are lower-case letters, digits and single dashes, starting with a letter (they become crate names and URL segments)"),
            );
            continue;
        }
        let folder = root.join(crate::ir::app_root(&name));
        let mut paths = yaml_and_json(&folder.join("core/schema"));
        paths.extend(yaml_and_json(&folder.join("core/fixtures")));
        paths.extend(yaml_and_json(&folder.join("core/validation")));
        paths.extend(yaml_and_json(&folder.join("core/events")));
        let mut texts = Vec::new();
        for path in paths {
            let rel = relative(root, &path);
            match std::fs::read_to_string(&path) {
                Ok(text) => texts.push((rel, text)),
                Err(error) => diagnostics.push(Diagnostic::error(
                    "prefiq::load::read",
                    format!("cannot read {rel}: {error}"),
                )),
            }
        }
        let mut files = Vec::new();
        for (file, problems) in cache.parse_all(texts) {
            diagnostics.extend(problems);
            files.push(file);
        }
        let migrations = match migrations::read(root, &name) {
            Ok(folder) => folder,
            Err(problems) => {
                diagnostics.extend(problems.into_iter().map(|problem| {
                    Diagnostic::error("prefiq::load::migrations", problem)
                        .with_help("restore the file from version control")
                }));
                MigrationsFolder::default()
            }
        };
        let templates =
            template_overrides(root, &format!("{}/templates", crate::ir::app_root(&name)));
        let fingerprint = fingerprint(
            &name,
            config_text.as_deref(),
            config.installed(),
            &project_templates,
            &templates,
            &files,
            &migrations,
        );
        apps.push(AppInput {
            name,
            files,
            migrations,
            templates,
            fingerprint,
        });
    }
    let tokens = match std::fs::read_to_string(root.join(crate::vocab::TOKENS_PATH)) {
        Ok(text) => {
            let (file, problems) = parse(crate::vocab::TOKENS_PATH, &text);
            diagnostics.extend(problems);
            Some(file)
        }
        Err(_) => None,
    };
    (
        Project {
            root: root.to_path_buf(),
            config,
            apps,
            templates: project_templates,
            config_text,
            tokens,
        },
        diagnostics,
    )
}

impl Project {
    /// The fingerprint `input` will have once its migrations folder holds `migrations` (the
    /// first migration a run creates is an input of every later run).
    pub fn fingerprint_with(&self, input: &AppInput, migrations: &MigrationsFolder) -> String {
        fingerprint(
            &input.name,
            self.config_text.as_deref(),
            self.config.installed(),
            &self.templates,
            &input.templates,
            &input.files,
            migrations,
        )
    }
}

/// The generator's identity: its version and a hash of its sources (see `build.rs`).
pub const GENERATOR: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("PREFIQ_GENERATOR_SOURCES")
);

/// The fingerprint of an app's run: a SHA-256 over the generator, the built-in and overriding
/// templates, `prefiq.toml`, and the text of every file read for the app.
fn fingerprint(
    app: &str,
    config: Option<&str>,
    installed: &[String],
    project_templates: &[TemplateOverride],
    app_templates: &[TemplateOverride],
    files: &[SourceFile],
    migrations: &MigrationsFolder,
) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    let mut feed = |part: &str| {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    };
    feed(GENERATOR);
    feed(app);
    if app == crate::ir::CORTEX {
        // Cortex's output depends on which apps it runs, and a new app folder adds one.
        for name in installed {
            feed(name);
        }
    }
    for (name, text) in prefiq_templates::BUILTIN {
        feed(name);
        feed(text);
    }
    feed(config.unwrap_or("\0 no prefiq.toml"));
    for template in project_templates.iter().chain(app_templates) {
        feed(&template.path);
        feed(&template.text);
    }
    for file in files {
        feed(file.path());
        feed(&file.source.text);
    }
    for script in &migrations.scripts {
        feed(&script.file_name());
        feed(&script.postgres);
        feed(&script.sqlite);
    }
    feed(
        migrations
            .snapshot
            .as_ref()
            .map_or("\0", |(text, _)| text.as_str()),
    );
    feed(migrations.sum.as_deref().unwrap_or("\0"));
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The YAML and JSON files under `dir`, sorted by path.
fn yaml_and_json(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    paths.sort();
    paths
}

/// `prefiq.toml`, parsed, and its text (`None` without one).
fn read_config(root: &Path, diagnostics: &mut Vec<Diagnostic>) -> (ProjectConfig, Option<String>) {
    let path = root.join("prefiq.toml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return (ProjectConfig::default(), None);
    };
    let config = match toml::from_str(&text) {
        Ok(config) => config,
        Err(error) => {
            let source = SourceText::new("prefiq.toml", &text);
            let span = error
                .span()
                .map(|r| Span::new(r.start, r.end))
                .unwrap_or_default();
            diagnostics.push(
                Diagnostic::error(
                    "prefiq::load::config",
                    format!("prefiq.toml is invalid: {}", error.message()),
                )
                .with_help("see docs/ARCHITECTURE.md for the settings prefiq.toml accepts")
                .at(&source, "", span, "here"),
            );
            ProjectConfig::default()
        }
    };
    (config, Some(text))
}

/// Parses one file. YAML and JSON are both accepted; the extension picks the parser so that
/// error messages speak the file's language.
pub fn parse(path: &str, text: &str) -> (SourceFile, Vec<Diagnostic>) {
    let source = SourceText::new(path, text);
    let kind = if path.contains("/core/fixtures/") {
        FileKind::Fixture
    } else if path.contains("/core/validation/") {
        FileKind::Validation
    } else if path.contains("/core/events/") {
        FileKind::Events
    } else if path.contains(".openapi.") {
        FileKind::OpenApi
    } else {
        FileKind::Schema
    };
    let mut diagnostics = Vec::new();
    let value = if path.ends_with(".json") {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Some(value),
            Err(error) => {
                let offset = source.offset(error.line(), error.column());
                let message = error.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message);
                diagnostics.push(
                    Diagnostic::error("prefiq::load::syntax", format!("invalid JSON: {message}"))
                        .with_help("fix the syntax; JSON allows no comments and no trailing commas")
                        .at(&source, "", Span::new(offset, offset + 1), "here"),
                );
                None
            }
        }
    } else {
        match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(value) => match yaml_to_json(value) {
                Ok(value) => Some(value),
                Err(problem) => {
                    diagnostics.push(
                        Diagnostic::error("prefiq::load::syntax", format!("unsupported YAML: {problem}"))
                            .with_help("schema files hold plain data: maps with string keys, lists, strings, numbers, booleans and null")
                            .at(&source, "", Span::default(), "in this file"),
                    );
                    None
                }
            },
            Err(error) => {
                let offset = error
                    .location()
                    .map(|l| l.index())
                    .unwrap_or(0)
                    .min(text.len());
                let message = error.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                diagnostics.push(
                    Diagnostic::error("prefiq::load::syntax", format!("invalid YAML: {message}"))
                        .with_help("fix the syntax; check the indentation and that every `key:` is followed by a space")
                        .at(&source, "", Span::new(offset, offset + 1), "here"),
                );
                None
            }
        }
    };
    let value = match value {
        Some(Value::Null) => {
            diagnostics.push(
                Diagnostic::error("prefiq::load::empty", format!("{path} is empty"))
                    .with_help("write a JSON Schema object, or delete the file")
                    .at(&source, "", Span::default(), "empty"),
            );
            None
        }
        Some(value) if !value.is_object() => {
            diagnostics.push(
                Diagnostic::error(
                    "prefiq::load::not_object",
                    format!("{path} must hold an object"),
                )
                .with_help("a schema file is a map: `type: object`, `properties: ...`")
                .at(
                    &source,
                    "",
                    Span::new(0, text.len().min(40)),
                    "not an object",
                ),
            );
            None
        }
        other => other,
    };
    let spans = if value.is_some() {
        SpanIndex::build(text)
    } else {
        SpanIndex::default()
    };
    (
        SourceFile {
            source,
            kind,
            value,
            spans,
        },
        diagnostics,
    )
}

/// Converts YAML to JSON: keys become strings, and only JSON-representable values are allowed.
fn yaml_to_json(value: serde_yaml::Value) -> Result<Value, String> {
    Ok(match value {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{n} is not a finite number"))?
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        serde_yaml::Value::Mapping(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map {
                let key = match key {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    other => return Err(format!("a map key must be a string, not {other:?}")),
                };
                object.insert(key, yaml_to_json(value)?);
            }
            Value::Object(object)
        }
        serde_yaml::Value::Tagged(tagged) => {
            return Err(format!(
                "YAML tags such as `{}` are not supported",
                tagged.tag
            ));
        }
    })
}
