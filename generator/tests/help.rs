//! Golden help: `prefiq --help` and every subcommand's help, as a user sees them. A change to a
//! flag or an example shows up here for review (`cargo insta review`).

use std::process::Command;

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_prefiq"))
        .args(args)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_texts_are_stable() {
    let commands: &[&[&str]] = &[
        &[],
        &["codegen"],
        &["dev"],
        &["seed"],
        &["migrate"],
        &["migrate", "diff"],
        &["migrate", "apply"],
        &["migrate", "status"],
        &["migrate", "drift"],
        &["deploy"],
        &["deploy", "render"],
        &["openapi-ts"],
        &["completions"],
    ];
    for command in commands {
        let name = if command.is_empty() {
            "prefiq".to_owned()
        } else {
            format!("prefiq {}", command.join(" "))
        };
        insta::assert_snapshot!(name.replace(' ', "_"), help(command), &name);
    }
}

#[test]
fn every_subcommand_has_a_golden_help() {
    // A new subcommand must be added to the list above.
    let top = help(&[]);
    let listed: Vec<&str> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(
        listed,
        [
            "codegen",
            "dev",
            "seed",
            "migrate",
            "deploy",
            "completions",
            "openapi-ts"
        ]
    );
}

#[test]
fn version_and_completions_work() {
    let output = Command::new(env!("CARGO_BIN_EXE_prefiq"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("prefiq {}", env!("CARGO_PKG_VERSION"))
    );
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = Command::new(env!("CARGO_BIN_EXE_prefiq"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{shell}");
        assert!(
            script.contains("codegen") && script.contains("watch"),
            "{shell} completion names the subcommands and their flags"
        );
    }
}
