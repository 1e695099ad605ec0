-- Migration 0002 (tenancy) of app `showcase`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
--
-- On a large table, plan for these:
--   * creating the index categories_tenant_id_idx blocks writes to categories while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index measurements_tenant_id_idx blocks writes to measurements while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index order_tenant_id_idx blocks writes to order while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying

-- order: drop the constraints and indexes that change.
DROP INDEX "order_user_key";

-- Change categories (entity Category).
ALTER TABLE "categories" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "categories" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "categories_tenant_id_idx" ON "categories" ("tenant_id");

-- Change measurements (entity Measurement).
ALTER TABLE "measurements" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "measurements" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "measurements_tenant_id_idx" ON "measurements" ("tenant_id");

-- Change order (entity Order).
ALTER TABLE "order" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "order" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "order_tenant_id_idx" ON "order" ("tenant_id");
CREATE UNIQUE INDEX "order_user_key" ON "order" ("tenant_id", "user");

-- Row-level security: the server's role (prefiq_app) sees and writes only the rows of the tenant its transaction set; the migrating user is not bound.
ALTER TABLE "categories" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "categories" FORCE ROW LEVEL SECURITY;
CREATE POLICY "categories_rows" ON "categories" USING (true) WITH CHECK (true);
CREATE POLICY "categories_tenant" ON "categories" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "measurements" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "measurements" FORCE ROW LEVEL SECURITY;
CREATE POLICY "measurements_rows" ON "measurements" USING (true) WITH CHECK (true);
CREATE POLICY "measurements_tenant" ON "measurements" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "order" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "order" FORCE ROW LEVEL SECURITY;
CREATE POLICY "order_rows" ON "order" USING (true) WITH CHECK (true);
CREATE POLICY "order_tenant" ON "order" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
