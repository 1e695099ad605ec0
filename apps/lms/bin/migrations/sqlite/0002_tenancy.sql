-- Migration 0002 (tenancy) of app `lms`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
-- prefiq:foreign-keys=off (a table is rebuilt: foreign keys are checked once, before commit)

-- Rebuild courses (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "courses__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "code" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "summary" TEXT,
    "level" TEXT NOT NULL DEFAULT 'beginner',
    "published" INTEGER NOT NULL DEFAULT 0,
    "price" TEXT NOT NULL DEFAULT '0.00',
    "tags" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "courses_level_check" CHECK ("level" IN ('beginner', 'intermediate', 'advanced'))
);

-- Copy the rows of courses and swap the tables.
INSERT INTO "courses__prefiq_new" ("id", "code", "title", "summary", "level", "published", "price", "tags", "created_at", "updated_at", "version", "tenant_id") SELECT "id", "code", "title", "summary", "level", "published", "price", "tags", "created_at", "updated_at", "version", '00000000-0000-0000-0000-000000000000' FROM "courses";
DROP TABLE "courses";
ALTER TABLE "courses__prefiq_new" RENAME TO "courses";
CREATE INDEX "courses_tenant_id_idx" ON "courses" ("tenant_id");
CREATE UNIQUE INDEX "courses_code_key" ON "courses" ("tenant_id", "code");
CREATE INDEX "courses_title_idx" ON "courses" ("title");
CREATE INDEX "courses_level_idx" ON "courses" ("level");
CREATE INDEX "courses_published_idx" ON "courses" ("published");
CREATE INDEX "courses_price_idx" ON "courses" ("price");
CREATE INDEX "courses_created_at_idx" ON "courses" ("created_at");

-- Rebuild lessons (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "lessons__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "course_id" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "title" TEXT NOT NULL,
    "duration_minutes" INTEGER NOT NULL DEFAULT 15,
    "video_url" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "lessons_course_id_fkey" FOREIGN KEY ("course_id") REFERENCES "courses" ("id") ON DELETE CASCADE
);

-- Copy the rows of lessons and swap the tables.
INSERT INTO "lessons__prefiq_new" ("id", "course_id", "position", "title", "duration_minutes", "video_url", "created_at", "updated_at", "version", "tenant_id") SELECT "id", "course_id", "position", "title", "duration_minutes", "video_url", "created_at", "updated_at", "version", '00000000-0000-0000-0000-000000000000' FROM "lessons";
DROP TABLE "lessons";
ALTER TABLE "lessons__prefiq_new" RENAME TO "lessons";
CREATE INDEX "lessons_tenant_id_idx" ON "lessons" ("tenant_id");
CREATE UNIQUE INDEX "lessons_course_id_position_key" ON "lessons" ("tenant_id", "course_id", "position");
CREATE INDEX "lessons_position_idx" ON "lessons" ("position");
CREATE INDEX "lessons_title_idx" ON "lessons" ("title");
CREATE INDEX "lessons_duration_minutes_idx" ON "lessons" ("duration_minutes");

-- Rebuild enrollments (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "enrollments__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "course_id" TEXT NOT NULL,
    "learner_email" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'active',
    "last_lesson_id" TEXT,
    "completed_on" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "enrollments_status_check" CHECK ("status" IN ('active', 'completed', 'withdrawn')),
    CONSTRAINT "enrollments_course_id_fkey" FOREIGN KEY ("course_id") REFERENCES "courses" ("id") ON DELETE RESTRICT,
    CONSTRAINT "enrollments_last_lesson_id_fkey" FOREIGN KEY ("last_lesson_id") REFERENCES "lessons" ("id") ON DELETE SET NULL
);

-- Copy the rows of enrollments and swap the tables.
INSERT INTO "enrollments__prefiq_new" ("id", "course_id", "learner_email", "status", "last_lesson_id", "completed_on", "created_at", "updated_at", "version", "tenant_id") SELECT "id", "course_id", "learner_email", "status", "last_lesson_id", "completed_on", "created_at", "updated_at", "version", '00000000-0000-0000-0000-000000000000' FROM "enrollments";
DROP TABLE "enrollments";
ALTER TABLE "enrollments__prefiq_new" RENAME TO "enrollments";
CREATE INDEX "enrollments_tenant_id_idx" ON "enrollments" ("tenant_id");
CREATE UNIQUE INDEX "enrollments_course_id_learner_email_key" ON "enrollments" ("tenant_id", "course_id", "learner_email");
CREATE INDEX "enrollments_learner_email_idx" ON "enrollments" ("learner_email");
CREATE INDEX "enrollments_status_idx" ON "enrollments" ("status");
CREATE INDEX "enrollments_last_lesson_id_idx" ON "enrollments" ("last_lesson_id");
CREATE INDEX "enrollments_completed_on_idx" ON "enrollments" ("completed_on");
CREATE INDEX "enrollments_created_at_idx" ON "enrollments" ("created_at");
