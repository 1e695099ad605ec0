-- Migration 0004 (notifications) of app `cortex`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Notification: Something Cortex tells one person in the app (the bell of the admin and of every app's
CREATE TABLE "notifications" (
    "id" uuid PRIMARY KEY,
    "kind" text NOT NULL,
    "title" text NOT NULL,
    "body" text,
    "link" text,
    "read" boolean NOT NULL DEFAULT false,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    "owner_id" uuid,
    "tenant_id" uuid NOT NULL
);
CREATE INDEX "notifications_tenant_id_idx" ON "notifications" ("tenant_id");
CREATE INDEX "notifications_kind_idx" ON "notifications" ("kind");
CREATE INDEX "notifications_read_idx" ON "notifications" ("read");
CREATE INDEX "notifications_created_at_idx" ON "notifications" ("created_at");
CREATE INDEX "notifications_owner_id_idx" ON "notifications" ("owner_id");

-- Row-level security: the server's role (prefiq_app) sees and writes only the rows of the tenant its transaction set, and writes the platform's rows only in a platform operator's transaction; the migrating user is not bound.
ALTER TABLE "notifications" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "notifications" FORCE ROW LEVEL SECURITY;
CREATE POLICY "notifications_rows" ON "notifications" USING (true) WITH CHECK (true);
CREATE POLICY "notifications_tenant" ON "notifications" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
