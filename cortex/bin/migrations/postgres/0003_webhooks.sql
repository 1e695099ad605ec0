-- Migration 0003 (webhooks) of app `cortex`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Webhook: A URL of a tenant's that receives the events it subscribes to, as Standard Webhooks
CREATE TABLE "webhooks" (
    "id" uuid PRIMARY KEY,
    "url" text NOT NULL,
    "events" jsonb NOT NULL,
    "description" text,
    "enabled" boolean NOT NULL DEFAULT true,
    "secret" text,
    "previous_secret" text,
    "previous_secret_until" timestamptz,
    "failures" integer NOT NULL DEFAULT 0,
    "disabled_reason" text,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    "tenant_id" uuid NOT NULL
);
CREATE INDEX "webhooks_tenant_id_idx" ON "webhooks" ("tenant_id");
CREATE INDEX "webhooks_url_idx" ON "webhooks" ("url");
CREATE INDEX "webhooks_enabled_idx" ON "webhooks" ("enabled");
CREATE INDEX "webhooks_created_at_idx" ON "webhooks" ("created_at");

-- WebhookDelivery: One attempt to deliver an event to a webhook, as the server recorded it.
CREATE TABLE "webhook_deliveries" (
    "id" uuid PRIMARY KEY,
    "webhook_id" uuid NOT NULL,
    "event_id" uuid NOT NULL,
    "event_type" text NOT NULL,
    "attempt" integer NOT NULL,
    "outcome" text NOT NULL,
    "status" integer,
    "latency_ms" bigint NOT NULL,
    "response" text,
    "at" timestamptz NOT NULL,
    "tenant_id" uuid NOT NULL,
    CONSTRAINT "webhook_deliveries_outcome_check" CHECK ("outcome" IN ('delivered', 'failed', 'refused')),
    CONSTRAINT "webhook_deliveries_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhooks" ("id") ON DELETE CASCADE
);
CREATE INDEX "webhook_deliveries_tenant_id_idx" ON "webhook_deliveries" ("tenant_id");
CREATE INDEX "webhook_deliveries_webhook_id_idx" ON "webhook_deliveries" ("webhook_id");
CREATE INDEX "webhook_deliveries_event_id_idx" ON "webhook_deliveries" ("event_id");
CREATE INDEX "webhook_deliveries_event_type_idx" ON "webhook_deliveries" ("event_type");
CREATE INDEX "webhook_deliveries_outcome_idx" ON "webhook_deliveries" ("outcome");
CREATE INDEX "webhook_deliveries_at_idx" ON "webhook_deliveries" ("at");

-- Row-level security: the server's role (prefiq_app) sees and writes only the rows of the tenant its transaction set, and writes the platform's rows only in a platform operator's transaction; the migrating user is not bound.
ALTER TABLE "webhooks" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "webhooks" FORCE ROW LEVEL SECURITY;
CREATE POLICY "webhooks_rows" ON "webhooks" USING (true) WITH CHECK (true);
CREATE POLICY "webhooks_tenant" ON "webhooks" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "webhook_deliveries" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "webhook_deliveries" FORCE ROW LEVEL SECURITY;
CREATE POLICY "webhook_deliveries_rows" ON "webhook_deliveries" USING (true) WITH CHECK (true);
CREATE POLICY "webhook_deliveries_tenant" ON "webhook_deliveries" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
