//! `cargo xtask bench codegen`: generates a synthetic app of many entities with the release
//! build of `prefiq` and prints how long it takes. Figures, not assertions: compare them with
//! other generators on the same input.

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

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Times `prefiq codegen` (cold: empty output folders) and `prefiq codegen --check` (all fresh).
pub fn codegen(args: &[&str]) -> ExitCode {
    let entities = flag(args, "--entities", 200);
    let runs = flag(args, "--runs", 5).max(1);
    if !crate::run("cargo", &["build", "--release", "--quiet", "-p", "prefiq"]) {
        return ExitCode::FAILURE;
    }
    let prefiq = crate::root().join("target/release/prefiq");
    let mut cold = Vec::new();
    let mut check = Vec::new();
    let mut files = 0;
    let mut bytes = 0u64;
    for _ in 0..runs {
        let Ok(dir) = tempfile::tempdir() else {
            return ExitCode::FAILURE;
        };
        if write_project(dir.path(), entities).is_err() {
            return ExitCode::FAILURE;
        }
        let started = Instant::now();
        let status = Command::new(&prefiq)
            .arg("--root")
            .arg(dir.path())
            .args(["--quiet", "codegen"])
            .status();
        cold.push(started.elapsed());
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("prefiq codegen failed on the synthetic app");
            return ExitCode::FAILURE;
        }
        let started = Instant::now();
        let status = Command::new(&prefiq)
            .arg("--root")
            .arg(dir.path())
            .args(["--quiet", "codegen", "--check"])
            .status();
        check.push(started.elapsed());
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("prefiq codegen --check failed right after codegen");
            return ExitCode::FAILURE;
        }
        let walk = walk(&dir.path().join("apps/bench"));
        files = walk.0;
        bytes = walk.1;
    }
    println!(
        "synthetic app: {entities} entities, {files} files, {} KiB generated",
        bytes / 1024
    );
    println!(
        "prefiq codegen          median {:>7.1} ms  (min {:.1}, max {:.1}, {runs} runs)",
        ms(median(&mut cold.clone())),
        ms(*cold.iter().min().unwrap()),
        ms(*cold.iter().max().unwrap())
    );
    println!(
        "prefiq codegen --check  median {:>7.1} ms  (min {:.1}, max {:.1}, {runs} runs)",
        ms(median(&mut check.clone())),
        ms(*check.iter().min().unwrap()),
        ms(*check.iter().max().unwrap())
    );
    ExitCode::SUCCESS
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
pub fn ts_client(args: &[&str]) -> ExitCode {
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
