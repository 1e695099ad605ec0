//! End-to-end tests of the generated __APP__ service over real HTTP, against SQLite and
//! PostgreSQL. `cargo xtask new-app` wrote this file from the LMS example; it is yours to extend.

use prefiq_testkit::{Backend, Server};
use serde_json::{Value, json};

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

on_both_backends!(
    courses_round_trip,
    invalid_input_is_a_problem,
    lessons_are_ordered_and_unique_per_course,
    references_between_courses_lessons_and_enrollments_hold,
);

const BASE: &str = "/api/__APP__";

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn course(server: &Server, code: &str) -> Value {
    server
        .create(
            "courses",
            json!({ "code": code, "title": format!("Course {code}") }),
        )
        .await
}

async fn courses_round_trip(server: &Server) {
    let created = server
        .post(
            &format!("{BASE}/courses"),
            &json!({ "code": "RUST-101", "title": "Rust", "price": "19.90", "tags": ["rust"] }),
        )
        .await
        .expect(201);
    assert_eq!(created.body["level"], "beginner", "defaults apply");
    assert_eq!(created.body["published"], false);
    assert_eq!(created.body["price"], "19.90", "decimals are exact");
    let url = format!("{BASE}/courses/{}", id(&created.body));
    assert_eq!(created.header("location"), Some(url.as_str()));

    let fetched = server.get(&url).await.expect(200);
    assert_eq!(fetched.body, created.body);
    let etag = fetched.header("etag").expect("an ETag").to_owned();

    let patched = server
        .patch(
            &url,
            &json!({ "published": true, "summary": null }),
            Some(&etag),
        )
        .await
        .expect(200);
    assert_eq!(patched.body["published"], true);
    assert_eq!(patched.body["version"], 2);
    // A second writer with the old ETag is refused, not silently overwritten.
    server
        .patch(&url, &json!({ "title": "Lost update" }), Some(&etag))
        .await
        .problem(412);

    let listed = server
        .get(&format!("{BASE}/courses?published=eq.true&count=exact"))
        .await
        .expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    server.delete(&url, None).await.expect(204);
    server.get(&url).await.problem(404);
}

async fn invalid_input_is_a_problem(server: &Server) {
    let problem = server
        .post(
            &format!("{BASE}/courses"),
            &json!({ "code": "rust 101", "title": "", "level": "expert" }),
        )
        .await
        .problem(422);
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .expect("an error per field")
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    for pointer in ["/code", "/title", "/level"] {
        assert!(pointers.contains(&pointer), "{pointer} in {problem}");
    }
    server
        .get(&format!("{BASE}/courses?sort=summary"))
        .await
        .problem(400);
    course(server, "DUP-001").await;
    server
        .post(
            &format!("{BASE}/courses"),
            &json!({ "code": "DUP-001", "title": "Again" }),
        )
        .await
        .problem(409);
}

async fn lessons_are_ordered_and_unique_per_course(server: &Server) {
    let rust = id(&course(server, "RUST-102").await);
    for (position, title) in [(2, "Borrowing"), (1, "Ownership"), (3, "Traits")] {
        server
            .create(
                "lessons",
                json!({ "course_id": rust, "position": position, "title": title }),
            )
            .await;
    }
    // Two lessons cannot share a position in one course.
    server
        .post(
            &format!("{BASE}/lessons"),
            &json!({ "course_id": rust, "position": 2, "title": "Clash" }),
        )
        .await
        .problem(409);
    let listed = server
        .get(&format!("{BASE}/lessons?course_id=eq.{rust}&sort=position"))
        .await
        .expect(200);
    let titles: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Ownership", "Borrowing", "Traits"]);
}

async fn references_between_courses_lessons_and_enrollments_hold(server: &Server) {
    let sql = id(&course(server, "SQL-201").await);
    let lesson = server
        .create(
            "lessons",
            json!({ "course_id": sql, "position": 1, "title": "Joins" }),
        )
        .await;
    // An enrollment in a course that does not exist is a conflict.
    server
        .post(
            &format!("{BASE}/enrollments"),
            &json!({ "course_id": "01900000-0000-7000-8000-0000000000ff", "learner_email": "a@example.com" }),
        )
        .await
        .problem(409);
    let enrollment = server
        .create(
            "enrollments",
            json!({ "course_id": sql, "learner_email": "ada@example.com", "last_lesson_id": id(&lesson) }),
        )
        .await;
    // One enrollment per learner and course.
    server
        .post(
            &format!("{BASE}/enrollments"),
            &json!({ "course_id": sql, "learner_email": "ada@example.com" }),
        )
        .await
        .problem(409);
    // A course with enrollments cannot be deleted (on-delete: restrict).
    server
        .delete(&format!("{BASE}/courses/{sql}"), None)
        .await
        .problem(409);
    // Deleting the lesson clears the enrollment's progress (on-delete: set-null).
    server
        .delete(&format!("{BASE}/lessons/{}", id(&lesson)), None)
        .await
        .expect(204);
    let url = format!("{BASE}/enrollments/{}", id(&enrollment));
    let after = server.get(&url).await.expect(200);
    assert_eq!(after.body["last_lesson_id"], Value::Null);
    // The rule `enrollment-completed-on` (core/validation/enrollment.yaml): a completion date
    // goes with the status `completed` and only with it, on the merged result of a patch.
    let problem = server
        .patch(&url, &json!({ "status": "completed" }), None)
        .await
        .problem(422);
    assert_eq!(
        problem["errors"][0]["pointer"], "/completed_on",
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["keyword"], "x-prefiq-rules");
    let done = server
        .patch(
            &url,
            &json!({ "status": "completed", "completed_on": "2026-11-30" }),
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(done["completed_on"], "2026-11-30");
    server
        .patch(&url, &json!({ "status": "active" }), None)
        .await
        .problem(422);
    server
        .post(
            &format!("{BASE}/enrollments"),
            &json!({ "course_id": sql, "learner_email": "bo@example.com", "completed_on": "2026-11-30" }),
        )
        .await
        .problem(422);
    // Once the enrollment is gone, the course and its lessons go (on-delete: cascade).
    server.delete(&url, None).await.expect(204);
    server
        .delete(&format!("{BASE}/courses/{sql}"), None)
        .await
        .expect(204);
}
