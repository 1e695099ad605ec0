-- Migration 0001 (initial) of app `crm`, for PostgreSQL.
-- Made by `prefiq migrate diff`; its checksum is in migrations.sum. Change the schema and make a
-- new migration instead of editing this one.

-- Company: An organisation we sell to.
CREATE TABLE "companies" (
    "id" uuid PRIMARY KEY,
    "name" text NOT NULL,
    "domain" text,
    "website" text,
    "industry" text NOT NULL DEFAULT 'other',
    "employee_count" bigint,
    "annual_revenue" numeric(16, 2),
    "address" jsonb,
    "tags" jsonb NOT NULL DEFAULT '[]'::jsonb,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    CONSTRAINT "companies_industry_check" CHECK ("industry" IN ('software', 'manufacturing', 'retail', 'finance', 'healthcare', 'education', 'other'))
);
CREATE UNIQUE INDEX "companies_name_key" ON "companies" ("name");
CREATE UNIQUE INDEX "companies_domain_key" ON "companies" ("domain");
CREATE INDEX "companies_industry_idx" ON "companies" ("industry");
CREATE INDEX "companies_employee_count_idx" ON "companies" ("employee_count");
CREATE INDEX "companies_annual_revenue_idx" ON "companies" ("annual_revenue");
CREATE INDEX "companies_tags_gin" ON "companies" USING GIN ("tags");
CREATE INDEX "companies_created_at_idx" ON "companies" ("created_at");
CREATE INDEX "companies_updated_at_idx" ON "companies" ("updated_at");

-- Contact: A person at a company.
CREATE TABLE "contacts" (
    "id" uuid PRIMARY KEY,
    "company_id" uuid NOT NULL,
    "first_name" text NOT NULL,
    "last_name" text NOT NULL,
    "email" text NOT NULL,
    "phone" text,
    "job_title" text,
    "status" text NOT NULL DEFAULT 'lead',
    "birthday" date,
    "marketing_opt_in" boolean NOT NULL DEFAULT false,
    "preferred_channel" jsonb,
    "address" jsonb,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    CONSTRAINT "contacts_status_check" CHECK ("status" IN ('lead', 'active', 'churned')),
    CONSTRAINT "contacts_company_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX "contacts_email_key" ON "contacts" ("email");
CREATE INDEX "contacts_last_name_first_name_idx" ON "contacts" ("last_name", "first_name");
CREATE INDEX "contacts_company_id_idx" ON "contacts" ("company_id");
CREATE INDEX "contacts_first_name_idx" ON "contacts" ("first_name");
CREATE INDEX "contacts_status_idx" ON "contacts" ("status");
CREATE INDEX "contacts_marketing_opt_in_idx" ON "contacts" ("marketing_opt_in");
CREATE INDEX "contacts_created_at_idx" ON "contacts" ("created_at");

-- Deal: A sales opportunity with a company, moving through the pipeline stages.
CREATE TABLE "deals" (
    "id" uuid PRIMARY KEY,
    "name" text NOT NULL,
    "company_id" uuid NOT NULL,
    "contact_id" uuid,
    "stage" text NOT NULL DEFAULT 'lead',
    "amount" numeric(14, 2) NOT NULL,
    "currency" text NOT NULL DEFAULT 'EUR',
    "probability" integer NOT NULL DEFAULT 10,
    "expected_close_date" date,
    "closed_at" timestamptz,
    "lost_reason" text,
    "tags" jsonb NOT NULL DEFAULT '[]'::jsonb,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    CONSTRAINT "deals_stage_check" CHECK ("stage" IN ('lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost')),
    CONSTRAINT "deals_company_id_fkey" FOREIGN KEY ("company_id") REFERENCES "companies" ("id") ON DELETE CASCADE,
    CONSTRAINT "deals_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts" ("id") ON DELETE SET NULL
);
CREATE INDEX "deals_company_id_stage_idx" ON "deals" ("company_id", "stage");
CREATE INDEX "deals_name_idx" ON "deals" ("name");
CREATE INDEX "deals_contact_id_idx" ON "deals" ("contact_id");
CREATE INDEX "deals_stage_idx" ON "deals" ("stage");
CREATE INDEX "deals_amount_idx" ON "deals" ("amount");
CREATE INDEX "deals_currency_idx" ON "deals" ("currency");
CREATE INDEX "deals_probability_idx" ON "deals" ("probability");
CREATE INDEX "deals_expected_close_date_idx" ON "deals" ("expected_close_date");
CREATE INDEX "deals_closed_at_idx" ON "deals" ("closed_at");
CREATE INDEX "deals_tags_gin" ON "deals" USING GIN ("tags");
CREATE INDEX "deals_created_at_idx" ON "deals" ("created_at");
CREATE INDEX "deals_updated_at_idx" ON "deals" ("updated_at");

-- Activity: A call, e-mail, meeting, task or note about a deal or a contact (exactly one of them).
CREATE TABLE "activities" (
    "id" uuid PRIMARY KEY,
    "kind" text NOT NULL,
    "subject" text NOT NULL,
    "notes" text,
    "due_at" timestamptz,
    "duration_minutes" integer,
    "completed" boolean NOT NULL DEFAULT false,
    "deal_id" uuid,
    "contact_id" uuid,
    "participants" jsonb NOT NULL DEFAULT '[]'::jsonb,
    "created_at" timestamptz NOT NULL,
    "updated_at" timestamptz NOT NULL,
    "version" bigint NOT NULL DEFAULT 1,
    CONSTRAINT "activities_kind_check" CHECK ("kind" IN ('call', 'email', 'meeting', 'task', 'note')),
    CONSTRAINT "activities_deal_id_fkey" FOREIGN KEY ("deal_id") REFERENCES "deals" ("id") ON DELETE CASCADE,
    CONSTRAINT "activities_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts" ("id") ON DELETE CASCADE
);
CREATE INDEX "activities_kind_idx" ON "activities" ("kind");
CREATE INDEX "activities_subject_idx" ON "activities" ("subject");
CREATE INDEX "activities_due_at_idx" ON "activities" ("due_at");
CREATE INDEX "activities_completed_idx" ON "activities" ("completed");
CREATE INDEX "activities_deal_id_idx" ON "activities" ("deal_id");
CREATE INDEX "activities_contact_id_idx" ON "activities" ("contact_id");
CREATE INDEX "activities_created_at_idx" ON "activities" ("created_at");
