-- Migration 0002 (platform_scope) of app `cortex`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
--
-- On a large table, plan for these:
--   * creating the index roles_tenant_id_name_key blocks writes to roles while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index roles_name_idx blocks writes to roles while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * adding the foreign key roles_tenant_id_fkey checks every row of roles under a lock
--   * creating the index users_operator_idx blocks writes to users while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying

-- roles: drop the constraints and indexes that change.
DROP INDEX "roles_name_key";

-- Change roles (entity Role).
ALTER TABLE "roles" ADD COLUMN "tenant_id" uuid;
CREATE UNIQUE INDEX "roles_tenant_id_name_key" ON "roles" ("tenant_id", "name");
CREATE INDEX "roles_name_idx" ON "roles" ("name");

-- Change users (entity User).
ALTER TABLE "users" ADD COLUMN "operator" boolean NOT NULL DEFAULT false;
ALTER TABLE "users" ADD COLUMN "tenants" jsonb NOT NULL DEFAULT '[]'::jsonb;
CREATE INDEX "users_operator_idx" ON "users" ("operator");

-- Foreign keys, once every table they name exists.
ALTER TABLE "roles" ADD CONSTRAINT "roles_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants" ("id") ON DELETE CASCADE;

-- Row-level security: the server's role (prefiq_app) sees and writes only the rows of the tenant its transaction set, and writes the platform's rows only in a platform operator's transaction; the migrating user is not bound.
ALTER TABLE "app_registrations" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "app_registrations" FORCE ROW LEVEL SECURITY;
CREATE POLICY "app_registrations_rows" ON "app_registrations" USING (true) WITH CHECK (true);
CREATE POLICY "app_registrations_insert" ON "app_registrations" AS RESTRICTIVE FOR INSERT TO prefiq_app WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on');
CREATE POLICY "app_registrations_update" ON "app_registrations" AS RESTRICTIVE FOR UPDATE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on') WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on');
CREATE POLICY "app_registrations_delete" ON "app_registrations" AS RESTRICTIVE FOR DELETE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on');
ALTER TABLE "tenants" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "tenants" FORCE ROW LEVEL SECURITY;
CREATE POLICY "tenants_rows" ON "tenants" USING (true) WITH CHECK (true);
CREATE POLICY "tenants_read" ON "tenants" AS RESTRICTIVE FOR SELECT TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "id" IS NULL OR "id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "tenants_insert" ON "tenants" AS RESTRICTIVE FOR INSERT TO prefiq_app WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on');
CREATE POLICY "tenants_update" ON "tenants" AS RESTRICTIVE FOR UPDATE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on') WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on');
CREATE POLICY "tenants_delete" ON "tenants" AS RESTRICTIVE FOR DELETE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on');
ALTER TABLE "roles" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "roles" FORCE ROW LEVEL SECURITY;
CREATE POLICY "roles_rows" ON "roles" USING (true) WITH CHECK (true);
CREATE POLICY "roles_read" ON "roles" AS RESTRICTIVE FOR SELECT TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" IS NULL OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "roles_insert" ON "roles" AS RESTRICTIVE FOR INSERT TO prefiq_app WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "roles_update" ON "roles" AS RESTRICTIVE FOR UPDATE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "roles_delete" ON "roles" AS RESTRICTIVE FOR DELETE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "settings" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "settings" FORCE ROW LEVEL SECURITY;
CREATE POLICY "settings_rows" ON "settings" USING (true) WITH CHECK (true);
CREATE POLICY "settings_read" ON "settings" AS RESTRICTIVE FOR SELECT TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "for_tenant" IS NULL OR "for_tenant" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "settings_insert" ON "settings" AS RESTRICTIVE FOR INSERT TO prefiq_app WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "for_tenant" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "settings_update" ON "settings" AS RESTRICTIVE FOR UPDATE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "for_tenant" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "for_tenant" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "settings_delete" ON "settings" AS RESTRICTIVE FOR DELETE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "for_tenant" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "users" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "users" FORCE ROW LEVEL SECURITY;
CREATE POLICY "users_rows" ON "users" USING (true) WITH CHECK (true);
CREATE POLICY "users_read" ON "users" AS RESTRICTIVE FOR SELECT TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" IS NULL OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "users_insert" ON "users" AS RESTRICTIVE FOR INSERT TO prefiq_app WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "users_update" ON "users" AS RESTRICTIVE FOR UPDATE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
CREATE POLICY "users_delete" ON "users" AS RESTRICTIVE FOR DELETE TO prefiq_app USING (coalesce(current_setting('prefiq.platform', true), '') = 'on' OR "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
