//! Tenancy, RBAC and audit, on both databases, with two tenants and users in each:
//!
//! - the access matrix, made from the installed apps' catalogs (the IR's permissions and the
//!   roles their schemas grant them): every role × entity × action × own row / another user's
//!   row / another tenant's row, with the status each must give;
//! - no way for tenant A to reach tenant B's rows: lists with any filter, ids, custom
//!   operations, cursors forged from B's rows, references to B's rows, the admin UI;
//! - on PostgreSQL, a hand-written query that forgets the tenant still sees nothing of B's;
//! - every write leaves an audit entry in its own transaction, which the server cannot change.

use crate::common;

use std::collections::BTreeMap;

use common::{Cortex, Reply};
use prefiq_runtime::Executor;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_testkit::Backend;
use reqwest::Method;
use serde_json::{Value, json};

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn unique() -> usize {
    COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// The rows a sample of an entity refers to, in one tenant.
struct Parents {
    company: String,
    deal: String,
    course: String,
}

/// A valid body to create `entity` of `app` in a tenant with `parents`. Every entity of every
/// installed app must have one: the matrix test fails for an entity without.
fn sample(app: &str, entity: &str, parents: &Parents) -> Option<Value> {
    let n = unique();
    Some(match (app, entity) {
        ("crm", "Company") => json!({"name": format!("Company {n}")}),
        ("crm", "Contact") => {
            json!({"first_name": "Ada", "last_name": format!("L{n}"), "email": format!("c{n}@example.com"), "company_id": parents.company})
        }
        ("crm", "Deal") => {
            json!({"name": format!("Deal {n}"), "company_id": parents.company, "amount": "100.00"})
        }
        ("crm", "Activity") => {
            json!({"kind": "note", "subject": format!("Note {n}"), "deal_id": parents.deal})
        }
        ("lms", "Course") => {
            json!({"code": format!("C{n}-{:03}", n % 1000), "title": format!("Course {n}")})
        }
        ("lms", "Lesson") => {
            json!({"course_id": parents.course, "position": (n % 999) + 1, "title": format!("Lesson {n}")})
        }
        ("lms", "Enrollment") => {
            json!({"course_id": parents.course, "learner_email": format!("l{n}@example.com")})
        }
        _ => return None,
    })
}

async fn parents(cortex: &Cortex, admin: &str) -> Parents {
    let company = cortex
        .post(
            "/api/crm/companies",
            admin,
            &json!({"name": format!("Parent {}", unique())}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deal = cortex
        .post(
            "/api/crm/deals",
            admin,
            &json!({"name": "Parent deal", "company_id": company, "amount": "1.00"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let n = unique();
    let course = cortex
        .post(
            "/api/lms/courses",
            admin,
            &json!({"code": format!("P{n}-{:03}", n % 1000), "title": "Parent course"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Parents {
        company,
        deal,
        course,
    }
}

/// The qualified name of `table` holding `tenant`'s rows, for the owner connection.
fn table_of(cortex: &Cortex, tenant: Uuid, table: &str) -> String {
    match cortex.owner.layout() {
        prefiq_runtime::db::Layout::Rows => format!("\"{table}\""),
        prefiq_runtime::db::Layout::Schemas => format!(
            "\"{}\".\"{table}\"",
            prefiq_runtime::db::tenant_schema(tenant)
        ),
    }
}

/// Sets the owner of a row of `tenant` directly (as the owner connection): a row "of" a user
/// for the matrix.
async fn own(cortex: &Cortex, tenant: Uuid, table: &str, id: &str, owner: Uuid) {
    let table = table_of(cortex, tenant, table);
    let sql = match cortex.backend {
        Backend::Postgres => format!("UPDATE {table} SET owner_id = $1 WHERE id = $2::uuid"),
        Backend::Sqlite => format!("UPDATE {table} SET owner_id = ?1 WHERE id = ?2"),
    };
    let changed = Executor::execute(
        &mut cortex.owner.clone(),
        prefiq_runtime::Sql::built(sql),
        vec![
            prefiq_runtime::SqlValue::Uuid(owner),
            prefiq_runtime::SqlValue::Text(id.to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(changed, 1);
}

struct Tenants {
    a: Uuid,
    b: Uuid,
    admin_a: String,
    admin_b: String,
    users: BTreeMap<&'static str, (Uuid, String)>,
    other_a: (Uuid, String),
    member_b: (Uuid, String),
}

async fn tenants(cortex: &Cortex) -> Tenants {
    let a = cortex.tenant(&format!("alpha{}", unique())).await;
    let b = cortex.tenant(&format!("beta{}", unique())).await;
    let (_, admin_a) = cortex
        .user(&format!("admin-a{}@example.com", unique()), a, &["admin"])
        .await;
    let (_, admin_b) = cortex
        .user(&format!("admin-b{}@example.com", unique()), b, &["admin"])
        .await;
    let mut users = BTreeMap::new();
    for role in ["viewer", "member", "manager"] {
        let roles: Vec<&str> = if role == "manager" {
            vec!["member", "manager"]
        } else {
            vec![role]
        };
        users.insert(
            role,
            cortex
                .user(&format!("{role}{}@example.com", unique()), a, &roles)
                .await,
        );
    }
    users.insert(
        "none",
        cortex
            .user(&format!("nobody{}@example.com", unique()), a, &[])
            .await,
    );
    let other_a = cortex
        .user(&format!("other{}@example.com", unique()), a, &["member"])
        .await;
    let member_b = cortex
        .user(&format!("member-b{}@example.com", unique()), b, &["member"])
        .await;
    Tenants {
        a,
        b,
        admin_a,
        admin_b,
        users,
        other_a,
        member_b,
    }
}

/// Whether `roles` are granted `permission` by the catalogs' defaults (what the bootstrap gave
/// the roles).
fn granted(permission: &str, roles: &[&str]) -> bool {
    cortex::server::installed()
        .iter()
        .flat_map(|a| a.catalog.permissions.iter())
        .any(|p| p.name == permission && p.roles.iter().any(|r| roles.contains(r)))
}

fn roles_of(role: &str) -> Vec<&str> {
    match role {
        "manager" => vec!["member", "manager"],
        "none" => vec![],
        other => vec![other],
    }
}

async fn listed(cortex: &Cortex, collection: &str, token: &str, id: &str) -> Option<bool> {
    let reply = cortex.get(&format!("{collection}?limit=1000"), token).await;
    if reply.status == 403 {
        return None;
    }
    assert_eq!(reply.status, 200, "{}", reply.text);
    Some(
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id),
    )
}

async fn access_matrix(cortex: &Cortex, t: &Tenants) {
    let parents_a = parents(cortex, &t.admin_a).await;
    let parents_b = parents(cortex, &t.admin_b).await;
    let mut checked = 0;
    for app in cortex::server::installed() {
        let catalog = app.catalog;
        for entity in catalog.entities {
            let permission = |action: &str| {
                catalog
                    .permissions
                    .iter()
                    .find(|p| p.entity == Some(entity.name) && p.action == action)
                    .map(|p| p.name)
                    .unwrap_or_else(|| {
                        panic!(
                            "{} {} has no {action} permission",
                            catalog.name, entity.name
                        )
                    })
            };
            let owned = entity.table.owner.is_some();
            let all_rows = catalog
                .permissions
                .iter()
                .find(|p| p.entity == Some(entity.name) && p.action == "all-rows")
                .map(|p| p.name);
            for (role, (user, token)) in &t.users {
                let roles = roles_of(role);
                let may = |action: &str| granted(permission(action), &roles);
                let sees_all = !owned || all_rows.is_some_and(|p| granted(p, &roles));
                // Create.
                let body = sample(catalog.name, entity.name, &parents_a).unwrap_or_else(|| {
                    panic!(
                        "the matrix needs a sample of {} {}",
                        catalog.name, entity.name
                    )
                });
                let created = cortex.post(entity.collection, token, &body).await;
                let expected = if may("create") { 201 } else { 403 };
                assert_eq!(
                    created.status, expected,
                    "{role} create {}: {}",
                    entity.name, created.text
                );
                checked += 1;
                // The three rows: the role's own, another user's of the same tenant, tenant B's.
                let make = |parents: &Parents, admin: &str| {
                    let body = sample(catalog.name, entity.name, parents).unwrap();
                    let admin = admin.to_owned();
                    async move {
                        cortex
                            .post(entity.collection, &admin, &body)
                            .await
                            .expect(201)
                            .body["id"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                    }
                };
                let mine = make(&parents_a, &t.admin_a).await;
                let theirs = make(&parents_a, &t.admin_a).await;
                let foreign = make(&parents_b, &t.admin_b).await;
                if owned {
                    own(cortex, t.a, entity.table.table, &mine, *user).await;
                    own(cortex, t.a, entity.table.table, &theirs, t.other_a.0).await;
                    own(cortex, t.b, entity.table.table, &foreign, t.member_b.0).await;
                }
                for (scope, id) in [
                    ("own", &mine),
                    ("other user's", &theirs),
                    ("other tenant's", &foreign),
                ] {
                    let visible = match scope {
                        "own" => true,
                        "other user's" => sees_all,
                        _ => false,
                    };
                    let item = format!("{}/{id}", entity.collection);
                    // List.
                    let list = listed(cortex, entity.collection, token, id).await;
                    match (may("read"), list) {
                        (false, None) => {}
                        (true, Some(present)) => {
                            assert_eq!(present, visible, "{role} lists {scope} {}", entity.name)
                        }
                        (may, got) => {
                            panic!("{role} list {}: granted {may}, got {got:?}", entity.name)
                        }
                    }
                    // Get.
                    let got = cortex.get(&item, token).await.status.as_u16();
                    let expected = match (may("read"), visible) {
                        (false, _) => 403,
                        (true, true) => 200,
                        (true, false) => 404,
                    };
                    assert_eq!(got, expected, "{role} get {scope} {}", entity.name);
                    // Update (an empty merge patch changes nothing but the version).
                    let updated = cortex
                        .call(Method::PATCH, &item, token, Some(&json!({})), None)
                        .await
                        .status
                        .as_u16();
                    let expected = match (may("update"), visible) {
                        (false, _) => 403,
                        (true, true) => 200,
                        (true, false) => 404,
                    };
                    assert_eq!(updated, expected, "{role} update {scope} {}", entity.name);
                    // Delete.
                    let deleted = cortex
                        .call(Method::DELETE, &item, token, None, None)
                        .await
                        .status
                        .as_u16();
                    let expected = match (may("delete"), visible) {
                        (false, _) => 403,
                        (true, true) => 204,
                        (true, false) => 404,
                    };
                    assert_eq!(deleted, expected, "{role} delete {scope} {}", entity.name);
                    checked += 4;
                }
            }
        }
    }
    // Every entity × 4 roles × (create + 3 scopes × 4 actions).
    let entities: usize = cortex::server::installed()
        .iter()
        .map(|a| a.catalog.entities.len())
        .sum();
    assert_eq!(checked, entities * 4 * 13);
    eprintln!("access matrix: {checked} checks over {entities} entities");
}

async fn tenant_a_never_reaches_tenant_b(cortex: &Cortex, t: &Tenants) {
    let a = &t.users["member"].1;
    let b = &t.member_b.1;
    let company_b = cortex
        .post(
            "/api/crm/companies",
            b,
            &json!({"name": "Beta Secret Corp", "domain": "beta.example"}),
        )
        .await
        .expect(201)
        .body;
    let id_b = company_b["id"].as_str().unwrap();
    let deal_b = cortex
        .post(
            "/api/crm/deals",
            b,
            &json!({"name": "Beta deal", "company_id": id_b, "amount": "999.00"}),
        )
        .await
        .expect(201)
        .body;
    let deal_b_id = deal_b["id"].as_str().unwrap();
    cortex
        .post("/api/crm/contacts", b, &json!({"first_name": "Bea", "last_name": "Secret", "email": "bea@beta.example", "company_id": id_b}))
        .await
        .expect(201);
    let company_a = cortex
        .post("/api/crm/companies", a, &json!({"name": "Alpha Corp"}))
        .await
        .expect(201)
        .body;
    // The same unique value in both tenants: uniqueness is per tenant.
    cortex
        .post(
            "/api/crm/companies",
            a,
            &json!({"name": "Beta Secret Corp"}),
        )
        .await
        .expect(201);
    // Lists with any filter.
    for query in [
        "",
        "?name=eq.Beta%20Secret%20Corp",
        "?domain=eq.beta.example",
        "?name=like.*Secret*",
        "?or=(name.eq.Beta%20Secret%20Corp,domain.is.notnull)",
        "?industry=in.(other,software)&sort=-created_at&count=exact",
    ] {
        let reply = cortex
            .get(&format!("/api/crm/companies{query}"), a)
            .await
            .expect(200);
        assert!(
            reply.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != id_b),
            "tenant A listed B's company with `{query}`"
        );
    }
    let counted = cortex
        .get("/api/crm/companies?count=exact&domain=eq.beta.example", a)
        .await
        .expect(200);
    assert_eq!(counted.body["total"], 0, "counts see only the tenant");
    // Filters that reach through references.
    let deals = cortex
        .get(&format!("/api/crm/deals?company_id=eq.{id_b}"), a)
        .await
        .expect(200);
    assert_eq!(deals.body["items"], json!([]));
    let contacts = cortex
        .get(&format!("/api/crm/contacts?company_id=eq.{id_b}"), a)
        .await
        .expect(200);
    assert_eq!(contacts.body["items"], json!([]));
    // By id.
    cortex
        .get(&format!("/api/crm/companies/{id_b}"), a)
        .await
        .expect(404);
    cortex
        .call(
            Method::PATCH,
            &format!("/api/crm/companies/{id_b}"),
            a,
            Some(&json!({"name": "pwned"})),
            None,
        )
        .await
        .expect(404);
    cortex
        .call(
            Method::DELETE,
            &format!("/api/crm/companies/{id_b}"),
            a,
            None,
            None,
        )
        .await
        .expect(404);
    // References to B's rows are refused like missing ones.
    let linked = cortex
        .post(
            "/api/crm/deals",
            a,
            &json!({"name": "Steal", "company_id": id_b, "amount": "1.00"}),
        )
        .await
        .expect(409);
    assert_eq!(linked.body["errors"][0]["pointer"], "/company_id");
    let deal_a = cortex
        .post(
            "/api/crm/deals",
            a,
            &json!({"name": "Own", "company_id": company_a["id"], "amount": "1.00"}),
        )
        .await
        .expect(201)
        .body;
    cortex
        .call(
            Method::PATCH,
            &format!("/api/crm/deals/{}", deal_a["id"].as_str().unwrap()),
            a,
            Some(&json!({"company_id": id_b})),
            None,
        )
        .await
        .expect(409);
    // Custom operations.
    cortex
        .post(&format!("/api/crm/deals/{deal_b_id}/win"), a, &json!({}))
        .await
        .expect(404);
    let report = cortex.get("/api/crm/reports/pipeline", a).await.expect(200);
    let total: f64 = report.body["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["amount"].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(
        total < 999.0,
        "B's 999.00 deal is not in A's pipeline: {}",
        report.body
    );
    let search = cortex
        .get("/api/crm/contacts/search?q=secret", a)
        .await
        .expect(200);
    assert_eq!(
        search.body["items"],
        json!([]),
        "A's search finds none of B's contacts"
    );
    // A cursor forged from B's row pages A's rows only.
    let forged = {
        use base64::Engine as _;
        let created = company_b["created_at"].clone();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!([created, id_b]).to_string())
    };
    let paged = cortex
        .get(
            &format!("/api/crm/companies?sort=created_at&cursor={forged}"),
            a,
        )
        .await;
    // Either refused (a cursor this API did not make for this query names no page: 404), or
    // a page of A's rows.
    assert!(matches!(paged.status.as_u16(), 200 | 404), "{}", paged.text);
    if paged.status == 200 {
        assert!(
            paged.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != id_b)
        );
    }
    // A's admin sees B's rows nowhere either (admin is every permission, in one tenant).
    let all = cortex
        .get("/api/crm/companies?limit=1000", &t.admin_a)
        .await
        .expect(200);
    assert!(
        all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != id_b)
    );
    // The admin UI: A's administrator signs in and lists companies.
    let browser = common::browser();
    let email = "ui-admin-a@example.com";
    cortex.user(email, t.a, &["admin"]).await;
    cortex
        .sign_in(&browser, email, common::ADMIN_PASSWORD)
        .await;
    let page = common::read(
        browser
            .get(format!("{}/admin/crm/companies", cortex.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Alpha Corp"));
    assert!(
        !page.text.contains(id_b),
        "the admin UI shows none of B's rows"
    );
    let direct = common::read(
        browser
            .get(format!("{}/admin/crm/companies/{id_b}", cortex.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(direct.status, 404);
}

async fn postgres_policies_catch_a_forgotten_filter(cortex: &Cortex, t: &Tenants) {
    // A hand-written query without a tenant condition, run as the server runs it.
    let principal = std::sync::Arc::new(prefiq_runtime::Principal {
        subject: "probe".into(),
        user: None,
        tenant: t.a,
        roles: vec![],
        teams: vec![],
        permissions: vec!["*".into()],
        credential: prefiq_runtime::auth::Credential::System,
        operator: false,
    });
    let mut tx = cortex.db.begin_read(&principal).await.unwrap();
    let rows = tx
        .fetch_all(
            prefiq_runtime::Sql::new("SELECT name FROM companies"),
            vec![],
        )
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.req(0).unwrap()).collect();
    assert!(!names.is_empty(), "A's own companies are there");
    let counting = format!(
        "SELECT count(*) FROM {} WHERE tenant_id = $1",
        table_of(cortex, t.a, "companies")
    );
    let all = Executor::fetch_all(
        &mut cortex.owner.clone(),
        prefiq_runtime::Sql::built(counting),
        vec![prefiq_runtime::SqlValue::Uuid(t.a)],
    )
    .await
    .unwrap();
    let a_count: i64 = all[0].req(0).unwrap();
    assert_eq!(
        rows.len() as i64,
        a_count,
        "row-level security returned exactly tenant A's rows"
    );
    // Writing a row into another tenant is refused by the policy too.
    let refused = tx
        .execute(
            prefiq_runtime::Sql::new("UPDATE companies SET name = 'x' WHERE tenant_id <> current_setting('prefiq.tenant_id')::uuid"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(refused, 0, "no other tenant's row is visible to update");
    // With a schema per tenant, naming B's schema outright still shows none of B's rows: the
    // policies hold inside every schema.
    if cortex.owner.layout() == prefiq_runtime::db::Layout::Schemas {
        let theirs = format!("SELECT id FROM {}", table_of(cortex, t.b, "companies"));
        let seen = tx
            .fetch_all(prefiq_runtime::Sql::built(theirs), vec![])
            .await
            .unwrap();
        assert!(seen.is_empty(), "tenant B's schema shows A nothing");
    }
    tx.rollback().await.unwrap();
    // Without a tenant set, the server's role sees nothing at all (with a schema per tenant,
    // there is not even a table to see).
    let none = Executor::fetch_all(
        &mut cortex.db.clone(),
        prefiq_runtime::Sql::new("SELECT id FROM companies"),
        vec![],
    )
    .await;
    assert!(
        none.is_ok_and(|rows| rows.is_empty())
            || cortex.owner.layout() == prefiq_runtime::db::Layout::Schemas,
        "no tenant, no rows"
    );
    // The audit log is append-only for the server's role: the database says "permission
    // denied" (SQLSTATE 42501), not any error.
    for statement in [
        "UPDATE prefiq_audit SET actor = 'forged'",
        "DELETE FROM prefiq_audit",
        "TRUNCATE prefiq_audit",
    ] {
        let mut tx = cortex.db.begin(&principal).await.unwrap();
        let denied = tx
            .execute(prefiq_runtime::Sql::built(statement.into()), vec![])
            .await;
        assert_eq!(
            sqlstate(&denied).as_deref(),
            Some("42501"),
            "{statement}: {denied:?}"
        );
    }
}

/// The SQLSTATE of a failed statement.
fn sqlstate<T: std::fmt::Debug>(result: &Result<T, prefiq_runtime::db::DbError>) -> Option<String> {
    result.as_ref().err().and_then(|e| e.sqlstate())
}

/// Every table with a `tenant_id` column, found in the catalog (the apps', Cortex's, the
/// credentials', the audit log; in `public` and in every tenant's schema), has forced row-level
/// security with a restrictive policy for the server's role. A transaction of tenant A, as the
/// server's role, then sees none of B's rows without any filter, cannot insert a row of B, and
/// cannot move one of its own rows to B: the database refuses (SQLSTATE 42501).
async fn every_tenant_table_is_bound_by_row_level_security(cortex: &Cortex, t: &Tenants) {
    let tables = Executor::fetch_all(
        &mut cortex.owner.clone(),
        prefiq_runtime::Sql::new(
            "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, \
               EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname \
                       AND p.permissive = 'RESTRICTIVE' AND 'prefiq_app' = ANY (p.roles)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY 1, 2",
        ),
        vec![],
    )
    .await
    .unwrap();
    let principal = std::sync::Arc::new(prefiq_runtime::Principal {
        subject: "probe".into(),
        user: None,
        tenant: t.a,
        roles: vec![],
        teams: vec![],
        permissions: vec!["*".into()],
        credential: prefiq_runtime::auth::Credential::System,
        operator: false,
    });
    let mut names = Vec::new();
    let mut written = 0;
    for row in &tables {
        let (schema, table): (String, String) = (row.req(0).unwrap(), row.req(1).unwrap());
        let name = format!("\"{schema}\".\"{table}\"");
        let (enabled, forced, restricted): (bool, bool, bool) = (
            row.req(2).unwrap(),
            row.req(3).unwrap(),
            row.req(4).unwrap(),
        );
        assert!(
            enabled && forced,
            "{name}: row-level security is on and forced"
        );
        assert!(restricted, "{name}: a restrictive policy binds prefiq_app");
        names.push(name.clone());
        // No filter needed: B's rows are not there for A.
        let mut tx = cortex.db.begin(&principal).await.unwrap();
        let seen = tx
            .fetch_all(
                prefiq_runtime::Sql::built(format!(
                    "SELECT 1 FROM {name} WHERE tenant_id = '{}'",
                    t.b
                )),
                vec![],
            )
            .await
            .unwrap();
        assert!(seen.is_empty(), "{name}: A sees none of B's rows");
        let mine = tx
            .fetch_all(
                prefiq_runtime::Sql::built(format!(
                    "SELECT 1 FROM {name} WHERE tenant_id = '{}' LIMIT 1",
                    t.a
                )),
                vec![],
            )
            .await
            .unwrap();
        drop(tx);
        if mine.is_empty() {
            continue;
        }
        // A copy of one of A's rows, made B's; and one of A's rows, moved to B.
        for statement in [
            format!(
                "INSERT INTO {name} SELECT (jsonb_populate_record(NULL::{name}, to_jsonb(x) || jsonb_build_object('tenant_id', '{}'))).* FROM {name} x WHERE tenant_id = '{}' LIMIT 1",
                t.b, t.a
            ),
            format!(
                "UPDATE {name} SET tenant_id = '{}' WHERE ctid = (SELECT ctid FROM {name} WHERE tenant_id = '{}' LIMIT 1)",
                t.b, t.a
            ),
        ] {
            let mut tx = cortex.db.begin(&principal).await.unwrap();
            let refused = tx
                .execute(prefiq_runtime::Sql::built(statement.clone()), vec![])
                .await;
            assert_eq!(
                sqlstate(&refused).as_deref(),
                Some("42501"),
                "{statement}: {refused:?}"
            );
        }
        written += 1;
    }
    for expected in [
        "\"public\".\"prefiq_audit\"",
        "\"public\".\"users\"",
        "\"public\".\"roles\"",
        "\"public\".\"cortex_sessions\"",
        "\"public\".\"cortex_personal_tokens\"",
        "\"public\".\"cortex_clients\"",
    ] {
        assert!(
            names.contains(&expected.to_owned()),
            "{expected} is among {names:?}"
        );
    }
    let app_tables: usize = cortex::server::installed()
        .iter()
        .map(|a| a.catalog.entities.len())
        .sum();
    assert!(
        written >= app_tables,
        "writes were tried on {written} of {} tables: {names:?}",
        names.len()
    );
    eprintln!(
        "row-level security: {} tables, {written} refused a write to another tenant",
        names.len()
    );
}

/// The server's connections log in as a role that row-level security binds and that cannot
/// step out of it: no superuser to return to, no role to become.
async fn the_servers_role_cannot_leave_row_level_security(cortex: &Cortex) {
    let mut pool = cortex.db.clone();
    // Even after `RESET ROLE`, it is who it logged in as.
    Executor::execute(&mut pool, prefiq_runtime::Sql::new("RESET ROLE"), vec![])
        .await
        .unwrap();
    let who = Executor::fetch_optional(
        &mut pool,
        prefiq_runtime::Sql::new(
            "SELECT current_user::text, session_user::text, r.rolsuper, r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user",
        ),
        vec![],
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(who.req::<String>(0).unwrap(), "prefiq_app");
    assert_eq!(
        who.req::<String>(1).unwrap(),
        "prefiq_app",
        "it logged in as prefiq_app"
    );
    assert!(!who.req::<bool>(2).unwrap() && !who.req::<bool>(3).unwrap());
    for escape in ["SET ROLE postgres", "SET SESSION AUTHORIZATION postgres"] {
        let refused =
            Executor::execute(&mut pool, prefiq_runtime::Sql::built(escape.into()), vec![]).await;
        assert_eq!(
            sqlstate(&refused).as_deref(),
            Some("42501"),
            "{escape}: {refused:?}"
        );
    }
    assert_eq!(cortex.db.escape_from_row_security().await.unwrap(), None);
    // A request pool given a superuser's URL is refused at start-up.
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let refused = prefiq_runtime::db::connect_server(
        &cortex.owner,
        prefiq_runtime::db::ServerLogin {
            url: &url,
            app_url: Some(&url),
            production: true,
        },
        &prefiq_runtime::db::PoolOptions::serving(1),
    )
    .await;
    let why = refused.expect_err("a superuser's pool is refused");
    assert!(why.contains("could leave row-level security"), "{why}");
}

async fn sqlite_audit_is_append_only(cortex: &Cortex) {
    for (statement, message) in [
        (
            "UPDATE prefiq_audit SET actor = 'forged'",
            "the audit log is append-only",
        ),
        (
            "DELETE FROM prefiq_audit",
            "audit entries are kept at least a day",
        ),
    ] {
        let denied = Executor::execute(
            &mut cortex.db.clone(),
            prefiq_runtime::Sql::new(statement),
            vec![],
        )
        .await;
        let error = denied.expect_err(statement).to_string();
        assert!(
            error.contains(message),
            "{statement}: the trigger's own refusal, not {error}"
        );
    }
}

async fn every_write_is_audited_in_its_transaction(cortex: &Cortex, t: &Tenants) {
    let (user, token) = &t.users["member"];
    let company = cortex
        .post("/api/crm/companies", token, &json!({"name": "Audited Ltd"}))
        .await
        .expect(201)
        .body;
    let id = company["id"].as_str().unwrap();
    let tag = "\"1\"";
    cortex
        .call(
            Method::PATCH,
            &format!("/api/crm/companies/{id}"),
            token,
            Some(&json!({"employee_count": 7})),
            Some(tag),
        )
        .await
        .expect(200);
    cortex
        .call(
            Method::DELETE,
            &format!("/api/crm/companies/{id}"),
            token,
            None,
            Some("\"2\""),
        )
        .await
        .expect(204);
    let log = cortex
        .get(
            &format!("/api/cortex/audit?entity_id=eq.{id}&sort=at"),
            &t.admin_a,
        )
        .await
        .expect(200)
        .body;
    let entries = log["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update", "delete"]);
    for entry in entries {
        assert_eq!(entry["actor_user"], json!(user.to_string()));
        assert_eq!(entry["app"], "crm");
        assert_eq!(entry["entity"], "Company");
        assert_eq!(entry["credential"], "personal-token");
    }
    assert_eq!(entries[0]["changes"]["name"], json!({"to": "Audited Ltd"}));
    assert_eq!(
        entries[1]["changes"],
        json!({"employee_count": {"from": null, "to": 7}})
    );
    assert_eq!(
        entries[2]["changes"]["name"],
        json!({"from": "Audited Ltd"})
    );
    // An entry is a read-only entity's row: read by id with its (never changing) version,
    // and no route writes one.
    let first = entries[0]["id"].as_str().unwrap();
    let read = cortex
        .get(&format!("/api/cortex/audit/{first}"), &t.admin_a)
        .await
        .expect(200);
    assert_eq!(read.body, entries[0]);
    assert_eq!(read.headers["etag"], "\"1\"");
    for (method, path) in [
        (Method::POST, "/api/cortex/audit".to_owned()),
        (Method::PATCH, format!("/api/cortex/audit/{first}")),
        (Method::DELETE, format!("/api/cortex/audit/{first}")),
    ] {
        let reply = cortex
            .call(
                method.clone(),
                &path,
                &t.admin_a,
                Some(&json!({})),
                Some("\"1\""),
            )
            .await;
        assert_eq!(reply.status, 405, "{method} {path}: {:?}", reply.body);
    }
    // B's administrator sees none of A's entries, in a list or by id.
    let theirs = cortex
        .get(&format!("/api/cortex/audit?entity_id=eq.{id}"), &t.admin_b)
        .await
        .expect(200);
    assert_eq!(theirs.body["items"], json!([]));
    cortex
        .get(&format!("/api/cortex/audit/{first}"), &t.admin_b)
        .await
        .expect(404);
    // Members may not read the log.
    cortex.get("/api/cortex/audit", token).await.expect(403);
    // A write that fails leaves no entry. Winning a deal whose name is 200 characters updates
    // the deal (an audited write), then fails to insert the note's activity (its subject would
    // be 205 characters): the deal's update and its entry are rolled back together.
    let parent = cortex
        .post(
            "/api/crm/companies",
            token,
            &json!({"name": format!("Half {}", unique())}),
        )
        .await
        .expect(201)
        .body;
    let deal = cortex
        .post(
            "/api/crm/deals",
            token,
            &json!({"name": "n".repeat(200), "company_id": parent["id"], "amount": "5.00"}),
        )
        .await
        .expect(201)
        .body;
    let deal_id = deal["id"].as_str().unwrap();
    let entries = |body: Value| body["items"].as_array().unwrap().len();
    let before = entries(
        cortex
            .get(
                &format!("/api/cortex/audit?entity_id=eq.{deal_id}"),
                &t.admin_a,
            )
            .await
            .expect(200)
            .body,
    );
    assert_eq!(before, 1, "the create");
    cortex
        .post(
            &format!("/api/crm/deals/{deal_id}/win"),
            token,
            &json!({"note": "Signed"}),
        )
        .await
        .expect(409);
    let after = entries(
        cortex
            .get(
                &format!("/api/cortex/audit?entity_id=eq.{deal_id}"),
                &t.admin_a,
            )
            .await
            .expect(200)
            .body,
    );
    assert_eq!(before, after, "the rolled-back update left no audit entry");
    assert_eq!(
        cortex
            .get(&format!("/api/crm/deals/{deal_id}"), token)
            .await
            .expect(200)
            .body["stage"],
        "lead"
    );
}

async fn a_tenant_can_turn_an_app_off(cortex: &Cortex, t: &Tenants) {
    let token = &t.users["member"].1;
    cortex.get("/api/lms/courses", token).await.expect(200);
    let tenant = cortex
        .get(&format!("/api/cortex/tenants/{}", t.a), &cortex.admin_token)
        .await
        .expect(200)
        .body;
    cortex
        .call(
            Method::PATCH,
            &format!("/api/cortex/tenants/{}", t.a),
            &cortex.admin_token,
            Some(&json!({"disabled_apps": ["lms"]})),
            Some(&format!("\"{}\"", tenant["version"])),
        )
        .await
        .expect(200);
    let off: Reply = cortex.get("/api/lms/courses", token).await.expect(404);
    assert_eq!(off.headers["content-type"], "application/problem+json");
    cortex.get("/api/crm/companies", token).await.expect(200);
    cortex
        .get("/api/lms/courses", &t.member_b.1)
        .await
        .expect(200);
}

/// Nobody locks a tenant out: its last active administrator keeps the admin role, stays active
/// and stays in it, even when two administrators are demoted at once; and nobody deletes the
/// tenant they are signed in to.
async fn a_tenant_keeps_an_administrator(cortex: &Cortex, t: &Tenants) {
    let admin = &cortex.admin_token;
    let tenant = cortex.tenant(&format!("gamma{}", unique())).await;
    let (first, _) = cortex
        .user(
            &format!("first{}@example.com", unique()),
            tenant,
            &["admin"],
        )
        .await;
    let first_path = format!("/api/cortex/users/{first}");
    for change in [
        json!({"roles": ["member"]}),
        json!({"active": false}),
        json!({"tenant_id": t.a}),
    ] {
        let refused = cortex
            .call(Method::PATCH, &first_path, admin, Some(&change), None)
            .await
            .expect(409);
        assert!(
            refused.text.contains("last active administrator"),
            "{change}: {}",
            refused.text
        );
    }
    cortex
        .call(Method::DELETE, &first_path, admin, None, None)
        .await
        .expect(409);
    // A second administrator lets the first go, and is then the last.
    let (second, _) = cortex
        .user(
            &format!("second{}@example.com", unique()),
            tenant,
            &["member", "admin"],
        )
        .await;
    cortex
        .call(
            Method::PATCH,
            &first_path,
            admin,
            Some(&json!({"active": false})),
            None,
        )
        .await
        .expect(200);
    let second_path = format!("/api/cortex/users/{second}");
    cortex
        .call(Method::DELETE, &second_path, admin, None, None)
        .await
        .expect(409);
    cortex
        .call(
            Method::PATCH,
            &first_path,
            admin,
            Some(&json!({"active": true})),
            None,
        )
        .await
        .expect(200);
    // Both demoted at once: one of them must stay.
    let demote = |path: String| async move {
        cortex
            .call(
                Method::PATCH,
                &path,
                admin,
                Some(&json!({"roles": ["member"]})),
                None,
            )
            .await
            .status
            .as_u16()
    };
    let (a, b) = tokio::join!(demote(first_path.clone()), demote(second_path.clone()));
    let mut statuses = [a, b];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "exactly one administrator is demoted");
    // The tenant one is signed in to stays.
    let kept = cortex
        .call(
            Method::DELETE,
            &format!(
                "/api/cortex/tenants/{}",
                prefiq_runtime::auth::DEFAULT_TENANT
            ),
            admin,
            None,
            None,
        )
        .await
        .expect(409);
    assert!(kept.text.contains("signed in to"), "{}", kept.text);
}

async fn all(backend: Backend, tenancy: common::TenancyMode) {
    let cortex = Cortex::start_with(backend, tenancy).await;
    let t = tenants(&cortex).await;
    access_matrix(&cortex, &t).await;
    tenant_a_never_reaches_tenant_b(&cortex, &t).await;
    every_write_is_audited_in_its_transaction(&cortex, &t).await;
    match backend {
        Backend::Postgres => {
            postgres_policies_catch_a_forgotten_filter(&cortex, &t).await;
            every_tenant_table_is_bound_by_row_level_security(&cortex, &t).await;
            the_servers_role_cannot_leave_row_level_security(&cortex).await;
        }
        Backend::Sqlite => sqlite_audit_is_append_only(&cortex).await,
    }
    a_tenant_can_turn_an_app_off(&cortex, &t).await;
    a_tenant_keeps_an_administrator(&cortex, &t).await;
    cortex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_rbac_and_audit_on_sqlite() {
    all(Backend::Sqlite, common::TenancyMode::Rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_rbac_and_audit_on_postgres() {
    all(Backend::Postgres, common::TenancyMode::Rows).await;
}

/// The same, with each tenant's tables in a schema of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_rbac_and_audit_on_postgres_with_a_schema_per_tenant() {
    all(Backend::Postgres, common::TenancyMode::Schemas).await;
}

/// With a schema per tenant, the apps' tables are in each tenant's schema and nowhere else, and
/// a tenant whose migrations stopped half-way is brought up to date when it is next used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_per_tenant_hold_the_rows_and_resume_their_migrations() {
    let cortex = Cortex::start_with(Backend::Postgres, common::TenancyMode::Schemas).await;
    let a = cortex.tenant("schema-a").await;
    let c = cortex.tenant("schema-c").await;
    let (_, token_a) = cortex.user("schema-a@example.com", a, &["member"]).await;
    cortex
        .post("/api/crm/companies", &token_a, &json!({"name": "In A"}))
        .await
        .expect(201);
    let count = |sql: String| {
        let owner = cortex.owner.clone();
        async move {
            let rows = owner
                .fetch_all(prefiq_runtime::Sql::built(sql), vec![])
                .await;
            rows.map(|r| r[0].req::<i64>(0).unwrap())
        }
    };
    let schema_a = prefiq_runtime::db::tenant_schema(a);
    assert_eq!(
        count(format!("SELECT count(*) FROM \"{schema_a}\".companies"))
            .await
            .unwrap(),
        1
    );
    assert!(
        count("SELECT count(*) FROM public.companies".into())
            .await
            .is_err(),
        "no app table is shared"
    );
    // Tenant C's schema stopped after the first CRM migration (as a failed run leaves it).
    let schema_c = prefiq_runtime::db::tenant_schema(c);
    let crm = cortex::server::installed()
        .iter()
        .find(|i| i.catalog.name == "crm")
        .unwrap();
    prefiq_runtime::migrate::apply_in_schema(
        &cortex.owner,
        &schema_c,
        "crm",
        &crm.catalog.migrations[..1],
    )
    .await
    .unwrap();
    let (_, token_c) = cortex.user("schema-c@example.com", c, &["member"]).await;
    cortex
        .post("/api/crm/companies", &token_c, &json!({"name": "In C"}))
        .await
        .expect(201);
    let ledger = count(format!(
        "SELECT count(*) FROM \"{schema_c}\"._prefiq_migrations WHERE app = 'crm'"
    ))
    .await
    .unwrap();
    assert_eq!(
        ledger as usize,
        crm.catalog.migrations.len(),
        "the rest was applied, each once"
    );
    let listed = cortex.get("/api/crm/companies", &token_c).await.expect(200);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["In C"]);
    cortex.stop().await;
}
