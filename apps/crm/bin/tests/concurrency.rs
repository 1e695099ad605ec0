//! Requests under concurrent load that fail in every way a request can: refused by the
//! database, by a hook, by a panic in a hook, or by a client that hangs up while its statements
//! are on their way. Afterwards every row was written whole by one request, under that
//! request's tenant, with its own audit entries, and nothing of a request that failed before
//! its commit remains. On PostgreSQL the request pool goes through a proxy that counts the
//! server's transaction-state warnings ("there is already a transaction in progress"): there
//! must be none. On both databases.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use app_crm::CrmService;
use app_crm::generated::operations::{
    LoseDealResponse, PipelineReportResponse, SearchContactsResponse, WinDealResponse,
};
use app_crm_types::{Company, CompanyCreate};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::{Dialect, Executor, Problem, RequestContext, Sql, Tx};
use prefiq_testkit::{Backend, Identity, Server};
use serde_json::{Value, json};

/// The CRM's service, with hooks that fail on purpose when a company's name says so:
/// - `panic-before-…`, `panic-after-…`: the hook panics (before or after the insert or update);
/// - `fail-after-…`: the hook runs a statement that fails, then refuses the request;
/// - `hang-…`: the hook waits (in the database on PostgreSQL) longer than the client does.
#[derive(Clone)]
struct Chaos(app_crm::services::Service);

/// How long a `hang-` hook waits; clients give up long before.
const HANG: Duration = Duration::from_millis(600);

async fn misbehave(tx: &mut Tx, name: &str, when: &str) -> Result<(), Problem> {
    if name.starts_with(&format!("panic-{when}-")) {
        panic!("a hook panics on purpose ({name})");
    }
    if when == "after" && name.starts_with("fail-after-") {
        let failed = tx
            .execute(Sql::new("SELECT * FROM no_such_table"), Vec::new())
            .await;
        assert!(failed.is_err(), "a statement on no table fails");
        return Err(Problem::conflict("a hook refused the write"));
    }
    if name.starts_with(&format!("hang-{when}-")) {
        match tx.dialect() {
            Dialect::Postgres => {
                let _ = tx
                    .execute(Sql::new("SELECT pg_sleep(0.6)"), Vec::new())
                    .await;
            }
            Dialect::Sqlite => tokio::time::sleep(HANG).await,
        }
    }
    Ok(())
}

impl CrmService for Chaos {
    async fn before_create_company(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        input: &mut CompanyCreate,
    ) -> Result<(), Problem> {
        misbehave(tx, &input.name, "before").await
    }

    async fn after_create_company(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        row: &Company,
    ) -> Result<(), Problem> {
        misbehave(tx, &row.name, "after").await
    }

    async fn after_update_company(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        row: &Company,
    ) -> Result<(), Problem> {
        // The update's marker is in the domain it sets.
        let marker = row.domain.as_deref().unwrap_or("");
        if marker.starts_with("hang-") {
            // In Rust, with the row locked and the transaction open.
            tokio::time::sleep(HANG).await;
        }
        if marker.starts_with("panic-") {
            panic!("an update hook panics on purpose");
        }
        let _ = tx;
        Ok(())
    }

    async fn win_deal(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        params: app_crm_types::WinDealParams,
        body: app_crm_types::WinDeal,
    ) -> Result<WinDealResponse, Problem> {
        self.0.win_deal(ctx, tx, params, body).await
    }

    async fn lose_deal(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        params: app_crm_types::LoseDealParams,
        body: app_crm_types::LoseDeal,
    ) -> Result<LoseDealResponse, Problem> {
        self.0.lose_deal(ctx, tx, params, body).await
    }

    async fn pipeline_report(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        params: app_crm_types::PipelineReportParams,
    ) -> Result<PipelineReportResponse, Problem> {
        self.0.pipeline_report(ctx, tx, params).await
    }

    async fn search_contacts(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        params: app_crm_types::SearchContactsParams,
    ) -> Result<SearchContactsResponse, Problem> {
        self.0.search_contacts(ctx, tx, params).await
    }
}

async fn start(backend: Backend) -> Server {
    let build = |db: prefiq_runtime::Db| {
        app_crm::router(Chaos(app_crm::services::Service::new(db.clone())), db)
    };
    match backend {
        Backend::Postgres => {
            Server::start_counted("crm", app_crm::generated::MIGRATIONS, build).await
        }
        Backend::Sqlite => {
            Server::start(backend, "crm", app_crm::generated::MIGRATIONS, build).await
        }
    }
}

/// A small deterministic generator, so that a failure replays.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// What a worker saw succeed: the companies it created and the version it last wrote.
#[derive(Default)]
struct Ledger {
    /// Company id → (its tenant's index, the name it was created with).
    created: BTreeMap<String, (usize, String)>,
    /// Names of requests that failed before their commit (and must have left nothing).
    failed: Vec<String>,
}

const TENANTS: usize = 3;
const WORKERS: usize = 12;
const STEPS: usize = 40;

async fn worker(
    base: String,
    tokens: Arc<Vec<String>>,
    tenants: Arc<Vec<Uuid>>,
    index: usize,
) -> Ledger {
    let client = reqwest::Client::new();
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) * 0x1000_0001));
    let mut ledger = Ledger::default();
    // The worker's own rows, with the ETag it last saw.
    let mut mine: Vec<(String, usize, String)> = Vec::new();
    for step in 0..STEPS {
        let tenant = dice.roll(TENANTS as u64) as usize;
        let token = &tokens[tenant];
        let tag = format!("t{tenant}-w{index}-s{step}");
        let send = |request: reqwest::RequestBuilder| request.bearer_auth(token).send();
        match dice.roll(10) {
            // Creates: whole rows whose every member names the request.
            0..=2 => {
                let body = json!({
                    "name": tag, "domain": format!("{tag}.example"), "tags": [tag],
                    "employee_count": step,
                });
                let reply = send(client.post(format!("{base}/api/crm/companies")).json(&body))
                    .await
                    .expect("an answer");
                assert_eq!(reply.status(), 201, "{tag}");
                let etag = reply.headers()["etag"].to_str().unwrap().to_owned();
                let row: Value = reply.json().await.unwrap();
                let id = row["id"].as_str().unwrap().to_owned();
                ledger.created.insert(id.clone(), (tenant, tag.clone()));
                mine.push((id, tenant, etag));
            }
            // A create the database refuses (a name the tenant already has), in its commit's
            // flight.
            3 if !mine.is_empty() => {
                let (id, owner, _) = &mine[dice.roll(mine.len() as u64) as usize];
                let name = ledger.created[id].1.clone();
                let reply = client
                    .post(format!("{base}/api/crm/companies"))
                    .bearer_auth(&tokens[*owner])
                    .json(&json!({ "name": name, "domain": format!("dup-{tag}.example") }))
                    .send()
                    .await
                    .expect("an answer");
                assert_eq!(reply.status(), 409, "{tag}");
                ledger.failed.push(format!("dup-{tag}"));
            }
            // Hooks that panic, or fail a statement and refuse.
            4 => {
                let kind = ["panic-before", "panic-after", "fail-after"][dice.roll(3) as usize];
                let name = format!("{kind}-{tag}");
                let reply = send(
                    client
                        .post(format!("{base}/api/crm/companies"))
                        .json(&json!({ "name": name, "tags": [name] })),
                )
                .await
                .expect("an answer");
                let expected = if kind == "fail-after" { 409 } else { 500 };
                assert_eq!(reply.status(), expected, "{name}");
                ledger.failed.push(name);
            }
            // Clients that hang up while the hook (and its statement) runs.
            5 => {
                let kind = ["hang-before", "hang-after"][dice.roll(2) as usize];
                let name = format!("{kind}-{tag}");
                let sent = send(
                    client
                        .post(format!("{base}/api/crm/companies"))
                        .timeout(Duration::from_millis(120))
                        .json(&json!({ "name": name, "tags": [name] })),
                )
                .await;
                assert!(sent.is_err(), "{name}: the client gave up first");
                ledger.failed.push(name);
            }
            // Updates of the worker's own rows, with If-Match; some hang up with the row locked,
            // some panic after the update was queued.
            6 | 7 if !mine.is_empty() => {
                let pick = dice.roll(mine.len() as u64) as usize;
                let (id, owner, etag) = mine[pick].clone();
                let fate = dice.roll(4);
                let marker = match fate {
                    0 => format!("hang-{tag}.example"),
                    1 => format!("panic-{tag}.example"),
                    _ => format!("p-{tag}.example"),
                };
                let mut request = client
                    .patch(format!("{base}/api/crm/companies/{id}"))
                    .bearer_auth(&tokens[owner])
                    .header("content-type", "application/merge-patch+json")
                    .header("if-match", &etag)
                    .body(json!({ "domain": marker, "employee_count": 1000 + step }).to_string());
                if fate == 0 {
                    request = request.timeout(Duration::from_millis(120));
                }
                let sent = request.send().await;
                match fate {
                    0 => assert!(sent.is_err(), "{tag}: the client gave up first"),
                    1 => assert_eq!(sent.expect("an answer").status(), 500, "{tag}"),
                    _ => {
                        let reply = sent.expect("an answer");
                        assert_eq!(reply.status(), 200, "{tag}");
                        mine[pick].2 = reply.headers()["etag"].to_str().unwrap().to_owned();
                    }
                }
                if fate < 2 {
                    ledger.failed.push(marker);
                }
            }
            // Reads: every row a tenant sees is its own.
            _ => {
                let reply = send(client.get(format!("{base}/api/crm/companies?limit=100")))
                    .await
                    .expect("an answer");
                assert_eq!(reply.status(), 200, "{tag}");
                let page: Value = reply.json().await.unwrap();
                for item in page["items"].as_array().unwrap() {
                    let name = item["name"].as_str().unwrap();
                    assert!(
                        name.starts_with(&format!("t{tenant}-")),
                        "tenant {tenant} ({}) read {name}",
                        tenants[tenant]
                    );
                }
            }
        }
    }
    ledger
}

async fn survives_every_kind_of_failure(backend: Backend) {
    let server = start(backend).await;
    let tenants: Arc<Vec<Uuid>> = Arc::new((0..TENANTS).map(|_| Uuid::now_v7()).collect());
    let tokens: Arc<Vec<String>> = Arc::new(
        tenants
            .iter()
            .map(|t| server.token(&Identity::user(*t, &["crm.*"])))
            .collect(),
    );
    let workers: Vec<_> = (0..WORKERS)
        .map(|index| {
            tokio::spawn(worker(
                server.base.clone(),
                tokens.clone(),
                tenants.clone(),
                index,
            ))
        })
        .collect();
    let mut ledger = Ledger::default();
    for worker in workers {
        let part = worker.await.expect("a worker finishes");
        ledger.created.extend(part.created);
        ledger.failed.extend(part.failed);
    }
    // What hung up is still running on the server: let it end.
    tokio::time::sleep(HANG + Duration::from_millis(600)).await;

    // Every row, read as the database's owner (no row-level security).
    let rows = server
        .db
        .fetch_all(
            Sql::new(
                "SELECT id, tenant_id, name, domain, tags, employee_count, version FROM companies",
            ),
            Vec::new(),
        )
        .await
        .unwrap();
    let mut seen = HashSet::new();
    for row in &rows {
        let id: Uuid = row.req(0).unwrap();
        let tenant: Uuid = row.req(1).unwrap();
        let name: String = row.req(2).unwrap();
        let domain: Option<String> = row.opt(3).unwrap();
        let tags: Value = row.req_json(4).unwrap();
        let employees: Option<i64> = row.opt(5).unwrap();
        let version: i64 = row.req(6).unwrap();
        let id = id.to_string();
        let (index, created_as) = ledger
            .created
            .get(&id)
            .unwrap_or_else(|| panic!("{name}: a row no request saw committed"));
        assert_eq!(&name, created_as);
        assert_eq!(tenant, tenants[*index], "{name} is in its request's tenant");
        // Whole: the create's members, or a successful update's (domain and count together).
        assert_eq!(tags, json!([name]), "{name}");
        match version {
            1 => {
                assert_eq!(domain.as_deref(), Some(format!("{name}.example").as_str()));
            }
            _ => {
                let domain = domain.unwrap_or_default();
                let step: i64 = domain
                    .strip_prefix("p-")
                    .and_then(|d| d.rsplit_once("-s"))
                    .and_then(|(_, s)| s.strip_suffix(".example"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("{name} holds a failed update's domain {domain}"));
                assert_eq!(employees, Some(1000 + step), "{name}: one update's members");
            }
        }
        // Its audit entries: its create and one per update, in its tenant, and nothing else.
        let entries = server
            .db
            .fetch_all(
                Sql::new(
                    "SELECT action, tenant_id FROM prefiq_audit WHERE entity_id = $1 ORDER BY at",
                ),
                vec![prefiq_runtime::SqlValue::Text(id.clone())],
            )
            .await
            .unwrap();
        let actions: Vec<String> = entries.iter().map(|e| e.req(0).unwrap()).collect();
        let mut expected = vec!["create".to_owned()];
        expected.extend((1..version).map(|_| "update".to_owned()));
        assert_eq!(actions, expected, "{name}: the audit log tells its story");
        for entry in &entries {
            let entry_tenant: Uuid = entry.req(1).unwrap();
            assert_eq!(entry_tenant, tenant, "{name}: audited in its tenant");
        }
        seen.insert(id);
    }
    // Every create that answered 201 is there.
    for (id, (_, name)) in &ledger.created {
        assert!(
            seen.contains(id),
            "{name} was acknowledged but is not stored"
        );
    }
    // Nothing of a failed request: no row, no audit entry mentions it.
    let audited = server
        .db
        .fetch_all(Sql::new("SELECT changes FROM prefiq_audit"), Vec::new())
        .await
        .unwrap();
    let audited: Vec<String> = audited
        .iter()
        .map(|r| r.req_json::<Value>(0).unwrap().to_string())
        .collect();
    for failed in &ledger.failed {
        assert!(
            !rows.iter().any(|r| r.req::<String>(2).unwrap() == *failed),
            "{failed} left a row"
        );
        assert!(
            !audited
                .iter()
                .any(|changes| changes.contains(failed.as_str())),
            "{failed} left an audit entry"
        );
    }
    assert!(
        ledger.failed.len() >= 20,
        "the load failed requests in every way"
    );
    assert!(ledger.created.len() >= 20, "the load created rows");
    if backend == Backend::Postgres {
        assert_eq!(
            server.transaction_warnings(),
            Vec::<String>::new(),
            "PostgreSQL warned about transaction state"
        );
        assert!(
            server.round_trips().round_trips > 0,
            "the proxy saw the requests"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_requests_stay_in_their_own_transactions_when_anything_fails() {
    survives_every_kind_of_failure(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_requests_stay_in_their_own_transactions_when_anything_fails() {
    survives_every_kind_of_failure(Backend::Sqlite).await;
}

/// Two transactions that want each other's rows: the database gives up on one of them (a
/// deadlock on PostgreSQL; on SQLite, a reader whose snapshot a writer moved past). That one is
/// answered 409 with a sentence saying it can be sent again, never 500, and the other commits.
async fn contention_is_a_conflict_to_retry(backend: Backend) {
    use prefiq_runtime::Principal;
    use prefiq_runtime::db::PoolOptions;

    let (database, url) = prefiq_testkit::Database::create(backend).await;
    let db = prefiq_runtime::Db::connect(&url, &PoolOptions::default())
        .await
        .expect("the test database");
    db.execute(
        Sql::new("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"),
        Vec::new(),
    )
    .await
    .unwrap();
    db.execute(
        Sql::new("INSERT INTO counters (id, n) VALUES (1, 0), (2, 0)"),
        Vec::new(),
    )
    .await
    .unwrap();
    let principal = Arc::new(Principal::system(Uuid::now_v7()));
    let bump = |id: u8| Sql::built(format!("UPDATE counters SET n = n + 1 WHERE id = {id}"));
    let failure = match backend {
        Backend::Postgres => {
            let mut first = db.begin(&principal).await.unwrap();
            let mut second = db.begin(&principal).await.unwrap();
            first.execute(bump(1), Vec::new()).await.unwrap();
            second.execute(bump(2), Vec::new()).await.unwrap();
            // Each now waits for the row the other holds; PostgreSQL breaks the cycle.
            let waiting = tokio::spawn(async move {
                let result = first.execute(bump(2), Vec::new()).await;
                (result, first)
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let crossing = second.execute(bump(1), Vec::new()).await;
            let (waited, first) = waiting.await.unwrap();
            match (waited, crossing) {
                (Err(error), Ok(_)) => {
                    drop(first);
                    second.commit().await.unwrap();
                    error
                }
                (Ok(_), Err(error)) => {
                    drop(second);
                    first.commit().await.unwrap();
                    error
                }
                other => panic!("exactly one side of a deadlock fails: {other:?}"),
            }
        }
        Backend::Sqlite => {
            // A reader's snapshot, then a writer commits, then the reader tries to write.
            let mut reader = db.begin_read(&principal).await.unwrap();
            reader
                .fetch_all(Sql::new("SELECT n FROM counters"), Vec::new())
                .await
                .unwrap();
            let mut writer = db.begin(&principal).await.unwrap();
            writer.execute(bump(1), Vec::new()).await.unwrap();
            writer.commit().await.unwrap();
            reader
                .execute(bump(2), Vec::new())
                .await
                .expect_err("a write on a snapshot another writer moved past is refused")
        }
    };
    let problem = Problem::from(failure);
    assert_eq!(problem.status, 409, "{problem:?}");
    assert!(
        problem
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("send it again")),
        "{problem:?}"
    );
    let total: i64 = db
        .fetch_one(Sql::new("SELECT SUM(n) FROM counters"), Vec::new())
        .await
        .unwrap()
        .req(0)
        .unwrap();
    assert_eq!(
        total,
        1 + i64::from(backend == Backend::Postgres),
        "only the winner's writes stay"
    );
    db.close().await;
    database.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deadlocks_are_conflicts_to_retry() {
    contention_is_a_conflict_to_retry(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stale_snapshots_are_conflicts_to_retry() {
    contention_is_a_conflict_to_retry(Backend::Sqlite).await;
}
