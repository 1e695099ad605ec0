-- Migration 0008 (jobs_claim_order) of the Prefiq runtime, for PostgreSQL.
-- A claim takes due jobs in (run_at, id) order: with the id in the index, the first ones are
-- read from it instead of sorting every due job (20,000 due jobs cost a claim 12 ms before).
CREATE INDEX "prefiq_jobs_due_idx" ON "prefiq_jobs" ("app", "queue", "state", "run_at", "id");
DROP INDEX "prefiq_jobs_claim_idx";
