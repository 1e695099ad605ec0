-- Migration 0004 (add_tare) of app `showcase`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
--
-- On a large table, plan for these:
--   * creating the index measurements_tare_idx blocks writes to measurements while it builds; on a large table create it by hand with CREATE INDEX CONCURRENTLY before deploying

-- Change measurements (entity Measurement).
ALTER TABLE "measurements" ADD COLUMN "tare" numeric(6, 2);
CREATE INDEX "measurements_tare_idx" ON "measurements" ("tare");
