//! Starts Cortex for a test: a fresh database (SQLite file or PostgreSQL database), every
//! migration, the bootstrap, and the real router on a free port, with a known administrator.

#![allow(dead_code)]

use std::net::SocketAddr;

use cortex::config::Config;
pub(crate) use cortex::config::TenancyMode;
use prefiq_runtime::Db;
use prefiq_runtime::auth::SigningKey;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::serve::Environment;
use prefiq_testkit::{Backend, Database};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The administrator every test Cortex starts with.
pub(crate) const ADMIN_EMAIL: &str = "root@example.com";
/// Their password.
pub(crate) const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// Who Cortex e-mails from in tests that give it an SMTP server.
pub(crate) const MAIL_FROM: &str = "Cortex <cortex@cortex.example>";

/// A running Cortex.
pub(crate) struct Cortex {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The request pool (as the app role on PostgreSQL).
    pub db: Db,
    /// The owner connection, for direct checks.
    pub owner: Db,
    /// Whether it runs on PostgreSQL.
    pub backend: Backend,
    /// The administrator's personal access token.
    pub admin_token: String,
    /// The key it signs access tokens with (`KID:SEED`).
    pub signing_key: String,
    task: tokio::task::JoinHandle<()>,
    database: Option<Database>,
}

/// A response, read completely.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }
}

/// A client that keeps cookies and never follows redirects (tests look at them).
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

impl Cortex {
    /// Starts Cortex on `backend`, tenants' rows in shared tables.
    pub(crate) async fn start(backend: Backend) -> Cortex {
        Cortex::start_with(backend, TenancyMode::Rows).await
    }

    /// Starts Cortex on `backend` with `tenancy`.
    pub(crate) async fn start_with(backend: Backend, tenancy: TenancyMode) -> Cortex {
        Cortex::start_configured(backend, tenancy, None, None).await
    }

    /// Starts Cortex on `backend`, sending e-mail through the SMTP server at `smtp_url`.
    #[allow(dead_code)]
    pub(crate) async fn start_mailing(backend: Backend, smtp_url: &str) -> Cortex {
        Cortex::start_configured(backend, TenancyMode::Rows, None, Some(smtp_url.to_owned())).await
    }

    /// Starts Cortex on `backend`, serving the apps' built frontends found in `ui_dir`.
    #[allow(dead_code)]
    pub(crate) async fn start_with_ui(backend: Backend, ui_dir: std::path::PathBuf) -> Cortex {
        Cortex::start_configured(backend, TenancyMode::Rows, Some(ui_dir), None).await
    }

    async fn start_configured(
        backend: Backend,
        tenancy: TenancyMode,
        ui_dir: Option<std::path::PathBuf>,
        smtp_url: Option<String>,
    ) -> Cortex {
        let (database, url) = Database::create(backend).await;
        let signing_key = SigningKey::generate_text("test");
        let config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            database_url: Some(url),
            database_url_file: None,
            app_database_url: None,
            app_database_url_file: None,
            public_url: None,
            body_limit: 256 * 1024,
            max_connections: 8,
            limits: prefiq_runtime::serve::Limits::default(),
            no_migrate: false,
            workers: 0,
            job_lease: 30,
            webhook_failure_limit: 10,
            webhook_allow_private: false,
            environment: Environment::Development,
            signing_key: Some(signing_key.clone()),
            signing_key_file: None,
            admin_email: Some(ADMIN_EMAIL.into()),
            admin_password: Some(ADMIN_PASSWORD.into()),
            admin_password_file: None,
            tenancy,
            ui_dir,
            metrics: Default::default(),
            mail_from: smtp_url.as_ref().map(|_| MAIL_FROM.to_owned()),
            smtp_url,
            smtp_url_file: None,
        };
        let started = cortex::server::start(&config).await.expect("Cortex starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = started.router.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        let mut tx = cortex::identity::read(&started.db).await.unwrap();
        let admin = cortex::identity::user_by_email(&mut tx, ADMIN_EMAIL)
            .await
            .unwrap()
            .expect("the first administrator exists")
            .0;
        tx.end_read();
        assert!(
            admin.operator,
            "the first administrator is a platform operator"
        );
        let admin_token = cortex::identity::as_server(&started.db, async |tx| {
            cortex::identity::create_personal_token(tx, admin.id, admin.tenant, "tests", None).await
        })
        .await
        .unwrap();
        Cortex {
            base,
            db: started.db,
            owner: started.owner,
            backend,
            admin_token,
            signing_key,
            task,
            database: Some(database),
        }
    }

    /// Stops it and drops its database.
    pub(crate) async fn stop(mut self) {
        self.task.abort();
        self.db.close().await;
        self.owner.close().await;
        if let Some(database) = self.database.take() {
            database.drop().await;
        }
    }

    /// Sends a JSON request with a bearer token (none when `token` is empty).
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Reply {
        let client = reqwest::Client::new();
        let mut request = client.request(method.clone(), format!("{}{path}", self.base));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        if let Some(body) = body {
            let content_type = if method == reqwest::Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        read(request.send().await.expect("Cortex answers")).await
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(reqwest::Method::GET, path, token, None, None)
            .await
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.call(reqwest::Method::POST, path, token, Some(body), None)
            .await
    }

    /// Makes a tenant; its id.
    pub(crate) async fn tenant(&self, slug: &str) -> Uuid {
        let reply = self
            .post(
                "/api/cortex/tenants",
                &self.admin_token,
                &json!({"name": slug, "slug": slug}),
            )
            .await
            .expect(201);
        reply.body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Makes a user of `tenant` with `roles` and a password; their personal access token.
    pub(crate) async fn user(&self, email: &str, tenant: Uuid, roles: &[&str]) -> (Uuid, String) {
        let reply = self
            .post(
                "/api/cortex/users",
                &self.admin_token,
                &json!({"email": email, "name": email, "tenant_id": tenant, "roles": roles}),
            )
            .await
            .expect(201);
        let id: Uuid = reply.body["id"].as_str().unwrap().parse().unwrap();
        let token = cortex::identity::as_server(&self.db, async |tx| {
            cortex::identity::set_password(tx, id, ADMIN_PASSWORD)
                .await
                .expect("the password is set");
            cortex::identity::create_personal_token(tx, id, tenant, "tests", None).await
        })
        .await
        .unwrap();
        (id, token)
    }

    /// Registers an OAuth client as the server does; its id and secret (for a confidential one).
    pub(crate) async fn client(
        &self,
        name: &str,
        tenant: Uuid,
        roles: &[&str],
        redirect_uris: &[&str],
        public: bool,
    ) -> (String, Option<String>) {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let uris: Vec<String> = redirect_uris.iter().map(|u| (*u).to_owned()).collect();
        cortex::identity::as_server(&self.db, async |tx| {
            cortex::oauth::create_client(tx, name, tenant, &roles, &uris, public)
                .await
                .map_err(|e| prefiq_runtime::db::DbError::Internal(e.to_string()))
        })
        .await
        .expect("the client is registered")
    }

    /// Signs in through the sign-in page; the client now holds the session cookie.
    pub(crate) async fn sign_in(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> Reply {
        let page = read(
            client
                .get(format!("{}/login", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let csrf = hidden(&page.text, "csrf").expect("the sign-in form has an anti-forgery token");
        read(
            client
                .post(format!("{}/login", self.base))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", email),
                    ("password", password),
                    ("next", "/admin"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

/// A PKCE verifier and its S256 challenge.
pub(crate) fn pkce() -> (String, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = cortex::identity::new_secret() + "-extra._~";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of the query parameter `name` of a URL or path.
pub(crate) fn query_value(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Cortex {
    /// A POST to the token endpoint with a form (and HTTP Basic client credentials).
    pub(crate) async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Reply {
        let client = reqwest::Client::new();
        let mut request = client.post(format!("{}/auth/token", self.base)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        read(request.send().await.unwrap()).await
    }

    /// A one-time code for `client_id` from the signed-in `browser`, sent back to `redirect`,
    /// and the PKCE verifier it needs.
    pub(crate) async fn code(
        &self,
        browser: &reqwest::Client,
        client_id: &str,
        redirect: &str,
    ) -> (String, String) {
        let (verifier, challenge) = pkce();
        let reply = read(
            browser
                .get(format!(
                    "{}/auth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256",
                    self.base,
                    form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
                ))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let location = reply.headers["location"].to_str().unwrap().to_owned();
        let code = query_value(&location, "code")
            .unwrap_or_else(|| panic!("a code comes back: {location}"));
        (code, verifier)
    }

    /// Exchanges `code` for tokens: the reply of the token endpoint.
    pub(crate) async fn exchange(
        &self,
        client_id: &str,
        redirect: &str,
        code: &str,
        verifier: &str,
    ) -> Reply {
        self.token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
                ("client_id", client_id),
            ],
            None,
        )
        .await
    }

    /// An access token and a refresh token for the signed-in `browser`, through the CRM's
    /// frontend client.
    pub(crate) async fn tokens(&self, browser: &reqwest::Client) -> (String, String) {
        let (client, redirect) = ("ui-crm", "/apps/crm/");
        let (code, verifier) = self.code(browser, client, redirect).await;
        let issued = self
            .exchange(client, redirect, &code, &verifier)
            .await
            .expect(200);
        (
            issued.body["access_token"].as_str().unwrap().to_owned(),
            issued.body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// The reply to a refresh of `token` by the CRM's frontend client.
    pub(crate) async fn refresh(&self, token: &str) -> Reply {
        self.token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", "ui-crm"),
            ],
            None,
        )
        .await
    }
}

/// `GET path` with `client` (a browser: its cookies, no redirects followed).
pub(crate) async fn page(c: &Cortex, client: &reqwest::Client, path: &str) -> Reply {
    read(
        client
            .get(format!("{}{path}", c.base))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// `POST path` of a form with `client`.
pub(crate) async fn submit(
    c: &Cortex,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> Reply {
    read(
        client
            .post(format!("{}{path}", c.base))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The value of the hidden input `name` in an HTML page.
pub(crate) fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// What `probe` finds, once it finds something; fails the test after 30 s saying `what` never
/// happened.
#[allow(dead_code)]
pub(crate) async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "never: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
