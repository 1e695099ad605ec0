-- Migration 0002 (platform audit) of the Prefiq runtime, for PostgreSQL.
--
-- What a platform operator does to a row of another tenant is written to that tenant's log as
-- well as the operator's own, so each tenant sees what was done to it. A transaction appends
-- to its own tenant's log; a platform operator's transaction (`prefiq.platform` = 'on') may
-- append to any tenant's. Reading stays each tenant's own.
DROP POLICY "prefiq_audit_tenant" ON "prefiq_audit";
CREATE POLICY "prefiq_audit_tenant" ON "prefiq_audit" AS RESTRICTIVE TO prefiq_app
    USING ("tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid)
    WITH CHECK (
        "tenant_id" = nullif(current_setting('prefiq.tenant_id', true), '')::uuid
        OR coalesce(current_setting('prefiq.platform', true), '') = 'on'
    );
