-- Migration 0002 (tenancy) of app `showcase`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
-- prefiq:foreign-keys=off (a table is rebuilt: foreign keys are checked once, before commit)

-- Rebuild categories (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "categories__prefiq_new" (
    "code" TEXT PRIMARY KEY,
    "label" TEXT NOT NULL,
    "parent_code" TEXT,
    "metadata" TEXT NOT NULL DEFAULT '{}',
    "outline" TEXT,
    "created_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "categories_parent_code_fkey" FOREIGN KEY ("parent_code") REFERENCES "categories" ("code") ON DELETE SET NULL
);

-- Copy the rows of categories and swap the tables.
INSERT INTO "categories__prefiq_new" ("code", "label", "parent_code", "metadata", "outline", "created_at", "version", "tenant_id") SELECT "code", "label", "parent_code", "metadata", "outline", "created_at", "version", '00000000-0000-0000-0000-000000000000' FROM "categories";
DROP TABLE "categories";
ALTER TABLE "categories__prefiq_new" RENAME TO "categories";
CREATE INDEX "categories_tenant_id_idx" ON "categories" ("tenant_id");
CREATE INDEX "categories_label_idx" ON "categories" ("label");
CREATE INDEX "categories_parent_code_idx" ON "categories" ("parent_code");

-- Rebuild measurements (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "measurements__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "reading" TEXT NOT NULL,
    "ratio" REAL NOT NULL DEFAULT 0.5,
    "count" INTEGER NOT NULL DEFAULT 5,
    "taken_on" TEXT NOT NULL,
    "taken_at" TEXT,
    "duration" TEXT,
    "at_time" TEXT,
    "source" TEXT,
    "operator" TEXT,
    "device_ip" TEXT,
    "status" TEXT NOT NULL DEFAULT 'in-progress',
    "unit" TEXT,
    "samples" TEXT NOT NULL DEFAULT '[1.5,null]',
    "shape" TEXT,
    "label" TEXT,
    "legacy_code" TEXT,
    "notes" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "measurements_status_check" CHECK ("status" IN ('in-progress', 'on_hold', '1st', 'done'))
);

-- Copy the rows of measurements and swap the tables.
INSERT INTO "measurements__prefiq_new" ("id", "reading", "ratio", "count", "taken_on", "taken_at", "duration", "at_time", "source", "operator", "device_ip", "status", "unit", "samples", "shape", "label", "legacy_code", "notes", "version", "tenant_id") SELECT "id", "reading", "ratio", "count", "taken_on", "taken_at", "duration", "at_time", "source", "operator", "device_ip", "status", "unit", "samples", "shape", "label", "legacy_code", "notes", "version", '00000000-0000-0000-0000-000000000000' FROM "measurements";
DROP TABLE "measurements";
ALTER TABLE "measurements__prefiq_new" RENAME TO "measurements";
CREATE INDEX "measurements_tenant_id_idx" ON "measurements" ("tenant_id");
CREATE INDEX "measurements_reading_idx" ON "measurements" ("reading");
CREATE INDEX "measurements_taken_on_idx" ON "measurements" ("taken_on");
CREATE INDEX "measurements_status_idx" ON "measurements" ("status");

-- Rebuild order (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "order__prefiq_new" (
    "id" INTEGER PRIMARY KEY,
    "type" TEXT NOT NULL,
    "self" TEXT,
    "async" INTEGER NOT NULL DEFAULT 0,
    "default" INTEGER,
    "order" INTEGER NOT NULL DEFAULT 0,
    "user" TEXT NOT NULL,
    "where" TEXT,
    "select" TEXT,
    "fn" TEXT,
    "match" TEXT,
    "class" TEXT,
    "function" TEXT,
    "interface" TEXT,
    "enum" TEXT,
    "first_name" TEXT,
    "with_dash" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "order_enum_check" CHECK ("enum" IN ('struct', 'impl', 'null-ish'))
);

-- Copy the rows of order and swap the tables.
INSERT INTO "order__prefiq_new" ("id", "type", "self", "async", "default", "order", "user", "where", "select", "fn", "match", "class", "function", "interface", "enum", "first_name", "with_dash", "version", "tenant_id") SELECT "id", "type", "self", "async", "default", "order", "user", "where", "select", "fn", "match", "class", "function", "interface", "enum", "first_name", "with_dash", "version", '00000000-0000-0000-0000-000000000000' FROM "order";
DROP TABLE "order";
ALTER TABLE "order__prefiq_new" RENAME TO "order";
CREATE INDEX "order_tenant_id_idx" ON "order" ("tenant_id");
CREATE UNIQUE INDEX "order_user_key" ON "order" ("tenant_id", "user");
CREATE INDEX "order_type_idx" ON "order" ("type");
CREATE INDEX "order_default_idx" ON "order" ("default");
CREATE INDEX "order_order_idx" ON "order" ("order");
