-- Migration 0001 (initial) of app `showcase`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Category
CREATE TABLE "categories" (
    "code" TEXT PRIMARY KEY,
    "label" TEXT NOT NULL,
    "parent_code" TEXT,
    "metadata" TEXT NOT NULL DEFAULT '{}',
    "outline" TEXT,
    "created_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT "categories_parent_code_fkey" FOREIGN KEY ("parent_code") REFERENCES "categories" ("code") ON DELETE SET NULL
);
CREATE INDEX "categories_label_idx" ON "categories" ("label");
CREATE INDEX "categories_parent_code_idx" ON "categories" ("parent_code");

-- Measurement
CREATE TABLE "measurements" (
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
    CONSTRAINT "measurements_status_check" CHECK ("status" IN ('in-progress', 'on_hold', '1st', 'done'))
);
CREATE INDEX "measurements_reading_idx" ON "measurements" ("reading");
CREATE INDEX "measurements_taken_on_idx" ON "measurements" ("taken_on");
CREATE INDEX "measurements_status_idx" ON "measurements" ("status");

-- Order: Every field is named after a keyword of some language.
CREATE TABLE "order" (
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
    CONSTRAINT "order_enum_check" CHECK ("enum" IN ('struct', 'impl', 'null-ish'))
);
CREATE UNIQUE INDEX "order_user_key" ON "order" ("user");
CREATE INDEX "order_type_idx" ON "order" ("type");
CREATE INDEX "order_default_idx" ON "order" ("default");
CREATE INDEX "order_order_idx" ON "order" ("order");
