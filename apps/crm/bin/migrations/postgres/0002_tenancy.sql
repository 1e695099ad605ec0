-- Migration 0002 (tenancy) of app `crm`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
--
-- On a large table, plan for these:
--   * creating the index companies_tenant_id_idx blocks writes to companies while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index contacts_tenant_id_idx blocks writes to contacts while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index deals_tenant_id_idx blocks writes to deals while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index activities_tenant_id_idx blocks writes to activities while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index activities_owner_id_idx blocks writes to activities while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying

-- companies: drop the constraints and indexes that change.
DROP INDEX "companies_name_key";
DROP INDEX "companies_domain_key";

-- contacts: drop the constraints and indexes that change.
DROP INDEX "contacts_email_key";

-- Change companies (entity Company).
ALTER TABLE "companies" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "companies" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "companies_tenant_id_idx" ON "companies" ("tenant_id");
CREATE UNIQUE INDEX "companies_name_key" ON "companies" ("tenant_id", "name");
CREATE UNIQUE INDEX "companies_domain_key" ON "companies" ("tenant_id", "domain");

-- Change contacts (entity Contact).
ALTER TABLE "contacts" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "contacts" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "contacts_tenant_id_idx" ON "contacts" ("tenant_id");
CREATE UNIQUE INDEX "contacts_email_key" ON "contacts" ("tenant_id", "email");

-- Change deals (entity Deal).
ALTER TABLE "deals" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "deals" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "deals_tenant_id_idx" ON "deals" ("tenant_id");

-- Change activities (entity Activity).
ALTER TABLE "activities" ADD COLUMN "owner_id" uuid;
ALTER TABLE "activities" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "activities" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "activities_tenant_id_idx" ON "activities" ("tenant_id");
CREATE INDEX "activities_owner_id_idx" ON "activities" ("owner_id");

-- Row-level security: the server's role (prefiq_app) sees and writes only the rows of the tenant its transaction set; the migrating user is not bound.
ALTER TABLE "companies" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "companies" FORCE ROW LEVEL SECURITY;
CREATE POLICY "companies_rows" ON "companies" USING (true) WITH CHECK (true);
CREATE POLICY "companies_tenant" ON "companies" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "contacts" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "contacts" FORCE ROW LEVEL SECURITY;
CREATE POLICY "contacts_rows" ON "contacts" USING (true) WITH CHECK (true);
CREATE POLICY "contacts_tenant" ON "contacts" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "deals" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "deals" FORCE ROW LEVEL SECURITY;
CREATE POLICY "deals_rows" ON "deals" USING (true) WITH CHECK (true);
CREATE POLICY "deals_tenant" ON "deals" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "activities" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "activities" FORCE ROW LEVEL SECURITY;
CREATE POLICY "activities_rows" ON "activities" USING (true) WITH CHECK (true);
CREATE POLICY "activities_tenant" ON "activities" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
