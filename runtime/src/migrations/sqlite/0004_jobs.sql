-- Migration 0004 (jobs) of the Prefiq runtime, for SQLite: the job queue. One writer at a time
-- claims jobs (`BEGIN IMMEDIATE`); a job whose lease ran out (its worker died) is claimed again.
CREATE TABLE "prefiq_jobs" (
    "id" TEXT PRIMARY KEY,
    "tenant_id" TEXT NOT NULL,
    "app" TEXT NOT NULL,
    "queue" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "state" TEXT NOT NULL CHECK ("state" IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
    "unique_key" TEXT,
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "max_attempts" INTEGER NOT NULL CHECK ("max_attempts" >= 1),
    "run_at" TEXT NOT NULL,
    "lease_until" TEXT,
    "worker" TEXT,
    "errors" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "finished_at" TEXT
);
CREATE INDEX "prefiq_jobs_claim_idx" ON "prefiq_jobs" ("app", "queue", "state", "run_at");
CREATE UNIQUE INDEX "prefiq_jobs_unique_idx" ON "prefiq_jobs" ("app", "tenant_id", "unique_key")
    WHERE "unique_key" IS NOT NULL AND "state" IN ('available', 'running');

-- The last tick each schedule fired: a worker enqueues a tick's job only if its upsert moved
-- this forward, so each tick fires once however many workers follow the schedule.
CREATE TABLE "prefiq_cron" (
    "app" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "last_tick" TEXT NOT NULL,
    PRIMARY KEY ("app", "name")
);
