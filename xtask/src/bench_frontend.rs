//! `cargo xtask bench frontend`: builds the CRM's frontend with Vite (its pages, the generated
//! components and hooks, resources/frontend, React and TanStack Query) and prints each file of
//! the bundle raw and gzipped (level 9, as a server would send it), the total against the budget
//! of 200 KB gzipped, and the build time (median of the runs after one uncounted warm-up).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::bench::flag;

/// The CRM bundle's budget, gzipped.
const BUDGET_KB: f64 = 200.0;

fn gzipped(path: &Path) -> Option<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}

pub(crate) fn frontend(args: &[&str]) -> ExitCode {
    let runs = flag(args, "--runs", 3).max(1);
    let root = crate::root();
    let vite = root.join(".ci/node_modules/.bin/vite");
    if !vite.exists() {
        eprintln!("error: Vite is missing; run `cargo xtask test` once (or `npm ci --prefix .ci`)");
        return ExitCode::FAILURE;
    }
    // The apps' sources import React and TanStack Query from the repository's node_modules.
    let link = root.join("node_modules");
    if link.symlink_metadata().is_err() {
        let _ = std::os::unix::fs::symlink(root.join(".ci/node_modules"), &link);
    }
    let out = root.join("target/bench/frontend");
    let mut times = Vec::new();
    for run in 0..=runs {
        let started = Instant::now();
        let built = Command::new(&vite)
            .args(["build", "--logLevel", "warn"])
            .current_dir(root.join("apps/crm/src"))
            .env("PREFIQ_OUT_DIR", &out)
            .status()
            .is_ok_and(|s| s.success());
        if !built {
            eprintln!("error: `vite build` of apps/crm/src failed");
            return ExitCode::FAILURE;
        }
        if run > 0 {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let mut files: Vec<_> = std::fs::read_dir(out.join("assets"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.push(out.join("index.html"));
    files.sort();
    let (mut raw_total, mut gz_total) = (0u64, 0u64);
    println!(
        "{:<44} {:>10} {:>10}",
        "file (apps/crm/src, vite build)", "raw KB", "gzip KB"
    );
    for file in &files {
        let raw = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let Some(gz) = gzipped(file) else {
            eprintln!("error: gzip failed on {}", file.display());
            return ExitCode::FAILURE;
        };
        raw_total += raw;
        gz_total += gz;
        let name = file
            .strip_prefix(&out)
            .unwrap_or(file)
            .display()
            .to_string();
        println!(
            "{name:<44} {:>10.1} {:>10.1}",
            raw as f64 / 1024.0,
            gz as f64 / 1024.0
        );
    }
    let gz_kb = gz_total as f64 / 1024.0;
    println!(
        "{:<44} {:>10.1} {:>10.1}",
        "total",
        raw_total as f64 / 1024.0,
        gz_kb
    );
    println!(
        "budget: {BUDGET_KB:.0} KB gzipped; the CRM bundle is {gz_kb:.1} KB ({})",
        if gz_kb <= BUDGET_KB { "within" } else { "OVER" }
    );
    println!(
        "build time: median {:.2} s of {runs} runs (after one warm-up), two cores",
        times[times.len() / 2]
    );
    ExitCode::SUCCESS
}
