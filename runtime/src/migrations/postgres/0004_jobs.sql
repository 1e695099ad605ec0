-- Migration 0004 (jobs) of the Prefiq runtime, for PostgreSQL: the job queue.
--
-- A job is enqueued in the transaction of the write that caused it, so a rolled-back write
-- leaves none. Workers claim jobs with `FOR UPDATE SKIP LOCKED` and hold each under a lease
-- they renew; a job whose lease ran out (its worker died) is claimed again.
CREATE TABLE "prefiq_jobs" (
    "id" uuid PRIMARY KEY,
    "tenant_id" uuid NOT NULL,
    "app" text NOT NULL,
    "queue" text NOT NULL,
    "kind" text NOT NULL,
    "payload" jsonb NOT NULL,
    "state" text NOT NULL CHECK ("state" IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
    "unique_key" text,
    "attempt" integer NOT NULL DEFAULT 0,
    "max_attempts" integer NOT NULL CHECK ("max_attempts" >= 1),
    "run_at" timestamptz NOT NULL,
    "lease_until" timestamptz,
    "worker" text,
    "errors" jsonb NOT NULL DEFAULT '[]',
    "created_at" timestamptz NOT NULL,
    "finished_at" timestamptz
);
-- What a worker claims next: its app's and queue's jobs that are due.
CREATE INDEX "prefiq_jobs_claim_idx" ON "prefiq_jobs" ("app", "queue", "state", "run_at");
-- One job per key among those not finished, per app and tenant.
CREATE UNIQUE INDEX "prefiq_jobs_unique_idx" ON "prefiq_jobs" ("app", "tenant_id", "unique_key")
    WHERE "unique_key" IS NOT NULL AND "state" IN ('available', 'running');

-- A tenant's transaction enqueues and sees its own jobs; the workers (the platform) all.
ALTER TABLE "prefiq_jobs" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "prefiq_jobs" FORCE ROW LEVEL SECURITY;
CREATE POLICY "prefiq_jobs_rows" ON "prefiq_jobs" USING (true) WITH CHECK (true);
CREATE POLICY "prefiq_jobs_tenant" ON "prefiq_jobs" AS RESTRICTIVE TO prefiq_app
    USING (
        "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid
        OR coalesce(current_setting('prefiq.platform', true), '') = 'on'
    )
    WITH CHECK (
        "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid
        OR coalesce(current_setting('prefiq.platform', true), '') = 'on'
    );

-- The last tick each schedule fired: a worker enqueues a tick's job only if its upsert moved
-- this forward, so each tick fires once however many workers follow the schedule. The
-- platform's alone.
CREATE TABLE "prefiq_cron" (
    "app" text NOT NULL,
    "name" text NOT NULL,
    "last_tick" timestamptz NOT NULL,
    PRIMARY KEY ("app", "name")
);
ALTER TABLE "prefiq_cron" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "prefiq_cron" FORCE ROW LEVEL SECURITY;
CREATE POLICY "prefiq_cron_rows" ON "prefiq_cron" USING (true) WITH CHECK (true);
CREATE POLICY "prefiq_cron_platform" ON "prefiq_cron" AS RESTRICTIVE TO prefiq_app
    USING (coalesce(current_setting('prefiq.platform', true), '') = 'on')
    WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on');
