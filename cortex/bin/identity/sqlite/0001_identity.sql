-- Cortex's identity store, for SQLite: secrets and sign-in state that no API exposes.
-- Passwords are argon2 hashes; every token is stored as the SHA-256 of its random value.

CREATE TABLE "cortex_credentials" (
    "user_id" TEXT PRIMARY KEY REFERENCES "users" ("id") ON DELETE CASCADE,
    "password_hash" TEXT NOT NULL,
    "changed_at" TEXT NOT NULL
);

CREATE TABLE "cortex_sessions" (
    "token_hash" TEXT PRIMARY KEY,
    "user_id" TEXT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "csrf" TEXT NOT NULL,
    "created_at" TEXT NOT NULL,
    "expires_at" TEXT NOT NULL
);
CREATE INDEX "cortex_sessions_user_idx" ON "cortex_sessions" ("user_id");

CREATE TABLE "cortex_clients" (
    "client_id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "secret_hash" TEXT,
    "redirect_uris" TEXT NOT NULL DEFAULT '[]',
    "tenant_id" TEXT NOT NULL,
    "roles" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "revoked_at" TEXT
);

CREATE TABLE "cortex_auth_codes" (
    "code_hash" TEXT PRIMARY KEY,
    "client_id" TEXT NOT NULL REFERENCES "cortex_clients" ("client_id") ON DELETE CASCADE,
    "user_id" TEXT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "redirect_uri" TEXT NOT NULL,
    "code_challenge" TEXT NOT NULL,
    "family" TEXT NOT NULL,
    "expires_at" TEXT NOT NULL,
    "used_at" TEXT
);

CREATE TABLE "cortex_refresh_tokens" (
    "token_hash" TEXT PRIMARY KEY,
    "family" TEXT NOT NULL,
    "user_id" TEXT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "client_id" TEXT NOT NULL,
    "created_at" TEXT NOT NULL,
    "expires_at" TEXT NOT NULL,
    "used_at" TEXT,
    "revoked_at" TEXT
);
CREATE INDEX "cortex_refresh_tokens_family_idx" ON "cortex_refresh_tokens" ("family");

CREATE TABLE "cortex_personal_tokens" (
    "id" TEXT PRIMARY KEY,
    "user_id" TEXT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "name" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL UNIQUE,
    "created_at" TEXT NOT NULL,
    "expires_at" TEXT,
    "last_used_at" TEXT,
    "revoked_at" TEXT
);
CREATE INDEX "cortex_personal_tokens_user_idx" ON "cortex_personal_tokens" ("user_id");

CREATE TABLE "cortex_login_attempts" (
    "id" TEXT PRIMARY KEY,
    "account" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "at" TEXT NOT NULL,
    "succeeded" INTEGER NOT NULL
);
CREATE INDEX "cortex_login_attempts_account_idx" ON "cortex_login_attempts" ("account", "at");
CREATE INDEX "cortex_login_attempts_address_idx" ON "cortex_login_attempts" ("address", "at");
