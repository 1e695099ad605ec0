//! `cargo xtask bench codegen`: times the release build of `prefiq` on the CRM app and on a
//! synthetic app of many entities, beside openapi-generator on the same documents. Figures, not
//! assertions.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

pub(crate) fn flag(args: &[&str], name: &str, default: usize) -> usize {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

/// One entity schema: scalars of every kind, an enum, a nested object, an array and a reference.
fn entity(index: usize) -> String {
    let mut yaml = String::new();
    let _ = write!(
        yaml,
        "title: Entity{index:03}\ntype: object\nx-prefiq: {{}}\nrequired: [name, amount]\nproperties:\n  \
         id: {{type: string, format: uuid, readOnly: true, x-prefiq: {{primary-key: true}}}}\n  \
         name: {{type: string, minLength: 1, maxLength: 200, x-prefiq: {{unique: true, filterable: true, sortable: true}}}}\n  \
         amount: {{type: string, format: decimal, x-prefiq: {{precision: 14, scale: 2, sortable: true}}}}\n  \
         quantity: {{type: [integer, \"null\"], minimum: 0}}\n  \
         ratio: {{type: number, minimum: 0, maximum: 1, default: 0.5}}\n  \
         active: {{type: boolean, default: true, x-prefiq: {{filterable: true}}}}\n  \
         due_on: {{type: [string, \"null\"], format: date, x-prefiq: {{filterable: true, sortable: true}}}}\n  \
         email: {{type: [string, \"null\"], format: email}}\n  \
         status: {{type: string, enum: [draft, active, archived], default: draft, x-prefiq: {{filterable: true}}}}\n  \
         tags: {{type: array, items: {{type: string, maxLength: 40}}, default: [], x-prefiq: {{filterable: true}}}}\n  \
         address: {{oneOf: [{{$ref: common.yaml#/$defs/Address}}, {{type: \"null\"}}]}}\n"
    );
    if index > 0 {
        let _ = write!(
            yaml,
            "  parent_id:\n    type: [string, \"null\"]\n    format: uuid\n    x-prefiq: {{references: {{entity: Entity{:03}, on-delete: set-null}}, filterable: true}}\n",
            index - 1
        );
    }
    yaml.push_str(
        "  created_at: {type: string, format: date-time, readOnly: true, x-prefiq: {server: created-at}}\n  \
         updated_at: {type: string, format: date-time, readOnly: true, x-prefiq: {server: updated-at}}\n",
    );
    yaml
}

const COMMON: &str = "$defs:\n  Address:\n    type: object\n    required: [city]\n    properties:\n      street: {type: string}\n      city: {type: string}\n      country: {type: string, pattern: \"^[A-Z]{2}$\"}\n";

fn write_project(root: &Path, entities: usize) -> std::io::Result<()> {
    let schema = root.join("apps/bench/core/schema");
    std::fs::create_dir_all(&schema)?;
    std::fs::write(schema.join("common.yaml"), COMMON)?;
    for index in 0..entities {
        std::fs::write(schema.join(format!("entity{index:03}.yaml")), entity(index))?;
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// openapi-generator (its PyPI wrapper, which ships the jar; Java 17 runs it), installed once
/// under `target/bench/`.
fn openapi_generator() -> Option<std::path::PathBuf> {
    let venv = crate::root().join("target/bench/openapi-generator");
    let cli = venv.join("bin/openapi-generator-cli");
    if !cli.exists() {
        let venv_arg = venv.to_string_lossy().into_owned();
        let pip = venv.join("bin/pip").to_string_lossy().into_owned();
        let ok = crate::run("python3", &["-m", "venv", &venv_arg])
            && crate::run(
                &pip,
                &["install", "--quiet", "openapi-generator-cli==7.26.0"],
            );
        if !ok {
            eprintln!("error: cannot install openapi-generator-cli from PyPI");
            return None;
        }
    }
    Some(cli)
}

/// Wall time (ms) and peak memory (KiB, by GNU time) of one command; `None` if it failed.
fn run_measured(program: &Path, args: &[&str], cwd: Option<&Path>) -> Option<(f64, u64)> {
    let mut command = Command::new("/usr/bin/time");
    command.args(["-f", "%M"]).arg(program).args(args);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let started = Instant::now();
    let output = command.output().ok()?;
    let elapsed = ms(started.elapsed());
    if !output.status.success() {
        eprintln!(
            "{} {} failed:\n{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kib = stderr.lines().last()?.trim().parse().ok()?;
    Some((elapsed, kib))
}

/// One project measured: Prefiq from nothing, Prefiq when everything is fresh (`--check`), and
/// openapi-generator's `rust-axum` server stubs from the project's own OpenAPI 3.0 document.
struct Figures {
    cold: Vec<f64>,
    fresh: Vec<f64>,
    theirs: Vec<f64>,
    peak_kib: u64,
    files: usize,
    bytes: u64,
}

/// Measures one project in two phases, so neither tool runs on caches the other just evicted
/// (openapi-generator's JVM takes a gigabyte between runs): first Prefiq, from nothing (cold) and
/// when everything is fresh (`--check`), then openapi-generator on the document Prefiq wrote.
/// Each phase starts with one run that is not counted, as hyperfine's `--warmup 1` does, so the
/// figures are the tool's, not the first load of its binary or of the JVM.
fn measure_project(
    prefiq: &Path,
    generator: &Path,
    app: &str,
    inputs: &dyn Fn(&Path) -> std::io::Result<()>,
    runs: usize,
) -> Option<Figures> {
    let mut figures = Figures {
        cold: Vec::new(),
        fresh: Vec::new(),
        theirs: Vec::new(),
        peak_kib: 0,
        files: 0,
        bytes: 0,
    };
    let mut projects = Vec::new();
    for run in 0..=runs {
        let dir = tempfile::tempdir().ok()?;
        inputs(dir.path()).ok()?;
        let root = dir.path().to_string_lossy().into_owned();
        let (cold, peak) = run_measured(
            prefiq,
            &["--root", &root, "--quiet", "codegen", "--app", app],
            None,
        )?;
        let (fresh, peak_fresh) = run_measured(
            prefiq,
            &[
                "--root", &root, "--quiet", "codegen", "--app", app, "--check",
            ],
            None,
        )?;
        if run == 0 {
            projects.push(dir);
            continue;
        }
        figures.cold.push(cold);
        figures.fresh.push(fresh);
        figures.peak_kib = figures.peak_kib.max(peak).max(peak_fresh);
        let walked = walk(&dir.path().join("apps").join(app));
        figures.files = walked.0;
        figures.bytes = walked.1;
        projects.push(dir);
    }
    for (run, dir) in projects.iter().enumerate() {
        let document = dir.path().join(format!("apps/{app}/core/openapi-3.0.json"));
        let out = dir.path().join("openapi-generator");
        let (theirs, _) = run_measured(
            generator,
            &[
                "generate",
                "--skip-validate-spec",
                "-g",
                "rust-axum",
                "-i",
                &document.to_string_lossy(),
                "-o",
                &out.to_string_lossy(),
            ],
            None,
        )?;
        if run == 0 {
            continue;
        }
        let cold = figures.cold[run - 1];
        println!(
            "  run {run}: prefiq {cold:>7.1} ms, fresh {:>6.1} ms | openapi-generator rust-axum {theirs:>7.1} ms | ratio {:>5.1}×",
            figures.fresh[run - 1],
            theirs / cold
        );
        figures.theirs.push(theirs);
    }
    Some(figures)
}

fn report(label: &str, figures: &mut Figures) {
    let cold = median(&mut figures.cold);
    let fresh = median(&mut figures.fresh);
    let theirs = median(&mut figures.theirs);
    println!(
        "{label}: {} files, {} KiB generated; medians: prefiq {cold:.1} ms, fresh (--check) {fresh:.1} ms, \
         peak RSS {:.0} MiB | openapi-generator rust-axum {theirs:.1} ms | prefiq is {:.1}× faster",
        figures.files,
        figures.bytes / 1024,
        figures.peak_kib as f64 / 1024.0,
        theirs / cold
    );
}

/// Times `prefiq codegen` on the CRM app and on a synthetic app of many entities: from nothing
/// (cold) and when everything is fresh (`--check`), with peak memory, beside openapi-generator's
/// `rust-axum` generator on the same app's OpenAPI 3.0 document (see [`measure_project`]).
pub(crate) fn codegen(args: &[&str]) -> ExitCode {
    let entities = flag(args, "--entities", 200);
    let runs = flag(args, "--runs", 5).max(1);
    if !crate::run("cargo", &["build", "--release", "--quiet", "-p", "prefiq"]) {
        return ExitCode::FAILURE;
    }
    let Some(generator) = openapi_generator() else {
        return ExitCode::FAILURE;
    };
    let repo = crate::root();
    let prefiq = repo.join("target/release/prefiq");
    let crm = |root: &Path| -> std::io::Result<()> {
        for folder in ["core/schema", "core/fixtures"] {
            copy_dir(
                &repo.join("apps/crm").join(folder),
                &root.join("apps/crm").join(folder),
            )?;
        }
        std::fs::copy(repo.join("prefiq.toml"), root.join("prefiq.toml")).map(|_| ())
    };
    println!("CRM app (4 entities, 4 custom operations), release build, 2 cores:");
    let Some(mut crm_figures) = measure_project(&prefiq, &generator, "crm", &crm, runs) else {
        return ExitCode::FAILURE;
    };
    println!("synthetic app, {entities} entities:");
    let synthetic = |root: &Path| write_project(root, entities);
    let Some(mut synthetic_figures) =
        measure_project(&prefiq, &generator, "bench", &synthetic, runs)
    else {
        return ExitCode::FAILURE;
    };
    report("CRM", &mut crm_figures);
    report(&format!("{entities} entities"), &mut synthetic_figures);
    ExitCode::SUCCESS
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn walk(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("schema") {
                    stack.push(path);
                }
            } else {
                files += 1;
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    (files, bytes)
}

/// `(seconds, peak KiB)` of one command, measured by GNU time.
fn measure(program: &Path, args: &[&str]) -> Option<(f64, u64)> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%e %M"])
        .arg(program)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "{} failed:\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last()?;
    let (seconds, kib) = last.split_once(' ')?;
    Some((seconds.parse().ok()?, kib.trim().parse().ok()?))
}

/// Feeds the GitHub REST API document (`@octokit/openapi`) to Prefiq's TypeScript client emitter
/// and to openapi-typescript, and prints time and peak memory of each, and checks Prefiq's output
/// with `tsc --strict`.
pub(crate) fn ts_client(args: &[&str]) -> ExitCode {
    let runs = flag(args, "--runs", 3).max(1);
    if !crate::ensure_tools()
        || !crate::run("cargo", &["build", "--release", "--quiet", "-p", "prefiq"])
    {
        return ExitCode::FAILURE;
    }
    let root = crate::root();
    let document = root.join(".ci/node_modules/@octokit/openapi/generated/api.github.com.json");
    let document_arg = document.to_string_lossy().into_owned();
    let Ok(out) = tempfile::tempdir() else {
        return ExitCode::FAILURE;
    };
    let prefiq_out = out.path().join("prefiq").to_string_lossy().into_owned();
    let ots_out = out
        .path()
        .join("openapi-typescript.d.ts")
        .to_string_lossy()
        .into_owned();
    let prefiq = root.join("target/release/prefiq");
    let ots = root.join(".ci/node_modules/.bin/openapi-typescript");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        match measure(
            &prefiq,
            &["--quiet", "openapi-ts", &document_arg, "--out", &prefiq_out],
        ) {
            Some(m) => ours.push(m),
            None => return ExitCode::FAILURE,
        }
        match measure(&ots, &[&document_arg, "-o", &ots_out]) {
            Some(m) => theirs.push(m),
            None => return ExitCode::FAILURE,
        }
    }
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len() / 1024).unwrap_or(0);
    let ours_size = ["types.ts", "client.ts", "core.ts"]
        .iter()
        .map(|f| size(&out.path().join("prefiq").join(f)))
        .sum::<u64>();
    let text = std::fs::read_to_string(&document).unwrap_or_default();
    let operations = text.matches("\"operationId\"").count();
    let tsc_ok = crate::run(
        &root.join(".ci/node_modules/.bin/tsc").to_string_lossy(),
        &[
            "--strict",
            "--noEmit",
            "--skipLibCheck",
            "--target",
            "ES2022",
            "--module",
            "NodeNext",
            "--moduleResolution",
            "NodeNext",
            "--lib",
            "ES2022,DOM",
            &format!("{prefiq_out}/client.ts"),
        ],
    );
    let median = |v: &mut Vec<(f64, u64)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v[v.len() / 2]
    };
    let (ours_t, ours_m) = median(&mut ours);
    let (theirs_t, theirs_m) = median(&mut theirs);
    println!(
        "GitHub REST API (@octokit/openapi): {} KiB, {operations} operationIds; median of {runs} runs",
        text.len() / 1024
    );
    println!(
        "prefiq openapi-ts      {ours_t:>6.2} s  peak {:>6} MiB  types + client, {ours_size} KiB  (tsc --strict: {})",
        ours_m / 1024,
        if tsc_ok { "ok" } else { "FAILED" }
    );
    println!(
        "openapi-typescript     {theirs_t:>6.2} s  peak {:>6} MiB  types only, {} KiB",
        theirs_m / 1024,
        size(Path::new(&ots_out))
    );
    if tsc_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the median, p90, min and max of `values` (milliseconds) under `label`.
pub(crate) fn summary(label: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label:<44} median {:>6.1} ms   p90 {:>6.1} ms   min {:>6.1} ms   max {:>6.1} ms",
        at(0.5),
        at(0.9),
        values[0],
        values[values.len() - 1]
    );
}

/// One HTTP/1.1 request to 127.0.0.1:`port`: the status and the body.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Sends `child` the signal `signal` (`TERM`, `INT`) and waits up to ten seconds for it to end;
/// one that has not ended by then is killed.
pub(crate) fn stop(mut child: std::process::Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
