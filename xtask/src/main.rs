//! `cargo xtask`: project automation that needs more than one cargo command.
//!
//! - `cargo xtask test`: what CI runs: installs the contract tools (npm and PyPI packages under
//!   `.ci/`) if they are missing or outdated, checks that generated files are up to date, then
//!   runs every test (with cargo-nextest when it is installed), compiled by clippy with warnings
//!   denied (generated crates included).
//! - `cargo xtask bench codegen [--entities N] [--runs N]`: generation time for a synthetic app.
//! - `cargo xtask bench ts-client [--runs N]`: the TypeScript client of the GitHub API, beside
//!   openapi-typescript.
//! - `cargo xtask bench watch [--edits N]`: save-to-written latency of `prefiq codegen --watch`.
//! - `cargo xtask bench dev [--edits N] [--port P]`: save-to-served latency of `prefiq dev`.
//! - `cargo xtask bench serve [--duration S] [--connections N] [--rows N]`: the generated CRM
//!   under wrk, beside a hand-written axum + sqlx service and FastAPI + SQLAlchemy.
//! - `cargo xtask new-app NAME`: a new app, generated and built.

mod bench;
mod bench_dev;
mod bench_frontend;
mod bench_jobs;
mod bench_serve;
mod bench_watch;
mod new_app;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

/// Runs a command in the repository, echoing it; false if it failed.
fn run(program: &str, args: &[&str]) -> bool {
    eprintln!("$ {program} {}", args.join(" "));
    Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success())
}

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  cargo xtask test [--deep]\n  cargo xtask bench codegen [--entities N] [--runs N]\n  cargo xtask bench ts-client [--runs N]\n  cargo xtask bench watch [--edits N]\n  cargo xtask bench dev [--edits N] [--port P]\n  cargo xtask bench serve [--duration S] [--connections N] [--rows N]\n  cargo xtask bench frontend [--runs N]\n  cargo xtask bench jobs [--jobs N] [--samples N] [--concurrency N]\n  cargo xtask new-app NAME"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["test", rest @ ..] => test(rest),
        ["bench", "codegen", rest @ ..] => bench::codegen(rest),
        ["bench", "ts-client", rest @ ..] => bench::ts_client(rest),
        ["bench", "watch", rest @ ..] => bench_watch::watch(rest),
        ["bench", "dev", rest @ ..] => bench_dev::dev(rest),
        ["bench", "serve", rest @ ..] => bench_serve::serve(rest),
        ["bench", "jobs", rest @ ..] => bench_jobs::jobs(rest),
        ["bench", "frontend", rest @ ..] => bench_frontend::frontend(rest),
        ["new-app", rest @ ..] => new_app::run(rest),
        _ => usage(),
    }
}

/// Whether `stamp` records `manifest`'s current content (so the install it guards is up to date).
fn fresh(manifest: &Path, stamp: &Path) -> bool {
    match (std::fs::read(manifest), std::fs::read(stamp)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Adds clippy to the toolchain if it lacks it; false if it cannot.
fn ensure_clippy() -> bool {
    let has_clippy = || {
        Command::new("cargo")
            .args(["clippy", "--version"])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if has_clippy() {
        return true;
    }
    let added = run("rustup", &["component", "add", "clippy"]);
    if !added || !has_clippy() {
        eprintln!("error: `cargo clippy` is missing and rustup could not add it");
        return false;
    }
    true
}

/// Installs the tools the contract tests run: tsc, Redocly and openapi-typescript from npm,
/// openapi-spec-validator and Schemathesis from PyPI. Each install is skipped when its stamp
/// matches the lock file.
pub(crate) fn ensure_tools() -> bool {
    let ci = root().join(".ci");
    let lock = ci.join("package-lock.json");
    let npm_stamp = ci.join("node_modules/.prefiq-stamp");
    if !fresh(&lock, &npm_stamp) {
        if !run("npm", &["ci", "--prefix", ".ci", "--no-audit", "--no-fund"]) {
            eprintln!(
                "error: `npm ci` failed; the contract tests need Node.js 20 and the npm registry"
            );
            return false;
        }
        let _ = std::fs::copy(&lock, &npm_stamp);
    }
    // Two virtualenvs, so the deployment linters' dependencies never change the contract tools'.
    for (lock, venv, needed_for) in [
        ("requirements.txt", ".venv", "the contract tests"),
        (
            "deploy-requirements.txt",
            ".venv-deploy",
            "the deployment tests",
        ),
    ] {
        let ok = python_tools(&ci.join(venv), &ci.join(lock));
        if !ok {
            eprintln!(
                "error: installing the Python tools of .ci/{lock} failed; {needed_for} need Python 3 with venv and PyPI"
            );
            return false;
        }
    }
    true
}

/// Makes `venv` hold exactly what the hash-locked `requirements` names, unless its stamp says it
/// already does; true when it is ready.
pub(crate) fn python_tools(venv: &Path, requirements: &Path) -> bool {
    let stamp = venv.join(".prefiq-stamp");
    if fresh(requirements, &stamp) {
        return true;
    }
    let venv_arg = venv.to_string_lossy().into_owned();
    let pip = venv.join("bin/pip").to_string_lossy().into_owned();
    let requirements_arg = requirements.to_string_lossy().into_owned();
    // `--clear`: the virtualenv holds exactly what the lock file names, nothing left over.
    let ok = run("python3", &["-m", "venv", "--clear", &venv_arg])
        && run(
            &pip,
            &[
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "-r",
                &requirements_arg,
            ],
        );
    if ok {
        let _ = std::fs::copy(requirements, &stamp);
    }
    ok
}

/// `cargo xtask test [--deep] [cargo test arguments]`: the generated files checked, then every
/// test, compiled by clippy with warnings denied. `--deep` runs the long fuzz: Schemathesis with
/// many more examples per operation and a random seed that each run prints.
fn test(args: &[&str]) -> ExitCode {
    if !ensure_clippy() {
        return ExitCode::FAILURE;
    }
    // Installing the npm and PyPI tools mostly waits on the network and the disk, so it runs
    // while the compiler has the processors; the tests wait for it.
    let tools = std::thread::spawn(ensure_tools);
    let deep = args.contains(&"--deep");
    let extra: Vec<&str> = args.iter().copied().filter(|a| *a != "--deep").collect();
    let lints = Lints::new();
    let cargo = |args: &[&str]| {
        eprintln!("$ cargo {}", args.join(" "));
        let mut command = Command::new("cargo");
        command.args(args).current_dir(root());
        lints.apply(&mut command);
        if deep {
            command.env("PREFIQ_DEEP", "1");
        }
        command.status().is_ok_and(|s| s.success())
    };
    let checked = cargo(&[
        "run", "--locked", "--quiet", "-p", "prefiq", "--", "codegen", "--check",
    ]) && (lints.while_building() || cargo(&Lints::CLIPPY));
    let tools_ready = tools.join().unwrap_or(false);
    if !checked || !tools_ready {
        return ExitCode::FAILURE;
    }
    if deep {
        eprintln!("(PREFIQ_DEEP=1: the long fuzz)");
    }
    // cargo-nextest keeps both processors busy to the last test: `cargo test` runs one test
    // binary at a time, and a binary whose last long test runs alone leaves the other idle.
    // Nextest runs no doctests, so those follow. Arguments (a filter) go to `cargo test`.
    let passed = if extra.is_empty() && has_nextest() {
        cargo(&["nextest", "run", "--locked", "--workspace"])
            && cargo(&["test", "--locked", "--workspace", "--doc"])
    } else {
        cargo(&[&["test", "--locked", "--workspace"][..], &extra].concat())
    };
    if !passed {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Whether `cargo nextest` is installed.
fn has_nextest() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// How the tests' build is held to clippy with warnings denied (generated crates included, so
/// generated code stays free of the lints a team's own `cargo clippy -D warnings` would trip
/// over).
///
/// Clippy's driver is rustc with clippy's lints added, and it compiles a dependency whose lints
/// cargo caps exactly as rustc does. So it can be the compiler of the build the tests need
/// anyway (`RUSTC_WRAPPER`, with the lint arguments in `CLIPPY_ARGS`, as `cargo clippy` passes
/// them), which lints every crate of ours, generated and scratch ones included, without a
/// second compilation in check mode. Cargo leaves the wrapper out of its artifacts' hashes, so
/// the builds the tests run themselves share the same artifacts. When another wrapper is
/// already set (a compiler cache), clippy runs on its own instead.
struct Lints {
    driver: Option<PathBuf>,
}

impl Lints {
    /// `cargo clippy` over every target, for when the driver cannot be the compiler.
    const CLIPPY: [&'static str; 8] = [
        "clippy",
        "--locked",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ];

    fn new() -> Lints {
        let wrapped = std::env::var_os("RUSTC_WRAPPER").is_some_and(|w| !w.is_empty());
        let driver = (!wrapped)
            .then(|| {
                let sysroot = Command::new("rustc")
                    .args(["--print", "sysroot"])
                    .output()
                    .ok()?;
                let sysroot = String::from_utf8(sysroot.stdout).ok()?;
                let driver = Path::new(sysroot.trim()).join("bin/clippy-driver");
                driver.is_file().then_some(driver)
            })
            .flatten();
        Lints { driver }
    }

    /// Whether the lints come with the build (else `cargo clippy` must run).
    fn while_building(&self) -> bool {
        self.driver.is_some()
    }

    fn apply(&self, command: &mut Command) {
        if let Some(driver) = &self.driver {
            command.env("RUSTC_WRAPPER", driver).env(
                "CLIPPY_ARGS",
                "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
            );
        }
    }
}
