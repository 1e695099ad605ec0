//! The external tools contract tests run (tsc, Redocly, openapi-spec-validator, Schemathesis),
//! installed under `.ci/` by `cargo xtask test`.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// A tool under `.ci/`, or a panic that says how to install it.
pub fn tool(relative: &str) -> PathBuf {
    let path = repo_root().join(".ci").join(relative);
    assert!(
        path.exists(),
        "{} is not installed. Run `cargo xtask test` once (it installs the contract tools), \
         or `npm ci --prefix .ci` and `python3 -m venv .ci/.venv && .ci/.venv/bin/pip install -r .ci/requirements.txt`",
        path.display()
    );
    path
}

/// TypeScript's compiler.
pub fn tsc() -> PathBuf {
    tool("node_modules/.bin/tsc")
}

/// Redocly's CLI.
pub fn redocly() -> PathBuf {
    tool("node_modules/.bin/redocly")
}

/// openapi-spec-validator.
pub fn openapi_spec_validator() -> PathBuf {
    tool(".venv/bin/openapi-spec-validator")
}

/// Schemathesis.
pub fn schemathesis() -> PathBuf {
    tool(".venv/bin/schemathesis")
}

/// Runs a command to completion and asserts that it succeeded, showing its output otherwise.
#[track_caller]
pub fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
