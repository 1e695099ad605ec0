-- Migration 0003 (webhook_secret) of app `showcase`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Change categories (entity Category).
ALTER TABLE "categories" ADD COLUMN "webhook_secret" text;
