-- Migration 0009 (idempotency_committed) of the Prefiq runtime, for PostgreSQL: when a request
-- holding an Idempotency-Key first committed a write. Set in the write's own transaction, so a
-- first request whose server stopped before its response was kept is known to have happened,
-- and is not run again.
ALTER TABLE "prefiq_idempotency" ADD COLUMN "committed_at" timestamptz;
