-- Migration 0004 (add_tare) of app `showcase`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Change measurements (entity Measurement).
ALTER TABLE "measurements" ADD COLUMN "tare" TEXT;
CREATE INDEX "measurements_tare_idx" ON "measurements" ("tare");
