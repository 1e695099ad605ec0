//! `cargo xtask bench watch`: save-to-written latency of `prefiq codegen --watch` for one field
//! change in the CRM app. Figures, not assertions.
//!
//! A copy of the CRM schemas in a temporary project is watched by the release build. Each edit
//! changes the `maxLength` of `Company.name`; the clock starts just before the file is saved. It
//! stops when the new value shows in `core/openapi.json` on disk (polled every millisecond), and
//! again when the watcher reports the run done: every output written. The watcher's own JSON
//! line gives the time from the batch's end to that report.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

pub(crate) fn watch(args: &[&str]) -> ExitCode {
    let edits = crate::bench::flag(args, "--edits", 25).max(1);
    if !crate::run("cargo", &["build", "--release", "--quiet", "-p", "prefiq"]) {
        return ExitCode::FAILURE;
    }
    let repo = crate::root();
    let Ok(dir) = tempfile::tempdir() else {
        return ExitCode::FAILURE;
    };
    let project = dir.path();
    for folder in ["core/schema", "core/fixtures"] {
        if let Err(error) = copy_dir(
            &repo.join("apps/crm").join(folder),
            &project.join("apps/crm").join(folder),
        ) {
            eprintln!("error: cannot copy the CRM app: {error}");
            return ExitCode::FAILURE;
        }
    }
    let _ = std::fs::copy(repo.join("prefiq.toml"), project.join("prefiq.toml"));
    let schema = project.join("apps/crm/core/schema/company.yaml");
    let openapi = project.join("apps/crm/core/openapi.json");
    let Ok(original) = std::fs::read_to_string(&schema) else {
        return ExitCode::FAILURE;
    };
    if !original.contains("maxLength: 200") {
        eprintln!("error: company.yaml no longer has `maxLength: 200` to edit");
        return ExitCode::FAILURE;
    }

    let mut child = match Command::new(repo.join("target/release/prefiq"))
        .args(["codegen", "--watch", "--message-format", "json", "--root"])
        .arg(project)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("error: cannot start prefiq: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (lines, events) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if value["event"] == "codegen" && lines.send(value).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| match events.recv_timeout(Duration::from_secs(30)) {
        Ok(event) if event["ok"] == true => Some((event, Instant::now())),
        Ok(event) => {
            eprintln!("error: {what}: the watcher reported {event}");
            None
        }
        Err(_) => {
            eprintln!("error: {what}: no report from the watcher within 30 s");
            None
        }
    };
    let outcome = (|| {
        next("the first generation")?;
        let (mut to_disk, mut generation, mut everything): (Vec<f64>, Vec<f64>, Vec<f64>) =
            (Vec::new(), Vec::new(), Vec::new());
        for edit in 0..edits {
            let value = 5000 + edit;
            let marker = format!("\"maxLength\": {value}");
            let text = original.replace("maxLength: 200", &format!("maxLength: {value}"));
            // Let the watcher settle, so each edit is measured alone.
            std::thread::sleep(Duration::from_millis(150));
            let saved = Instant::now();
            std::fs::write(&schema, &text).ok()?;
            let written = loop {
                if std::fs::read_to_string(&openapi).is_ok_and(|t| t.contains(&marker)) {
                    break saved.elapsed();
                }
                if saved.elapsed() > Duration::from_secs(30) {
                    eprintln!("error: edit {edit} never reached core/openapi.json");
                    return None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let (event, reported) = next(&format!("edit {edit}"))?;
            to_disk.push(crate::bench::ms(written));
            generation.push(event["ms"].as_f64().unwrap_or(f64::NAN));
            everything.push(crate::bench::ms(reported.duration_since(saved)));
        }
        Some((to_disk, generation, everything))
    })();
    let _ = child.kill();
    let _ = child.wait();
    let Some((mut to_disk, mut generation, mut everything)) = outcome else {
        return ExitCode::FAILURE;
    };
    println!(
        "prefiq codegen --watch, CRM app (4 entities, 4 custom operations), {edits} edits of one field, release build:"
    );
    crate::bench::summary("save → openapi.json on disk", &mut to_disk);
    crate::bench::summary(
        "save → every output on disk (watcher's report)",
        &mut everything,
    );
    crate::bench::summary("generation + write (watcher's own clock)", &mut generation);
    ExitCode::SUCCESS
}
