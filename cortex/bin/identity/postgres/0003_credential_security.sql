-- Row-level security on every credential table that names a tenant, like every other table
-- with a tenant_id: the server's role (prefiq_app) reaches a tenant's sessions, tokens, codes
-- and clients only in a transaction of that tenant, or of the server itself (Cortex reads and
-- writes credentials only so). Rows made before credentials named their tenant are the
-- server's alone. The migrating user is not bound.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cortex_sessions', 'cortex_personal_tokens', 'cortex_auth_codes', 'cortex_refresh_tokens', 'cortex_clients']
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
