//! `prefiq codegen --watch` on a copy of the CRM app: it regenerates on save, reports a
//! half-typed file and keeps the last good output, survives editors' atomic saves and files
//! being created, renamed and deleted, and reacts to project templates.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// A watcher running on a temporary copy of the CRM schemas and fixtures.
struct Watching {
    dir: tempfile::TempDir,
    child: Child,
    events: mpsc::Receiver<Value>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

impl Watching {
    fn start() -> Watching {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for folder in ["core/schema", "core/fixtures"] {
            copy_dir(
                &repo.join("apps/crm").join(folder),
                &dir.path().join("apps/crm").join(folder),
            );
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_prefiq"))
            .args(["codegen", "--watch", "--message-format", "json", "--root"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if value["event"] == "codegen" && send.send(value).is_err() {
                    break;
                }
            }
        });
        Watching { dir, child, events }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    /// The next run the watcher reports (generous: debug builds on a busy machine).
    fn next(&mut self) -> Value {
        let event = self
            .events
            .recv_timeout(Duration::from_secs(120))
            .expect("the watcher reported nothing within 120 s");
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the watcher exited"
        );
        event
    }

    fn next_ok(&mut self) -> Value {
        let event = self.next();
        assert_eq!(event["ok"], true, "{event}");
        event
    }
}

const COMPANY: &str = "apps/crm/core/schema/company.yaml";
const OPENAPI: &str = "apps/crm/core/openapi.json";

fn wrote(event: &Value, path: &str) -> bool {
    event["written"]
        .as_array()
        .is_some_and(|w| w.iter().any(|p| p == path))
}

#[test]
fn the_watcher_follows_edits_and_keeps_the_last_good_output() {
    let mut w = Watching::start();
    let first = w.next_ok();
    assert_eq!(first["changed"], "start");
    assert!(wrote(&first, OPENAPI), "{first}");
    let original = w.read(COMPANY);
    assert!(original.contains("maxLength: 200"));

    // A plain save of a field change.
    std::fs::write(
        w.path(COMPANY),
        original.replace("maxLength: 200", "maxLength: 321"),
    )
    .unwrap();
    let event = w.next_ok();
    assert_eq!(event["changed"], COMPANY);
    assert_eq!(event["app"], "crm");
    assert!(wrote(&event, OPENAPI), "{event}");
    // The 3.0 rendition, which the Rust client crate's build script reads, moves with it.
    assert!(wrote(&event, "apps/crm/core/openapi-3.0.json"), "{event}");
    let good = w.read(OPENAPI);
    assert!(good.contains("\"maxLength\": 321"));

    // A half-typed file: diagnostics, nothing written, the watcher lives on.
    std::fs::write(w.path(COMPANY), format!("{original}\nname: [")).unwrap();
    let event = w.next();
    assert_eq!(event["ok"], false, "{event}");
    assert!(event["errors"].as_u64().unwrap() >= 1, "{event}");
    assert_eq!(event["written"], serde_json::json!([]), "{event}");
    assert_eq!(w.read(OPENAPI), good, "the last good output stays");

    // An editor's atomic save: write a temporary file, rename it over the schema.
    let temporary = w.path("apps/crm/core/schema/.company.yaml.tmp");
    std::fs::write(
        &temporary,
        original.replace("maxLength: 200", "maxLength: 322"),
    )
    .unwrap();
    std::fs::rename(&temporary, w.path(COMPANY)).unwrap();
    let event = w.next_ok();
    assert!(wrote(&event, OPENAPI), "{event}");
    assert!(w.read(OPENAPI).contains("\"maxLength\": 322"));

    // A new entity file, then renamed, then deleted: its generated files come and go.
    let note = "title: Note\ntype: object\nx-prefiq: {}\nrequired: [body]\nproperties:\n  \
                id: {type: string, format: uuid, readOnly: true, x-prefiq: {primary-key: true}}\n  \
                body: {type: string, maxLength: 2000}\n";
    std::fs::write(w.path("apps/crm/core/schema/note.yaml"), note).unwrap();
    let event = w.next_ok();
    assert!(
        wrote(&event, "apps/crm/bin/src/generated/note.rs"),
        "{event}"
    );
    assert!(w.read(OPENAPI).contains("/api/crm/notes"));
    std::fs::rename(
        w.path("apps/crm/core/schema/note.yaml"),
        w.path("apps/crm/core/schema/memo.yaml"),
    )
    .unwrap();
    let event = w.next_ok();
    assert!(
        event["changed"].to_string().contains("memo.yaml"),
        "the rename is seen: {event}"
    );
    assert!(
        !event["deleted"].to_string().contains("generated/note.rs"),
        "the entity survives its file's rename: {event}"
    );
    assert!(
        w.path("apps/crm/bin/src/generated/note.rs").exists(),
        "{event}"
    );
    std::fs::remove_file(w.path("apps/crm/core/schema/memo.yaml")).unwrap();
    let event = w.next_ok();
    assert!(
        event["deleted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "apps/crm/bin/src/generated/note.rs"),
        "{event}"
    );
    assert!(!w.path("apps/crm/bin/src/generated/note.rs").exists());
    assert!(!w.read(OPENAPI).contains("/api/crm/notes"));

    // A project template created after the watcher started: every app is regenerated with it.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let builtin = std::fs::read_to_string(repo.join("templates/ts/client.ts.jinja"))
        .expect("the built-in TypeScript client template");
    std::fs::create_dir_all(w.path("templates/ts")).unwrap();
    std::fs::write(
        w.path("templates/ts/client.ts.jinja"),
        format!("// House style: reviewed by the platform team.\n{builtin}"),
    )
    .unwrap();
    let event = loop {
        // Creating the folder and the file may arrive as one batch or two.
        let event = w.next_ok();
        if w.read("apps/crm/src/services/client.ts")
            .contains("House style")
        {
            break event;
        }
    };
    assert_eq!(event["app"], Value::Null, "{event}");
}

#[test]
fn a_stray_file_outside_the_inputs_does_not_trigger_a_run() {
    let mut w = Watching::start();
    w.next_ok();
    // Not an input: the generator's own output folder and a README.
    std::fs::write(w.path("apps/crm/README.md"), "# CRM\n").unwrap();
    std::fs::write(w.path("apps/crm/core/schema/notes.txt"), "not a schema\n").unwrap();
    // An input, so that the test has something to wait for.
    let fixtures = w.read("apps/crm/core/fixtures/demo.yaml");
    std::fs::write(
        w.path("apps/crm/core/fixtures/demo.yaml"),
        format!("{fixtures}\n"),
    )
    .unwrap();
    let event = w.next_ok();
    assert_eq!(
        event["changed"], "apps/crm/core/fixtures/demo.yaml",
        "{event}"
    );
}
