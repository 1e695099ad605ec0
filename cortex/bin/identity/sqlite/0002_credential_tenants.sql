-- Each credential names the tenant it acts in: a session, a personal access token, an
-- authorization code and a refresh token act in their user's own tenant, or in another one the
-- user was let into and switched to. Deactivating a tenant ends every credential that acts in it
-- or is held by its users. Rows made before this name none: they act in their user's tenant.

ALTER TABLE "cortex_sessions" ADD COLUMN "tenant_id" TEXT;
ALTER TABLE "cortex_personal_tokens" ADD COLUMN "tenant_id" TEXT;
ALTER TABLE "cortex_auth_codes" ADD COLUMN "tenant_id" TEXT;
ALTER TABLE "cortex_refresh_tokens" ADD COLUMN "tenant_id" TEXT;
CREATE INDEX "cortex_sessions_tenant_idx" ON "cortex_sessions" ("tenant_id");
CREATE INDEX "cortex_personal_tokens_tenant_idx" ON "cortex_personal_tokens" ("tenant_id");
CREATE INDEX "cortex_refresh_tokens_user_idx" ON "cortex_refresh_tokens" ("user_id");
CREATE INDEX "cortex_login_attempts_pair_idx" ON "cortex_login_attempts" ("account", "address", "at");

-- When the credentials of a user ("user:<id>") or of a tenant ("tenant:<id>") last ended: Cortex
-- refuses an access token issued before, though its signature holds until it expires.
CREATE TABLE "cortex_credentials_ended" (
    "subject" TEXT PRIMARY KEY,
    "at" TEXT NOT NULL
);
