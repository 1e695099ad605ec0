-- Row-level security on the credential tables is PostgreSQL's (see its 0003); SQLite has none,
-- and Cortex reads and writes credentials only as the server itself on both.
SELECT 1;
