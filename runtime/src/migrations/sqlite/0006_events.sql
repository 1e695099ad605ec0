-- Migration 0006 (events) of the Prefiq runtime, for SQLite: the outbox. An event is written in
-- the transaction of the write that caused it; the dispatcher (one writer) claims the rows not
-- yet dispatched and enqueues a job per subscriber in the same transaction.
CREATE TABLE "prefiq_events" (
    "id" TEXT PRIMARY KEY,
    "tenant_id" TEXT NOT NULL,
    "app" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "subject" TEXT,
    "data" TEXT NOT NULL,
    "created_at" TEXT NOT NULL,
    "dispatched_at" TEXT
);
CREATE INDEX "prefiq_events_pending_idx" ON "prefiq_events" ("app", "id") WHERE "dispatched_at" IS NULL;
CREATE INDEX "prefiq_events_created_idx" ON "prefiq_events" ("created_at");
