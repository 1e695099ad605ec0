//! `prefiq dev`: watch, regenerate, rebuild and restart the app servers, in one terminal.
//!
//! The loop: a batch of file changes → `codegen` for the apps whose inputs changed → `cargo build`
//! of the app crates whose code changed (generated or hand-written) → restart of the servers
//! whose binaries changed. A bad schema or a failing build is reported and the last good server
//! keeps serving. Without Cortex every app serves alone, on consecutive ports. Each app with a
//! frontend (`src/vite.config.ts`) also gets Vite's dev server, proxying `/api` to the app's
//! server: it reloads the screens that a schema edit regenerates.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead as _, IsTerminal as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::watch::{self, Watcher};

use super::Printer;

/// `prefiq dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Only this app.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Where the first app listens; further apps take the next ports.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// The database, for a single app. Default: a dev SQLite file per app, `.prefiq/dev/<app>.db`.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Where the first app's frontend (Vite's dev server) listens; further apps take the next ports.
    #[arg(long, default_value = "127.0.0.1:5173", value_name = "ADDR")]
    pub ui_bind: SocketAddr,
    /// Serve the APIs only, without starting Vite for the frontends.
    #[arg(long)]
    pub no_ui: bool,
}

/// A running app server.
struct Server {
    child: Child,
}

impl Server {
    /// Stops the server: SIGTERM (a graceful shutdown), then SIGKILL after five seconds.
    fn stop(mut self) {
        #[cfg(unix)]
        {
            let pid = self.child.id() as i32;
            // SAFETY: `kill` only sends a signal to the child this struct owns.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a changed path means for the build, if anything: the app whose crate it belongs to, or
/// `None` inside for every app (the runtime, the workspace manifest).
fn build_input(path: &str) -> Option<Option<String>> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.last().is_some_and(|name| watch::is_scratch(name)) || parts.contains(&"target") {
        return None;
    }
    match parts.as_slice() {
        ["Cargo.toml"] | ["Cargo.lock"] | ["runtime", "src", ..] | ["runtime", "Cargo.toml"] => {
            Some(None)
        }
        ["apps", app, "bin", "Cargo.toml"] | ["apps", app, "bin", "src" | "migrations", ..] => {
            Some(Some((*app).to_owned()))
        }
        _ => None,
    }
}

/// Sends a stop signal to the watcher on Ctrl-C or SIGTERM.
fn stop_on_signals(watcher: &Watcher) {
    let stop = watcher.stopper();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut terminate) = signal(SignalKind::terminate()) else {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
        let _ = stop.send(watch::Signal::Stop);
    });
}

/// The outcome of one `cargo build`.
struct Build {
    ok: bool,
    /// Package → (executable, rebuilt).
    binaries: BTreeMap<String, (PathBuf, bool)>,
}

/// Builds the app crates, printing compiler errors as cargo renders them.
fn build(root: &Path, apps: &BTreeSet<String>, printer: &Printer) -> Build {
    let started = Instant::now();
    let packages: Vec<String> = apps.iter().map(|a| format!("app-{a}")).collect();
    printer.info(&format!("building {} …", packages.join(", ")));
    let color = printer.color;
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root).args([
        "build",
        "--message-format",
        if color {
            "json-diagnostic-rendered-ansi"
        } else {
            "json"
        },
    ]);
    for package in &packages {
        command.args(["-p", package]);
    }
    let mut child = match command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            return Build {
                ok: false,
                binaries: BTreeMap::new(),
            };
        }
    };
    // cargo's own progress and errors (a broken manifest) arrive on stderr.
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .filter(|l| !l.trim_start().starts_with("Compiling") && !l.trim().is_empty())
                .collect::<Vec<String>>()
        })
    });
    let mut binaries = BTreeMap::new();
    let mut ok = false;
    let mut warnings = 0;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match message["reason"].as_str() {
                Some("compiler-message") => {
                    let level = message["message"]["level"].as_str().unwrap_or("");
                    if level == "error" {
                        eprint!(
                            "{}",
                            message["message"]["rendered"].as_str().unwrap_or_default()
                        );
                    } else if level == "warning" {
                        warnings += 1;
                        if printer.verbose {
                            eprint!(
                                "{}",
                                message["message"]["rendered"].as_str().unwrap_or_default()
                            );
                        }
                    }
                }
                Some("compiler-artifact") => {
                    let name = message["target"]["name"].as_str().unwrap_or("");
                    if let Some(executable) = message["executable"].as_str() {
                        if packages.iter().any(|p| p == name) {
                            binaries.insert(
                                name.to_owned(),
                                (
                                    PathBuf::from(executable),
                                    message["fresh"] != serde_json::Value::Bool(true),
                                ),
                            );
                        }
                    }
                }
                Some("build-finished") => ok = message["success"] == true,
                _ => {}
            }
        }
    }
    let _ = child.wait();
    let cargo_lines = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let seconds = started.elapsed().as_secs_f64();
    if ok {
        let mut line = format!("built in {seconds:.1} s");
        if warnings > 0 {
            line.push_str(&format!(
                " ({warnings} warning{}; -v shows them)",
                if warnings == 1 { "" } else { "s" }
            ));
        }
        printer.info(&line);
    } else {
        for line in cargo_lines.iter().filter(|l| l.contains("error")) {
            eprintln!("{line}");
        }
        eprintln!(
            "build failed after {seconds:.1} s; the last good server keeps serving. Fix the code and save."
        );
    }
    Build { ok, binaries }
}

/// Runs `prefiq dev`.
pub(super) fn run(root: &Path, args: &DevArgs, printer: &Printer) -> ExitCode {
    let mut watcher = match Watcher::new(root) {
        Ok(watcher) => watcher,
        Err(error) => {
            eprintln!("error: cannot watch {}: {error}", root.display());
            return ExitCode::FAILURE;
        }
    };
    let root = watcher.root().to_path_buf();
    watcher.watch_also(&root.join("runtime/src"));
    stop_on_signals(&watcher);
    let only = args.app.as_deref();
    let apps: Vec<String> = prefiq_codegen::load::app_names(&root)
        .into_iter()
        .filter(|a| only.is_none_or(|o| o == a))
        .collect();
    if apps.is_empty() {
        eprintln!(
            "error: {}",
            match only {
                Some(app) => format!("there is no app `{app}` (no apps/{app}/core/schema/)"),
                None => "there are no apps (no apps/*/core/schema/); `cargo xtask new-app NAME` makes one".to_owned(),
            }
        );
        return ExitCode::FAILURE;
    }
    if args.database_url.is_some() && apps.len() > 1 {
        eprintln!("error: --database-url needs --app: each app gets its own dev database");
        return ExitCode::from(2);
    }
    let consecutive = |first: SocketAddr| -> BTreeMap<String, SocketAddr> {
        apps.iter()
            .enumerate()
            .map(|(i, app)| {
                let mut address = first;
                address.set_port(first.port() + i as u16);
                (app.clone(), address)
            })
            .collect()
    };
    let addresses = consecutive(args.bind);
    let ui_addresses = consecutive(args.ui_bind);
    let mut uis: BTreeMap<String, Server> = BTreeMap::new();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };

    let mut servers: BTreeMap<String, Server> = BTreeMap::new();
    let mut session = prefiq_codegen::Session::watching(&root);
    let first = watch::regenerate(&mut session, only, false);
    printer.run(&first, "start");
    let mut schema_ok: BTreeMap<String, bool> =
        apps.iter().map(|a| (a.clone(), first.ok())).collect();
    let mut to_build: BTreeSet<String> = apps.iter().cloned().collect();
    let mut ours: HashSet<String> = HashSet::new();
    loop {
        let buildable: BTreeSet<String> = to_build
            .iter()
            .filter(|a| schema_ok.get(*a) == Some(&true))
            .cloned()
            .collect();
        if !buildable.is_empty() {
            let built = build(&root, &buildable, printer);
            for app in &buildable {
                to_build.remove(app);
            }
            if built.ok {
                for app in &buildable {
                    let Some((executable, rebuilt)) = built.binaries.get(&format!("app-{app}"))
                    else {
                        continue;
                    };
                    if *rebuilt || !servers.contains_key(app) {
                        restart(
                            &mut session,
                            app,
                            executable,
                            addresses[app],
                            args.database_url.as_deref(),
                            &mut servers,
                            &runtime,
                            printer,
                        );
                    }
                    if !args.no_ui && servers.contains_key(app) && !uis.contains_key(app) {
                        if let Some(ui) =
                            start_ui(&root, app, addresses[app], ui_addresses[app], printer)
                        {
                            uis.insert(app.clone(), ui);
                        }
                    }
                }
            }
        }
        let Some(batch) =
            watcher.next_batch(|p| watch::codegen_input(p).is_some() || build_input(p).is_some())
        else {
            break;
        };
        let batch: Vec<String> = batch.into_iter().filter(|p| !ours.remove(p)).collect();
        ours.clear();
        if let Some(plan) = watch::plan(&batch, only) {
            let what = watch::describe(&batch);
            for app in plan {
                let run = watch::regenerate(&mut session, app.as_deref(), false);
                printer.run(&run, &what);
                let affected: Vec<String> = match &app {
                    Some(app) => vec![app.clone()],
                    None => apps.clone(),
                };
                for app in affected {
                    schema_ok.insert(app.clone(), run.ok());
                    // A fixed schema may produce the same files as the last good run: the
                    // server may still need starting.
                    if run.changed_disk() || !servers.contains_key(&app) {
                        to_build.insert(app);
                    }
                }
                ours.extend(
                    run.report
                        .written
                        .iter()
                        .chain(&run.report.deleted)
                        .chain(&run.report.scaffolded)
                        .cloned(),
                );
            }
        }
        for path in &batch {
            match build_input(path) {
                Some(Some(app)) if addresses.contains_key(&app) => {
                    to_build.insert(app);
                }
                Some(None) => to_build.extend(apps.iter().cloned()),
                _ => {}
            }
        }
    }
    printer.info("stopping the servers");
    for (_, server) in std::mem::take(&mut servers).into_iter().chain(uis) {
        server.stop();
    }
    ExitCode::SUCCESS
}

/// The Vite that serves the frontend at `src`: the nearest `node_modules/.bin/vite` on the way up
/// to the project root, as Node would resolve it.
fn find_vite(root: &Path, src: &Path) -> Option<PathBuf> {
    src.ancestors()
        .take_while(|dir| dir.starts_with(root))
        .map(|dir| dir.join("node_modules/.bin/vite"))
        .find(|vite| vite.is_file())
}

/// Starts Vite's dev server for `app`'s frontend at `ui`, proxying `/api` to its server at `api`.
/// An app without a frontend, or a machine without Vite, gets none (the latter is said once).
fn start_ui(
    root: &Path,
    app: &str,
    api: SocketAddr,
    ui: SocketAddr,
    printer: &Printer,
) -> Option<Server> {
    let src = root.join("apps").join(app).join("src");
    if !src.join("vite.config.ts").is_file() {
        return None;
    }
    // Vite would exit on a taken port (`--strictPort`), while whatever holds it answered for it.
    if std::net::TcpListener::bind(ui).is_err() {
        eprintln!(
            "{app}: {ui} is taken, so the frontend is not served (choose another with --ui-bind)"
        );
        return None;
    }
    let Some(vite) = find_vite(root, &src) else {
        printer.info(&format!(
            "{app}: the frontend is not served: no node_modules/.bin/vite above apps/{app}/src              (install Vite, or pass --no-ui)"
        ));
        return None;
    };
    let child = Command::new(&vite)
        .current_dir(&src)
        .args([
            "--host",
            &ui.ip().to_string(),
            "--port",
            &ui.port().to_string(),
        ])
        .arg("--strictPort")
        .env("PREFIQ_API", format!("http://{api}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            eprintln!("{app}: cannot start {}: {error}", vite.display());
            return None;
        }
    };
    if wait_for_port(&mut child, app, "Vite", ui) != Ready::Listening {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    printer.info(&format!(
        "{app} UI → http://{ui}/ (Vite, /api proxied to http://{api})"
    ));
    Some(Server { child })
}

/// How a started process came up.
#[derive(Debug, PartialEq, Eq)]
enum Ready {
    Listening,
    Exited,
    TimedOut,
}

/// Waits until `child` accepts connections at `address`, exits, or 30 s pass.
fn wait_for_port(child: &mut Child, app: &str, what: &str, address: SocketAddr) -> Ready {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("{app}: {what} exited ({status}); fix the cause above and save to retry");
            return Ready::Exited;
        }
        if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
            return Ready::Listening;
        }
        if Instant::now() > deadline {
            eprintln!("{app}: {what} did not open {address} within 30 s");
            return Ready::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Brings the dev database up to the schema, then replaces the app's server with a new one.
#[allow(clippy::too_many_arguments)]
fn restart(
    session: &mut prefiq_codegen::Session,
    app: &str,
    executable: &Path,
    address: SocketAddr,
    database_url: Option<&str>,
    servers: &mut BTreeMap<String, Server>,
    runtime: &tokio::runtime::Runtime,
    printer: &Printer,
) {
    let root = session.root().to_path_buf();
    let url = database_url
        .map(str::to_owned)
        .unwrap_or_else(|| crate::dev::default_url(&root, app));
    // Everything but formatting comes from the session's memory: the files were just written.
    let generation = session.generate(Some(app));
    let Some((ir_app, run)) = generation.app(app) else {
        printer.diagnostics(&generation.diagnostics);
        return;
    };
    match runtime.block_on(crate::dev::prepare(ir_app, run, &url)) {
        Ok(prepared) => {
            if let Some(draft) = &prepared.draft {
                printer.info(&format!(
                    "{app}: the schema is ahead of its migrations; the dev database runs draft {draft} \
                     (`prefiq migrate diff <name> --app {app}` writes it as a migration)"
                ));
            }
            if prepared.rebuilt {
                printer.info(&format!(
                    "{app}: the dev database held an older draft; it was rebuilt"
                ));
            }
            if let Some(rows) = prepared.seeded {
                printer.info(&format!("{app}: loaded {rows} fixture rows"));
            }
        }
        Err(error) => {
            eprintln!(
                "{app}: the dev database cannot follow the schema: {error}; the last good server keeps serving"
            );
            return;
        }
    }
    if let Some(old) = servers.remove(app) {
        old.stop();
    }
    let mut command = Command::new(executable);
    command
        .current_dir(&root)
        .args(["--bind", &address.to_string()])
        .env("DATABASE_URL", &url)
        .stdin(Stdio::null());
    // The dev loop serves a developer's own machine: unless they configured token checks,
    // the server runs with them off (it warns at every start; production refuses it).
    if ["PREFIQ_AUTH", "PREFIQ_JWT_KEYS", "PREFIQ_JWKS_URL"]
        .iter()
        .all(|name| std::env::var_os(name).is_none())
    {
        command.env("PREFIQ_AUTH", "off");
    }
    let child = command.spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            eprintln!("{app}: cannot start {}: {error}", executable.display());
            return;
        }
    };
    // Ready when the port accepts connections; a server that exits first has said why.
    // A server slow to open its port is kept (it may still come up); one that exited is not.
    if wait_for_port(&mut child, app, "the server", address) == Ready::Exited {
        return;
    }
    let line =
        format!("{app} → http://{address}/api/{app}/ (OpenAPI: http://{address}/openapi.json)");
    if std::io::stderr().is_terminal() && printer.color {
        printer.info(&format!("\x1b[1m{line}\x1b[0m"));
    } else {
        printer.info(&line);
    }
    servers.insert(app.to_owned(), Server { child });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_inputs_are_app_crates_the_runtime_and_the_workspace() {
        assert_eq!(
            build_input("apps/crm/bin/src/services/mod.rs"),
            Some(Some("crm".to_owned()))
        );
        assert_eq!(
            build_input("apps/crm/bin/migrations/sqlite/0002_x.sql"),
            Some(Some("crm".to_owned()))
        );
        assert_eq!(build_input("runtime/src/db.rs"), Some(None));
        assert_eq!(build_input("Cargo.lock"), Some(None));
        assert_eq!(build_input("apps/crm/bin/src/services/.mod.rs.swp"), None);
        assert_eq!(build_input("apps/crm/core/schema/deal.yaml"), None);
        assert_eq!(build_input("apps/crm/src/services/client.ts"), None);
    }
}
