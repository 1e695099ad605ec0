//! `prefiq codegen --watch`, and the watching half of `prefiq dev`: file events from notify,
//! gathered into batches, sorted by what they affect, and regenerated app by app.
//!
//! The debounce is a few lines over the event channel rather than `notify-debouncer-*`: a batch
//! ends [`SETTLE`] after a save is known complete (a file closed after writing, or renamed into
//! place), or after [`QUIET`] without events otherwise. That keeps save-to-written latency low,
//! which a debouncer's fixed window cannot, and the batch is classified by app here anyway.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};

use prefiq_codegen::Session;
use prefiq_codegen::diag::Diagnostic;
use prefiq_codegen::write::{self, Refusal, Scope};

/// A batch ends when no event came for this long (an editor's save is a burst of events).
pub const QUIET: Duration = Duration::from_millis(15);
/// ...or this long after a save is known to be complete: a file closed after writing, or renamed
/// into place (an atomic save). The pause gathers the other files of a multi-file save.
pub const SETTLE: Duration = Duration::from_millis(2);
/// A batch never waits longer than this, even if events keep coming.
const LONGEST: Duration = Duration::from_millis(500);

/// What the watcher hears.
#[derive(Debug)]
pub enum Signal {
    /// A file event.
    Event(notify::Result<notify::Event>),
    /// Stop watching (Ctrl-C, SIGTERM).
    Stop,
}

/// Watches a project: `apps/` and `templates/` recursively, the root for `prefiq.toml`.
pub struct Watcher {
    root: PathBuf,
    inner: notify::RecommendedWatcher,
    events: mpsc::Receiver<Signal>,
    sender: mpsc::Sender<Signal>,
    templates_watched: bool,
}

impl Watcher {
    /// Starts watching the project at `root`.
    pub fn new(root: &Path) -> notify::Result<Watcher> {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let (sender, events) = mpsc::channel();
        let forward = sender.clone();
        let mut inner = notify::recommended_watcher(move |event| {
            let _ = forward.send(Signal::Event(event));
        })?;
        inner.watch(&root, RecursiveMode::NonRecursive)?;
        std::fs::create_dir_all(root.join("apps")).map_err(notify::Error::io)?;
        inner.watch(&root.join("apps"), RecursiveMode::Recursive)?;
        let mut watcher = Watcher {
            root,
            inner,
            events,
            sender,
            templates_watched: false,
        };
        watcher.watch_templates();
        Ok(watcher)
    }

    /// A sender that can stop the watcher from another thread.
    pub fn stopper(&self) -> mpsc::Sender<Signal> {
        self.sender.clone()
    }

    /// The project root (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Also watches `dir` (recursively), if it exists.
    pub fn watch_also(&mut self, dir: &Path) {
        if dir.is_dir() {
            let _ = self.inner.watch(dir, RecursiveMode::Recursive);
        }
    }

    /// `templates/` may be created after the watcher started.
    fn watch_templates(&mut self) {
        let templates = self.root.join("templates");
        if !self.templates_watched && templates.is_dir() {
            self.templates_watched = self
                .inner
                .watch(&templates, RecursiveMode::Recursive)
                .is_ok();
        }
    }

    /// Waits for the next batch of changes that `relevant` accepts: the changed paths, relative
    /// to the root with `/` separators, sorted. `None` when told to stop. Other events (the
    /// generator's own writes, a build's output) neither start nor prolong a batch.
    pub fn next_batch(&mut self, relevant: impl Fn(&str) -> bool) -> Option<Vec<String>> {
        let mut paths = BTreeSet::new();
        // When the batch started, and when it may end.
        let mut started: Option<(Instant, Instant)> = None;
        loop {
            let signal = match started {
                None => self.events.recv().ok()?,
                Some((first, end)) => {
                    let deadline = end.min(first + LONGEST);
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match self.events.recv_timeout(left) {
                        Ok(signal) => signal,
                        Err(mpsc::RecvTimeoutError::Timeout) => break,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                    }
                }
            };
            match signal {
                Signal::Stop => return None,
                Signal::Event(Ok(event)) => {
                    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
                    let complete = match event.kind {
                        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
                            true
                        }
                        EventKind::Access(_) => continue,
                        _ => false,
                    };
                    for path in &event.paths {
                        let Some(relative) = self.relative(path) else {
                            continue;
                        };
                        if relative == "templates" {
                            self.watch_templates();
                        }
                        if relevant(&relative) {
                            paths.insert(relative);
                            let now = Instant::now();
                            let end = now + if complete { SETTLE } else { QUIET };
                            started = Some((started.map_or(now, |(first, _)| first), end));
                        }
                    }
                }
                // An overflowed queue or a vanished folder: rescan everything.
                Signal::Event(Err(_)) => {
                    paths.insert("prefiq.toml".to_owned());
                    let now = Instant::now();
                    started = Some((started.map_or(now, |(first, _)| first), now + QUIET));
                }
            }
        }
        Some(paths.into_iter().collect())
    }

    fn relative(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(parts.join("/"))
    }
}

/// What a changed input affects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Affects {
    /// Every app (`prefiq.toml`, project templates).
    Project,
    /// One app.
    App(String),
}

/// Editors' temporary and backup files, which never affect generation.
pub fn is_scratch(name: &str) -> bool {
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.ends_with(".bak")
        || name == "4913"
}

/// What a changed path (relative to the root) means for `prefiq codegen`, if anything. Inputs are
/// `prefiq.toml`, `templates/`, and each app's `core/schema/`, `core/fixtures/`, `core/validation/` and `templates/`;
/// generated files are never inputs, so the watcher does not hear its own writes.
pub fn codegen_input(path: &str) -> Option<Affects> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.last().is_some_and(|name| is_scratch(name)) {
        return None;
    }
    match parts.as_slice() {
        ["prefiq.toml"] | ["templates", ..] | ["resources", "design", "tokens.json"] => {
            Some(Affects::Project)
        }
        [
            "apps",
            app,
            "core",
            "schema" | "fixtures" | "validation" | "events",
        ]
        | ["apps", app, "templates", ..] => Some(Affects::App((*app).to_owned())),
        [
            "apps",
            app,
            "core",
            "schema" | "fixtures" | "validation" | "events",
            ..,
            file,
        ] if [".yaml", ".yml", ".json"].iter().any(|e| file.ends_with(e)) => {
            Some(Affects::App((*app).to_owned()))
        }
        // A whole app folder created, moved or deleted.
        ["apps", app] | ["apps", app, "core"] => Some(Affects::App((*app).to_owned())),
        _ => None,
    }
}

/// The apps to regenerate for a batch, given the `--app` filter: `None` inside means every app.
pub fn plan(paths: &[String], only: Option<&str>) -> Option<Vec<Option<String>>> {
    let affected: BTreeSet<Affects> = paths.iter().filter_map(|p| codegen_input(p)).collect();
    if affected.is_empty() {
        return None;
    }
    if affected.contains(&Affects::Project) {
        return Some(vec![only.map(str::to_owned)]);
    }
    let apps: Vec<Option<String>> = affected
        .into_iter()
        .filter_map(|a| match a {
            Affects::App(app) if only.is_none_or(|o| o == app) => Some(Some(app)),
            _ => None,
        })
        .collect();
    (!apps.is_empty()).then_some(apps)
}

/// One regeneration.
#[derive(Debug, Default)]
pub struct Run {
    /// The app regenerated, or `None` for all.
    pub app: Option<String>,
    /// Diagnostics (errors mean nothing was written).
    pub diagnostics: Vec<Diagnostic>,
    /// Files written, scaffolds created, orphans deleted.
    pub report: write::WriteReport,
    /// Why writing was refused, if it was.
    pub refusal: Option<Refusal>,
    /// From the start to every file written.
    pub elapsed: Duration,
    /// The app's folder is gone: there was nothing to do.
    pub removed: bool,
}

impl Run {
    /// How many diagnostics are errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Whether the run generated and wrote without an error or a refusal.
    pub fn ok(&self) -> bool {
        self.errors() == 0 && self.refusal.is_none()
    }

    /// Whether anything reached the disk.
    pub fn changed_disk(&self) -> bool {
        !self.report.written.is_empty()
            || !self.report.deleted.is_empty()
            || !self.report.scaffolded.is_empty()
    }
}

/// Regenerates one app (or all) and writes the result. A run with errors writes nothing, which
/// keeps the last good output on disk.
pub fn regenerate(session: &mut Session, app: Option<&str>, force: bool) -> Run {
    let started = Instant::now();
    let root = session.root().to_path_buf();
    let mut run = Run {
        app: app.map(str::to_owned),
        ..Run::default()
    };
    if let Some(app) = app {
        if !root.join("apps").join(app).join("core/schema").is_dir() {
            run.removed = true;
            return run;
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let generation = session.generate(app);
        run.diagnostics = generation.diagnostics;
        if run.errors() > 0 {
            return;
        }
        let scope = Scope::of(&root, app);
        match write::write(&root, &generation.output, &scope, force) {
            Ok(report) => run.report = report,
            Err(refusal) => run.refusal = Some(refusal),
        }
    }));
    if outcome.is_err() {
        run.diagnostics.push(
            Diagnostic::error(
                "prefiq::watch::panic",
                "internal error: generation panicked; the last good output is kept",
            )
            .with_help("this is a bug in Prefiq; please report it with the schema you saved"),
        );
    }
    run.elapsed = started.elapsed();
    run
}

/// A short description of a batch: the first changed input, and how many more.
pub fn describe(paths: &[String]) -> String {
    let inputs: Vec<&String> = paths
        .iter()
        .filter(|p| codegen_input(p).is_some())
        .collect();
    let shown = inputs.first().map(|p| p.as_str()).unwrap_or("files");
    match inputs.len() {
        0 | 1 => shown.to_owned(),
        n => format!("{shown} and {} more", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_schemas_fixtures_rules_templates_and_the_config() {
        let app = |a: &str| Some(Affects::App(a.to_owned()));
        assert_eq!(codegen_input("apps/crm/core/schema/deal.yaml"), app("crm"));
        assert_eq!(
            codegen_input("apps/crm/core/validation/deal.yaml"),
            Some(Affects::App("crm".into()))
        );
        assert_eq!(codegen_input("apps/crm/core/events/deal.yaml"), app("crm"));
        assert_eq!(codegen_input("apps/crm/core/validation/notes.txt"), None);
        assert_eq!(
            codegen_input("apps/crm/core/fixtures/demo.yaml"),
            app("crm")
        );
        assert_eq!(
            codegen_input("apps/crm/templates/ts/client.ts.jinja"),
            app("crm")
        );
        assert_eq!(codegen_input("apps/lms"), app("lms"));
        assert_eq!(codegen_input("prefiq.toml"), Some(Affects::Project));
        assert_eq!(
            codegen_input("resources/design/tokens.json"),
            Some(Affects::Project)
        );
        assert_eq!(codegen_input("resources/design/generated/tokens.css"), None);
        assert_eq!(
            codegen_input("templates/migration.sql.jinja"),
            Some(Affects::Project)
        );
        // What the generator writes is never an input, nor is an editor's scratch file.
        for path in [
            "apps/crm/core/openapi.json",
            "apps/crm/core/types/rust/src/lib.rs",
            "apps/crm/bin/src/generated/mod.rs",
            "apps/crm/core/schema/.deal.yaml.swp",
            "apps/crm/core/schema/deal.yaml~",
            "apps/crm/core/schema/4913",
            "apps/crm/core/schema/sedAb12Cd",
            "Cargo.toml",
        ] {
            assert_eq!(codegen_input(path), None, "{path}");
        }
    }

    #[test]
    fn a_batch_regenerates_each_affected_app_once() {
        let paths = |ps: &[&str]| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let batch = paths(&[
            "apps/crm/core/schema/deal.yaml",
            "apps/crm/core/schema/company.yaml",
            "apps/lms/core/schema/course.yaml",
            "apps/crm/bin/src/generated/mod.rs",
        ]);
        assert_eq!(
            plan(&batch, None),
            Some(vec![Some("crm".to_owned()), Some("lms".to_owned())])
        );
        assert_eq!(
            plan(&batch, Some("lms")),
            Some(vec![Some("lms".to_owned())])
        );
        assert_eq!(plan(&paths(&["templates/x.jinja"]), None), Some(vec![None]));
        assert_eq!(plan(&paths(&["README.md"]), None), None);
        assert_eq!(
            describe(&batch),
            "apps/crm/core/schema/deal.yaml and 2 more"
        );
    }
}
