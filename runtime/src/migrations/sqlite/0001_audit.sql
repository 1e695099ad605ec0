-- Migration 0001 (audit) of the Prefiq runtime, for SQLite: the audit log. Applied before any
-- app's migrations.

CREATE TABLE "prefiq_audit" (
    "id" TEXT PRIMARY KEY,
    "tenant_id" TEXT NOT NULL,
    "at" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "actor_user" TEXT,
    "credential" TEXT NOT NULL,
    "app" TEXT NOT NULL,
    "entity" TEXT NOT NULL,
    "entity_id" TEXT NOT NULL,
    "action" TEXT NOT NULL CHECK ("action" IN ('create', 'update', 'delete')),
    "changes" TEXT NOT NULL
);
CREATE INDEX "prefiq_audit_tenant_at_idx" ON "prefiq_audit" ("tenant_id", "at");
CREATE INDEX "prefiq_audit_row_idx" ON "prefiq_audit" ("tenant_id", "app", "entity", "entity_id");

-- Append-only: no entry changes, and none goes before it is a day old (the shortest retention).
CREATE TRIGGER "prefiq_audit_no_update" BEFORE UPDATE ON "prefiq_audit"
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER "prefiq_audit_no_early_delete" BEFORE DELETE ON "prefiq_audit"
WHEN OLD."at" >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
BEGIN
    SELECT RAISE(ABORT, 'audit entries are kept at least a day');
END;
