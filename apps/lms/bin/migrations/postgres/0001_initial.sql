-- Migration 0001 (initial) of app `lms`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Course: A course learners enrol in, made of ordered lessons.
CREATE TABLE "courses" (
    "id" uuid PRIMARY KEY,
    "code" text NOT NULL,
    "title" text NOT NULL,
    "summary" text,
    "level" text NOT NULL DEFAULT 'beginner',
    "published" boolean NOT NULL DEFAULT false,
    "price" numeric(10, 2) NOT NULL DEFAULT 0.00,
    "tags" jsonb NOT NULL DEFAULT '[]'::jsonb,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    CONSTRAINT "courses_level_check" CHECK ("level" IN ('beginner', 'intermediate', 'advanced'))
);
CREATE UNIQUE INDEX "courses_code_key" ON "courses" ("code");
CREATE INDEX "courses_title_idx" ON "courses" ("title");
CREATE INDEX "courses_level_idx" ON "courses" ("level");
CREATE INDEX "courses_published_idx" ON "courses" ("published");
CREATE INDEX "courses_price_idx" ON "courses" ("price");
CREATE INDEX "courses_tags_gin" ON "courses" USING GIN ("tags");
CREATE INDEX "courses_created_at_idx" ON "courses" ("created_at");

-- Lesson: One lesson of a course; `position` orders the lessons of a course.
CREATE TABLE "lessons" (
    "id" uuid PRIMARY KEY,
    "course_id" uuid NOT NULL,
    "position" bigint NOT NULL,
    "title" text NOT NULL,
    "duration_minutes" bigint NOT NULL DEFAULT 15,
    "video_url" text,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    CONSTRAINT "lessons_course_id_fkey" FOREIGN KEY ("course_id") REFERENCES "courses" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX "lessons_course_id_position_key" ON "lessons" ("course_id", "position");
CREATE INDEX "lessons_position_idx" ON "lessons" ("position");
CREATE INDEX "lessons_title_idx" ON "lessons" ("title");
CREATE INDEX "lessons_duration_minutes_idx" ON "lessons" ("duration_minutes");

-- Enrollment: A learner enrolled in a course, and how far they got.
CREATE TABLE "enrollments" (
    "id" uuid PRIMARY KEY,
    "course_id" uuid NOT NULL,
    "learner_email" text NOT NULL,
    "status" text NOT NULL DEFAULT 'active',
    "last_lesson_id" uuid,
    "completed_on" date,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    CONSTRAINT "enrollments_status_check" CHECK ("status" IN ('active', 'completed', 'withdrawn')),
    CONSTRAINT "enrollments_course_id_fkey" FOREIGN KEY ("course_id") REFERENCES "courses" ("id") ON DELETE RESTRICT,
    CONSTRAINT "enrollments_last_lesson_id_fkey" FOREIGN KEY ("last_lesson_id") REFERENCES "lessons" ("id") ON DELETE SET NULL
);
CREATE UNIQUE INDEX "enrollments_course_id_learner_email_key" ON "enrollments" ("course_id", "learner_email");
CREATE INDEX "enrollments_learner_email_idx" ON "enrollments" ("learner_email");
CREATE INDEX "enrollments_status_idx" ON "enrollments" ("status");
CREATE INDEX "enrollments_last_lesson_id_idx" ON "enrollments" ("last_lesson_id");
CREATE INDEX "enrollments_completed_on_idx" ON "enrollments" ("completed_on");
CREATE INDEX "enrollments_created_at_idx" ON "enrollments" ("created_at");
