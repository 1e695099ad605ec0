-- Migration 0001 (initial) of app `cortex`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- AppRegistration: An app installed in Cortex, as found at start-up, with the migrations applied to the database.
CREATE TABLE "app_registrations" (
    "id" TEXT PRIMARY KEY,
    "app" TEXT NOT NULL,
    "app_version" TEXT NOT NULL,
    "description" TEXT,
    "migrations" TEXT NOT NULL DEFAULT '[]',
    "enabled" INTEGER NOT NULL DEFAULT 1,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX "app_registrations_app_key" ON "app_registrations" ("app");
CREATE INDEX "app_registrations_enabled_idx" ON "app_registrations" ("enabled");

-- Organisation: A company or department within a tenant.
CREATE TABLE "organisations" (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL
);
CREATE INDEX "organisations_tenant_id_idx" ON "organisations" ("tenant_id");
CREATE UNIQUE INDEX "organisations_name_key" ON "organisations" ("tenant_id", "name");
CREATE INDEX "organisations_created_at_idx" ON "organisations" ("created_at");

-- Role: A named set of grants. A user's permissions are those of their roles; `admin` has every permission.
CREATE TABLE "roles" (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "permissions" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX "roles_name_key" ON "roles" ("name");

-- Team: A group of users within a tenant.
CREATE TABLE "teams" (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "organisation_id" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "teams_organisation_id_fkey" FOREIGN KEY ("organisation_id") REFERENCES "organisations" ("id") ON DELETE SET NULL
);
CREATE INDEX "teams_tenant_id_idx" ON "teams" ("tenant_id");
CREATE UNIQUE INDEX "teams_name_key" ON "teams" ("tenant_id", "name");
CREATE INDEX "teams_organisation_id_idx" ON "teams" ("organisation_id");
CREATE INDEX "teams_created_at_idx" ON "teams" ("created_at");

-- Tenant: An organisation whose data every app keeps apart from every other tenant's.
CREATE TABLE "tenants" (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "active" INTEGER NOT NULL DEFAULT 1,
    "disabled_apps" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX "tenants_slug_key" ON "tenants" ("slug");
CREATE INDEX "tenants_name_idx" ON "tenants" ("name");
CREATE INDEX "tenants_active_idx" ON "tenants" ("active");
CREATE INDEX "tenants_created_at_idx" ON "tenants" ("created_at");

-- Setting: A typed setting. A row without a tenant is the global default; a tenant's own row overrides it for that tenant.
CREATE TABLE "settings" (
    "id" TEXT PRIMARY KEY,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "for_tenant" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT "settings_key_check" CHECK ("key" IN ('audit.retention-days', 'session.idle-minutes', 'tokens.access-minutes', 'tokens.refresh-days', 'login.max-failures', 'branding.name')),
    CONSTRAINT "settings_for_tenant_fkey" FOREIGN KEY ("for_tenant") REFERENCES "tenants" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX "settings_key_for_tenant_key" ON "settings" ("key", "for_tenant");
CREATE INDEX "settings_for_tenant_idx" ON "settings" ("for_tenant");

-- User: A person who signs in to Cortex. Passwords are kept apart, hashed with argon2, and never leave the server.
CREATE TABLE "users" (
    "id" TEXT PRIMARY KEY,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "roles" TEXT NOT NULL DEFAULT '["member"]',
    "teams" TEXT NOT NULL DEFAULT '[]',
    "active" INTEGER NOT NULL DEFAULT 1,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT "users_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX "users_email_key" ON "users" ("email");
CREATE INDEX "users_name_idx" ON "users" ("name");
CREATE INDEX "users_tenant_id_idx" ON "users" ("tenant_id");
CREATE INDEX "users_active_idx" ON "users" ("active");
CREATE INDEX "users_created_at_idx" ON "users" ("created_at");
