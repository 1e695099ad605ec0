//! Who may do what across tenants and the platform, on SQLite, PostgreSQL and PostgreSQL with a
//! schema per tenant.
//!
//! Three actors (a platform operator, tenant A's administrator, a member of tenant A) against
//! three targets (a row of their own tenant, of another tenant, of the platform) for every
//! entity of Cortex: list, get, update and delete each row, and create one in each target. The
//! expected status of each is written out below, not derived from the code under test; a
//! Cortex entity without expectations fails the test. Then the attacks a tenant's
//! administrator could try on another tenant, the admin UI's pages and forms for each actor,
//! and what a platform operator does to a tenant showing in that tenant's audit log.

use crate::common;

use common::{Cortex, Reply, browser, hidden, page, submit};
use prefiq_runtime::SqlValue;
use prefiq_runtime::auth::DEFAULT_TENANT;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_testkit::Backend;
use reqwest::Method;
use serde_json::{Value, json};

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn unique() -> usize {
    COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Operator,
    AdminA,
    MemberA,
}

const ACTORS: [Actor; 3] = [Actor::MemberA, Actor::AdminA, Actor::Operator];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A row of the actor's own tenant.
    Own,
    /// A row of another tenant.
    Other,
    /// A row of the platform: shared by every tenant, or a platform operator's.
    Platform,
}

const TARGETS: [Target; 3] = [Target::Own, Target::Other, Target::Platform];

/// Every entity of Cortex this test has expectations for.
const ENTITIES: [&str; 11] = [
    "AppRegistration",
    "AuditEntry",
    "Notification",
    "Organisation",
    "Role",
    "Setting",
    "Team",
    "Tenant",
    "User",
    "Webhook",
    "WebhookDelivery",
];

/// What an actor gets on an existing row of a target, as `list get update delete`: the list
/// shows it (`+`), not (`-`) or refuses (`x`, 403); the others are statuses. `None`: the
/// target has no such row.
fn expected(entity: &str, target: Target, actor: Actor) -> Option<&'static str> {
    use Actor::*;
    use Target::*;
    Some(match (entity, target, actor) {
        // Tenant data: only the tenant's own callers, and an operator only once switched into it.
        ("Organisation" | "Team", Own, Operator) => "- 404 404 404",
        ("Organisation" | "Team", Own, AdminA) => "+ 200 200 204",
        ("Organisation" | "Team", Own, MemberA) => "+ 200 403 403",
        ("Organisation" | "Team", Other, Operator) => "- 404 404 404",
        ("Organisation" | "Team", Other, AdminA) => "- 404 404 404",
        ("Organisation" | "Team", Other, MemberA) => "- 404 403 403",
        // Webhooks: the tenant's administrators' alone (they hold its secrets).
        ("Webhook", Own, Operator) => "- 404 404 404",
        ("Webhook", Own, AdminA) => "+ 200 200 204",
        ("Webhook", Own, MemberA) => "x 403 403 403",
        ("Webhook", Other, Operator) => "- 404 404 404",
        ("Webhook", Other, AdminA) => "- 404 404 404",
        ("Webhook", Other, MemberA) => "x 403 403 403",
        // Notifications: their recipient's (member A's here), which their tenant's
        // administrators hold every row of, as of every entity whose rows have owners.
        ("Notification", Own, Operator) => "- 404 404 404",
        ("Notification", Own, AdminA) => "+ 200 200 204",
        ("Notification", Own, MemberA) => "+ 200 200 403",
        ("Notification", Other, Operator) => "- 404 404 404",
        ("Notification", Other, AdminA) => "- 404 404 404",
        ("Notification", Other, MemberA) => "- 404 404 403",
        // The audit log and the webhooks' delivery attempts: read-only, each tenant its own.
        ("AuditEntry" | "WebhookDelivery", Own, Operator) => "- 404 405 405",
        ("AuditEntry" | "WebhookDelivery", Own, AdminA) => "+ 200 405 405",
        ("AuditEntry" | "WebhookDelivery", Own, MemberA) => "x 403 405 405",
        ("AuditEntry" | "WebhookDelivery", Other, Operator) => "- 404 405 405",
        ("AuditEntry" | "WebhookDelivery", Other, AdminA) => "- 404 405 405",
        ("AuditEntry" | "WebhookDelivery", Other, MemberA) => "x 403 405 405",
        // Installed apps: every tenant reads them, only operators change them.
        ("AppRegistration", Platform, Operator) => "+ 200 200 204",
        ("AppRegistration", Platform, AdminA) => "+ 200 403 403",
        ("AppRegistration", Platform, MemberA) => "+ 200 403 403",
        // Roles and settings: a tenant's own; the platform's defaults are read by its
        // administrators and written by operators.
        ("Role" | "Setting" | "User", Own, Operator) => "+ 200 200 204",
        ("Role" | "Setting" | "User", Own, AdminA) => "+ 200 200 204",
        ("Role" | "Setting" | "User", Own, MemberA) => "x 403 403 403",
        ("Role" | "Setting" | "User", Other, Operator) => "+ 200 200 204",
        ("Role" | "Setting" | "User", Other, AdminA) => "- 404 404 404",
        ("Role" | "Setting" | "User", Other, MemberA) => "x 403 403 403",
        ("Role" | "Setting" | "User", Platform, Operator) => "+ 200 200 204",
        // A platform default role or setting, and a platform operator's account inside tenant A.
        ("Role" | "Setting" | "User", Platform, AdminA) => "+ 200 403 403",
        ("Role" | "Setting" | "User", Platform, MemberA) => "x 403 403 403",
        // Tenants: a tenant's administrator reads its own; only operators write any. Nobody
        // deletes the tenant they act in.
        ("Tenant", Own, Operator) => "+ 200 200 409",
        ("Tenant", Own, AdminA) => "+ 200 403 403",
        ("Tenant", Own, MemberA) => "x 403 403 403",
        ("Tenant", Other, Operator) => "+ 200 200 204",
        ("Tenant", Other, AdminA) => "- 404 403 403",
        ("Tenant", Other, MemberA) => "x 403 403 403",
        _ => return None,
    })
}

/// What an actor gets creating a row in a target, and the body it sends. `None`: it cannot
/// even name that target (a tenant's rows are created in the caller's tenant).
fn expected_create(w: &World, entity: &str, target: Target, actor: Actor) -> Option<(u16, Value)> {
    use Actor::*;
    use Target::*;
    let n = unique();
    let tenant = |t: Target| match t {
        Own => json!(w.a),
        Other => json!(w.b),
        Platform => Value::Null,
    };
    let key = match actor {
        Operator => "session.idle-minutes",
        AdminA => "tokens.access-minutes",
        MemberA => "tokens.refresh-days",
    };
    let status = match (entity, target, actor) {
        ("Organisation" | "Team" | "Webhook", Own, MemberA) => 403,
        ("Organisation" | "Team" | "Webhook", Own, _) => 201,
        ("AuditEntry" | "WebhookDelivery", Own, _) => 405,
        // Only the server makes notifications.
        ("Notification", Own, _) => 403,
        ("AppRegistration", Platform, Operator) => 409,
        ("AppRegistration", Platform, _) => 403,
        ("Role" | "Setting" | "User", _, MemberA) => 403,
        ("Role" | "Setting" | "User", _, Operator) => 201,
        ("Role" | "Setting", Own | Platform, AdminA) => 201,
        ("Role" | "Setting", Other, AdminA) => 403,
        ("User", Own, AdminA) => 201,
        ("User", Other | Platform, AdminA) => 403,
        ("Tenant", Other, Operator) => 201,
        ("Tenant", Other, _) => 403,
        _ => return None,
    };
    let body = match entity {
        "Organisation" | "Team" => json!({"name": format!("{entity} {n}")}),
        "AuditEntry" => json!({"actor": "forged"}),
        "Webhook" => json!({"url": format!("https://hooks.example.com/{n}"), "events": ["crm.*"]}),
        "WebhookDelivery" => json!({"outcome": "delivered"}),
        "Notification" => json!({"kind": "webhook_disabled", "title": "forged"}),
        "AppRegistration" => json!({"app": "crm", "app_version": "9.9.9"}),
        "Role" => json!({"name": format!("role-{n}"), "tenant_id": tenant(target)}),
        "Setting" => json!({"key": key, "value": "30", "for_tenant": tenant(target)}),
        "User" => json!({
            "email": format!("made{n}@example.com"),
            "name": "Made",
            "tenant_id": if target == Platform { json!(w.a) } else { tenant(target) },
            "roles": ["member"],
            "operator": target == Platform,
        }),
        "Tenant" => json!({"name": format!("made {n}"), "slug": format!("made-{n}")}),
        _ => return None,
    };
    Some((status, body))
}

struct World {
    cortex: Cortex,
    a: Uuid,
    b: Uuid,
    operator: (Uuid, String),
    admin_a: (Uuid, String),
    member_a: (Uuid, String),
    admin_b: (Uuid, String),
}

impl World {
    async fn new(backend: Backend, tenancy: common::TenancyMode) -> World {
        let cortex = Cortex::start_with(backend, tenancy).await;
        let a = cortex.tenant(&format!("alpha{}", unique())).await;
        let b = cortex.tenant(&format!("beta{}", unique())).await;
        let mut tx = cortex::identity::read(&cortex.db).await.unwrap();
        let root = cortex::identity::user_by_email(&mut tx, common::ADMIN_EMAIL)
            .await
            .unwrap()
            .unwrap()
            .0
            .id;
        tx.end_read();
        let operator = (root, cortex.admin_token.clone());
        let admin_a = cortex.user("admin-a@example.com", a, &["admin"]).await;
        let member_a = cortex.user("member-a@example.com", a, &["member"]).await;
        let admin_b = cortex.user("admin-b@example.com", b, &["admin"]).await;
        World {
            cortex,
            a,
            b,
            operator,
            admin_a,
            member_a,
            admin_b,
        }
    }

    fn token(&self, actor: Actor) -> &str {
        match actor {
            Actor::Operator => &self.operator.1,
            Actor::AdminA => &self.admin_a.1,
            Actor::MemberA => &self.member_a.1,
        }
    }

    fn collection(entity: &str) -> &'static str {
        cortex::generated::CATALOG
            .entities
            .iter()
            .find(|e| e.name == entity)
            .unwrap_or_else(|| panic!("Cortex has no entity {entity}"))
            .collection
    }

    /// A fresh row of `entity` in `target` as `actor` sees targets; its id.
    async fn make(&self, entity: &str, target: Target, actor: Actor) -> Option<String> {
        let c = &self.cortex;
        let n = unique();
        let op = &self.operator.1;
        let tenant = match target {
            Target::Own => json!(self.a),
            Target::Other => json!(self.b),
            Target::Platform => Value::Null,
        };
        let created = |reply: Reply| reply.expect(201).body["id"].as_str().unwrap().to_owned();
        Some(match (entity, target) {
            ("Organisation" | "Team", Target::Own | Target::Other) => {
                let maker = if target == Target::Own {
                    &self.admin_a.1
                } else {
                    &self.admin_b.1
                };
                created(
                    c.post(
                        Self::collection(entity),
                        maker,
                        &json!({"name": format!("{entity} row {n}")}),
                    )
                    .await,
                )
            }
            ("AuditEntry", Target::Own | Target::Other) => {
                let maker = if target == Target::Own {
                    &self.admin_a.1
                } else {
                    &self.admin_b.1
                };
                let org = created(
                    c.post(
                        "/api/cortex/organisations",
                        maker,
                        &json!({"name": format!("Audited {n}")}),
                    )
                    .await,
                );
                let entries = c
                    .get(&format!("/api/cortex/audit?entity_id=eq.{org}"), maker)
                    .await
                    .expect(200);
                entries.body["items"][0]["id"].as_str().unwrap().to_owned()
            }
            ("Webhook" | "WebhookDelivery", Target::Own | Target::Other) => {
                let (maker, tenant) = if target == Target::Own {
                    (&self.admin_a.1, self.a)
                } else {
                    (&self.admin_b.1, self.b)
                };
                let hook = created(
                    c.post(
                        "/api/cortex/webhooks",
                        maker,
                        &json!({"url": format!("https://hooks.example.com/{n}"), "events": ["*"]}),
                    )
                    .await,
                );
                if entity == "Webhook" {
                    return Some(hook);
                }
                // An attempt, as the delivery job records it.
                let id = Uuid::now_v7();
                let sql = c.owner.pick(
                    "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, \
                     attempt, outcome, status, latency_ms, response, at) \
                     VALUES ($1, $2, $3, $4, 'crm.deal_won', 1, 'delivered', 204, 12, NULL, $5)",
                    "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type, \
                     attempt, outcome, status, latency_ms, response, at) \
                     VALUES (?1, ?2, ?3, ?4, 'crm.deal_won', 1, 'delivered', 204, 12, NULL, ?5)",
                );
                c.owner
                    .execute(
                        sql,
                        vec![
                            SqlValue::Uuid(id),
                            SqlValue::Uuid(tenant),
                            SqlValue::Uuid(hook.parse().unwrap()),
                            SqlValue::Uuid(Uuid::now_v7()),
                            SqlValue::DateTime(prefiq_runtime::db::now()),
                        ],
                    )
                    .await
                    .unwrap();
                id.to_string()
            }
            ("Notification", Target::Own | Target::Other) => {
                // As the server makes one: member A's in tenant A, admin B's in tenant B.
                let (owner, tenant) = if target == Target::Own {
                    (self.member_a.0, self.a)
                } else {
                    (self.admin_b.0, self.b)
                };
                let id = Uuid::now_v7();
                let sql = c.owner.pick(
                    "INSERT INTO notifications (id, tenant_id, owner_id, kind, title, \"read\", created_at, updated_at, version) \
                     VALUES ($1, $2, $3, 'webhook_disabled', 'A webhook was disabled', false, $4, $4, 1)",
                    "INSERT INTO notifications (id, tenant_id, owner_id, kind, title, \"read\", created_at, updated_at, version) \
                     VALUES (?1, ?2, ?3, 'webhook_disabled', 'A webhook was disabled', 0, ?4, ?4, 1)",
                );
                c.owner
                    .execute(
                        sql,
                        vec![
                            SqlValue::Uuid(id),
                            SqlValue::Uuid(tenant),
                            SqlValue::Uuid(owner),
                            SqlValue::DateTime(prefiq_runtime::db::now()),
                        ],
                    )
                    .await
                    .unwrap();
                id.to_string()
            }
            ("AppRegistration", Target::Platform) => {
                let listed = c
                    .get("/api/cortex/app-registrations?app=eq.crm", op)
                    .await
                    .expect(200);
                match listed.body["items"][0]["id"].as_str() {
                    Some(id) => id.to_owned(),
                    None => created(
                        c.post(
                            "/api/cortex/app-registrations",
                            op,
                            &json!({"app": "crm", "app_version": "0.1.0"}),
                        )
                        .await,
                    ),
                }
            }
            ("Role", _) => created(
                c.post(
                    "/api/cortex/roles",
                    op,
                    &json!({"name": format!("row-{n}"), "tenant_id": tenant}),
                )
                .await,
            ),
            ("Setting", _) => created(
                c.post(
                    "/api/cortex/settings",
                    op,
                    &json!({"key": "branding.name", "value": format!("\"Row {n}\""), "for_tenant": tenant}),
                )
                .await,
            ),
            ("User", _) => created(
                c.post(
                    "/api/cortex/users",
                    op,
                    &json!({
                        "email": format!("row{n}@example.com"),
                        "name": "Row",
                        "tenant_id": if target == Target::Platform { json!(self.a) } else { tenant },
                        "roles": ["member"],
                        "operator": target == Target::Platform,
                    }),
                )
                .await,
            ),
            ("Tenant", Target::Own) => match actor {
                Actor::Operator => DEFAULT_TENANT.to_string(),
                _ => self.a.to_string(),
            },
            ("Tenant", Target::Other) => created(
                c.post(
                    "/api/cortex/tenants",
                    op,
                    &json!({"name": format!("other {n}"), "slug": format!("other-{n}")}),
                )
                .await,
            ),
            _ => return None,
        })
    }
}

async fn listed(c: &Cortex, collection: &str, token: &str, id: &str) -> char {
    // The audit log grows with every write: its newest entries first.
    let sort = if collection.ends_with("/audit") {
        "&sort=-at"
    } else {
        ""
    };
    let reply = c
        .get(&format!("{collection}?limit=1000{sort}"), token)
        .await;
    match reply.status.as_u16() {
        403 => 'x',
        200 => {
            let items = reply.body["items"].as_array().unwrap();
            if items.iter().any(|r| r["id"] == id) {
                '+'
            } else {
                '-'
            }
        }
        other => panic!("listing {collection}: {other} {}", reply.text),
    }
}

async fn entity_matrix(w: &World) {
    let c = &w.cortex;
    // Every entity Cortex has is covered.
    for entity in cortex::generated::CATALOG.entities {
        assert!(
            ENTITIES.contains(&entity.name),
            "the scope matrix has no expectations for {}: add them",
            entity.name
        );
    }
    let mut checked = 0;
    for entity in ENTITIES {
        let collection = World::collection(entity);
        for target in TARGETS {
            // The row is made once per target (per actor where the target depends on it) and
            // made again after an actor deletes it.
            let mut row: Option<String> = None;
            for actor in ACTORS {
                let Some(expected) = expected(entity, target, actor) else {
                    continue;
                };
                if row.is_none() || entity == "Tenant" && target == Target::Own {
                    row = w.make(entity, target, actor).await;
                }
                let id = row.clone().expect("a row");
                let item = format!("{collection}/{id}");
                let token = w.token(actor);
                let parts: Vec<&str> = expected.split(' ').collect();
                let what = format!("{actor:?} on {target:?} {entity}");
                let list = listed(c, collection, token, &id).await;
                assert_eq!(list.to_string(), parts[0], "{what}: list");
                let got = c.get(&item, token).await;
                assert_eq!(
                    got.status.as_u16().to_string(),
                    parts[1],
                    "{what}: get {}",
                    got.text
                );
                let patched = c
                    .call(Method::PATCH, &item, token, Some(&json!({})), None)
                    .await;
                assert_eq!(
                    patched.status.as_u16().to_string(),
                    parts[2],
                    "{what}: update {}",
                    patched.text
                );
                let deleted = c.call(Method::DELETE, &item, token, None, None).await;
                assert_eq!(
                    deleted.status.as_u16().to_string(),
                    parts[3],
                    "{what}: delete {}",
                    deleted.text
                );
                if deleted.status == 204 {
                    row = None;
                }
                checked += 4;
            }
            if row.is_none() {
                // Some creations need the row there (one registration per app).
                let _ = w.make(entity, target, Actor::Operator).await;
            }
            for actor in ACTORS {
                let Some((status, body)) = expected_create(w, entity, target, actor) else {
                    continue;
                };
                let made = c.post(collection, w.token(actor), &body).await;
                assert_eq!(
                    made.status.as_u16(),
                    status,
                    "{actor:?} creates {entity} in {target:?}: {}",
                    made.text
                );
                checked += 1;
                if made.status != 201 {
                    continue;
                }
                // A tenant's administrator who names no tenant (or null) writes in their own.
                if actor == Actor::AdminA {
                    for member in ["tenant_id", "for_tenant"] {
                        if let Some(tenant) = made.body.get(member) {
                            assert_eq!(tenant, &json!(w.a), "{entity} lands in tenant A");
                        }
                    }
                }
                if matches!(entity, "Role" | "Setting" | "User" | "Tenant") {
                    let id = made.body["id"].as_str().unwrap();
                    c.call(
                        Method::DELETE,
                        &format!("{collection}/{id}"),
                        &w.operator.1,
                        None,
                        None,
                    )
                    .await
                    .expect(204);
                }
            }
        }
    }
    eprintln!(
        "scope matrix: {checked} checks over {} entities",
        ENTITIES.len()
    );
    assert!(checked > 150, "the matrix ran ({checked} checks)");
}

/// What a tenant's administrator might try on another tenant, or on the platform, each refused
/// and each leaving nothing changed.
async fn a_tenant_administrator_stays_in_their_tenant(w: &World) {
    let c = &w.cortex;
    let admin = &w.admin_a.1;
    for (token, operator) in [(admin, false), (&w.operator.1, true)] {
        let me = c.get("/api/cortex/me", token).await.expect(200);
        assert_eq!(me.body["operator"], operator, "{}", me.text);
    }
    let (victim, _) = c.user("victim-b@example.com", w.b, &["admin"]).await;
    // Filters, or groups and forged references never reach another tenant's users.
    for query in [
        format!("tenant_id=eq.{}", w.b),
        format!("or=(tenant_id.eq.{},email.eq.victim-b@example.com)", w.b),
        "email=eq.victim-b@example.com".to_owned(),
        format!("tenant_id=in.({},{})", w.a, w.b),
    ] {
        let listed = c
            .get(&format!("/api/cortex/users?{query}"), admin)
            .await
            .expect(200);
        let items = listed.body["items"].as_array().unwrap();
        assert!(
            items.iter().all(|u| u["tenant_id"] == json!(w.a)),
            "{query}: {}",
            listed.text
        );
    }
    let item = format!("/api/cortex/users/{victim}");
    c.get(&item, admin).await.expect(404);
    c.call(
        Method::PATCH,
        &item,
        admin,
        Some(&json!({"tenant_id": w.a})),
        None,
    )
    .await
    .expect(404);
    // Nothing of its own may name another tenant or the platform's powers.
    let own = format!("/api/cortex/users/{}", w.admin_a.0);
    for patch in [
        json!({"operator": true}),
        json!({"tenants": [w.b]}),
        json!({"tenant_id": w.b}),
    ] {
        let refused = c
            .call(Method::PATCH, &own, admin, Some(&patch), None)
            .await
            .expect(403);
        assert_eq!(refused.headers["content-type"], "application/problem+json");
    }
    // The tenant's own row: no deactivating, no switching apps off, for it or another.
    for tenant in [w.a, w.b] {
        for patch in [json!({"active": false}), json!({"disabled_apps": ["crm"]})] {
            c.call(
                Method::PATCH,
                &format!("/api/cortex/tenants/{tenant}"),
                admin,
                Some(&patch),
                None,
            )
            .await
            .expect(403);
        }
    }
    // A platform setting, even for its own tenant.
    let refused = c
        .post(
            "/api/cortex/settings",
            admin,
            &json!({"key": "login.max-failures", "value": "3", "for_tenant": w.a}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // The roles another tenant works with, and the platform's defaults, stay as they were.
    let b_roles = c
        .get(
            &format!("/api/cortex/roles?tenant_id=eq.{}&name=eq.member", w.b),
            &w.admin_b.1,
        )
        .await
        .expect(200);
    let b_member = b_roles.body["items"][0].clone();
    let a_member = c
        .get(
            &format!("/api/cortex/roles?tenant_id=eq.{}&name=eq.member", w.a),
            admin,
        )
        .await
        .expect(200)
        .body["items"][0]
        .clone();
    c.call(
        Method::PATCH,
        &format!("/api/cortex/roles/{}", a_member["id"].as_str().unwrap()),
        admin,
        Some(&json!({"permissions": ["crm.*"]})),
        None,
    )
    .await
    .expect(200);
    let after = c
        .get(
            &format!("/api/cortex/roles/{}", b_member["id"].as_str().unwrap()),
            &w.admin_b.1,
        )
        .await
        .expect(200);
    assert_eq!(
        after.body["permissions"], b_member["permissions"],
        "one tenant's grants never change another's"
    );
    c.call(
        Method::PATCH,
        &format!("/api/cortex/roles/{}", a_member["id"].as_str().unwrap()),
        admin,
        Some(&json!({"permissions": a_member["permissions"]})),
        None,
    )
    .await
    .expect(200);
    let platform_member = c
        .get("/api/cortex/roles?tenant_id=is.null&name=eq.member", admin)
        .await
        .expect(200)
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        Method::PATCH,
        &format!("/api/cortex/roles/{platform_member}"),
        admin,
        Some(&json!({"permissions": ["*"]})),
        None,
    )
    .await
    .expect(403);
    // Its administrators stay administrators of A alone: B's data is not theirs.
    c.get("/api/crm/companies", admin).await.expect(200);
    let b_company = c
        .post(
            "/api/crm/companies",
            &w.admin_b.1,
            &json!({"name": "B's own"}),
        )
        .await
        .expect(201);
    c.get(
        &format!(
            "/api/crm/companies/{}",
            b_company.body["id"].as_str().unwrap()
        ),
        admin,
    )
    .await
    .expect(404);
}

/// What a platform operator does to a tenant's rows shows in that tenant's audit log, as well
/// as the operator's own.
async fn an_operator_leaves_a_trace_in_the_tenant(w: &World) {
    let c = &w.cortex;
    let (user, _) = c.user("traced-b@example.com", w.b, &["member"]).await;
    c.call(
        Method::PATCH,
        &format!("/api/cortex/users/{user}"),
        &w.operator.1,
        Some(&json!({"name": "Renamed by the platform"})),
        None,
    )
    .await
    .expect(200);
    for token in [&w.admin_b.1, &w.operator.1] {
        let entries = c
            .get(
                &format!("/api/cortex/audit?entity_id=eq.{user}&action=eq.update"),
                token,
            )
            .await
            .expect(200);
        let entry = entries.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["changes"]["name"]["to"] == "Renamed by the platform")
            .unwrap_or_else(|| panic!("the change is in this log: {}", entries.text));
        assert_eq!(entry["actor_user"], json!(w.operator.0));
    }
    // Tenant A's log shows nothing of it.
    let a_log = c
        .get(
            &format!("/api/cortex/audit?entity_id=eq.{user}"),
            &w.admin_a.1,
        )
        .await
        .expect(200);
    assert_eq!(a_log.body["items"], json!([]));
}

/// A signed-in browser of `email`.
async fn session(c: &Cortex, email: &str) -> reqwest::Client {
    let client = browser();
    c.sign_in(&client, email, common::ADMIN_PASSWORD)
        .await
        .expect(303);
    client
}

/// Each admin page and form for each actor: what it may open and do, and that it can do
/// nothing more.
async fn admin_pages_and_forms(w: &World) {
    let c = &w.cortex;
    let (victim_b, _) = c.user("page-victim-b@example.com", w.b, &["member"]).await;
    let (own_member, own_member_token) =
        c.user("page-member-a@example.com", w.a, &["member"]).await;
    let (operator_in_a, _) = c
        .user("page-operator-a@example.com", w.a, &["member"])
        .await;
    c.call(
        Method::PATCH,
        &format!("/api/cortex/users/{operator_in_a}"),
        &w.operator.1,
        Some(&json!({"operator": true})),
        None,
    )
    .await
    .expect(200);
    let browsers = [
        (Actor::Operator, session(c, common::ADMIN_EMAIL).await),
        (Actor::AdminA, session(c, "admin-a@example.com").await),
        (Actor::MemberA, session(c, "member-a@example.com").await),
    ];
    // Pages: (path, operator, tenant A's administrator, tenant A's member).
    let mut pages: Vec<(String, [u16; 3])> = vec![
        ("/admin".into(), [200, 200, 200]),
        ("/admin/audit".into(), [200, 200, 200]),
        ("/admin/tokens".into(), [200, 200, 200]),
        ("/admin/notifications".into(), [200, 200, 200]),
        ("/admin/grants".into(), [200, 200, 403]),
        ("/admin/grants?scope=platform".into(), [200, 403, 403]),
        ("/admin/clients".into(), [200, 403, 403]),
        ("/admin/keys".into(), [200, 403, 403]),
        ("/admin/jobs".into(), [200, 403, 403]),
        ("/admin/jobs?state=discarded".into(), [200, 403, 403]),
        (format!("/admin/cortex/users/{victim_b}"), [200, 404, 403]),
        (format!("/admin/cortex/users/{own_member}"), [200, 200, 403]),
        (
            format!("/admin/cortex/users/{victim_b}/edit"),
            [200, 404, 403],
        ),
        (format!("/admin/cortex/tenants/{}", w.b), [200, 404, 403]),
        (
            format!("/admin/cortex/tenants/{}/edit", w.a),
            [200, 403, 403],
        ),
        ("/admin/cortex/tenants/new".into(), [200, 403, 403]),
        (
            "/admin/cortex/app-registrations/new".into(),
            [200, 403, 403],
        ),
        ("/admin/cortex/users/new".into(), [200, 200, 403]),
    ];
    for entity in cortex::generated::CATALOG.entities {
        let path = format!("/admin/cortex/{}", entity.plural);
        let expected = match entity.name {
            // Members read what the schemas grant them.
            "AppRegistration" | "Organisation" | "Team" | "Notification" => [200, 200, 200],
            _ => [200, 200, 403],
        };
        pages.push((path, expected));
    }
    for (path, expected) in &pages {
        for ((actor, client), status) in browsers.iter().zip(expected) {
            let got = page(c, client, path).await;
            assert_eq!(
                got.status.as_u16(),
                *status,
                "{actor:?} opens {path}: {}",
                got.text.chars().take(300).collect::<String>()
            );
        }
    }
    // What the pages show a tenant's administrator: their tenant's users only, and no way to
    // the platform's pages.
    let admin_page = page(c, &browsers[1].1, "/admin/cortex/users?limit=200").await;
    assert!(admin_page.text.contains("page-member-a@example.com"));
    assert!(!admin_page.text.contains("page-victim-b@example.com"));
    let dashboard = page(c, &browsers[1].1, "/admin").await;
    assert!(!dashboard.text.contains("/admin/clients"));
    assert!(
        page(c, &browsers[0].1, "/admin")
            .await
            .text
            .contains("/admin/clients")
    );
    // The user form offers a tenant's administrator nothing only operators set.
    let form = page(c, &browsers[1].1, "/admin/cortex/users/new").await;
    assert!(!form.text.contains("name=\"operator\""), "no operator box");
    assert!(
        page(c, &browsers[0].1, "/admin/cortex/users/new")
            .await
            .text
            .contains("name=\"operator\"")
    );

    // Forms, as tenant A's administrator.
    let admin_browser = &browsers[1].1;
    let csrf = hidden(&page(c, admin_browser, "/admin/tokens").await.text, "csrf").unwrap();
    // Another tenant's user's password: not even found.
    submit(
        c,
        admin_browser,
        &format!("/admin/cortex/users/{victim_b}/password"),
        &[("csrf", &csrf), ("password", "a brand new password")],
    )
    .await
    .expect(404);
    // A platform operator's password, in their own tenant: forbidden.
    submit(
        c,
        admin_browser,
        &format!("/admin/cortex/users/{operator_in_a}/password"),
        &[("csrf", &csrf), ("password", "a brand new password")],
    )
    .await
    .expect(403);
    // Their own member's: set, and the member's personal tokens end with it.
    submit(
        c,
        admin_browser,
        &format!("/admin/cortex/users/{own_member}/password"),
        &[("csrf", &csrf), ("password", "a brand new password")],
    )
    .await
    .expect(303);
    c.get("/api/cortex/me", &own_member_token).await.expect(401);
    // Editing another tenant's user through the form.
    submit(
        c,
        admin_browser,
        &format!("/admin/cortex/users/{victim_b}/edit"),
        &[("csrf", &csrf), ("name", "taken over")],
    )
    .await
    .expect(404);
    submit(
        c,
        admin_browser,
        &format!("/admin/cortex/users/{victim_b}/delete"),
        &[("csrf", &csrf)],
    )
    .await
    .expect(404);
    // Making a tenant, or a user of another tenant.
    let made = submit(
        c,
        admin_browser,
        "/admin/cortex/tenants/new",
        &[("csrf", &csrf), ("name", "Mine now"), ("slug", "mine-now")],
    )
    .await;
    assert_eq!(made.status, 403, "{}", made.text);
    let made = submit(
        c,
        admin_browser,
        "/admin/cortex/users/new",
        &[
            ("csrf", &csrf),
            ("email", "planted@example.com"),
            ("name", "Planted"),
            ("tenant_id", &w.b.to_string()),
            ("roles", "admin"),
        ],
    )
    .await;
    assert!(
        [403, 422].contains(&made.status.as_u16()),
        "{}: {}",
        made.status,
        made.text
    );
    // The platform's defaults, OAuth clients and another tenant, through their forms.
    submit(
        c,
        admin_browser,
        "/admin/grants",
        &[
            ("csrf", &csrf),
            ("scope", "platform"),
            ("grant", "member|crm.deal.delete"),
        ],
    )
    .await
    .expect(403);
    submit(
        c,
        admin_browser,
        "/admin/clients",
        &[("csrf", &csrf), ("name", "mine")],
    )
    .await
    .expect(403);
    submit(
        c,
        admin_browser,
        "/admin/tenant",
        &[("csrf", &csrf), ("tenant", &w.b.to_string())],
    )
    .await
    .expect(403);
    let b_users = c
        .get(
            "/api/cortex/users?email=eq.planted@example.com",
            &w.operator.1,
        )
        .await
        .expect(200);
    assert_eq!(b_users.body["items"], json!([]), "nobody was planted");

    // A platform operator registers a client and switches into tenant A, recorded in both
    // tenants' logs.
    let operator_browser = &browsers[0].1;
    let csrf = hidden(
        &page(c, operator_browser, "/admin/tokens").await.text,
        "csrf",
    )
    .unwrap();
    let registered = submit(
        c,
        operator_browser,
        "/admin/clients",
        &[
            ("csrf", &csrf),
            ("name", "reporting"),
            ("tenant", &w.a.to_string()),
            ("roles", "viewer"),
        ],
    )
    .await
    .expect(200);
    assert!(
        registered.text.contains("new-secret"),
        "the secret is shown once"
    );
    let refused = submit(
        c,
        operator_browser,
        "/admin/clients",
        &[
            ("csrf", &csrf),
            ("name", "elsewhere"),
            ("public", "on"),
            ("redirect_uris", "https://evil.example/callback"),
        ],
    )
    .await
    .expect(200);
    assert!(refused.text.contains("is refused"), "{}", refused.text);
    submit(
        c,
        operator_browser,
        "/admin/tenant",
        &[("csrf", &csrf), ("tenant", &w.a.to_string())],
    )
    .await
    .expect(303);
    let now_in_a = page(c, operator_browser, "/admin/cortex/organisations")
        .await
        .expect(200);
    let in_a = c
        .get("/api/cortex/organisations?limit=1000", &w.admin_a.1)
        .await
        .expect(200);
    let first = in_a.body["items"][0]["name"].as_str().unwrap();
    assert!(
        now_in_a.text.contains(first),
        "the operator now sees tenant A's rows"
    );
    for token in [&w.admin_a.1, &w.operator.1] {
        let entries = c
            .get(
                &format!("/api/cortex/audit?entity_id=eq.{}", w.operator.0),
                token,
            )
            .await
            .expect(200);
        assert!(
            entries.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["changes"]["acting_tenant"]["to"] == json!(w.a)),
            "the switch is in this log: {}",
            entries.text
        );
    }
}

/// The merged document says which operations are the platform's.
async fn the_document_names_platform_operations(w: &World) {
    let document = w.cortex.get("/openapi.json", "").await.expect(200).body;
    for (path, method) in [
        ("/api/cortex/tenants", "post"),
        ("/api/cortex/tenants/{id}", "patch"),
        ("/api/cortex/app-registrations/{id}", "delete"),
    ] {
        let operation = &document["paths"][path][method];
        assert_eq!(operation["x-prefiq-scope"], "platform", "{method} {path}");
        assert!(
            operation["description"]
                .as_str()
                .is_some_and(|d| d.contains("platform operators")),
            "{method} {path}"
        );
    }
    assert!(
        document["paths"]["/api/cortex/users"]["post"]
            .get("x-prefiq-scope")
            .is_none()
    );
}

/// How to call a custom operation on a row of a target, and what each actor gets: the row is a
/// deal of the actor's own tenant or of another.
struct CustomCall {
    /// `<app>.<operationId>`, as the catalog names its permission.
    permission: &'static str,
    method: Method,
    /// The path, `{deal}` standing for the row.
    path: &'static str,
    body: Option<Value>,
    /// `[own, other]` per actor: operator, tenant A's administrator, tenant A's member.
    expected: [[u16; 2]; 3],
}

fn custom_calls() -> Vec<CustomCall> {
    vec![
        CustomCall {
            permission: "crm.winDeal",
            method: Method::POST,
            path: "/api/crm/deals/{deal}/win",
            body: Some(json!({})),
            expected: [[200, 404], [200, 404], [200, 404]],
        },
        CustomCall {
            permission: "crm.loseDeal",
            method: Method::POST,
            path: "/api/crm/deals/{deal}/lose",
            body: Some(json!({"reason": "price"})),
            expected: [[200, 404], [200, 404], [200, 404]],
        },
        // Reports and searches have no row to aim at: each reads its caller's tenant only
        // (the isolation test checks what they return), and the target makes no difference.
        CustomCall {
            permission: "crm.pipelineReport",
            method: Method::GET,
            path: "/api/crm/reports/pipeline",
            body: None,
            expected: [[200, 200], [200, 200], [200, 200]],
        },
        CustomCall {
            permission: "crm.searchContacts",
            method: Method::GET,
            path: "/api/crm/contacts/search?q={deal}",
            body: None,
            expected: [[200, 200], [200, 200], [200, 200]],
        },
    ]
}

/// Every custom operation of every installed app, for each actor on a row of its own tenant
/// and of another.
async fn custom_operations(w: &World) {
    let c = &w.cortex;
    let calls = custom_calls();
    for app in cortex::server::installed() {
        for permission in app
            .catalog
            .permissions
            .iter()
            .filter(|p| p.entity.is_none())
        {
            assert!(
                calls.iter().any(|call| call.permission == permission.name),
                "the scope matrix does not call {}: add it to custom_calls",
                permission.name
            );
        }
    }
    // A fresh open deal of the tenant `token` acts in.
    let deal = |token: String| async move {
        let n = unique();
        let company = c
            .post(
                "/api/crm/companies",
                &token,
                &json!({"name": format!("Deals {n}")}),
            )
            .await
            .expect(201);
        c.post(
            "/api/crm/deals",
            &token,
            &json!({"name": format!("Deal {n}"), "company_id": company.body["id"], "amount": "10.00"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned()
    };
    let mut checked = 0;
    for call in &calls {
        for (i, actor) in [Actor::Operator, Actor::AdminA, Actor::MemberA]
            .into_iter()
            .enumerate()
        {
            // The operator's own tenant is the default one; the other is A. For A's actors, B.
            let (own_maker, other_maker) = match actor {
                Actor::Operator => (w.operator.1.clone(), w.admin_a.1.clone()),
                _ => (w.admin_a.1.clone(), w.admin_b.1.clone()),
            };
            for (j, maker) in [own_maker, other_maker].into_iter().enumerate() {
                let row = deal(maker).await;
                let path = call.path.replace("{deal}", &row);
                let reply = c
                    .call(
                        call.method.clone(),
                        &path,
                        w.token(actor),
                        call.body.as_ref(),
                        None,
                    )
                    .await;
                assert_eq!(
                    reply.status.as_u16(),
                    call.expected[i][j],
                    "{actor:?} calls {} on {} tenant's row: {}",
                    call.permission,
                    if j == 0 { "its own" } else { "another" },
                    reply.text
                );
                checked += 1;
            }
        }
    }
    eprintln!("custom operations: {checked} calls");
}

async fn all(backend: Backend, tenancy: common::TenancyMode) {
    let w = World::new(backend, tenancy).await;
    entity_matrix(&w).await;
    a_tenant_administrator_stays_in_their_tenant(&w).await;
    an_operator_leaves_a_trace_in_the_tenant(&w).await;
    custom_operations(&w).await;
    admin_pages_and_forms(&w).await;
    the_document_names_platform_operations(&w).await;
    w.cortex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_and_tenant_scopes_on_sqlite() {
    all(Backend::Sqlite, common::TenancyMode::Rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_and_tenant_scopes_on_postgres() {
    all(Backend::Postgres, common::TenancyMode::Rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_and_tenant_scopes_on_postgres_with_a_schema_per_tenant() {
    all(Backend::Postgres, common::TenancyMode::Schemas).await;
}
