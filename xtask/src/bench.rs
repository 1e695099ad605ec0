//! `cargo xtask bench codegen`: generates a synthetic app of many entities with the release
//! build of `prefiq` and prints how long it takes. Figures, not assertions: compare them with
//! other generators on the same input.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

fn flag(args: &[&str], name: &str, default: usize) -> usize {
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

fn ms(duration: Duration) -> f64 {
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
