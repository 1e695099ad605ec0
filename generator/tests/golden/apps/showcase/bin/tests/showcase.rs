//! The showcase app over HTTP on SQLite and PostgreSQL: reserved words as table and column names,
//! client-chosen keys, self-references, recursive JSON, unions and exact decimals sent as numbers.

use prefiq_testkit::{Backend, Server};
use serde_json::json;

async fn start(backend: Backend) -> Server {
    Server::start(
        backend,
        "showcase",
        app_showcase::generated::MIGRATIONS,
        |db| app_showcase::router(app_showcase::services::Service::new(db.clone()), db),
    )
    .await
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = super::start(super::Backend::Sqlite).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = super::start(super::Backend::Postgres).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )*
        }
    };
}

on_both_backends!(
    reserved_words_work_everywhere,
    keys_references_and_recursion,
    numbers_formats_and_unions,
    secrets_are_redacted_in_the_audit_log,
    a_bounded_decimal_string_is_published_as_the_server_checks_it
);

/// The document states a decimal string's bounds in its pattern (JSON Schema's `minimum` and
/// `maximum` apply to numbers only): it admits exactly the values the server stores.
async fn a_bounded_decimal_string_is_published_as_the_server_checks_it(server: &Server) {
    let document: serde_json::Value =
        serde_json::from_str(app_showcase::generated::OPENAPI).unwrap();
    let pattern = document["components"]["schemas"]["Measurement"]["properties"]["tare"]["pattern"]
        .as_str()
        .unwrap();
    let published = regex::Regex::new(pattern).unwrap();
    let mut admitted = 0;
    for tare in [
        "-5", "-5.00", "-5.01", "-6", "-0", "0", "00", "7.1", "250", "250.5", "250.50", "250.51",
        "0250.5", "251", "1000", "9999.99", "12.345", "1e2", "+3", ".5", "",
    ] {
        let body = json!({"reading": 1, "taken_on": "2026-11-25", "label": "x", "tare": tare,
            "shape": {"shape": "circle", "name": "c", "radius": 1}});
        let reply = server.post("/api/showcase/measurements", &body).await;
        let stored = reply.status == 201;
        assert!(stored || reply.status == 422, "{tare}: {}", reply.status);
        assert_eq!(
            published.is_match(tare),
            stored,
            "`{tare}` against {pattern}"
        );
        admitted += usize::from(stored);
    }
    assert_eq!(
        admitted, 10,
        "the bounds admit some values and refuse others"
    );
}

async fn secrets_are_redacted_in_the_audit_log(server: &Server) {
    server
        .create(
            "categories",
            json!({ "code": "hooks", "label": "Hooks", "webhook_secret": "s3cr3t-one" }),
        )
        .await;
    server
        .patch(
            "/api/showcase/categories/hooks",
            &json!({ "webhook_secret": "s3cr3t-two", "label": "Webhooks" }),
            Some("\"1\""),
        )
        .await
        .expect(200);
    let rows = server
        .db
        .fetch_all(
            "SELECT action, changes FROM prefiq_audit WHERE entity = 'Category' AND entity_id = 'hooks' ORDER BY at",
            vec![],
        )
        .await
        .unwrap();
    let entries: Vec<(String, serde_json::Value)> = rows
        .iter()
        .map(|r| (r.req(0).unwrap(), r.req_json(1).unwrap()))
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].1["webhook_secret"], json!({"to": "[redacted]"}));
    assert_eq!(
        entries[1].1["webhook_secret"],
        json!({"from": "[redacted]", "to": "[redacted]"})
    );
    assert_eq!(
        entries[1].1["label"],
        json!({"from": "Hooks", "to": "Webhooks"})
    );
    let everything = format!("{entries:?}");
    assert!(
        !everything.contains("s3cr3t"),
        "no secret value is recorded"
    );
}

async fn reserved_words_work_everywhere(server: &Server) {
    let body = json!({
        "type": "t1", "user": "u1", "self": "s", "async": true, "default": 5, "order": 3,
        "where": "w", "select": "s", "fn": "f", "match": "m", "class": "c", "function": "fn",
        "interface": "i", "enum": "impl", "firstName": "Ada", "with-dash": "d"
    });
    let created = server.create("orders", body.clone()).await;
    assert_eq!(created["id"], 1, "an identity key numbers rows");
    for (name, value) in body.as_object().unwrap() {
        assert_eq!(&created[name], value, "`{name}` round-trips");
    }
    server
        .create("orders", json!({ "type": "t2", "user": "u2", "order": 1 }))
        .await;
    let (items, _) = server.all_pages("orders", "type=eq.t1&default=gt.4").await;
    assert_eq!(items.len(), 1);
    let (items, _) = server.all_pages("orders", "sort=-order").await;
    let orders: Vec<i64> = items.iter().map(|o| o["order"].as_i64().unwrap()).collect();
    assert_eq!(orders, vec![3, 1]);
    let patched = server
        .patch(
            "/api/showcase/orders/1",
            &json!({ "order": 9, "enum": null }),
            Some("\"1\""),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(patched["order"], 9);
    assert!(patched.get("enum").is_none());
    server
        .post(
            "/api/showcase/orders",
            &json!({ "type": "t3", "user": "u1" }),
        )
        .await
        .problem(409);
    server
        .delete("/api/showcase/orders/1", None)
        .await
        .expect(204);
    server.get("/api/showcase/orders/1").await.problem(404);
    server.get("/api/showcase/orders/one").await.problem(404);
}

async fn keys_references_and_recursion(server: &Server) {
    let outline = json!({ "label": "a", "first_child": { "label": "b", "children": [{ "label": "c", "children": [] }] }, "children": [] });
    let root = server.create("categories", json!({ "code": "root", "label": "Root", "outline": outline, "metadata": { "owner": "ops" } })).await;
    assert_eq!(root["outline"], outline, "recursive JSON round-trips");
    assert_eq!(root["metadata"], json!({ "owner": "ops" }));
    let child = server
        .create(
            "categories",
            json!({ "code": "child", "label": "Child", "parent_code": "root" }),
        )
        .await;
    assert_eq!(child["metadata"], json!({}), "a map default");
    server
        .post(
            "/api/showcase/categories",
            &json!({ "code": "root", "label": "Again" }),
        )
        .await
        .problem(409);
    server
        .post(
            "/api/showcase/categories",
            &json!({ "code": "Not A Code", "label": "x" }),
        )
        .await
        .problem(422);
    server
        .post(
            "/api/showcase/categories",
            &json!({ "code": "orphan", "label": "x", "parent_code": "nope" }),
        )
        .await
        .problem(409);
    let (items, _) = server.all_pages("categories", "parent_code=eq.root").await;
    assert_eq!(items.len(), 1);
    // Deleting the parent sets the child's reference to null (on-delete: set-null).
    server
        .delete("/api/showcase/categories/root", None)
        .await
        .expect(204);
    let child = server
        .get("/api/showcase/categories/child")
        .await
        .expect(200)
        .body;
    assert!(child.get("parent_code").is_none(), "{child}");
}

async fn numbers_formats_and_unions(server: &Server) {
    let created = server
        .create(
            "measurements",
            json!({
                "reading": 12.345,
                "taken_on": "2026-11-25",
                "shape": { "shape": "circle", "name": "c1", "radius": 2.5 },
                "label": ["a", "b"],
                "samples": [1.5, null, 2],
                "unit": "SI",
                "device_ip": "10.0.0.1"
            }),
        )
        .await;
    assert_eq!(
        created["reading"],
        json!(12.345),
        "a decimal sent as a number comes back as that number"
    );
    assert_eq!(created["status"], "in-progress");
    assert_eq!(created["count"], 5);
    assert_eq!(created["ratio"], json!(0.5));
    assert_eq!(
        created["shape"],
        json!({ "shape": "circle", "name": "c1", "radius": 2.5 })
    );
    assert_eq!(created["label"], json!(["a", "b"]));
    server.create("measurements", json!({ "reading": -3, "taken_on": "2026-11-24", "label": 7, "shape": { "shape": "rectangle", "name": "r", "width": 1, "height": 2 } })).await;
    for bad in [
        json!({ "reading": 1.2345, "taken_on": "2026-11-25", "label": "x", "shape": { "shape": "circle", "name": "c", "radius": 1 } }),
        json!({ "reading": 1, "taken_on": "2026-11-25", "label": "x", "count": 7, "shape": { "shape": "circle", "name": "c", "radius": 1 } }),
        json!({ "reading": 1, "taken_on": "2026-11-25", "label": "x", "shape": { "shape": "triangle", "name": "c" } }),
        json!({ "reading": 1, "taken_on": "not a date", "label": "x", "shape": { "shape": "circle", "name": "c", "radius": 1 } }),
        json!({ "reading": 1, "taken_on": "2026-11-25", "label": "x", "device_ip": "999.1.1.1", "shape": { "shape": "circle", "name": "c", "radius": 1 } }),
    ] {
        server
            .post("/api/showcase/measurements", &bad)
            .await
            .problem(422);
    }
    let (items, _) = server
        .all_pages("measurements", "reading=gt.0&sort=-reading")
        .await;
    assert_eq!(items.len(), 1);
    let (items, _) = server.all_pages("measurements", "sort=reading").await;
    let readings: Vec<f64> = items
        .iter()
        .map(|m| m["reading"].as_f64().unwrap())
        .collect();
    assert_eq!(readings, vec![-3.0, 12.345]);
}
