-- Migration 0004 (notifications) of app `cortex`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Notification: Something Cortex tells one person in the app (the bell of the admin and of every app's
CREATE TABLE "notifications" (
    "id" TEXT PRIMARY KEY,
    "kind" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "body" TEXT,
    "link" TEXT,
    "read" INTEGER NOT NULL DEFAULT 0,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "owner_id" TEXT,
    "tenant_id" TEXT NOT NULL
);
CREATE INDEX "notifications_tenant_id_idx" ON "notifications" ("tenant_id");
CREATE INDEX "notifications_kind_idx" ON "notifications" ("kind");
CREATE INDEX "notifications_read_idx" ON "notifications" ("read");
CREATE INDEX "notifications_created_at_idx" ON "notifications" ("created_at");
CREATE INDEX "notifications_owner_id_idx" ON "notifications" ("owner_id");
