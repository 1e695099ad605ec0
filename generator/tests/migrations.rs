//! Migrations by diff, end to end: a `lab` app goes through a sequence of schema edits covering
//! every kind of change (two renames and SQLite table rebuilds among them). After each edit,
//! `prefiq migrate diff` writes the migration and it is applied to SQLite and PostgreSQL databases
//! full of data; every surviving row must keep its values. At the end, the migrated database must
//! equal one created fresh from the final schema, and `prefiq migrate drift` must find nothing.

use std::path::Path;
use std::process::Command;

use prefiq::introspect;
use prefiq_runtime::Sql;
use prefiq_runtime::db::{Db, PoolOptions, SqlValue};
use prefiq_testkit::{Backend, Database};

const AUTHOR: &str = "title: Author
type: object
x-prefiq: {tenancy: global, scope: platform}
required: [name]
properties:
  id: {type: string, format: uuid, readOnly: true, x-prefiq: {primary-key: true}}
  name: {type: string, minLength: 1}
  email: {type: [string, \"null\"], format: email, x-prefiq: {unique: true}}
  rating: {type: [integer, \"null\"], format: int32}
  status: {type: string, enum: [draft, active], default: draft}
";

const BOOK: &str = "title: Book
type: object
x-prefiq: {tenancy: global, scope: platform}
required: [title, author_id]
properties:
  id: {type: string, format: uuid, readOnly: true, x-prefiq: {primary-key: true}}
  title: {type: string}
  author_id:
    type: string
    format: uuid
    x-prefiq: {references: {entity: Author, on-delete: cascade}}
  price: {type: [string, \"null\"], format: decimal, x-prefiq: {precision: 10, scale: 2}}
  tags: {type: array, items: {type: string}, default: []}
  dimensions:
    type: [object, \"null\"]
    properties:
      width: {type: number}
      height: {type: number}
";

const REVIEW: &str = "title: Review
type: object
x-prefiq: {tenancy: global, scope: platform}
required: [book_id, stars]
properties:
  id: {type: string, format: uuid, readOnly: true, x-prefiq: {primary-key: true}}
  book_id:
    type: string
    format: uuid
    x-prefiq: {references: {entity: Book, on-delete: cascade}}
  stars: {type: integer, format: int32, minimum: 1, maximum: 5}
  body: {type: [string, \"null\"]}
";

const A1: &str = "01900000-0000-7000-8000-0000000000a1";
const A2: &str = "01900000-0000-7000-8000-0000000000a2";
const B1: &str = "01900000-0000-7000-8000-0000000000b1";
const B2: &str = "01900000-0000-7000-8000-0000000000b2";
const B3: &str = "01900000-0000-7000-8000-0000000000b3";
const R1: &str = "01900000-0000-7000-8000-0000000000c1";

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        lab.write("author.yaml", AUTHOR);
        lab.write("book.yaml", BOOK);
        lab
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn schema(&self, file: &str) -> std::path::PathBuf {
        self.root().join("apps/lab/core/schema").join(file)
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::create_dir_all(self.root().join("apps/lab/core/schema")).unwrap();
        std::fs::write(self.schema(file), text).unwrap();
    }

    /// Replaces `from` by `to` in a schema file (the edit must apply).
    fn edit(&self, file: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.schema(file)).unwrap();
        assert!(text.contains(from), "{file} has no `{from}`");
        self.write(file, &text.replacen(from, to, 1));
    }

    fn prefiq(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_prefiq"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// `prefiq migrate diff name`; the migration it wrote (both dialects).
    fn diff(&self, name: &str, allow: bool) -> String {
        let mut args = vec!["migrate", "diff", name];
        if allow {
            args.push("--allow-destructive");
        }
        let (ok, text) = self.prefiq(&args);
        assert!(ok, "migrate diff {name} failed:\n{text}");
        let folder = self.root().join("apps/lab/bin/migrations");
        let file = std::fs::read_dir(folder.join("postgres"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|f| f.contains(name));
        let file = file.unwrap_or_else(|| panic!("no migration named {name}:\n{text}"));
        let postgres = std::fs::read_to_string(folder.join("postgres").join(&file)).unwrap();
        let sqlite = std::fs::read_to_string(folder.join("sqlite").join(&file)).unwrap();
        format!("{postgres}\n{sqlite}")
    }

    fn refused(&self, name: &str) -> String {
        let (ok, text) = self.prefiq(&["migrate", "diff", name]);
        assert!(
            !ok,
            "a destructive diff must be refused without --allow-destructive:\n{text}"
        );
        text
    }
}

async fn apply(lab: &Lab, db: &Db) {
    let folder = prefiq::load::migrations::read(lab.root(), "lab").unwrap();
    let migrations = prefiq::seed::migrations(&folder);
    prefiq_runtime::migrate::apply(db, "lab", &migrations)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn exec(db: &Db, sql: &str) {
    let sql = match db.dialect() {
        prefiq_runtime::Dialect::Postgres => sql.to_owned(),
        prefiq_runtime::Dialect::Sqlite => sql.replace("::uuid", ""),
    };
    db.execute(Sql::built(sql.clone()), vec![])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// One column of one row, as text.
async fn value(db: &Db, table: &str, column: &str, id: &str) -> Option<String> {
    let cast = match db.dialect() {
        prefiq_runtime::Dialect::Postgres => format!("CAST(\"{column}\" AS TEXT)"),
        prefiq_runtime::Dialect::Sqlite => format!("CAST(\"{column}\" AS TEXT)"),
    };
    let key = match db.dialect() {
        prefiq_runtime::Dialect::Postgres => SqlValue::Uuid(id.parse().unwrap()),
        prefiq_runtime::Dialect::Sqlite => SqlValue::Text(id.to_owned()),
    };
    let placeholder = match db.dialect() {
        prefiq_runtime::Dialect::Postgres => "$1",
        prefiq_runtime::Dialect::Sqlite => "?1",
    };
    let sql = format!("SELECT {cast} FROM \"{table}\" WHERE \"id\" = {placeholder}");
    let row = db
        .fetch_optional(Sql::built(sql), vec![key])
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{table} {id} is gone"));
    row.opt::<String>(0).unwrap()
}

async fn count(db: &Db, table: &str) -> i64 {
    db.fetch_optional(
        Sql::built(format!("SELECT COUNT(*) FROM \"{table}\"")),
        vec![],
    )
    .await
    .unwrap()
    .unwrap()
    .req::<i64>(0)
    .unwrap()
}

async fn evolve(backend: Backend) {
    let lab = Lab::new();
    let (ok, text) = lab.prefiq(&["codegen"]);
    assert!(ok, "{text}");
    let (database, url) = Database::create(backend).await;
    let db = Db::connect(&url, &PoolOptions::default()).await.unwrap();
    apply(&lab, &db).await;
    exec(&db, &format!("INSERT INTO authors (id, name, email, rating, status) VALUES ('{A1}'::uuid, 'Ursula', 'ursula@example.org', 5, 'active'), ('{A2}'::uuid, 'Iain', NULL, NULL, 'draft')")).await;
    let json = |text: &str| {
        if backend == Backend::Postgres {
            format!("'{text}'::jsonb")
        } else {
            format!("'{text}'")
        }
    };
    exec(
        &db,
        &format!(
            "INSERT INTO books (id, title, author_id, price, tags, dimensions) VALUES \
             ('{B1}'::uuid, 'The Dispossessed', '{A1}'::uuid, 12.50, {}, {}), \
             ('{B2}'::uuid, 'Excession', '{A2}'::uuid, NULL, {}, NULL), \
             ('{B3}'::uuid, 'Lathe', '{A1}'::uuid, 9.99, {}, NULL)",
            json("[\"sf\"]"),
            json("{\"width\": 13, \"height\": 20}"),
            json("[]"),
            json("[]")
        ),
    )
    .await;

    // 1. A new entity.
    lab.write("review.yaml", REVIEW);
    lab.diff("add_review", false);
    apply(&lab, &db).await;
    exec(&db, &format!("INSERT INTO reviews (id, book_id, stars, body) VALUES ('{R1}'::uuid, '{B1}'::uuid, 5, 'Anarres!')")).await;

    // 2. A new nullable field.
    lab.edit(
        "author.yaml",
        "  rating:",
        "  bio: {type: [string, \"null\"]}\n  rating:",
    );
    lab.diff("add_bio", false);
    apply(&lab, &db).await;
    assert_eq!(value(&db, "authors", "bio", A1).await, None);

    // 3. A field renamed: the column keeps its values.
    lab.edit(
        "book.yaml",
        "  title: {type: string}",
        "  name: {type: string, x-prefiq: {renamed-from: title}}",
    );
    lab.edit(
        "book.yaml",
        "required: [title, author_id]",
        "required: [name, author_id]",
    );
    let sql = lab.diff("rename_title", false);
    assert!(sql.contains("RENAME COLUMN \"title\" TO \"name\""), "{sql}");
    apply(&lab, &db).await;
    assert_eq!(
        value(&db, "books", "name", B1).await.as_deref(),
        Some("The Dispossessed")
    );

    // 4. An entity renamed: the table keeps its rows.
    std::fs::remove_file(lab.schema("review.yaml")).unwrap();
    lab.write(
        "rating.yaml",
        &REVIEW.replace(
            "title: Review\ntype: object\nx-prefiq: {tenancy: global, scope: platform}",
            "title: Rating\ntype: object\nx-prefiq: {renamed-from: Review, tenancy: global, scope: platform}",
        ),
    );
    let sql = lab.diff("rename_review", false);
    assert!(sql.contains("RENAME TO \"ratings\""), "{sql}");
    apply(&lab, &db).await;
    assert_eq!(
        value(&db, "ratings", "body", R1).await.as_deref(),
        Some("Anarres!")
    );

    // 5. A type widened: int32 → int64 (SQLite rebuilds the table).
    lab.edit(
        "author.yaml",
        "rating: {type: [integer, \"null\"], format: int32}",
        "rating: {type: [integer, \"null\"], format: int64}",
    );
    let sql = lab.diff("widen_rating", false);
    assert!(
        sql.contains("TYPE bigint") && sql.contains("authors__prefiq_new"),
        "{sql}"
    );
    apply(&lab, &db).await;
    assert_eq!(
        value(&db, "authors", "rating", A1).await.as_deref(),
        Some("5")
    );
    assert_eq!(
        count(&db, "books").await,
        3,
        "rebuilding authors kept the books that refer to it"
    );

    // 6. Nullable → required, with a default that fills the NULLs.
    lab.edit("book.yaml", "price: {type: [string, \"null\"], format: decimal, x-prefiq: {precision: 10, scale: 2}}", "price: {type: string, format: decimal, default: \"0.00\", x-prefiq: {precision: 10, scale: 2}}");
    lab.diff("require_price", false);
    apply(&lab, &db).await;
    let price = value(&db, "books", "price", B2).await.unwrap_or_default();
    assert!(
        price == "0" || price == "0.00",
        "a NULL price became the default, got {price}"
    );
    assert!(
        value(&db, "books", "price", B1)
            .await
            .unwrap_or_default()
            .starts_with("12.5")
    );

    // 7. Required → nullable.
    lab.edit("author.yaml", "required: [name]", "required: []");
    lab.diff("optional_name", false);
    apply(&lab, &db).await;
    exec(&db, "UPDATE authors SET name = NULL WHERE status = 'draft'").await;

    // 8. A default changed.
    lab.edit("author.yaml", "default: draft", "default: active");
    let sql = lab.diff("status_default", false);
    assert!(sql.contains("SET DEFAULT 'active'"), "{sql}");
    apply(&lab, &db).await;

    // 9. A unique constraint dropped and an index added.
    lab.edit(
        "author.yaml",
        "email: {type: [string, \"null\"], format: email, x-prefiq: {unique: true}}",
        "email: {type: [string, \"null\"], format: email}",
    );
    lab.edit(
        "author.yaml",
        "format: int64}",
        "format: int64, x-prefiq: {index: true}}",
    );
    let sql = lab.diff("reindex", false);
    assert!(
        sql.contains("DROP INDEX \"authors_email_key\"")
            && sql.contains("CREATE INDEX \"authors_rating_idx\""),
        "{sql}"
    );
    apply(&lab, &db).await;

    // 10. A foreign key's on-delete changed (SQLite rebuilds books).
    lab.edit(
        "book.yaml",
        "references: {entity: Author, on-delete: cascade}",
        "references: {entity: Author, on-delete: restrict}",
    );
    lab.diff("restrict_authors", false);
    apply(&lab, &db).await;
    let deleted = db
        .execute(
            Sql::built(format!(
                "DELETE FROM authors WHERE id = {}",
                if backend == Backend::Postgres {
                    format!("'{A1}'::uuid")
                } else {
                    format!("'{A1}'")
                }
            )),
            vec![],
        )
        .await;
    assert!(
        deleted.is_err(),
        "authors with books can no longer be deleted"
    );
    assert_eq!(count(&db, "ratings").await, 1);

    // 11. Enum values: one renamed (rows follow), one added.
    lab.edit("author.yaml", "status: {type: string, enum: [draft, active], default: active}", "status: {type: string, enum: [draft, live, archived], default: live, x-prefiq: {renamed-values: {active: live}}}");
    lab.diff("rename_status", false);
    apply(&lab, &db).await;
    assert_eq!(
        value(&db, "authors", "status", A1).await.as_deref(),
        Some("live")
    );
    assert_eq!(
        value(&db, "authors", "status", A2).await.as_deref(),
        Some("draft")
    );

    // 12. A nested JSON member: no DDL, so no migration.
    lab.edit(
        "book.yaml",
        "      height: {type: number}",
        "      height: {type: number}\n      depth: {type: number}",
    );
    let (ok, text) = lab.prefiq(&["migrate", "diff", "nested"]);
    assert!(
        ok && text.contains("nothing to do"),
        "a nested member needs no migration:\n{text}"
    );

    // 13. A field dropped: refused, then allowed and recorded.
    lab.edit("author.yaml", "  bio: {type: [string, \"null\"]}\n", "");
    let refusal = lab.refused("drop_bio");
    assert!(
        refusal.contains("drops the column authors.bio") && refusal.contains("--allow-destructive"),
        "{refusal}"
    );
    let sql = lab.diff("drop_bio", true);
    assert!(
        sql.contains("Destructive steps, allowed with --allow-destructive")
            && sql.contains("drops the column authors.bio"),
        "{sql}"
    );
    apply(&lab, &db).await;
    assert_eq!(count(&db, "authors").await, 2);

    // 14. A narrowing refused; an entity dropped with the flag.
    lab.edit(
        "book.yaml",
        "x-prefiq: {precision: 10, scale: 2}",
        "x-prefiq: {precision: 6, scale: 2}",
    );
    let refusal = lab.refused("narrow_price");
    assert!(refusal.contains("narrows books.price"), "{refusal}");
    lab.edit(
        "book.yaml",
        "x-prefiq: {precision: 6, scale: 2}",
        "x-prefiq: {precision: 10, scale: 2}",
    );
    std::fs::remove_file(lab.schema("rating.yaml")).unwrap();
    assert!(
        lab.refused("drop_ratings")
            .contains("drops the table ratings")
    );
    lab.diff("drop_ratings", true);
    apply(&lab, &db).await;
    assert_eq!(
        value(&db, "books", "name", B3).await.as_deref(),
        Some("Lathe")
    );

    // The migrations folder is consistent, and the database is what the schema says.
    let (ok, text) = lab.prefiq(&["codegen", "--check"]);
    assert!(ok, "{text}");
    let (ok, text) = lab.prefiq(&["migrate", "drift", "--database-url", &url]);
    assert!(ok, "drift after 13 migrations:\n{text}");

    // A database made fresh from the final schema has exactly the same shape.
    let fresh = Lab {
        dir: tempfile::tempdir().unwrap(),
    };
    for file in ["author.yaml", "book.yaml"] {
        fresh.write(file, &std::fs::read_to_string(lab.schema(file)).unwrap());
    }
    assert!(fresh.prefiq(&["codegen"]).0);
    let (fresh_database, fresh_url) = Database::create(backend).await;
    let fresh_db = Db::connect(&fresh_url, &PoolOptions::default())
        .await
        .unwrap();
    apply(&fresh, &fresh_db).await;
    let migrated = introspect::read(&db).await.unwrap();
    let created = introspect::read(&fresh_db).await.unwrap();
    let differences = introspect::compare(&created, &migrated);
    assert!(
        differences.is_empty(),
        "the migrated database differs from a fresh one:\n{}",
        differences.join("\n")
    );
    assert_eq!(migrated.len(), 2);

    fresh_db.close().await;
    fresh_database.drop().await;
    db.close().await;
    database.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirteen_edits_keep_every_row_on_sqlite() {
    evolve(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirteen_edits_keep_every_row_on_postgres() {
    evolve(Backend::Postgres).await;
}

/// A lab app with a few migrations, for the concurrency and integrity tests.
fn lab_with_history() -> Lab {
    let lab = Lab::new();
    assert!(lab.prefiq(&["codegen"]).0);
    lab.write("review.yaml", REVIEW);
    lab.diff("add_review", false);
    lab.edit(
        "author.yaml",
        "  rating:",
        "  bio: {type: [string, \"null\"]}\n  rating:",
    );
    lab.diff("add_bio", false);
    lab.edit(
        "author.yaml",
        "rating: {type: [integer, \"null\"], format: int32}",
        "rating: {type: [integer, \"null\"], format: int64}",
    );
    lab.diff("widen_rating", false);
    lab
}

async fn two_processes_at_once(backend: Backend) {
    let lab = lab_with_history();
    let (database, url) = Database::create(backend).await;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_prefiq"))
            .arg("--root")
            .arg(lab.root())
            .args(["migrate", "apply", "--database-url", &url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "both processes succeed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let db = Db::connect(&url, &PoolOptions::default()).await.unwrap();
    let rows = db
        .fetch_all(
            "SELECT version FROM _prefiq_migrations WHERE app = 'lab' ORDER BY version",
            vec![],
        )
        .await
        .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.req::<i64>(0).unwrap()).collect();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4],
        "each migration applied exactly once"
    );
    db.close().await;
    database.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_migrating_postgres_at_once_apply_each_migration_once() {
    two_processes_at_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_migrating_sqlite_at_once_apply_each_migration_once() {
    two_processes_at_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_migration_is_refused_by_check_and_by_the_runner() {
    let lab = lab_with_history();
    let (database, url) = Database::create(Backend::Sqlite).await;
    assert!(lab.prefiq(&["migrate", "apply", "--database-url", &url]).0);
    let file = lab
        .root()
        .join("apps/lab/bin/migrations/sqlite/0002_add_review.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("\"body\" TEXT", "\"body\" TEXT NOT NULL DEFAULT ''"),
    )
    .unwrap();

    let (ok, text) = lab.prefiq(&["codegen", "--check"]);
    assert!(
        !ok && text.contains("migrations.sum") && text.contains("sqlite/0002_add_review.sql"),
        "{text}"
    );
    let (ok, text) = lab.prefiq(&["migrate", "apply", "--database-url", &url]);
    assert!(
        !ok && text.contains("edited after it was applied"),
        "{text}"
    );
    let (ok, text) = lab.prefiq(&["migrate", "status", "--database-url", &url]);
    assert!(!ok && text.contains("EDITED   0002_add_review"), "{text}");
    database.drop().await;
}

#[test]
fn the_schema_ahead_of_its_migrations_fails_check() {
    let lab = Lab::new();
    assert!(lab.prefiq(&["codegen"]).0);
    lab.edit(
        "author.yaml",
        "  rating:",
        "  bio: {type: [string, \"null\"]}\n  rating:",
    );
    let (ok, text) = lab.prefiq(&["codegen"]);
    assert!(
        ok && text.contains("run `prefiq migrate diff"),
        "codegen warns: {text}"
    );
    let (ok, text) = lab.prefiq(&["codegen", "--check"]);
    assert!(!ok && text.contains("unmigrated"), "{text}");
    lab.diff("add_bio", false);
    assert!(lab.prefiq(&["codegen", "--check"]).0, "covered now");
}

/// A table made elsewhere (a view, a legacy table, the runtime's own), read through the API.
const LEDGER: &str = "title: LedgerLine
type: object
x-prefiq: {table: legacy_ledger, plural: ledger, read-only: true, managed: false}
required: [id, amount]
properties:
  id: {type: integer, format: int64, x-prefiq: {primary-key: true}}
  amount: {type: string, format: decimal, x-prefiq: {precision: 12, scale: 2, filterable: true, sortable: true}}
  memo: {type: [string, \"null\"]}
";

#[test]
fn a_read_only_unmanaged_entity_is_read_through_the_api_and_never_migrated() {
    let lab = Lab::new();
    lab.diff("initial", false);
    lab.write("ledger.yaml", LEDGER);
    let (ok, text) = lab.prefiq(&["codegen"]);
    assert!(ok, "{text}");
    assert!(
        !text.contains("migrate diff"),
        "an unmanaged table needs no migration: {text}"
    );
    assert!(
        lab.prefiq(&["codegen", "--check"]).0,
        "nothing is unmigrated"
    );
    let migrations = lab.root().join("apps/lab/bin/migrations");
    for dialect in ["postgres", "sqlite"] {
        for file in std::fs::read_dir(migrations.join(dialect)).unwrap() {
            let sql = std::fs::read_to_string(file.unwrap().path()).unwrap();
            assert!(!sql.contains("legacy_ledger"), "{dialect}: {sql}");
        }
    }
    let document: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lab.root().join("apps/lab/core/openapi.json")).unwrap(),
    )
    .unwrap();
    let methods = |path: &str| -> Vec<String> {
        document["paths"][path]
            .as_object()
            .unwrap_or_else(|| panic!("{path} is documented"))
            .keys()
            .filter(|k| *k != "parameters")
            .cloned()
            .collect()
    };
    assert_eq!(methods("/api/lab/ledger"), ["get"]);
    assert_eq!(methods("/api/lab/ledger/{id}"), ["get"]);
    let schemas = document["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("LedgerLine") && schemas.contains_key("LedgerLinePage"));
    assert!(
        !schemas.contains_key("LedgerLineCreate") && !schemas.contains_key("LedgerLinePatch"),
        "nothing creates or patches a read-only row"
    );
    let module =
        std::fs::read_to_string(lab.root().join("apps/lab/bin/src/generated/ledger_line.rs"))
            .unwrap();
    assert!(module.contains("crud::find::<"), "it is read by key");
    assert!(
        !module.contains("crud::insert::<") && !module.contains("impl Writable"),
        "and never written"
    );

    // Unmanaged but writable is refused, located, and nothing is written.
    lab.edit("ledger.yaml", "read-only: true, ", "");
    let before = std::fs::read(lab.root().join("apps/lab/core/openapi.json")).unwrap();
    let (ok, text) = lab.prefiq(&["codegen"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("unmanaged_writable") && text.contains("ledger.yaml:3:"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(lab.root().join("apps/lab/core/openapi.json")).unwrap(),
        before
    );
}
