//! `cargo xtask`: project automation that needs more than one cargo command.
//!
//! - `cargo xtask test`: what CI runs: the generated files are up to date, then every test.
//! - `cargo xtask bench codegen [--entities N] [--runs N]`: generation time for a synthetic app.

mod bench;

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
    eprintln!("usage:\n  cargo xtask test\n  cargo xtask bench codegen [--entities N] [--runs N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["test", rest @ ..] => test(rest),
        ["bench", "codegen", rest @ ..] => bench::codegen(rest),
        _ => usage(),
    }
}

fn test(extra: &[&str]) -> ExitCode {
    let steps: [(&str, Vec<&str>); 2] = [
        (
            "cargo",
            vec!["run", "--quiet", "-p", "prefiq", "--", "codegen", "--check"],
        ),
        ("cargo", [&["test", "--workspace"][..], extra].concat()),
    ];
    for (program, args) in steps {
        if !run(program, &args) {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
