-- Migration 0007 (jobs_notify) of the Prefiq runtime, for SQLite: nothing to make. SQLite has no
-- notifications; its workers poll (and a server's writes and its workers share one process).
SELECT 1;
