-- Migration 0002 (tenancy) of app `lms`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
--
-- On a large table, plan for these:
--   * creating the index courses_tenant_id_idx blocks writes to courses while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index lessons_tenant_id_idx blocks writes to lessons while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying
--   * creating the index enrollments_tenant_id_idx blocks writes to enrollments while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying

-- courses: drop the constraints and indexes that change.
DROP INDEX "courses_code_key";

-- lessons: drop the constraints and indexes that change.
DROP INDEX "lessons_course_id_position_key";

-- enrollments: drop the constraints and indexes that change.
DROP INDEX "enrollments_course_id_learner_email_key";

-- Change courses (entity Course).
ALTER TABLE "courses" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "courses" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "courses_tenant_id_idx" ON "courses" ("tenant_id");
CREATE UNIQUE INDEX "courses_code_key" ON "courses" ("tenant_id", "code");

-- Change lessons (entity Lesson).
ALTER TABLE "lessons" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "lessons" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "lessons_tenant_id_idx" ON "lessons" ("tenant_id");
CREATE UNIQUE INDEX "lessons_course_id_position_key" ON "lessons" ("tenant_id", "course_id", "position");

-- Change enrollments (entity Enrollment).
ALTER TABLE "enrollments" ADD COLUMN "tenant_id" uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE "enrollments" ALTER COLUMN "tenant_id" DROP DEFAULT;
CREATE INDEX "enrollments_tenant_id_idx" ON "enrollments" ("tenant_id");
CREATE UNIQUE INDEX "enrollments_course_id_learner_email_key" ON "enrollments" ("tenant_id", "course_id", "learner_email");

-- Row-level security: the server's role (prefiq_app) sees and writes only the rows of the tenant its transaction set; the migrating user is not bound.
ALTER TABLE "courses" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "courses" FORCE ROW LEVEL SECURITY;
CREATE POLICY "courses_rows" ON "courses" USING (true) WITH CHECK (true);
CREATE POLICY "courses_tenant" ON "courses" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "lessons" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "lessons" FORCE ROW LEVEL SECURITY;
CREATE POLICY "lessons_rows" ON "lessons" USING (true) WITH CHECK (true);
CREATE POLICY "lessons_tenant" ON "lessons" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
ALTER TABLE "enrollments" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "enrollments" FORCE ROW LEVEL SECURITY;
CREATE POLICY "enrollments_rows" ON "enrollments" USING (true) WITH CHECK (true);
CREATE POLICY "enrollments_tenant" ON "enrollments" AS RESTRICTIVE TO prefiq_app USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid) WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
