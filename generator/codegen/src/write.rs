//! Stage 5, `write`: put emitted files on disk, or (`--check`) compare without touching anything.
//!
//! A file is ours only if it carries the generated header. Its digest tells a stale file (made
//! by an older run) from a hand-edited one. The writer never overwrites or deletes a file without
//! the header, refuses to discard hand edits unless forced, writes only files whose bytes changed,
//! and writes nothing at all if it must refuse anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::output::{
    GeneratedFile, Manifest, Output, digest_matches, is_generated, recorded_digest,
};

/// What `--check` (and the writer) found wrong with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Generated earlier, content outdated.
    Stale {
        /// Path relative to the project root.
        path: String,
        /// A short unified diff from disk to expected.
        diff: String,
    },
    /// Not on disk.
    Missing {
        /// Path relative to the project root.
        path: String,
    },
    /// Generated earlier, no longer produced.
    Orphaned {
        /// Path relative to the project root.
        path: String,
    },
    /// Generated, then edited by hand.
    HandEdited {
        /// Path relative to the project root.
        path: String,
        /// A short unified diff from disk to expected.
        diff: String,
    },
    /// A file a person owns (no header) where a generated file belongs.
    NotOurs {
        /// Path relative to the project root.
        path: String,
    },
    /// The schema changed and no migration covers it yet.
    Unmigrated {
        /// The app's migrations folder.
        path: String,
        /// What changed.
        what: String,
    },
    /// A migration or the snapshot changed after the sum file was made.
    MigrationEdited {
        /// The sum file.
        path: String,
        /// What does not match.
        problem: String,
    },
}

impl Finding {
    /// The file's path.
    pub fn path(&self) -> &str {
        match self {
            Finding::Stale { path, .. }
            | Finding::Missing { path }
            | Finding::Orphaned { path }
            | Finding::HandEdited { path, .. }
            | Finding::NotOurs { path }
            | Finding::Unmigrated { path, .. }
            | Finding::MigrationEdited { path, .. } => path,
        }
    }

    /// A short word for the kind of finding.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Stale { .. } => "stale",
            Finding::Missing { .. } => "missing",
            Finding::Orphaned { .. } => "orphaned",
            Finding::HandEdited { .. } => "hand-edited",
            Finding::NotOurs { .. } => "not generated",
            Finding::Unmigrated { .. } => "unmigrated",
            Finding::MigrationEdited { .. } => "edited",
        }
    }

    /// The diff, for stale and hand-edited files; the explanation, for migrations.
    pub fn diff(&self) -> Option<&str> {
        match self {
            Finding::Stale { diff, .. } | Finding::HandEdited { diff, .. } => Some(diff),
            Finding::Unmigrated { what, .. } => Some(what),
            Finding::MigrationEdited { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// Which folders belong to this run, for orphan detection.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Folders (relative to the root) whose generated files this run owns.
    pub folders: Vec<String>,
}

impl Scope {
    /// Every app folder under `apps/` and `schemas/`; or only the named app.
    pub fn of(root: &Path, app: Option<&str>) -> Scope {
        let mut folders = Vec::new();
        match app {
            Some(app) => folders.push(crate::ir::app_root(app)),
            None => {
                folders.push("schemas".to_owned());
                folders.push(crate::design::GENERATED.to_owned());
                if root.join("apps").is_dir() {
                    folders.extend(
                        crate::load::app_folders(root)
                            .into_iter()
                            .map(|app| format!("apps/{app}")),
                    );
                    if root.join("cortex/core/schema").is_dir() {
                        folders.push(crate::ir::app_root(crate::ir::CORTEX));
                    }
                }
            }
        }
        Scope { folders }
    }
}

/// Folders never searched for generated files.
const SKIPPED: &[&str] = &["target", "node_modules", ".prefiq", ".git", "migrations"];

fn orphans_on_disk(root: &Path, scope: &Scope, produced: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for folder in &scope.folders {
        let walker = walkdir::WalkDir::new(root.join(folder))
            .into_iter()
            .filter_entry(|e| {
                !e.file_type().is_dir()
                    || !SKIPPED.contains(&e.file_name().to_string_lossy().as_ref())
            });
        for entry in walker
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
        {
            let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if !produced.contains(relative.as_str()) && has_header(entry.path()) {
                found.insert(relative);
            }
        }
    }
    found
}

/// Whether the file at `path` starts with our header (reading only its first bytes). Whether the
/// rest is still what we wrote is for [`refuse_blocking`] to judge.
fn has_header(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    std::fs::File::open(path)
        .and_then(|file| file.take(HEAD_BYTES as u64).read_to_end(&mut head))
        .is_ok_and(|_| is_generated(&String::from_utf8_lossy(&head)))
}

/// Enough bytes to hold the header of any generated file.
const HEAD_BYTES: usize = 2048;

/// The manifest an earlier run wrote for `app`, if it is there and intact.
pub fn manifest(root: &Path, app: &str) -> Option<Manifest> {
    Manifest::parse(&std::fs::read_to_string(root.join(Manifest::path(app))).ok()?)
}

/// Whether the output on disk is exactly what the manifests record, plus `files`: every file
/// listed is there with its recorded digest and untouched since, every scaffold exists, and no
/// generated file in `scope` is missing from them. Then it is what a run would make from the
/// same inputs, and how many files that is.
pub fn up_to_date(
    root: &Path,
    scope: &Scope,
    manifests: &[(String, Manifest)],
    files: &[GeneratedFile],
) -> Option<usize> {
    if !compare(root, files, StaleDiffs::No).is_empty() {
        return None;
    }
    let mut produced: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for (path, manifest) in manifests {
        produced.insert(path);
        for (file, digest) in &manifest.files {
            let text = std::fs::read_to_string(root.join(file)).ok()?;
            if recorded_digest(&text) != Some(digest.as_str()) || !digest_matches(&text) {
                return None;
            }
            produced.insert(file);
        }
        if !manifest.scaffolds.iter().all(|s| root.join(s).exists()) {
            return None;
        }
    }
    orphans_on_disk(root, scope, &produced)
        .is_empty()
        .then_some(produced.len())
}

/// Writes through a temporary file and a rename (for migrations, which `write` does not manage).
pub fn write_file(target: &Path, contents: &str) -> std::io::Result<()> {
    write_atomically(target, contents)
}

/// A unified diff from `old` to `new`, cut to `limit` lines.
pub fn short_diff(path: &str, old: &str, new: &str, limit: usize) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(&format!("{path} (on disk)"), &format!("{path} (generated)"))
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= limit {
        return text;
    }
    let mut cut = lines[..limit].join("\n");
    cut.push_str(&format!("\n... {} more lines\n", lines.len() - limit));
    cut
}

/// Compares the output with the disk, with a diff of every stale file.
pub fn check(root: &Path, output: &Output, scope: &Scope) -> Vec<Finding> {
    findings(root, output, scope, StaleDiffs::Yes)
}

/// Whether a stale file's finding carries its diff (`--check` shows it; a write does not need it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StaleDiffs {
    Yes,
    No,
}

fn findings(root: &Path, output: &Output, scope: &Scope, diffs: StaleDiffs) -> Vec<Finding> {
    let mut findings = compare(root, &output.files, diffs);
    let produced: BTreeSet<&str> = output.files.iter().map(|f| f.path.as_str()).collect();
    for scaffold in &output.scaffolds {
        if !root.join(&scaffold.path).exists() {
            findings.push(Finding::Missing {
                path: scaffold.path.clone(),
            });
        }
    }
    for path in orphans_on_disk(root, scope, &produced) {
        findings.push(Finding::Orphaned { path });
    }
    findings.sort_by(|a, b| a.path().cmp(b.path()));
    findings
}

/// Compares generated files with the disk.
fn compare(root: &Path, files: &[GeneratedFile], diffs: StaleDiffs) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in files {
        match std::fs::read_to_string(root.join(&file.path)) {
            Err(_) => findings.push(Finding::Missing {
                path: file.path.clone(),
            }),
            Ok(disk) if disk == file.contents => {}
            Ok(disk) if !is_generated(&disk) => findings.push(Finding::NotOurs {
                path: file.path.clone(),
            }),
            Ok(disk) if digest_matches(&disk) => findings.push(Finding::Stale {
                path: file.path.clone(),
                diff: match diffs {
                    StaleDiffs::Yes => short_diff(&file.path, &disk, &file.contents, 24),
                    StaleDiffs::No => String::new(),
                },
            }),
            Ok(disk) => findings.push(Finding::HandEdited {
                path: file.path.clone(),
                diff: short_diff(&file.path, &disk, &file.contents, 24),
            }),
        }
    }
    findings
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files written (new or changed).
    pub written: Vec<String>,
    /// Files already up to date.
    pub unchanged: usize,
    /// Orphans deleted.
    pub deleted: Vec<String>,
    /// Scaffolds created.
    pub scaffolded: Vec<String>,
}

/// Why nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The files that stopped the write.
    pub findings: Vec<Finding>,
}

/// Writes the output. Refuses, writing nothing, when a file without the header is in the way or
/// (unless `force`) a generated file was edited by hand.
pub fn write(
    root: &Path,
    output: &Output,
    scope: &Scope,
    force: bool,
) -> Result<WriteReport, Refusal> {
    let findings = findings(root, output, scope, StaleDiffs::No);
    refuse_blocking(root, &findings, force)?;
    let mut report = put(root, &output.files)?;
    for scaffold in &output.scaffolds {
        let target = root.join(&scaffold.path);
        if !target.exists() {
            write_atomically(&target, &scaffold.contents)
                .map_err(|_| io_refusal(&scaffold.path))?;
            report.scaffolded.push(scaffold.path.clone());
        }
    }
    for finding in findings {
        if let Finding::Orphaned { path } = finding {
            let target = root.join(&path);
            if std::fs::remove_file(&target).is_ok() {
                remove_empty_parents(root, &target);
                report.deleted.push(path);
            }
        }
    }
    Ok(report)
}

/// Refuses findings that would lose a person's work.
fn refuse_blocking(root: &Path, findings: &[Finding], force: bool) -> Result<(), Refusal> {
    let blocking: Vec<Finding> = findings
        .iter()
        .filter(|f| match f {
            Finding::NotOurs { .. } => true,
            Finding::HandEdited { .. } => !force,
            // An orphan is deleted only if it is still exactly what we generated; one that cannot
            // be read as text was not left that way by us.
            Finding::Orphaned { path } => {
                !force
                    && !std::fs::read_to_string(root.join(path)).is_ok_and(|t| digest_matches(&t))
            }
            _ => false,
        })
        .cloned()
        .collect();
    if blocking.is_empty() {
        Ok(())
    } else {
        Err(Refusal { findings: blocking })
    }
}

/// A refusal for a file that could not be written.
fn io_refusal(path: &str) -> Refusal {
    Refusal {
        findings: vec![Finding::Missing {
            path: path.to_owned(),
        }],
    }
}

/// Writes the files whose bytes changed.
fn put(root: &Path, files: &[GeneratedFile]) -> Result<WriteReport, Refusal> {
    let mut report = WriteReport::default();
    for file in files {
        let target = root.join(&file.path);
        if std::fs::read_to_string(&target).is_ok_and(|disk| disk == file.contents) {
            report.unchanged += 1;
            continue;
        }
        write_atomically(&target, &file.contents).map_err(|_| io_refusal(&file.path))?;
        report.written.push(file.path.clone());
    }
    Ok(report)
}

/// Writes through a temporary file and a rename, so no reader sees half a file.
fn write_atomically(target: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary: PathBuf = target.with_file_name(format!(".{name}.prefiq-tmp"));
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, target)
}

fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(current) = dir {
        if current == root
            || current.parent() == Some(root)
            || std::fs::remove_dir(current).is_err()
        {
            break;
        }
        dir = current.parent();
    }
}
