-- Migration 0003 (check) of the Prefiq runtime, for SQLite: nothing to do. On SQLite the
-- repository checks a write's references before the write, in the same transaction.
SELECT 1;
