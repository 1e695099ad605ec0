//! resources/deploy: the Dockerfiles pass hadolint and checkov; the manifests
//! `prefiq deploy render` writes for every tenancy mode pass kubernetes-validate, checkov and
//! yamllint; the chart's values and compose file pass yamllint; and the chart's templates and the
//! renderer read the same values and make the same kinds of objects.
//!
//! There is no `helm` binary here (it needs Go), so the chart is checked through the manifests
//! rendered from its values and through the agreement test below.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prefiq_testkit::tools;

fn root() -> PathBuf {
    tools::repo_root()
}

fn deploy_dir() -> PathBuf {
    root().join("resources/deploy")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
fn passes(output: Output, what: &str) -> String {
    let text = text(&output);
    assert!(output.status.success(), "{what} failed:\n{text}");
    text
}

/// `prefiq deploy render` in this repository.
fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prefiq"))
        .arg("--root")
        .arg(root())
        .args(["deploy", "render"])
        .args(args)
        .output()
        .expect("prefiq runs")
}

/// The manifests of every tenancy mode, with the image pinned by digest as production does,
/// under `dir/<mode>/`.
fn render_all(dir: &Path) {
    let pin = dir.join("pin.yaml");
    std::fs::write(
        &pin,
        format!("image:\n  digest: \"sha256:{}\"\n", "ab".repeat(32)),
    )
    .unwrap();
    let pin = pin.to_str().unwrap();
    // One mode with e-mail, which mounts the SMTP URL and opens its port.
    let mail = dir.join("mail.yaml");
    std::fs::write(
        &mail,
        "mail:\n  secret: prefiq-mail\n  from: Cortex <cortex@prefiq.example.com>\n  port: 587\n",
    )
    .unwrap();
    let databases = deploy_dir().join("helm/prefiq/values-databases.yaml");
    for (mode, extra) in [
        ("rows", vec![]),
        ("schemas", vec![mail.to_str().unwrap()]),
        ("databases", vec![databases.to_str().unwrap()]),
    ] {
        let out = dir.join(mode);
        let mut args = vec!["--tenancy", mode, "--out", out.to_str().unwrap()];
        for values in extra.iter().chain([&pin]) {
            args.extend(["--values", values]);
        }
        passes(
            render(&args),
            &format!("prefiq deploy render --tenancy {mode}"),
        );
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(walkdir::DirEntry::into_path)
        // Not the values files render_all writes beside the manifests.
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && !p.ends_with("pin.yaml")
                && !p.ends_with("mail.yaml")
        })
        .collect();
    files.sort();
    files
}

fn documents(path: &Path) -> Vec<serde_yaml::Value> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// checkov's summary line: (passed, failed); the run must have passed some checks.
#[track_caller]
fn checkov(args: &[&str], what: &str) {
    let output = tools::output(
        Command::new(tools::checkov())
            .args(["--quiet", "--compact", "--skip-download"])
            .args(args)
            .env("BC_SKIP_MAPPING", "TRUE"),
    );
    let text = passes(output, &format!("checkov on {what}"));
    let summary = text
        .lines()
        .find(|l| l.contains("Passed checks:"))
        .unwrap_or_else(|| panic!("checkov on {what} printed no summary:\n{text}"));
    let count = |label: &str| -> u32 {
        summary
            .split(label)
            .nth(1)
            .and_then(|rest| rest.trim().split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{label}` in {summary:?}"))
    };
    assert_eq!(count("Failed checks:"), 0, "checkov on {what}:\n{text}");
    assert!(
        count("Passed checks:") > 20,
        "checkov on {what} checked almost nothing: {summary}"
    );
}

#[test]
fn the_rendered_manifests_of_every_tenancy_mode_pass_kubernetes_validate_checkov_and_yamllint() {
    // Not a hidden folder (tempfile's default `.tmp…`): checkov skips those.
    let dir = tempfile::Builder::new()
        .prefix("prefiq-deploy")
        .tempdir()
        .unwrap();
    render_all(dir.path());
    let files = yaml_files(dir.path());
    assert!(files.len() >= 9 * 2 + 14, "{} manifests", files.len());

    let mut validate = Command::new(tools::kubernetes_validate());
    validate.args(["--strict", "--quiet", "--kubernetes-version", "1.30.0"]);
    validate.args(&files);
    passes(tools::output(&mut validate), "kubernetes-validate --strict");

    checkov(
        &[
            "--framework",
            "kubernetes",
            "-d",
            dir.path().to_str().unwrap(),
        ],
        "the rendered manifests",
    );

    let mut lint = Command::new(tools::yamllint());
    lint.arg("--strict")
        .arg("-c")
        .arg(deploy_dir().join(".yamllint.yaml"))
        .args(&files);
    passes(
        tools::output(&mut lint),
        "yamllint on the rendered manifests",
    );

    // What each mode means: the tenancy each server runs with, one stack per tenant for
    // databases, and the installed apps routed by the ingress.
    let objects = |mode: &str| -> Vec<serde_yaml::Value> {
        yaml_files(&dir.path().join(mode))
            .iter()
            .flat_map(|f| documents(f))
            .collect()
    };
    let of_kind = |objects: &[serde_yaml::Value], kind: &str| -> Vec<serde_yaml::Value> {
        objects
            .iter()
            .filter(|o| o["kind"].as_str() == Some(kind))
            .cloned()
            .collect()
    };
    for (mode, tenancy, stacks) in [
        ("rows", "rows", 1),
        ("schemas", "schemas", 1),
        ("databases", "rows", 2),
    ] {
        let all = objects(mode);
        let (workers, deployments): (Vec<_>, Vec<_>) = of_kind(&all, "Deployment")
            .into_iter()
            .partition(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker");
        assert_eq!(deployments.len(), stacks, "{mode}: server deployments");
        assert_eq!(
            workers.len(),
            stacks,
            "{mode}: a worker deployment per stack"
        );
        let setting = |deployment: &serde_yaml::Value, name: &str| -> String {
            deployment["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|e| e["name"].as_str() == Some(name))
                .and_then(|e| e["value"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        for worker in &workers {
            let container = &worker["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(container["args"][0].as_str(), Some("worker"), "{mode}");
            assert_eq!(setting(worker, "PREFIQ_WORKERS"), "10", "{mode}");
            assert_eq!(
                container["livenessProbe"]["exec"]["command"][2].as_str(),
                Some("--database"),
                "{mode}: a worker's probe asks the database"
            );
        }
        for deployment in &deployments {
            assert_eq!(
                setting(deployment, "PREFIQ_WORKERS"),
                "0",
                "{mode}: with worker pods, the servers run no jobs"
            );
        }
        // E-mail where the values give an SMTP secret (schemas here): its URL as a file, the
        // sender, and the SMTP port open; none elsewhere.
        let mails = mode == "schemas";
        for deployment in deployments.iter().chain(&workers) {
            assert_eq!(
                setting(deployment, "PREFIQ_SMTP_URL_FILE"),
                if mails {
                    "/run/secrets/prefiq/smtp-url"
                } else {
                    ""
                },
                "{mode}"
            );
            assert_eq!(
                setting(deployment, "PREFIQ_MAIL_FROM"),
                if mails {
                    "Cortex <cortex@prefiq.example.com>"
                } else {
                    ""
                },
                "{mode}"
            );
        }
        let policy = serde_json::to_string(&of_kind(&all, "NetworkPolicy")).unwrap();
        assert_eq!(policy.contains("587"), mails, "{mode}: {policy}");
        assert_eq!(
            of_kind(&all, "Job").len(),
            stacks,
            "{mode}: one migration job per database"
        );
        for deployment in &deployments {
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            let env = container["env"].as_sequence().unwrap();
            let tenancy_env = env
                .iter()
                .find(|e| e["name"].as_str() == Some("PREFIQ_TENANCY"))
                .expect("PREFIQ_TENANCY");
            assert_eq!(tenancy_env["value"].as_str(), Some(tenancy), "{mode}");
            assert!(
                env.iter().all(|e| e.get("valueFrom").is_none()),
                "{mode}: secrets come as files, never as environment values"
            );
            assert_eq!(
                container["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/healthz")
            );
            assert!(container["resources"]["requests"]["memory"].is_string());
            assert!(
                container["image"].as_str().unwrap().contains("@sha256:"),
                "the image is pinned"
            );
        }
        let ingress = of_kind(&all, "Ingress");
        let paths: BTreeSet<String> = ingress[0]["spec"]["rules"][0]["http"]["paths"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["path"].as_str().unwrap().to_owned())
            .collect();
        for app in ["/api/crm", "/api/lms", "/api/cortex", "/auth"] {
            assert!(
                paths.contains(app),
                "{mode}: the ingress routes {app}: {paths:?}"
            );
        }
    }
    let databases = objects("databases");
    let secrets: BTreeSet<String> = of_kind(&databases, "Deployment")
        .iter()
        .map(|d| {
            d["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"][0]["secret"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        secrets,
        BTreeSet::from([
            "prefiq-database-acme".to_owned(),
            "globex-postgres".to_owned()
        ]),
        "each tenant's server reads its own database"
    );
}

#[test]
fn every_dockerfile_passes_hadolint_and_checkov_and_a_bad_one_does_not() {
    let docker = deploy_dir().join("docker");
    let dockerfiles: Vec<PathBuf> = std::fs::read_dir(&docker)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    let names: BTreeSet<String> = dockerfiles
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(
            ["app.Dockerfile", "cortex.Dockerfile", "prefiq.Dockerfile"].map(String::from)
        )
    );
    for file in &dockerfiles {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains("\nUSER 65532"),
            "{}: runs as non-root",
            file.display()
        );
        assert!(
            text.contains("\nHEALTHCHECK "),
            "{}: has a healthcheck",
            file.display()
        );
        assert!(
            text.matches("\nFROM ").count() >= 2,
            "{}: multi-stage",
            file.display()
        );
        passes(
            tools::output(Command::new(tools::hadolint()).arg(file)),
            &format!("hadolint {}", file.display()),
        );
    }
    checkov(
        &["--framework", "dockerfile", "-d", docker.to_str().unwrap()],
        "the Dockerfiles",
    );

    // The linters are live: an unpinned, root, healthcheck-less image fails both.
    let bad = tempfile::Builder::new()
        .prefix("prefiq-bad")
        .tempdir()
        .unwrap();
    let file = bad.path().join("Dockerfile");
    std::fs::write(&file, "FROM debian\nRUN apt-get install curl\n").unwrap();
    let hadolint = tools::output(Command::new(tools::hadolint()).arg(&file));
    assert!(
        !hadolint.status.success(),
        "hadolint passed a bad Dockerfile"
    );
    assert!(text(&hadolint).contains("DL3006"), "{}", text(&hadolint));
    let checkov = tools::output(
        Command::new(tools::checkov())
            .args([
                "--quiet",
                "--compact",
                "--skip-download",
                "--framework",
                "dockerfile",
                "-f",
            ])
            .arg(&file)
            .env("BC_SKIP_MAPPING", "TRUE"),
    );
    assert!(!checkov.status.success(), "checkov passed a bad Dockerfile");
    assert!(
        text(&checkov).contains("CKV_DOCKER_2"),
        "{}",
        text(&checkov)
    );
}

#[test]
fn the_chart_values_and_the_compose_file_pass_yamllint() {
    // From inside resources/deploy, where the config's ignore patterns are rooted.
    let mut lint = Command::new(tools::yamllint());
    lint.args(["--strict", "-c", ".yamllint.yaml", "."])
        .current_dir(deploy_dir());
    let text = passes(tools::output(&mut lint), "yamllint resources/deploy");
    assert!(text.trim().is_empty(), "{text}");
    // The compose file is real YAML with the services the blueprint asks for, and no password
    // of its own: each comes from the environment or the run fails.
    let compose = documents(&deploy_dir().join("compose.yaml"));
    let services = compose[0]["services"].as_mapping().expect("services");
    for service in ["postgres", "minio", "redis", "migrate", "cortex"] {
        assert!(services.contains_key(service), "compose runs {service}");
    }
    let raw = std::fs::read_to_string(deploy_dir().join("compose.yaml")).unwrap();
    for line in raw.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.to_lowercase().contains("password") {
            assert!(
                value.contains("${") && value.contains(":?"),
                "compose.yaml must take each password from the environment, required: {line}"
            );
        }
    }
}

/// Every `.Values.…` path in a template (or `$v.…`, the templates' alias for it).
fn template_value_paths(templates: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(templates).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for marker in [".Values.", "$v."] {
            for (at, _) in text.match_indices(marker) {
                let rest = &text[at + marker.len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                    .collect();
                let path = path.trim_end_matches('.');
                if !path.is_empty() {
                    paths.insert(path.to_owned());
                }
            }
        }
    }
    paths
}

/// Every leaf path of a YAML mapping (`image.tag`), and every key with a list or empty value.
fn value_leaves(value: &serde_yaml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value.as_mapping() {
        Some(map) if !map.is_empty() => {
            for (key, value) in map {
                let key = key.as_str().unwrap();
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                value_leaves(value, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn the_chart_templates_and_the_renderer_read_the_same_values_and_make_the_same_objects() {
    let chart = deploy_dir().join("helm/prefiq");
    let values = documents(&chart.join("values.yaml")).remove(0);
    let mut leaves = BTreeSet::new();
    value_leaves(&values, "", &mut leaves);
    let read = template_value_paths(&chart.join("templates"));
    // Every value the templates read exists…
    for path in &read {
        let mut node = &values;
        for key in path.split('.') {
            node = node.get(key).unwrap_or_else(|| {
                panic!("a template reads .Values.{path}, which values.yaml lacks")
            });
        }
    }
    // …and every value is read by the templates (`resources` is read, and copied, whole).
    for leaf in &leaves {
        let used = read
            .iter()
            .any(|r| leaf == r || leaf.starts_with(&format!("{r}.")));
        assert!(used, "values.yaml has `{leaf}`, which no template reads");
    }
    // The renderer reads the same file (its struct refuses unknown keys and has no defaults):
    // rendering works, and a key the chart lacks is refused by name.
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.yaml");
    std::fs::write(&extra, "replicaCount: 3\n").unwrap();
    let refused = render(&["--tenancy", "rows", "--values", extra.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("replicaCount"),
        "{}",
        text(&refused)
    );

    // The same kinds of objects, and the same settings handed to the servers (with every
    // optional one: e-mail).
    let mail = dir.path().join("mail.yaml");
    std::fs::write(&mail, "mail:\n  secret: prefiq-mail\n").unwrap();
    let rendered = render(&["--tenancy", "rows", "--values", mail.to_str().unwrap()]);
    let rendered = passes(rendered, "prefiq deploy render --tenancy rows");
    let kinds = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("kind: "))
            .map(|k| k.trim().to_owned())
            .collect()
    };
    let settings = |text: &str| -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for (at, _) in text
            .match_indices("PREFIQ_")
            .chain(text.match_indices("DATABASE_URL"))
        {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            found.insert(name);
        }
        found
    };
    let mut template_text = String::new();
    for entry in std::fs::read_dir(chart.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        template_text.push_str(&std::fs::read_to_string(&path).unwrap());
        template_text.push('\n');
    }
    assert_eq!(kinds(&template_text), kinds(&rendered), "kinds of objects");
    assert_eq!(
        settings(&template_text),
        settings(&rendered),
        "settings given to the servers"
    );

    // The chart routes the apps prefiq.toml installs (here: every app under apps/).
    let apps: Vec<String> = values["apps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("apps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(
        apps, on_disk,
        "values.yaml `apps` is prefiq.toml's installed apps"
    );
    let annotation = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("prefiq.dev/apps: "))
        .expect("the apps annotation");
    assert_eq!(annotation, apps.join(","));
}

#[test]
fn bad_deploy_values_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let latest = write("latest.yaml", "image:\n  tag: latest\n");
    let default_ns = write("ns.yaml", "namespace: default\n");
    let twice = write(
        "twice.yaml",
        "tenancy:\n  tenants: [{name: a}, {name: a}]\n",
    );
    let dns = write("dns.yaml", "tenancy:\n  tenants: [{name: Acme_Co}]\n");
    let cases = [
        (vec!["--tenancy", "databases"], "tenancy.tenants"),
        (
            vec!["--tenancy", "rows", "--values", &latest],
            "pin a version",
        ),
        (
            vec!["--tenancy", "rows", "--values", &default_ns],
            "not `default`",
        ),
        (
            vec!["--tenancy", "databases", "--values", &twice],
            "listed twice",
        ),
        (
            vec!["--tenancy", "databases", "--values", &dns],
            "DNS label",
        ),
    ];
    for (args, expected) in cases {
        let output = render(&args);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(
            text(&output).contains(expected),
            "{args:?}: {}",
            text(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing rendered");
    }
}
