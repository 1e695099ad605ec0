//! Test support for Prefiq apps: start a generated service on a real socket over SQLite (a
//! temporary file) or the machine's PostgreSQL (a fresh database per server), and talk to it over
//! HTTP. Used by the tests of every app and by Cortex.

#![deny(missing_docs)]

pub mod contract;
pub mod tools;

/// The counting proxy [`Server::start_counted`] puts in front of PostgreSQL.
pub use prefiq_roundtrips as roundtrips;

use std::sync::atomic::{AtomicUsize, Ordering};

use prefiq_runtime::Db;
use prefiq_runtime::db::PoolOptions;
use prefiq_runtime::deps::uuid::Uuid;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the machine's PostgreSQL.
    Postgres,
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("PREFIQ_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database for one test: a temporary SQLite file, or a fresh PostgreSQL database.
pub enum Database {
    /// The folder holding the database file, deleted when the server stops.
    Sqlite {
        /// The folder, deleted when dropped.
        _folder: tempfile::TempDir,
    },
    /// A database created for the test on the PostgreSQL server, dropped when it stops.
    Postgres {
        /// The connection URL of the server's administrative database.
        admin: String,
        /// The database's name.
        name: String,
    },
}

static SEQUENCE: AtomicUsize = AtomicUsize::new(0);

/// A token for `identity` signed with `key`, valid for ten minutes.
pub fn sign(key: &prefiq_runtime::auth::SigningKey, identity: &Identity) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let subject = identity
        .user
        .map(|u| u.to_string())
        .unwrap_or_else(|| "client".into());
    key.sign(&prefiq_runtime::auth::Claims {
        iss: ISSUER.into(),
        aud: ISSUER.into(),
        sub: subject,
        exp: now + 600,
        nbf: now,
        iat: now,
        jti: Uuid::now_v7().to_string(),
        tid: identity.tenant,
        roles: identity.roles.clone(),
        perms: identity.permissions.clone(),
        teams: Vec::new(),
        kind: if identity.user.is_some() {
            "user"
        } else {
            "client"
        }
        .into(),
        op: identity.operator,
    })
}

/// Drops databases left behind by test processes that no longer run.
async fn drop_stale_databases(admin: &Db) {
    let Ok(rows) = admin
        .fetch_all(
            "SELECT datname FROM pg_database WHERE datname LIKE 'prefiq_test_%'",
            vec![],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.req::<String>(0) else {
            continue;
        };
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }) {
            let _ = admin
                .execute(
                    sqlx_safe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")),
                    vec![],
                )
                .await;
        }
    }
}

fn sqlx_safe(sql: String) -> prefiq_runtime::Sql {
    prefiq_runtime::Sql::built(sql)
}

impl Database {
    /// Creates a database; returns it with its URL.
    pub async fn create(backend: Backend) -> (Database, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite:{}", dir.path().join("app.db").display());
                (Database::Sqlite { _folder: dir }, url)
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let admin = Db::connect(&admin_url, &PoolOptions { max_connections: 2, ..PoolOptions::default() })
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL is not reachable at {admin_url} ({e}). Start it with \
                             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                             or point PREFIQ_TEST_POSTGRES at a server where this user may create databases"
                        )
                    });
                drop_stale_databases(&admin).await;
                let name = format!(
                    "prefiq_test_{}_{}_{}",
                    std::process::id(),
                    SEQUENCE.fetch_add(1, Ordering::SeqCst),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos())
                        .unwrap_or(0)
                );
                admin
                    .execute(sqlx_safe(format!("CREATE DATABASE \"{name}\"")), vec![])
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot create the test database {name} on {admin_url}: {e}")
                    });
                // A test database outlives no crash, so its commits need not wait for the WAL
                // to reach the disk. Every guarantee a test checks (atomicity, isolation,
                // row-level security) is the same; only durability after a crash is not.
                admin
                    .execute(
                        sqlx_safe(format!(
                            "ALTER DATABASE \"{name}\" SET synchronous_commit = off"
                        )),
                        vec![],
                    )
                    .await
                    .unwrap_or_else(|e| panic!("cannot configure the test database {name}: {e}"));
                admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&admin_url);
                let url = format!("{base}/{name}");
                (
                    Database::Postgres {
                        admin: admin_url,
                        name,
                    },
                    url,
                )
            }
        }
    }

    /// Drops the database (a PostgreSQL one; SQLite files go with their folder).
    pub async fn drop(self) {
        if let Database::Postgres { admin, name } = self {
            if let Ok(admin) = Db::connect(
                &admin,
                &PoolOptions {
                    max_connections: 1,
                    ..PoolOptions::default()
                },
            )
            .await
            {
                let _ = admin
                    .execute(
                        sqlx_safe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")),
                        vec![],
                    )
                    .await;
                admin.close().await;
            }
        }
    }
}

/// Who a test token speaks for.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The tenant.
    pub tenant: Uuid,
    /// The user (a fresh one by default).
    pub user: Option<Uuid>,
    /// Roles, for the record.
    pub roles: Vec<String>,
    /// Permissions (`*`, `crm.*`, `crm.deal.read`).
    pub permissions: Vec<String>,
    /// Whether it is a platform operator.
    pub operator: bool,
}

impl Identity {
    /// A user of `tenant` with `permissions`.
    pub fn user(tenant: Uuid, permissions: &[&str]) -> Identity {
        Identity {
            tenant,
            user: Some(Uuid::now_v7()),
            roles: vec!["member".into()],
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            operator: false,
        }
    }

    /// A platform operator (of the default tenant).
    pub fn operator() -> Identity {
        Identity {
            operator: true,
            ..Identity::admin()
        }
    }

    /// An administrator of the default tenant: every permission.
    pub fn admin() -> Identity {
        Identity {
            roles: vec!["admin".into()],
            ..Identity::user(prefiq_runtime::auth::DEFAULT_TENANT, &["*"])
        }
    }
}

/// The issuer and audience of test tokens (the runtime's defaults).
pub const ISSUER: &str = "prefiq";

/// A running service.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database it uses, connected as its owner (row-level security does not bind it), for
    /// direct checks. The server itself runs its requests as the app role.
    pub db: Db,
    /// The key the server trusts; [`Server::token`] signs with it.
    pub key: std::sync::Arc<prefiq_runtime::auth::SigningKey>,
    /// The token every request carries unless it sends its own `authorization` header (an
    /// empty value sends none): an administrator's of the default tenant.
    pub token: String,
    /// The database URL.
    pub url: String,
    /// The app name: paths passed to `create` and `all_pages` are under `/api/<app>/`.
    pub app: String,
    /// The OpenAPI document every response is checked against, once set.
    pub contract: Option<contract::Contract>,
    client: reqwest::Client,
    serving: Db,
    task: tokio::task::JoinHandle<()>,
    database: Option<Database>,
    /// The counting proxy the request pool's connections go through, if any.
    proxy: Option<prefiq_roundtrips::Proxy>,
}

/// The body limit test servers use, small so that the 413 test stays quick.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON (`Null` when empty).
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type` without parameters.
    pub fn content_type(&self) -> &str {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    #[track_caller]
    pub fn problem(self, status: u16) -> Value {
        let reply = self.expect(status);
        assert_eq!(
            reply.content_type(),
            "application/problem+json",
            "errors are problem+json"
        );
        assert_eq!(reply.body["status"], status);
        assert!(
            reply.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "{}",
            reply.body
        );
        reply.body
    }
}

impl Server {
    /// A token for `identity`, signed with the key the server trusts, valid for ten minutes.
    pub fn token(&self, identity: &Identity) -> String {
        sign(&self.key, identity)
    }

    /// Starts an app on `backend`: a fresh database, its migrations applied, `build` making its
    /// router, the standard middleware around it (tokens verified against a fresh key), on a
    /// free port.
    pub async fn start<F, E>(
        backend: Backend,
        app: &str,
        migrations: &[prefiq_runtime::migrate::Migration],
        build: F,
    ) -> Server
    where
        F: FnOnce(Db) -> Result<prefiq_runtime::deps::axum::Router, E>,
        E: std::fmt::Debug,
    {
        Server::start_with(backend, app, migrations, false, build).await
    }

    /// Starts an app on PostgreSQL like [`Server::start`], its requests' connections going
    /// through a proxy that counts their round trips ([`Server::round_trips`]).
    pub async fn start_counted<F, E>(
        app: &str,
        migrations: &[prefiq_runtime::migrate::Migration],
        build: F,
    ) -> Server
    where
        F: FnOnce(Db) -> Result<prefiq_runtime::deps::axum::Router, E>,
        E: std::fmt::Debug,
    {
        Server::start_with(Backend::Postgres, app, migrations, true, build).await
    }

    async fn start_with<F, E>(
        backend: Backend,
        app: &str,
        migrations: &[prefiq_runtime::migrate::Migration],
        counted: bool,
        build: F,
    ) -> Server
    where
        F: FnOnce(Db) -> Result<prefiq_runtime::deps::axum::Router, E>,
        E: std::fmt::Debug,
    {
        let (database, url) = Database::create(backend).await;
        let db = Db::connect(&url, &PoolOptions::default())
            .await
            .expect("the test database opens");
        prefiq_runtime::migrate::apply(&db, app, migrations)
            .await
            .expect("migrations apply");
        let (proxy, serving_url) = if counted {
            let (proxy, through) = prefiq_roundtrips::Proxy::in_front_of(&url)
                .expect("a counting proxy in front of PostgreSQL");
            (Some(proxy), through)
        } else {
            (None, url.clone())
        };
        let serving = prefiq_runtime::db::connect_server(
            &db,
            prefiq_runtime::db::ServerLogin {
                url: &serving_url,
                app_url: None,
                production: false,
            },
            &PoolOptions::serving(10),
        )
        .await
        .expect("the test database opens, logged in as the app role");
        let key = std::sync::Arc::new(prefiq_runtime::auth::SigningKey::generate("test"));
        let keys = prefiq_runtime::auth::KeySet {
            keys: vec![key.public().clone()],
        };
        let verifier = prefiq_runtime::auth::TokenVerifier::new(&keys, ISSUER, ISSUER)
            .expect("a key set of one Ed25519 key");
        let auth = prefiq_runtime::auth::Auth(std::sync::Arc::new(verifier));
        let router = build(serving.clone()).expect("the router builds");
        let router =
            prefiq_runtime::serve::with_middleware(router, serving.clone(), BODY_LIMIT, auth);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let _ = prefiq_runtime::deps::axum::serve(listener, router).await;
        });
        let token = sign(&key, &Identity::admin());
        Server {
            base,
            db,
            key,
            token,
            url,
            app: app.to_owned(),
            contract: None,
            client: reqwest::Client::new(),
            serving,
            task,
            database: Some(database),
            proxy,
        }
    }

    /// The server's own request pool: on PostgreSQL it logs in as the role row-level security
    /// binds, as a deployed server's does (what a worker beside it uses too).
    pub fn serving(&self) -> &Db {
        &self.serving
    }

    /// What the server's request pool did on the wire so far: round trips, statements and
    /// transaction warnings (a server started with [`Server::start_counted`]).
    pub fn round_trips(&self) -> prefiq_roundtrips::Counts {
        self.proxy
            .as_ref()
            .expect("a server started with Server::start_counted")
            .counts()
    }

    /// The transaction warnings PostgreSQL sent the request pool (a counted server).
    pub fn transaction_warnings(&self) -> Vec<String> {
        self.proxy
            .as_ref()
            .map(prefiq_roundtrips::Proxy::warnings)
            .unwrap_or_default()
    }

    /// Checks every response from now on against the OpenAPI document at `path`.
    pub fn with_contract(mut self, path: &std::path::Path) -> Server {
        self.contract = Some(contract::Contract::load(path));
        self
    }

    fn check_contract(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) {
        if let Some(contract) = &self.contract {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
            contract.check(method.as_str(), path, status.as_u16(), content_type, body);
        }
    }

    /// Stops the server and drops its database.
    pub async fn stop(mut self) {
        self.task.abort();
        self.serving.close().await;
        self.db.close().await;
        if let Some(database) = self.database.take() {
            database.drop().await;
        }
    }

    /// Sends a request with an optional JSON body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let mut authorized = false;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("authorization") {
                authorized = true;
                if value.is_empty() {
                    continue;
                }
            }
            request = request.header(*name, *value);
        }
        if !authorized {
            request = request.bearer_auth(&self.token);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        self.check_contract(&method, path, status, &headers, &bytes);
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        self.check_contract(&method, path, status, &headers, &bytes);
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `GET`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    /// `POST` JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// `PATCH` JSON, with an optional `If-Match`.
    pub async fn patch(&self, path: &str, body: &Value, if_match: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = if_match
            .map(|tag| vec![("if-match", tag)])
            .unwrap_or_default();
        self.send(Method::PATCH, path, Some(body), &headers).await
    }

    /// `DELETE`, with an optional `If-Match`.
    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = if_match
            .map(|tag| vec![("if-match", tag)])
            .unwrap_or_default();
        self.send(Method::DELETE, path, None, &headers).await
    }

    /// Creates a row and returns it.
    pub async fn create(&self, collection: &str, body: Value) -> Value {
        self.post(&format!("/api/{}/{collection}", self.app), &body)
            .await
            .expect(201)
            .body
    }

    /// Follows `next_cursor` from `query` to the end; every item of every page.
    pub async fn all_pages(&self, collection: &str, query: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/{}/{collection}?{query}", self.app);
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get(&path).await.expect(200).body;
            pages += 1;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return (items, pages),
            }
            assert!(pages < 1000, "paging does not end");
        }
    }
}

impl Server {
    /// Schemathesis with every check against this server's document (see
    /// [`tools::run_schemathesis`]): it must pass, test all `operations` of the app plus
    /// `/healthz`, get a 2xx from every operation on a collection, and from the operations on
    /// items (reached through the document's links) together.
    pub async fn assert_meets_its_document(&self, operations: usize) {
        self.assert_meets_its_document_except(operations, &[]).await;
    }

    /// [`Server::assert_meets_its_document`], where the operations of `unreachable`
    /// (`("POST /api/crm/activities", "why")`) cannot succeed under fuzzing, for the reason
    /// given: they are held to it, so an entry that stops being true fails the test too.
    pub async fn assert_meets_its_document_except(
        &self,
        operations: usize,
        unreachable: &[(&str, &str)],
    ) {
        let schema = format!("{}/openapi.json", self.base);
        let document = self.get("/openapi.json").await.expect(200).body;
        let authorization = format!("Authorization: Bearer {}", self.token);
        // Operations on a collection are reached by every example; those on an item (a path
        // parameter) only when the stateful phase hands them the id of a row it made, which
        // depends on the rows the run happens to make: they are held to succeeding together.
        let every = tools::operations(&document);
        for (operation, _) in unreachable {
            assert!(
                every.iter().any(|o| o == operation),
                "{operation} is listed as unreachable but is no operation of the document"
            );
        }
        let (items, collections): (Vec<String>, Vec<String>) = every
            .into_iter()
            .filter(|o| !unreachable.iter().any(|(u, _)| u == o))
            .partition(|o| o.contains('{'));
        let run = tokio::task::spawn_blocking(move || {
            tools::run_schemathesis(&schema, &document, &authorization, EXAMPLES)
        })
        .await
        .expect("Schemathesis ran");
        run.print_statuses();
        assert!(run.passed, "Schemathesis found failures:\n{}", run.text);
        assert!(
            run.text.contains(&format!("Tested: {}", operations + 1)),
            "every operation was tested:\n{}",
            run.summary()
        );
        // Beside the exit code: no phase marked failed and no failure counted. (Not a bare
        // " failed", which Schemathesis's warnings also print, e.g. "Authentication failed".)
        assert!(
            !run.text.contains('\u{274c}') && !run.text.contains("unique failure"),
            "{}",
            run.summary()
        );
        run.assert_valid_requests_succeed(&collections, VALID_SHARE);
        let on_items: u32 = items
            .iter()
            .filter_map(|o| run.statuses.get(o))
            .map(|s| s.success)
            .sum();
        assert!(
            items.is_empty() || on_items > 0,
            "no operation on an item answered 2xx: the stateful phase reached no row it made\n{}",
            run.summary()
        );
        for (operation, why) in unreachable {
            let got = run.statuses.get(*operation).copied().unwrap_or_default();
            assert!(
                got.success == 0,
                "{operation} is listed as unreachable ({why}) but got {} 2xx: take it off the list",
                got.success
            );
        }
        eprintln!("{}", run.summary());
    }
}

/// Examples per operation in the default run of [`Server::assert_meets_its_document`]
/// (`cargo xtask test --deep` generates [`tools::DEEP_EXAMPLES`]).
pub const EXAMPLES: u32 = 25;

/// The least share of 2xx answers every operation must get from Schemathesis, so that a run in
/// which valid requests were refused (a token the server does not accept, a body it always turns
/// away) fails even though every check passed. Most of what Schemathesis sends is meant to be
/// refused (negative data, ids that name no row), so the share is small, but never nothing.
pub const VALID_SHARE: f64 = 0.004;
