-- One-time links to set a password (an invitation's, a reset's), stored as the SHA-256 of their
-- random value, and what each person chose to be told, per notification kind and channel (a
-- missing row is the kind's default: told). Both name their tenant, under row-level security
-- like the other credential tables.

CREATE TABLE "cortex_password_links" (
    "token_hash" text PRIMARY KEY,
    "user_id" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "tenant_id" uuid NOT NULL,
    "purpose" text NOT NULL CHECK ("purpose" IN ('invitation', 'reset')),
    "created_at" timestamptz NOT NULL,
    "expires_at" timestamptz NOT NULL,
    "used_at" timestamptz
);
CREATE INDEX "cortex_password_links_user_idx" ON "cortex_password_links" ("user_id");

CREATE TABLE "cortex_notification_preferences" (
    "user_id" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "tenant_id" uuid NOT NULL,
    "kind" text NOT NULL,
    "channel" text NOT NULL CHECK ("channel" IN ('in_app', 'email')),
    "enabled" boolean NOT NULL,
    PRIMARY KEY ("user_id", "kind", "channel")
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cortex_password_links', 'cortex_notification_preferences']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (true) WITH CHECK (true)', t || '_rows', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I AS RESTRICTIVE TO prefiq_app '
            'USING (coalesce(current_setting(''prefiq.platform'', true), '''') = ''on'' OR "tenant_id" = nullif(current_setting(''prefiq.tenant_id'', true), '''')::uuid) '
            'WITH CHECK (coalesce(current_setting(''prefiq.platform'', true), '''') = ''on'' OR "tenant_id" = nullif(current_setting(''prefiq.tenant_id'', true), '''')::uuid)',
            t || '_tenant', t);
    END LOOP;
END
$$;
