-- One-time links to set a password (an invitation's, a reset's), stored as the SHA-256 of their
-- random value, and what each person chose to be told, per notification kind and channel (a
-- missing row is the kind's default: told). Row-level security is PostgreSQL's.

CREATE TABLE "cortex_password_links" (
    "token_hash" TEXT PRIMARY KEY,
    "user_id" TEXT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "tenant_id" TEXT NOT NULL,
    "purpose" TEXT NOT NULL CHECK ("purpose" IN ('invitation', 'reset')),
    "created_at" TEXT NOT NULL,
    "expires_at" TEXT NOT NULL,
    "used_at" TEXT
);
CREATE INDEX "cortex_password_links_user_idx" ON "cortex_password_links" ("user_id");

CREATE TABLE "cortex_notification_preferences" (
    "user_id" TEXT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "tenant_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "channel" TEXT NOT NULL CHECK ("channel" IN ('in_app', 'email')),
    "enabled" INTEGER NOT NULL,
    PRIMARY KEY ("user_id", "kind", "channel")
);
