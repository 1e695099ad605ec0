//! `cargo xtask bench dev`: save-to-served latency of `prefiq dev`, the loop a developer waits
//! on. Figures, not assertions.
//!
//! A scratch copy of this repository (the files git knows, in `target/bench-dev/project`) is
//! served by the release build of `prefiq dev --app crm --no-ui`. It builds into a target folder
//! of its own (`target/bench-dev/target`): cargo names a workspace's path crates by their path
//! from the workspace's root, which the copy shares with the repository, so in one target folder
//! the copy's crates and the repository's would take each other's place.
//!
//! Each edit adds a new optional field to `Company` (replacing the previous edit's); the clock
//! starts just before the file is saved and stops when the running server's OpenAPI document
//! names the field (polled every 5 ms). The phases are read from the outside:
//!
//! - codegen: until `apps/crm/core/openapi.json` on disk names the field;
//! - build: until `prefiq dev` reports the build (`built in …`);
//! - migration: until it reports the dev database following the schema (a draft applied, the
//!   SQLite file rebuilt and re-seeded);
//! - restart: until the new server's document names the field.
//!
//! The first run builds the copy's crates (minutes); the edits after it are what the figures
//! are about.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Copies the files git knows (tracked or new, not ignored) from `repo` into `to`.
fn copy_project(repo: &Path, to: &Path) -> Result<(), String> {
    let listed = Command::new("git")
        .current_dir(repo)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !listed.status.success() {
        return Err("git ls-files failed".into());
    }
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(|e| format!("cannot clear {}: {e}", to.display()))?;
    }
    for file in listed.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let relative = PathBuf::from(String::from_utf8_lossy(file).into_owned());
        let source = repo.join(&relative);
        if !source.is_file() {
            continue;
        }
        let target = to.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::copy(&source, &target)
            .map_err(|e| format!("cannot copy {}: {e}", relative.display()))?;
    }
    Ok(())
}

/// `company.yaml` with one more optional property, `name`, first under `properties`.
fn with_field(original: &str, name: &str) -> Option<String> {
    let anchor = "properties:\n";
    let at = original.find(anchor)? + anchor.len();
    Some(format!(
        "{}  {name}:\n    description: A field added by the benchmark.\n    type: [string, \"null\"]\n{}",
        &original[..at],
        &original[at..]
    ))
}

/// What `prefiq dev` said, with when.
type Said = mpsc::Receiver<(Instant, String)>;

/// Waits for a line containing `needle`, up to `limit`.
fn heard(said: &Said, needle: &str, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match said.recv_timeout(left) {
            Ok((at, line)) if line.contains(needle) => return Some(at),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Whether the OpenAPI document served on `port` names `needle`.
fn served(port: u16, needle: &str) -> bool {
    crate::bench::http(port, "GET", "/openapi.json", "text/plain", "")
        .is_some_and(|(status, body)| status == 200 && body.contains(needle))
}

struct Phases {
    codegen: Vec<f64>,
    build: Vec<f64>,
    migration: Vec<f64>,
    restart: Vec<f64>,
    total: Vec<f64>,
}

/// What one edit needs: the schema file and its text before the edits, the document codegen
/// writes, what `prefiq dev` says, and where its server listens.
struct Edits<'a> {
    schema: &'a Path,
    original: &'a str,
    on_disk: &'a Path,
    said: &'a Said,
    port: u16,
}

/// Saves `company.yaml` with a new field and times each phase until it is served.
fn measure_edit(edits: &Edits<'_>, edit: usize, phases: &mut Phases) -> Option<()> {
    let Edits {
        schema,
        original,
        on_disk,
        said,
        port,
    } = *edits;
    let field = format!("bench_note_{edit}");
    let text = with_field(original, &field)?;
    // Let the loop settle, so each edit is measured alone.
    std::thread::sleep(Duration::from_millis(500));
    while said.try_recv().is_ok() {}
    let saved = Instant::now();
    std::fs::write(schema, &text).ok()?;
    let limit = Duration::from_secs(300);
    let mut written = None;
    let total = loop {
        if written.is_none() && std::fs::read_to_string(on_disk).is_ok_and(|t| t.contains(&field)) {
            written = Some(saved.elapsed());
        }
        if served(port, &field) {
            break saved.elapsed();
        }
        if saved.elapsed() > limit {
            eprintln!("error: edit {edit} was never served");
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let lines: Vec<(Instant, String)> = said.try_iter().collect();
    let when = |needle: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(at, _)| at.duration_since(saved))
    };
    let codegen = written.unwrap_or(total);
    let built = when("built in").unwrap_or(codegen);
    let migrated = when("fixture rows")
        .or_else(|| when("runs draft"))
        .unwrap_or(built);
    phases.codegen.push(crate::bench::ms(codegen));
    phases
        .build
        .push(crate::bench::ms(built.saturating_sub(codegen)));
    phases
        .migration
        .push(crate::bench::ms(migrated.saturating_sub(built)));
    phases
        .restart
        .push(crate::bench::ms(total.saturating_sub(migrated)));
    phases.total.push(crate::bench::ms(total));
    eprintln!("edit {edit}: served after {:.2} s", total.as_secs_f64());
    Some(())
}

pub(crate) fn dev(args: &[&str]) -> ExitCode {
    let edits = crate::bench::flag(args, "--edits", 5).max(1);
    let port = crate::bench::flag(args, "--port", 18580) as u16;
    if !crate::run(
        "cargo",
        &["build", "--release", "--locked", "--quiet", "-p", "prefiq"],
    ) {
        return ExitCode::FAILURE;
    }
    let repo = crate::root();
    let bench = repo.join("target/bench-dev");
    let project = bench.join("project");
    if let Err(error) = copy_project(&repo, &project) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let schema = project.join("apps/crm/core/schema/company.yaml");
    let on_disk = project.join("apps/crm/core/openapi.json");
    let Ok(original) = std::fs::read_to_string(&schema) else {
        eprintln!("error: the copy has no apps/crm/core/schema/company.yaml");
        return ExitCode::FAILURE;
    };
    let mut child = match Command::new(repo.join("target/release/prefiq"))
        .args(["dev", "--app", "crm", "--no-ui", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--root")
        .arg(&project)
        .env("CARGO_TARGET_DIR", bench.join("target"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("error: cannot start prefiq dev: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (tell, said) = mpsc::channel();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tell = tell.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if std::env::var_os("BENCH_VERBOSE").is_some() {
                    eprintln!("  | {line}");
                }
                if tell.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
    }
    let ready = "crm → http://";
    eprintln!("building the scratch copy (the first time takes minutes) …");
    let outcome = (|| {
        heard(&said, ready, Duration::from_secs(1800)).or_else(|| {
            eprintln!("error: the first server never came up");
            None
        })?;
        let mut phases = Phases {
            codegen: Vec::new(),
            build: Vec::new(),
            migration: Vec::new(),
            restart: Vec::new(),
            total: Vec::new(),
        };
        let each = Edits {
            schema: &schema,
            original: &original,
            on_disk: &on_disk,
            said: &said,
            port,
        };
        for edit in 0..edits {
            measure_edit(&each, edit, &mut phases)?;
        }
        Some(phases)
    })();
    // As Ctrl-C would: `prefiq dev` stops its servers on the way out.
    crate::bench::stop(child, "INT");
    let _ = std::fs::write(&schema, &original);
    let Some(mut phases) = outcome else {
        return ExitCode::FAILURE;
    };
    println!(
        "prefiq dev, CRM app: a new optional field in company.yaml until the running server's \
         document has it; {edits} edits, debug build of the app, 2 cores:"
    );
    for (label, values) in [
        ("save → served (total)", &mut phases.total),
        (
            "  codegen (save → openapi.json on disk)",
            &mut phases.codegen,
        ),
        ("  build (cargo build of app-crm)", &mut phases.build),
        ("  migration (dev database follows)", &mut phases.migration),
        (
            "  restart (until the document is served)",
            &mut phases.restart,
        ),
    ] {
        crate::bench::summary(label, values);
    }
    ExitCode::SUCCESS
}
