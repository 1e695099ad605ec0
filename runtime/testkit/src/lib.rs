//! Test support for Prefiq apps: start a generated service on a real socket over SQLite (a
//! temporary file) or the machine's PostgreSQL (a fresh database per server), and talk to it over
//! HTTP. Used by the tests of every app and by Cortex.

pub mod contract;
pub mod tools;

use std::sync::atomic::{AtomicUsize, Ordering};

use prefiq_runtime::Db;
use prefiq_runtime::db::PoolOptions;
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
        _folder: tempfile::TempDir,
    },
    Postgres {
        admin: String,
        name: String,
    },
}

static SEQUENCE: AtomicUsize = AtomicUsize::new(0);

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

fn sqlx_safe(sql: String) -> prefiq_runtime::deps::sqlx::AssertSqlSafe<String> {
    prefiq_runtime::deps::sqlx::AssertSqlSafe(sql)
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

/// A running service.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database it uses, for direct checks.
    pub db: Db,
    /// The database URL.
    pub url: String,
    /// The app name: paths passed to `create` and `all_pages` are under `/api/<app>/`.
    pub app: String,
    /// The OpenAPI document every response is checked against, once set.
    pub contract: Option<contract::Contract>,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    database: Option<Database>,
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
    /// Starts an app on `backend`: a fresh database, its migrations applied, `build` making its
    /// router, the standard middleware around it, on a free port.
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
        let (database, url) = Database::create(backend).await;
        let db = Db::connect(&url, &PoolOptions::default())
            .await
            .expect("the test database opens");
        prefiq_runtime::migrate::apply(&db, app, migrations)
            .await
            .expect("migrations apply");
        let router = build(db.clone()).expect("the router builds");
        let router = prefiq_runtime::serve::with_middleware(router, db.clone(), BODY_LIMIT);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let _ = prefiq_runtime::deps::axum::serve(listener, router).await;
        });
        Server {
            base,
            db,
            url,
            app: app.to_owned(),
            contract: None,
            client: reqwest::Client::new(),
            task,
            database: Some(database),
        }
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
        for (name, value) in headers {
            request = request.header(*name, *value);
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
