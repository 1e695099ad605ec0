-- Migration 0002 (platform audit) of the Prefiq runtime, for SQLite: nothing to do. SQLite has
-- no row-level security; the repository writes a platform operator's entries to the tenant's
-- log itself, as it does on PostgreSQL.
SELECT 1;
