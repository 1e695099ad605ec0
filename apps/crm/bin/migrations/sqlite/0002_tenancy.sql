-- Migration 0002 (tenancy) of app `crm`, for SQLite.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.
-- prefiq:foreign-keys=off (a table is rebuilt: foreign keys are checked once, before commit)

-- Rebuild companies (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "companies__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "domain" TEXT,
    "website" TEXT,
    "industry" TEXT NOT NULL DEFAULT 'other',
    "employee_count" INTEGER,
    "annual_revenue" TEXT,
    "address" TEXT,
    "tags" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "companies_industry_check" CHECK ("industry" IN ('software', 'manufacturing', 'retail', 'finance', 'healthcare', 'education', 'other'))
);

-- Copy the rows of companies and swap the tables.
INSERT INTO "companies__prefiq_new" ("id", "name", "domain", "website", "industry", "employee_count", "annual_revenue", "address", "tags", "created_at", "updated_at", "version", "tenant_id") SELECT "id", "name", "domain", "website", "industry", "employee_count", "annual_revenue", "address", "tags", "created_at", "updated_at", "version", '00000000-0000-0000-0000-000000000000' FROM "companies";
DROP TABLE "companies";
ALTER TABLE "companies__prefiq_new" RENAME TO "companies";
CREATE INDEX "companies_tenant_id_idx" ON "companies" ("tenant_id");
CREATE UNIQUE INDEX "companies_name_key" ON "companies" ("tenant_id", "name");
CREATE UNIQUE INDEX "companies_domain_key" ON "companies" ("tenant_id", "domain");
CREATE INDEX "companies_industry_idx" ON "companies" ("industry");
CREATE INDEX "companies_employee_count_idx" ON "companies" ("employee_count");
CREATE INDEX "companies_annual_revenue_idx" ON "companies" ("annual_revenue");
CREATE INDEX "companies_created_at_idx" ON "companies" ("created_at");
CREATE INDEX "companies_updated_at_idx" ON "companies" ("updated_at");

-- Rebuild contacts (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "contacts__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "company_id" TEXT NOT NULL,
    "first_name" TEXT NOT NULL,
    "last_name" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "phone" TEXT,
    "job_title" TEXT,
    "status" TEXT NOT NULL DEFAULT 'lead',
    "birthday" TEXT,
    "marketing_opt_in" INTEGER NOT NULL DEFAULT 0,
    "preferred_channel" TEXT,
    "address" TEXT,
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "contacts_status_check" CHECK ("status" IN ('lead', 'active', 'churned')),
    CONSTRAINT "contacts_company_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies" ("id") ON DELETE CASCADE
);

-- Copy the rows of contacts and swap the tables.
INSERT INTO "contacts__prefiq_new" ("id", "company_id", "first_name", "last_name", "email", "phone", "job_title", "status", "birthday", "marketing_opt_in", "preferred_channel", "address", "created_at", "updated_at", "version", "tenant_id") SELECT "id", "company_id", "first_name", "last_name", "email", "phone", "job_title", "status", "birthday", "marketing_opt_in", "preferred_channel", "address", "created_at", "updated_at", "version", '00000000-0000-0000-0000-000000000000' FROM "contacts";
DROP TABLE "contacts";
ALTER TABLE "contacts__prefiq_new" RENAME TO "contacts";
CREATE INDEX "contacts_tenant_id_idx" ON "contacts" ("tenant_id");
CREATE UNIQUE INDEX "contacts_email_key" ON "contacts" ("tenant_id", "email");
CREATE INDEX "contacts_last_name_first_name_idx" ON "contacts" ("last_name", "first_name");
CREATE INDEX "contacts_company_id_idx" ON "contacts" ("company_id");
CREATE INDEX "contacts_first_name_idx" ON "contacts" ("first_name");
CREATE INDEX "contacts_status_idx" ON "contacts" ("status");
CREATE INDEX "contacts_marketing_opt_in_idx" ON "contacts" ("marketing_opt_in");
CREATE INDEX "contacts_created_at_idx" ON "contacts" ("created_at");

-- Rebuild deals (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "deals__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "name" TEXT NOT NULL,
    "company_id" TEXT NOT NULL,
    "contact_id" TEXT,
    "stage" TEXT NOT NULL DEFAULT 'lead',
    "amount" TEXT NOT NULL,
    "currency" TEXT NOT NULL DEFAULT 'EUR',
    "probability" INTEGER NOT NULL DEFAULT 10,
    "expected_close_date" TEXT,
    "closed_at" TEXT,
    "lost_reason" TEXT,
    "tags" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "deals_stage_check" CHECK ("stage" IN ('lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost')),
    CONSTRAINT "deals_company_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies" ("id") ON DELETE CASCADE,
    CONSTRAINT "deals_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts" ("id") ON DELETE SET NULL
);

-- Copy the rows of deals and swap the tables.
INSERT INTO "deals__prefiq_new" ("id", "name", "company_id", "contact_id", "stage", "amount", "currency", "probability", "expected_close_date", "closed_at", "lost_reason", "tags", "created_at", "updated_at", "version", "tenant_id") SELECT "id", "name", "company_id", "contact_id", "stage", "amount", "currency", "probability", "expected_close_date", "closed_at", "lost_reason", "tags", "created_at", "updated_at", "version", '00000000-0000-0000-0000-000000000000' FROM "deals";
DROP TABLE "deals";
ALTER TABLE "deals__prefiq_new" RENAME TO "deals";
CREATE INDEX "deals_tenant_id_idx" ON "deals" ("tenant_id");
CREATE INDEX "deals_company_id_stage_idx" ON "deals" ("company_id", "stage");
CREATE INDEX "deals_name_idx" ON "deals" ("name");
CREATE INDEX "deals_contact_id_idx" ON "deals" ("contact_id");
CREATE INDEX "deals_stage_idx" ON "deals" ("stage");
CREATE INDEX "deals_amount_idx" ON "deals" ("amount");
CREATE INDEX "deals_currency_idx" ON "deals" ("currency");
CREATE INDEX "deals_probability_idx" ON "deals" ("probability");
CREATE INDEX "deals_expected_close_date_idx" ON "deals" ("expected_close_date");
CREATE INDEX "deals_closed_at_idx" ON "deals" ("closed_at");
CREATE INDEX "deals_created_at_idx" ON "deals" ("created_at");
CREATE INDEX "deals_updated_at_idx" ON "deals" ("updated_at");

-- Rebuild activities (SQLite cannot alter these columns in place): a new table, the rows, the indexes.
CREATE TABLE "activities__prefiq_new" (
    "id" TEXT PRIMARY KEY,
    "kind" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "notes" TEXT,
    "due_at" TEXT,
    "duration_minutes" INTEGER,
    "completed" INTEGER NOT NULL DEFAULT 0,
    "deal_id" TEXT,
    "contact_id" TEXT,
    "participants" TEXT NOT NULL DEFAULT '[]',
    "created_at" TEXT NOT NULL,
    "updated_at" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "owner_id" TEXT,
    "tenant_id" TEXT NOT NULL,
    CONSTRAINT "activities_kind_check" CHECK ("kind" IN ('call', 'email', 'meeting', 'task', 'note')),
    CONSTRAINT "activities_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deals" ("id") ON DELETE CASCADE,
    CONSTRAINT "activities_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts" ("id") ON DELETE CASCADE
);

-- Copy the rows of activities and swap the tables.
INSERT INTO "activities__prefiq_new" ("id", "kind", "subject", "notes", "due_at", "duration_minutes", "completed", "deal_id", "contact_id", "participants", "created_at", "updated_at", "version", "tenant_id") SELECT "id", "kind", "subject", "notes", "due_at", "duration_minutes", "completed", "deal_id", "contact_id", "participants", "created_at", "updated_at", "version", '00000000-0000-0000-0000-000000000000' FROM "activities";
DROP TABLE "activities";
ALTER TABLE "activities__prefiq_new" RENAME TO "activities";
CREATE INDEX "activities_tenant_id_idx" ON "activities" ("tenant_id");
CREATE INDEX "activities_kind_idx" ON "activities" ("kind");
CREATE INDEX "activities_subject_idx" ON "activities" ("subject");
CREATE INDEX "activities_due_at_idx" ON "activities" ("due_at");
CREATE INDEX "activities_completed_idx" ON "activities" ("completed");
CREATE INDEX "activities_deal_id_idx" ON "activities" ("deal_id");
CREATE INDEX "activities_contact_id_idx" ON "activities" ("contact_id");
CREATE INDEX "activities_created_at_idx" ON "activities" ("created_at");
CREATE INDEX "activities_owner_id_idx" ON "activities" ("owner_id");
