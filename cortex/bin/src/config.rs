//! Cortex's configuration: flags and environment variables, every one with a safe default.

use std::net::SocketAddr;

use prefiq_runtime::serve::Environment;

/// How Cortex runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PREFIQ_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The database: postgres://... or sqlite:path. Default: .prefiq/cortex.db (SQLite).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A file holding the database URL (a mounted secret), read when DATABASE_URL is not set.
    #[arg(long, env = "DATABASE_URL_FILE", conflicts_with = "database_url")]
    pub database_url_file: Option<std::path::PathBuf>,
    /// On PostgreSQL, the URL requests use: a role that cannot leave row-level security, such
    /// as `prefiq_app` (DATABASE_URL's user migrates). Required in production; elsewhere Cortex
    /// logs in as `prefiq_app` at DATABASE_URL's server.
    #[arg(long, env = "PREFIQ_APP_DATABASE_URL", hide_env_values = true)]
    pub app_database_url: Option<String>,
    /// A file holding PREFIQ_APP_DATABASE_URL (a mounted secret).
    #[arg(
        long,
        env = "PREFIQ_APP_DATABASE_URL_FILE",
        conflicts_with = "app_database_url"
    )]
    pub app_database_url_file: Option<std::path::PathBuf>,
    /// Where people and apps reach Cortex, as `https://id.example.com`: the issuer of its tokens
    /// and the base of the endpoints its OAuth metadata names. Required in production (and
    /// `https` there); elsewhere `http://` and the bind address, with tokens issued by `prefiq`.
    #[arg(long, env = "PREFIQ_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "PREFIQ_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Most database connections.
    #[arg(long, env = "PREFIQ_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub max_connections: u32,
    /// Resource limits of the HTTP server.
    #[command(flatten)]
    pub limits: prefiq_runtime::serve::Limits,
    /// Do not apply pending migrations at start-up.
    #[arg(long, env = "PREFIQ_NO_MIGRATE")]
    pub no_migrate: bool,
    /// How many jobs of each installed app this process runs at once (0: none; run them in
    /// `cortex worker` processes instead).
    #[arg(long, env = "PREFIQ_WORKERS", default_value_t = 10)]
    pub workers: usize,
    /// Seconds a claimed job is its worker's without a heartbeat: a job whose worker died runs
    /// again after at most this long.
    #[arg(long, env = "PREFIQ_JOB_LEASE", default_value_t = 30)]
    pub job_lease: u64,
    /// Failed deliveries in a row after which a webhook is disabled (and its tenant told).
    #[arg(long, env = "PREFIQ_WEBHOOK_FAILURE_LIMIT", default_value_t = 10)]
    pub webhook_failure_limit: i32,
    /// Let webhooks reach private, loopback and link-local addresses: for tests and local
    /// development only, refused in production.
    #[arg(long, env = "PREFIQ_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// `production` refuses insecure settings and makes cookies `Secure`.
    #[arg(long = "env", env = "PREFIQ_ENV", default_value = "development")]
    pub environment: Environment,
    /// The key access tokens are signed with, as `KID:SEED` (`cortex key generate` makes one).
    /// Required in production; elsewhere a development key is kept in .prefiq/.
    #[arg(long, env = "PREFIQ_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// A file holding the signing key (a mounted secret), read when PREFIQ_SIGNING_KEY is not set.
    #[arg(long, env = "PREFIQ_SIGNING_KEY_FILE", conflicts_with = "signing_key")]
    pub signing_key_file: Option<std::path::PathBuf>,
    /// The first administrator's e-mail, used when the database has no user yet.
    #[arg(long, env = "PREFIQ_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// The first administrator's password; without it, a one-time password is printed once.
    #[arg(long, env = "PREFIQ_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// A file holding the first administrator's password (a mounted secret).
    #[arg(
        long,
        env = "PREFIQ_ADMIN_PASSWORD_FILE",
        conflicts_with = "admin_password"
    )]
    pub admin_password_file: Option<std::path::PathBuf>,
    /// Where tenants' rows live: `rows` (shared tables, a `tenant_id` on each row) or, on
    /// PostgreSQL, `schemas` (each tenant's tables in a schema of its own, migrated when the
    /// tenant is first used and at every start).
    #[arg(long, env = "PREFIQ_TENANCY", default_value = "rows")]
    pub tenancy: TenancyMode,
    /// A folder of the apps' built frontends, one folder per app as `vite build` writes it
    /// (`<dir>/crm/index.html`, …): each is served at `/apps/<app>/` and signs its users in
    /// through `/auth/authorize` with PKCE, as the public client `ui-<app>`.
    #[arg(long, env = "PREFIQ_UI_DIR")]
    pub ui_dir: Option<std::path::PathBuf>,
    /// The SMTP server e-mail goes out through, as `smtp://host:25`, `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`. Without it, Cortex sends no e-mail: new users
    /// get a password from an administrator, and nobody can reset a forgotten one by e-mail.
    #[arg(long, env = "PREFIQ_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// A file holding PREFIQ_SMTP_URL (a mounted secret).
    #[arg(long, env = "PREFIQ_SMTP_URL_FILE", conflicts_with = "smtp_url")]
    pub smtp_url_file: Option<std::path::PathBuf>,
    /// Who e-mail comes from, as `Cortex <cortex@example.com>`; required with an SMTP server.
    #[arg(long, env = "PREFIQ_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Who may read `/metrics`.
    #[command(flatten)]
    pub metrics: prefiq_runtime::metrics::MetricsSettings,
}

/// Where tenants' rows live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TenancyMode {
    /// Shared tables.
    Rows,
    /// A schema per tenant (PostgreSQL).
    Schemas,
}

impl Config {
    /// What the workers run with.
    pub fn work(&self) -> Result<crate::server::Work, String> {
        Ok(crate::server::Work {
            workers: self.workers,
            lease: self.job_lease,
            webhooks: crate::webhooks::WebhookSettings {
                failure_limit: self.webhook_failure_limit.max(1),
                allow_private: self.webhook_allow_private,
                ..crate::webhooks::WebhookSettings::default()
            },
            notifier: self.notifier()?,
        })
    }

    /// How people are told: by e-mail too with an SMTP server. In production, mail to another
    /// host must be encrypted (`smtps://` or `?tls=required`).
    pub fn notifier(&self) -> Result<crate::notifications::Notifier, String> {
        let Some(url) = self.smtp_url.as_deref().map(str::trim) else {
            return Ok(crate::notifications::Notifier::default());
        };
        let from = self.mail_from.as_deref().ok_or(
            "PREFIQ_SMTP_URL needs PREFIQ_MAIL_FROM, the address e-mail comes from (`Cortex <cortex@example.com>`)",
        )?;
        let encrypted = url.starts_with("smtps://") || url.contains("tls=required");
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.rsplit('@').next().unwrap_or(rest))
            .and_then(|rest| rest.split([':', '/', '?']).next())
            .unwrap_or_default();
        let local = ["localhost", "127.0.0.1", "[::1]"].contains(&host);
        if self.environment == Environment::Production && !encrypted && !local {
            return Err(format!(
                "production mode needs e-mail to {host} encrypted: write PREFIQ_SMTP_URL as smtps://… or add ?tls=required"
            ));
        }
        let mail = crate::notifications::Mail::new(url, from, &self.public_url()?.0)?;
        Ok(crate::notifications::Notifier {
            mail: Some(std::sync::Arc::new(mail)),
        })
    }

    /// Reads the settings given as files (`*_FILE`, mounted secrets) into their values.
    pub fn read_secret_files(&mut self) -> Result<(), String> {
        use prefiq_runtime::serve::secret_file;
        if let Some(path) = &self.database_url_file {
            self.database_url = Some(secret_file("DATABASE_URL_FILE", path)?);
        }
        if let Some(path) = &self.app_database_url_file {
            self.app_database_url = Some(secret_file("PREFIQ_APP_DATABASE_URL_FILE", path)?);
        }
        if let Some(path) = &self.signing_key_file {
            self.signing_key = Some(secret_file("PREFIQ_SIGNING_KEY_FILE", path)?);
        }
        if let Some(path) = &self.smtp_url_file {
            self.smtp_url = Some(secret_file("PREFIQ_SMTP_URL_FILE", path)?);
        }
        if let Some(path) = &self.admin_password_file {
            self.admin_password = Some(secret_file("PREFIQ_ADMIN_PASSWORD_FILE", path)?);
        }
        Ok(())
    }

    /// Where Cortex is reached, without a trailing `/`, and what its tokens name as issuer:
    /// `PREFIQ_PUBLIC_URL` (an `http(s)` origin with at most a path: no query, fragment or
    /// credentials; in production, where it is required, `https` unless the host is loopback,
    /// which browsers trust as they trust `https`), or outside production
    /// `http://` and the bind address, with the issuer `prefiq`.
    pub fn public_url(&self) -> Result<(String, String), String> {
        let production = self.environment == Environment::Production;
        let Some(url) = self.public_url.as_deref().map(str::trim) else {
            if production {
                return Err("production mode (PREFIQ_ENV=production) needs PREFIQ_PUBLIC_URL, the https URL people reach Cortex at: it is the issuer of its tokens".into());
            }
            let host = if self.bind.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                self.bind.ip().to_string()
            };
            let port = self.bind.port();
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            return Ok((
                format!("http://{host}:{port}"),
                crate::oauth::ISSUER.to_owned(),
            ));
        };
        let why = |what: &str| Err(format!("PREFIQ_PUBLIC_URL `{url}` {what}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return why("is not a URL: write it as https://host[:port][/path]");
        };
        let host = rest.split('/').next().unwrap_or_default();
        let loopback = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .any(|l| host == *l || host.starts_with(&format!("{l}:")));
        if production && scheme != "https" && !loopback {
            return why("must be https in production (or http on this machine's own loopback)");
        }
        if !matches!(scheme, "http" | "https") {
            return why("must be http or https");
        }
        if host.is_empty() || rest.contains(['?', '#', '@']) || url.chars().any(char::is_whitespace)
        {
            return why(
                "must be an origin with at most a path (no query, fragment or credentials)",
            );
        }
        let url = url.trim_end_matches('/').to_owned();
        Ok((url.clone(), url))
    }

    /// The database URL.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| "sqlite:.prefiq/cortex.db".to_owned())
    }
}
