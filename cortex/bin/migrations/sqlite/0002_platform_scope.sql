-- Migration 0002 (platform_scope) of app `cortex`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
-- prefiq:foreign-keys=off (a table is rebuilt: foreign keys are checked once, before commit)

-- Rebuild roles (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "roles__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "permissions" TEXT NOT NULL DEFAULT '[]',
    "tenant_id" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT "roles_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants" ("id") ON DELETE CASCADE
);

-- Copy the rows of roles and swap the tables.
INSERT INTO "roles__prefiq_new" ("id", "name", "description", "permissions", "created_at", "updated_at", "version") SELECT "id", "name", "description", "permissions", "created_at", "updated_at", "version" FROM "roles";
DROP TABLE "roles";
ALTER TABLE "roles__prefiq_new" RENAME TO "roles";
CREATE UNIQUE INDEX "roles_tenant_id_name_key" ON "roles" ("tenant_id", "name");
CREATE INDEX "roles_name_idx" ON "roles" ("name");

-- Change users (entity User).
ALTER TABLE "users" ADD COLUMN "operator" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "users" ADD COLUMN "tenants" TEXT NOT NULL DEFAULT '[]';
CREATE INDEX "users_operator_idx" ON "users" ("operator");
