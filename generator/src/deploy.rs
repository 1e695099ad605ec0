//! `prefiq deploy render`: plain Kubernetes manifests for Cortex, from the Helm chart's own
//! values (`resources/deploy/helm/prefiq/values.yaml`) and the apps `prefiq.toml` installs.
//!
//! There is no `helm` here to render the chart with, so this writes the same objects the chart's
//! templates do, from the same values; `generator/tests/deploy.rs` checks that both name the same
//! objects and read the same values, and lints what this writes.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

/// Where the chart's values live, from the project root.
pub const VALUES: &str = "resources/deploy/helm/prefiq/values.yaml";

/// Where tenants' rows live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tenancy {
    /// Shared tables, a `tenant_id` on every row, PostgreSQL row-level security.
    Rows,
    /// A PostgreSQL schema per tenant.
    Schemas,
    /// A database per tenant: a Cortex, a migration job and a database secret each.
    Databases,
}

/// The chart's values (every key the templates read, and no other).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Values {
    pub namespace: String,
    /// The apps Cortex runs; `render` takes them from `prefiq.toml` instead.
    pub apps: Vec<String>,
    pub image: Image,
    pub tenancy: TenancyValues,
    pub replicas: u32,
    pub port: u16,
    pub resources: Value,
    pub database: SecretRef,
    pub signing_key: SecretRef,
    pub mail: Mail,
    pub server: Server,
    pub workers: Workers,
    pub migration: Migration,
    pub ingress: Ingress,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub pull_policy: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenancyValues {
    pub mode: Tenancy,
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tenant {
    pub name: String,
    pub database_secret: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    pub secret: String,
}

/// E-mail: the secret holding the SMTP server's URL (none: no e-mail), the sender, its port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mail {
    pub secret: String,
    pub from: String,
    pub port: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Server {
    pub body_limit: u64,
    pub db_max_connections: u32,
    pub statement_timeout_ms: u64,
    pub header_timeout_seconds: u64,
    pub body_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workers {
    pub replicas: u32,
    pub concurrency: u32,
    pub job_lease_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Migration {
    pub backoff_limit: u32,
    pub active_deadline_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ingress {
    pub enabled: bool,
    pub class_name: String,
    pub host: String,
    pub tls_secret: String,
}

/// Reads the chart's values, then each override file on top (maps merged key by key, as
/// `helm -f` does), then the tenancy mode asked for.
pub fn values(root: &Path, overrides: &[&Path], mode: Tenancy) -> Result<Values, String> {
    let read = |path: &Path| -> Result<serde_yaml::Value, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut merged = read(&root.join(VALUES))?;
    for path in overrides {
        merge(&mut merged, read(path)?);
    }
    let mut values: Values = serde_yaml::from_value(merged)
        .map_err(|e| format!("the chart's values (with overrides): {e}"))?;
    values.tenancy.mode = mode;
    check(&values)?;
    Ok(values)
}

fn merge(base: &mut serde_yaml::Value, over: serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(base), serde_yaml::Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// A DNS label, as Kubernetes names and host names need.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn check(values: &Values) -> Result<(), String> {
    if values.namespace == "default" || !is_dns_label(&values.namespace) {
        return Err(format!(
            "namespace `{}`: name a namespace of Prefiq's own (a DNS label, not `default`)",
            values.namespace
        ));
    }
    if values.image.tag.is_empty() || values.image.tag == "latest" {
        return Err("image.tag: pin a version (not empty, not `latest`)".into());
    }
    let tenants = &values.tenancy.tenants;
    match values.tenancy.mode {
        Tenancy::Databases if tenants.is_empty() => Err(
            "--tenancy databases needs tenancy.tenants: list each tenant's name (and, optionally, \
             the secret with its database URL) in a values file given with --values"
                .into(),
        ),
        Tenancy::Databases => {
            let mut seen = std::collections::BTreeSet::new();
            for tenant in tenants {
                if !is_dns_label(&tenant.name) {
                    return Err(format!(
                        "tenancy.tenants: `{}` is not a DNS label (lowercase letters, digits and -, at most 40)",
                        tenant.name
                    ));
                }
                if !seen.insert(&tenant.name) {
                    return Err(format!(
                        "tenancy.tenants: `{}` is listed twice",
                        tenant.name
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// One Cortex deployment with its database: one for `rows` and `schemas`, one per tenant for
/// `databases`.
struct Stack {
    name: String,
    database_secret: String,
    tenancy: &'static str,
    host: String,
}

fn stacks(values: &Values) -> Vec<Stack> {
    match values.tenancy.mode {
        Tenancy::Rows | Tenancy::Schemas => vec![Stack {
            name: "cortex".into(),
            database_secret: values.database.secret.clone(),
            tenancy: if values.tenancy.mode == Tenancy::Rows {
                "rows"
            } else {
                "schemas"
            },
            host: values.ingress.host.clone(),
        }],
        Tenancy::Databases => values
            .tenancy
            .tenants
            .iter()
            .map(|tenant| Stack {
                name: format!("cortex-{}", tenant.name),
                database_secret: tenant
                    .database_secret
                    .clone()
                    .unwrap_or_else(|| format!("{}-{}", values.database.secret, tenant.name)),
                // One tenant per database: its rows are the database's only tenant's.
                tenancy: "rows",
                host: format!("{}.{}", tenant.name, values.ingress.host),
            })
            .collect(),
    }
}

/// The manifests, in the order to apply them: the namespace, shared objects, then each stack's
/// migration job before its deployment. Each is a (file name, object).
pub fn render(values: &Values, apps: &[String]) -> Vec<(String, Value)> {
    let ns = values.namespace.as_str();
    let mut objects = vec![
        (
            "namespace".to_owned(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels("namespace")}}),
        ),
        (
            "serviceaccount".to_owned(),
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "prefiq", "namespace": ns, "labels": labels("cortex")},
                "automountServiceAccountToken": false,
            }),
        ),
        ("configmap".to_owned(), config_map(values)),
        ("networkpolicy".to_owned(), network_policy(values)),
    ];
    for stack in stacks(values) {
        objects.push((format!("{}-migrate-job", stack.name), job(values, &stack)));
        objects.push((
            format!("{}-deployment", stack.name),
            deployment(values, &stack, apps),
        ));
        if values.workers.replicas > 0 {
            objects.push((
                format!("{}-worker-deployment", stack.name),
                worker_deployment(values, &stack),
            ));
        }
        objects.push((format!("{}-service", stack.name), service(values, &stack)));
        objects.push((
            format!("{}-pdb", stack.name),
            json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": stack.name, "namespace": ns, "labels": stack_labels(&stack)},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": selector(&stack)}},
            }),
        ));
        if values.ingress.enabled {
            objects.push((
                format!("{}-ingress", stack.name),
                ingress(values, &stack, apps),
            ));
        }
    }
    objects
        .into_iter()
        .enumerate()
        .map(|(i, (name, object))| (format!("{i:02}-{name}.yaml"), object))
        .collect()
}

fn labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "prefiq",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "prefiq-deploy-render",
    })
}

fn stack_labels(stack: &Stack) -> Value {
    let mut labels = labels("cortex");
    labels["app.kubernetes.io/instance"] = json!(stack.name);
    labels
}

fn selector(stack: &Stack) -> Value {
    json!({"app.kubernetes.io/name": "prefiq", "app.kubernetes.io/instance": stack.name})
}

fn image(values: &Values) -> String {
    let image = &values.image;
    if image.digest.is_empty() {
        format!("{}:{}", image.repository, image.tag)
    } else {
        format!("{}:{}@{}", image.repository, image.tag, image.digest)
    }
}

fn config_map(values: &Values) -> Value {
    let server = &values.server;
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "prefiq", "namespace": values.namespace, "labels": labels("cortex")},
        "data": {
            "PREFIQ_ENV": "production",
            "PREFIQ_BIND": format!("0.0.0.0:{}", values.port),
            "PREFIQ_NO_MIGRATE": "true",
            "PREFIQ_BODY_LIMIT": server.body_limit.to_string(),
            "PREFIQ_DB_MAX_CONNECTIONS": server.db_max_connections.to_string(),
            "PREFIQ_STATEMENT_TIMEOUT": server.statement_timeout_ms.to_string(),
            "PREFIQ_HEADER_TIMEOUT": server.header_timeout_seconds.to_string(),
            "PREFIQ_BODY_TIMEOUT": server.body_timeout_seconds.to_string(),
            "PREFIQ_JOB_LEASE": values.workers.job_lease_seconds.to_string(),
        },
    })
}

/// Pods take traffic on the server port only, and reach only DNS, PostgreSQL, for webhook
/// deliveries HTTP(S) on public addresses, and with e-mail the SMTP server's port.
fn network_policy(values: &Values) -> Value {
    let mut policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "prefiq", "namespace": values.namespace, "labels": labels("cortex")},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prefiq"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": values.port}]}],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"protocol": "TCP", "port": 5432}]},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
                        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                        "100.64.0.0/10", "127.0.0.0/8",
                    ]}}],
                    "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 80}],
                },
            ],
        },
    });
    if !values.mail.secret.is_empty()
        && let Some(egress) = policy["spec"]["egress"].as_array_mut()
    {
        egress.push(json!({"ports": [{"protocol": "TCP", "port": values.mail.port}]}));
    }
    policy
}

/// The pod-level security context every Prefiq pod runs with.
fn pod_security() -> Value {
    json!({
        "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// Where the secrets are mounted: as files, never as environment variables.
const SECRETS: &str = "/run/secrets/prefiq";

/// A Cortex container: `args` chooses serve, worker or migrate; it runs `workers` jobs of each
/// app at once.
fn container(values: &Values, stack: &Stack, name: &str, args: &[&str], workers: u32) -> Value {
    let mut container = json!({
        "name": name,
        "image": image(values),
        "imagePullPolicy": values.image.pull_policy,
        "args": args,
        "envFrom": [{"configMapRef": {"name": "prefiq"}}],
        "env": [
            {"name": "PREFIQ_TENANCY", "value": stack.tenancy},
            {"name": "DATABASE_URL_FILE", "value": format!("{SECRETS}/database-url")},
            {"name": "PREFIQ_APP_DATABASE_URL_FILE", "value": format!("{SECRETS}/app-database-url")},
            {"name": "PREFIQ_SIGNING_KEY_FILE", "value": format!("{SECRETS}/signing-key")},
            {"name": "PREFIQ_PUBLIC_URL", "value": format!("https://{}", stack.host)},
            {"name": "PREFIQ_WORKERS", "value": workers.to_string()},
        ],
        "volumeMounts": [{"name": "secrets", "mountPath": SECRETS, "readOnly": true}],
        "resources": values.resources,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if !values.mail.secret.is_empty()
        && let Some(env) = container["env"].as_array_mut()
    {
        env.push(json!({"name": "PREFIQ_SMTP_URL_FILE", "value": format!("{SECRETS}/smtp-url")}));
        env.push(json!({"name": "PREFIQ_MAIL_FROM", "value": values.mail.from}));
    }
    container
}

/// The stack's database URLs (the migrating owner's, and the request pool's, a role row-level
/// security binds) and the signing key, as one read-only volume.
fn secrets_volume(values: &Values, stack: &Stack) -> Value {
    let mut volume = json!({
        "name": "secrets",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"secret": {"name": stack.database_secret, "items": [
                    {"key": "url", "path": "database-url"},
                    {"key": "app-url", "path": "app-database-url"},
                ]}},
                {"secret": {"name": values.signing_key.secret, "items": [{"key": "key", "path": "signing-key"}]}},
            ],
        },
    });
    if !values.mail.secret.is_empty()
        && let Some(sources) = volume["projected"]["sources"].as_array_mut()
    {
        sources.push(json!({"secret": {"name": values.mail.secret, "items": [{"key": "url", "path": "smtp-url"}]}}));
    }
    volume
}

fn job(values: &Values, stack: &Stack) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("{}-migrate", stack.name), "namespace": values.namespace, "labels": stack_labels(stack)},
        "spec": {
            "backoffLimit": values.migration.backoff_limit,
            "activeDeadlineSeconds": values.migration.active_deadline_seconds,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "prefiq", "app.kubernetes.io/component": "migrate"}},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "prefiq",
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(),
                    "containers": [container(values, stack, "migrate", &["migrate"], 0)],
                    "volumes": [secrets_volume(values, stack)],
                },
            },
        },
    })
}

fn deployment(values: &Values, stack: &Stack, apps: &[String]) -> Value {
    // With worker pods, the servers run no jobs.
    let workers = if values.workers.replicas > 0 {
        0
    } else {
        values.workers.concurrency
    };
    let mut serve = container(values, stack, "cortex", &["serve"], workers);
    let probe = |path: &str, period: u32| json!({"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 3, "failureThreshold": 3});
    serve["ports"] = json!([{"name": "http", "containerPort": values.port, "protocol": "TCP"}]);
    serve["readinessProbe"] = probe("/healthz", 5);
    serve["livenessProbe"] = probe("/healthz", 10);
    serve["startupProbe"] = json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2, "failureThreshold": 30});
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": stack.name, "namespace": values.namespace, "labels": stack_labels(stack),
            "annotations": {"prefiq.dev/apps": apps.join(","), "prefiq.dev/tenancy": values_mode(values)},
        },
        "spec": {
            "replicas": values.replicas,
            "selector": {"matchLabels": selector(stack)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": stack_labels(stack)},
                "spec": {
                    "serviceAccountName": "prefiq",
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [serve],
                    "volumes": [secrets_volume(values, stack)],
                },
            },
        },
    })
}

/// The pods that run every installed app's jobs, subscribers and webhook deliveries.
fn worker_deployment(values: &Values, stack: &Stack) -> Value {
    let name = format!("{}-worker", stack.name);
    let mut labels = labels("worker");
    labels["app.kubernetes.io/instance"] = json!(name);
    let mut worker = container(
        values,
        stack,
        "worker",
        &["worker"],
        values.workers.concurrency,
    );
    // A worker serves no HTTP: its probes ask the database through the same binary.
    let probe = |period: u32| json!({"exec": {"command": ["cortex", "probe", "--database"]}, "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": 3});
    worker["readinessProbe"] = probe(10);
    worker["livenessProbe"] = probe(30);
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": values.namespace, "labels": labels},
        "spec": {
            "replicas": values.workers.replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "prefiq", "app.kubernetes.io/instance": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "prefiq",
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    "containers": [worker],
                    "volumes": [secrets_volume(values, stack)],
                },
            },
        },
    })
}

fn values_mode(values: &Values) -> &'static str {
    match values.tenancy.mode {
        Tenancy::Rows => "rows",
        Tenancy::Schemas => "schemas",
        Tenancy::Databases => "databases",
    }
}

fn service(values: &Values, stack: &Stack) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": stack.name, "namespace": values.namespace, "labels": stack_labels(stack)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector(stack),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    })
}

/// Routes exactly what Cortex serves: each installed app's API, Cortex's own, sign-in, the
/// admin UI and the documents.
fn ingress(values: &Values, stack: &Stack, apps: &[String]) -> Value {
    let mut prefixes: Vec<String> = apps.iter().map(|app| format!("/api/{app}")).collect();
    prefixes.extend(
        [
            "/api/cortex",
            "/auth",
            "/login",
            "/logout",
            "/admin",
            "/docs",
            "/openapi.json",
            "/.well-known",
        ]
        .map(str::to_owned),
    );
    let paths: Vec<Value> = prefixes
        .iter()
        .map(|prefix| {
            json!({
                "path": prefix, "pathType": "Prefix",
                "backend": {"service": {"name": stack.name, "port": {"name": "http"}}},
            })
        })
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": stack.name, "namespace": values.namespace, "labels": stack_labels(stack)},
        "spec": {
            "ingressClassName": values.ingress.class_name,
            "tls": [{"hosts": [stack.host], "secretName": values.ingress.tls_secret}],
            "rules": [{"host": stack.host, "http": {"paths": paths}}],
        },
    })
}
