-- Migration 0006 (events) of the Prefiq runtime, for PostgreSQL: the outbox.
--
-- An event is written in the transaction of the write that caused it, so a rolled-back write
-- leaves none. A dispatcher claims the rows not yet dispatched (`FOR UPDATE SKIP LOCKED`) and
-- enqueues a job per subscriber in the same transaction: it reads rows by their state, never
-- by a position, so an event committed after a later one is never skipped.
CREATE TABLE "prefiq_events" (
    "id" uuid PRIMARY KEY,
    "tenant_id" uuid NOT NULL,
    "app" text NOT NULL,
    "type" text NOT NULL,
    "subject" text,
    "data" jsonb NOT NULL,
    "created_at" timestamptz NOT NULL,
    "dispatched_at" timestamptz
);
-- What the dispatcher claims next.
CREATE INDEX "prefiq_events_pending_idx" ON "prefiq_events" ("app", "id") WHERE "dispatched_at" IS NULL;
CREATE INDEX "prefiq_events_created_idx" ON "prefiq_events" ("created_at");

-- A tenant's transaction publishes and sees its own events; the dispatcher (the platform) all.
ALTER TABLE "prefiq_events" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "prefiq_events" FORCE ROW LEVEL SECURITY;
CREATE POLICY "prefiq_events_rows" ON "prefiq_events" USING (true) WITH CHECK (true);
CREATE POLICY "prefiq_events_tenant" ON "prefiq_events" AS RESTRICTIVE TO prefiq_app
    USING (
        "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid
        OR coalesce(current_setting('prefiq.platform', true), '') = 'on'
    )
    WITH CHECK (
        "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid
        OR coalesce(current_setting('prefiq.platform', true), '') = 'on'
    );
