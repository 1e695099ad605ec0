-- Migration 0001 (audit) of the Prefiq runtime, for PostgreSQL: the role requests run as, and
-- the audit log. Applied before any app's migrations.

-- Requests run as `prefiq_app` (the server switches to it on every connection). It owns
-- nothing, so row-level security binds it; the migrating user keeps it as a member.
DO $$
BEGIN
    CREATE ROLE prefiq_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
DO $$
BEGIN
    EXECUTE format('GRANT prefiq_app TO %I', current_user);
EXCEPTION WHEN others THEN
    NULL;
END
$$;

CREATE TABLE "prefiq_audit" (
    "id" uuid PRIMARY KEY,
    "tenant_id" uuid NOT NULL,
    "at" timestamptz NOT NULL,
    "actor" text NOT NULL,
    "actor_user" uuid,
    "credential" text NOT NULL,
    "app" text NOT NULL,
    "entity" text NOT NULL,
    "entity_id" text NOT NULL,
    "action" text NOT NULL CHECK ("action" IN ('create', 'update', 'delete')),
    "changes" jsonb NOT NULL
);
CREATE INDEX "prefiq_audit_tenant_at_idx" ON "prefiq_audit" ("tenant_id", "at");
CREATE INDEX "prefiq_audit_row_idx" ON "prefiq_audit" ("tenant_id", "app", "entity", "entity_id");

-- Each tenant sees and appends only its own entries.
ALTER TABLE "prefiq_audit" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "prefiq_audit" FORCE ROW LEVEL SECURITY;
CREATE POLICY "prefiq_audit_rows" ON "prefiq_audit" USING (true) WITH CHECK (true);
CREATE POLICY "prefiq_audit_tenant" ON "prefiq_audit" AS RESTRICTIVE TO prefiq_app
    USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid)
    WITH CHECK ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid);
