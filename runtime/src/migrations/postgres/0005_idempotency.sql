-- Migration 0005 (idempotency) of the Prefiq runtime, for PostgreSQL: the `Idempotency-Key`s
-- of unsafe requests, each with the request's hash and, once it finished, its response.
CREATE TABLE "prefiq_idempotency" (
    "tenant_id" uuid NOT NULL,
    "caller" text NOT NULL,
    "route" text NOT NULL,
    "idempotency_key" text NOT NULL,
    "request_hash" text NOT NULL,
    "state" text NOT NULL CHECK ("state" IN ('running', 'done')),
    "status" integer,
    "headers" jsonb,
    "body" text,
    "locked_until" timestamptz NOT NULL,
    "expires_at" timestamptz NOT NULL,
    PRIMARY KEY ("tenant_id", "caller", "route", "idempotency_key")
);
CREATE INDEX "prefiq_idempotency_expires_idx" ON "prefiq_idempotency" ("expires_at");

-- A tenant's requests see their own keys; the platform's expiry job all.
ALTER TABLE "prefiq_idempotency" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "prefiq_idempotency" FORCE ROW LEVEL SECURITY;
CREATE POLICY "prefiq_idempotency_rows" ON "prefiq_idempotency" USING (true) WITH CHECK (true);
CREATE POLICY "prefiq_idempotency_tenant" ON "prefiq_idempotency" AS RESTRICTIVE TO prefiq_app
    USING (
        "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid
        OR coalesce(current_setting('prefiq.platform', true), '') = 'on'
    )
    WITH CHECK (
        "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid
        OR coalesce(current_setting('prefiq.platform', true), '') = 'on'
    );
