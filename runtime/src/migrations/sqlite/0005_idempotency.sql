-- Migration 0005 (idempotency) of the Prefiq runtime, for SQLite: the `Idempotency-Key`s of
-- unsafe requests, each with the request's hash and, once it finished, its response.
CREATE TABLE "prefiq_idempotency" (
    "tenant_id" TEXT NOT NULL,
    "caller" TEXT NOT NULL,
    "route" TEXT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "state" TEXT NOT NULL CHECK ("state" IN ('running', 'done')),
    "status" INTEGER,
    "headers" TEXT,
    "body" TEXT,
    "locked_until" TEXT NOT NULL,
    "expires_at" TEXT NOT NULL,
    PRIMARY KEY ("tenant_id", "caller", "route", "idempotency_key")
);
CREATE INDEX "prefiq_idempotency_expires_idx" ON "prefiq_idempotency" ("expires_at");
