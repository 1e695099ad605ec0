//! End-to-end tests of the generated __APP__ service over real HTTP, against SQLite and
//! PostgreSQL. `cargo xtask new-app` wrote this file with the example schema; replace both.

use prefiq_testkit::{Backend, Server};
use serde_json::json;

/// The __APP__ service with its hand-written services, on `backend`.
async fn start(backend: Backend) -> Server {
    Server::start(backend, "__APP__", __CRATE__::generated::MIGRATIONS, |db| {
        __CRATE__::router(__CRATE__::services::Service::new(db.clone()), db)
    })
    .await
    // Every response must match the OpenAPI document: status, media type and body.
    .with_contract(&prefiq_testkit::tools::repo_root().join("apps/__APP__/core/openapi.json"))
}

/// Runs a scenario against both databases, as two tests.
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

on_both_backends!(projects_and_tasks_round_trip);

async fn projects_and_tasks_round_trip(server: &Server) {
    let project = server.create("projects", json!({ "name": "Launch" })).await;
    let project_id = project["id"].as_str().unwrap();
    let task = server
        .create(
            "tasks",
            json!({ "project_id": project_id, "title": "Announce", "due_on": "2027-01-15" }),
        )
        .await;
    assert_eq!(task["done"], false, "defaults apply");
    // A task of a project that does not exist is a conflict; a bad e-mail is invalid.
    server
        .post(
            "/api/__APP__/tasks",
            &json!({ "project_id": "01900000-0000-7000-8000-0000000000ff", "title": "Orphan" }),
        )
        .await
        .problem(409);
    server
        .post(
            "/api/__APP__/tasks",
            &json!({ "project_id": project_id, "title": "X", "assignee": "not an e-mail" }),
        )
        .await
        .problem(422);
    // The rule `task-assigned-due` (core/validation/task.yaml): an assigned task needs a due date.
    let problem = server
        .post(
            "/api/__APP__/tasks",
            &json!({ "project_id": project_id, "title": "Y", "assignee": "bo@example.com" }),
        )
        .await
        .problem(422);
    assert_eq!(problem["errors"][0]["pointer"], "/due_on", "{problem}");
    assert_eq!(problem["errors"][0]["keyword"], "x-prefiq-rules");
    // Deleting the project deletes its tasks.
    server
        .delete(&format!("/api/__APP__/projects/{project_id}"), None)
        .await
        .expect(204);
    server
        .get(&format!("/api/__APP__/tasks/{}", task["id"].as_str().unwrap()))
        .await
        .problem(404);
}
