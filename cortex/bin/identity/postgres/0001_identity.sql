-- Cortex's identity store, for PostgreSQL: secrets and sign-in state that no API exposes.
-- Passwords are argon2 hashes; every token is stored as the SHA-256 of its random value.

CREATE TABLE "cortex_credentials" (
    "user_id" uuid PRIMARY KEY REFERENCES "users" ("id") ON DELETE CASCADE,
    "password_hash" text NOT NULL,
    "changed_at" timestamptz NOT NULL
);

CREATE TABLE "cortex_sessions" (
    "token_hash" text PRIMARY KEY,
    "user_id" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "csrf" text NOT NULL,
    "created_at" timestamptz NOT NULL,
    "expires_at" timestamptz NOT NULL
);
CREATE INDEX "cortex_sessions_user_idx" ON "cortex_sessions" ("user_id");

CREATE TABLE "cortex_clients" (
    "client_id" text PRIMARY KEY,
    "name" text NOT NULL,
    "secret_hash" text,
    "redirect_uris" jsonb NOT NULL DEFAULT '[]'::jsonb,
    "tenant_id" uuid NOT NULL,
    "roles" jsonb NOT NULL DEFAULT '[]'::jsonb,
    "created_at" timestamptz NOT NULL,
    "revoked_at" timestamptz
);

CREATE TABLE "cortex_auth_codes" (
    "code_hash" text PRIMARY KEY,
    "client_id" text NOT NULL REFERENCES "cortex_clients" ("client_id") ON DELETE CASCADE,
    "user_id" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "redirect_uri" text NOT NULL,
    "code_challenge" text NOT NULL,
    "family" uuid NOT NULL,
    "expires_at" timestamptz NOT NULL,
    "used_at" timestamptz
);

CREATE TABLE "cortex_refresh_tokens" (
    "token_hash" text PRIMARY KEY,
    "family" uuid NOT NULL,
    "user_id" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "client_id" text NOT NULL,
    "created_at" timestamptz NOT NULL,
    "expires_at" timestamptz NOT NULL,
    "used_at" timestamptz,
    "revoked_at" timestamptz
);
CREATE INDEX "cortex_refresh_tokens_family_idx" ON "cortex_refresh_tokens" ("family");

CREATE TABLE "cortex_personal_tokens" (
    "id" uuid PRIMARY KEY,
    "user_id" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "name" text NOT NULL,
    "token_hash" text NOT NULL UNIQUE,
    "created_at" timestamptz NOT NULL,
    "expires_at" timestamptz,
    "last_used_at" timestamptz,
    "revoked_at" timestamptz
);
CREATE INDEX "cortex_personal_tokens_user_idx" ON "cortex_personal_tokens" ("user_id");

CREATE TABLE "cortex_login_attempts" (
    "id" uuid PRIMARY KEY,
    "account" text NOT NULL,
    "address" text NOT NULL,
    "at" timestamptz NOT NULL,
    "succeeded" boolean NOT NULL
);
CREATE INDEX "cortex_login_attempts_account_idx" ON "cortex_login_attempts" ("account", "at");
CREATE INDEX "cortex_login_attempts_address_idx" ON "cortex_login_attempts" ("address", "at");
