-- Migration 0003 (webhooks) of app `cortex`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Webhook: A URL of a tenant's that receives the events it subscribes to, as Standard Webhooks
CREATE TABLE "webhooks" (
    "id" TEXT PRIMARY KEY,
    "url" TEXT NOT NULL,
    "events" TEXT NOT NULL,
    "description" TEXT,
    "enabled" INTEGER NOT NULL DEFAULT 1,
    "secret" TEXT,
    "previous_secret" TEXT,
    "previous_secret_until" TEXT,
    "failures" INTEGER NOT NULL DEFAULT 0,
    "disabled_reason" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL
);
CREATE INDEX "webhooks_tenant_id_idx" ON "webhooks" ("tenant_id");
CREATE INDEX "webhooks_url_idx" ON "webhooks" ("url");
CREATE INDEX "webhooks_enabled_idx" ON "webhooks" ("enabled");
CREATE INDEX "webhooks_created_at_idx" ON "webhooks" ("created_at");

-- WebhookDelivery: One attempt to deliver an event to a webhook, as the server recorded it.
CREATE TABLE "webhook_deliveries" (
    "id" TEXT PRIMARY KEY,
    "webhook_id" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "event_type" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "outcome" TEXT NOT NULL,
    "status" INTEGER,
    "latency_ms" INTEGER NOT NULL,
    "response" TEXT,
    "at" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "webhook_deliveries_outcome_check" CHECK ("outcome" IN ('delivered', 'failed', 'refused')),
    CONSTRAINT "webhook_deliveries_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhooks" ("id") ON DELETE CASCADE
);
CREATE INDEX "webhook_deliveries_tenant_id_idx" ON "webhook_deliveries" ("tenant_id");
CREATE INDEX "webhook_deliveries_webhook_id_idx" ON "webhook_deliveries" ("webhook_id");
CREATE INDEX "webhook_deliveries_event_id_idx" ON "webhook_deliveries" ("event_id");
CREATE INDEX "webhook_deliveries_event_type_idx" ON "webhook_deliveries" ("event_type");
CREATE INDEX "webhook_deliveries_outcome_idx" ON "webhook_deliveries" ("outcome");
CREATE INDEX "webhook_deliveries_at_idx" ON "webhook_deliveries" ("at");
