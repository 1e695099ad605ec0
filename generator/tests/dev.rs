//! `prefiq dev` on a small project of its own: the first build serves the app with its fixtures,
//! a schema edit reaches the running API (through a draft migration of the dev database), a
//! half-typed schema and a broken service are reported while the last good server keeps serving,
//! Vite serves the frontend with `/api` proxied to the app and its screens follow the schema, and
//! SIGTERM stops everything.
//!
//! The project is a workspace of its own that shares this repository's target folder and
//! runtime, so only the small app crate is compiled beyond what the workspace already built.

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NOTE: &str = "title: Note\ntype: object\nx-prefiq: {}\nrequired: [title]\nproperties:\n  \
    id: {type: string, format: uuid, readOnly: true, x-prefiq: {primary-key: true}}\n  \
    title: {type: string, minLength: 1, maxLength: 200, x-prefiq: {filterable: true}}\n";

const FIXTURES: &str =
    "Note:\n  - id: 01900000-0000-7000-8000-0000000000a1\n    title: Read the README\n";

/// A raw HTTP/1.1 exchange: `(status, body)`, or `None` when nothing listens.
fn http(address: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let status = reply.split(' ').nth(1)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

struct Dev {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    address: SocketAddr,
}

impl Drop for Dev {
    fn drop(&mut self) {
        // SAFETY: signals only the child this test started.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Dev {
    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until `ready` holds, failing with the dev log after `limit`.
    fn until(&self, what: &str, limit: Duration, ready: impl Fn(&Dev) -> bool) {
        let started = Instant::now();
        while !ready(self) {
            assert!(
                started.elapsed() < limit,
                "timed out waiting for {what}; prefiq dev printed:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn lines_with(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        http(self.address, "GET", path, "")
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn dev_serves_follows_edits_and_keeps_the_last_good_server() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"apps/*/bin\"]\n",
    )
    .unwrap();
    std::fs::copy(repo.join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    std::fs::write(
        root.join("prefiq.toml"),
        format!("[runtime]\npath = \"{}\"\n", repo.join("runtime").display()),
    )
    .unwrap();
    let schema = root.join("apps/notes/core/schema/note.yaml");
    std::fs::create_dir_all(schema.parent().unwrap()).unwrap();
    std::fs::create_dir_all(root.join("apps/notes/core/fixtures")).unwrap();
    std::fs::write(&schema, NOTE).unwrap();
    std::fs::write(root.join("apps/notes/core/fixtures/demo.yaml"), FIXTURES).unwrap();
    // The frontend's tools and shared components are the repository's.
    prefiq_testkit::tools::link_node_modules(root);
    std::fs::create_dir_all(root.join("resources")).unwrap();
    std::os::unix::fs::symlink(
        repo.join("resources/frontend"),
        root.join("resources/frontend"),
    )
    .unwrap();

    let address = free_address();
    let ui = free_address();
    let mut child = Command::new(env!("CARGO_BIN_EXE_prefiq"))
        .args(["dev", "--bind", &address.to_string()])
        .args(["--ui-bind", &ui.to_string(), "--root"])
        .arg(root)
        .env("CARGO_TARGET_DIR", repo.join("target"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                log.lock().unwrap().push(line);
            }
        });
    }
    let dev = Dev {
        child,
        log,
        address,
    };

    // The first build serves the app, seeded with its fixtures.
    dev.until("the first server", Duration::from_secs(900), |d| {
        d.get("/healthz").is_some_and(|(s, _)| s == 200)
    });
    let (status, body) = dev.get("/api/notes/notes").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Read the README"), "{body}");

    // Vite serves the pages, and the API through its proxy.
    dev.until("the frontend", Duration::from_secs(60), |d| {
        d.lines_with("notes UI → http://") > 0
    });
    let (status, page) = http(ui, "GET", "/", "").expect("Vite answers");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"<div id="root">"#), "{page}");
    let (status, body) = http(ui, "GET", "/api/notes/notes", "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Read the README"), "{body}");
    // The screens' module as Vite serves it to the browser (its source map left out); a field
    // shows there by its label.
    let screens = || {
        let (status, module) = http(ui, "GET", "/components/generated.tsx", "").unwrap();
        let code = module.split("//# sourceMappingURL").next().unwrap_or("");
        (status, code.to_owned())
    };
    let (status, module) = screens();
    assert_eq!(status, 200, "{module}");
    assert!(module.contains(r#""Title""#), "{module}");
    assert!(!module.contains(r#""Pinned""#), "{module}");

    // A new field reaches the running API and its OpenAPI document.
    std::fs::write(
        &schema,
        format!("{NOTE}  pinned: {{type: boolean, default: false}}\n"),
    )
    .unwrap();
    dev.until("the new field", Duration::from_secs(300), |d| {
        d.get("/openapi.json")
            .is_some_and(|(_, body)| body.contains("pinned"))
    });
    let (status, body) = http(
        address,
        "POST",
        "/api/notes/notes",
        r#"{"title": "Pinned", "pinned": true}"#,
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(body.contains(r#""pinned":true"#), "{body}");
    assert!(dev.log().contains("draft 0002_draft"), "{}", dev.log());
    // The form gains the field: Vite serves the regenerated screens.
    let (status, module) = screens();
    assert_eq!(status, 200, "{module}");
    assert!(module.contains(r#""Pinned""#), "{module}");

    // A half-typed schema is reported; nothing changes and the server keeps serving.
    std::fs::write(
        &schema,
        format!("{NOTE}  pinned: {{type: boolean, default: false}}\n  colour: [\n"),
    )
    .unwrap();
    dev.until("the schema error", Duration::from_secs(60), |d| {
        d.lines_with("the last good output stays") > 0
    });
    assert!(dev.log().contains("note.yaml:"), "{}", dev.log());
    assert!(
        dev.get("/openapi.json")
            .is_some_and(|(s, body)| s == 200 && body.contains("pinned"))
    );

    // A broken service fails the build; the last good server keeps serving.
    std::fs::write(
        &schema,
        format!("{NOTE}  pinned: {{type: boolean, default: false}}\n"),
    )
    .unwrap();
    let services = root.join("apps/notes/bin/src/services/mod.rs");
    let good = std::fs::read_to_string(&services).unwrap();
    std::fs::write(&services, format!("{good}\nfn broken( {{\n")).unwrap();
    dev.until("the build error", Duration::from_secs(300), |d| {
        d.lines_with("build failed") > 0
    });
    assert!(dev.log().contains("unclosed delimiter"), "{}", dev.log());
    assert_eq!(dev.get("/healthz").map(|(s, _)| s), Some(200));

    // Fixing it restarts the server.
    let started = dev.lines_with("→ http://");
    std::fs::write(&services, good).unwrap();
    dev.until("the restart", Duration::from_secs(300), |d| {
        d.lines_with("→ http://") > started
    });
    let (status, body) = dev.get("/api/notes/notes").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Pinned"), "data survives a restart: {body}");

    // SIGTERM stops the watcher and its server.
    let mut dev = dev;
    // SAFETY: signals only the child this test started.
    unsafe {
        libc::kill(dev.child.id() as i32, libc::SIGTERM);
    }
    let status = dev.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", dev.log());
    assert!(
        dev.get("/healthz").is_none(),
        "the app server outlived prefiq dev"
    );
    assert!(
        http(ui, "GET", "/", "").is_none(),
        "Vite outlived prefiq dev"
    );
}
