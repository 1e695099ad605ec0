-- Migration 0003 (check) of the Prefiq runtime, for PostgreSQL.
--
-- `prefiq_check(ok, what)` is true when `ok` is, and otherwise fails the statement (and with it
-- the transaction) with SQLSTATE PQ001 and `what` as its message. The repository sends its
-- checks with the writes they guard, in one round trip: a reference that names no row of the
-- caller's tenant fails the write as surely as a check made before it.
CREATE OR REPLACE FUNCTION prefiq_check(ok boolean, what text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'PQ001', MESSAGE = what;
    END IF;
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION prefiq_check(boolean, text) TO prefiq_app;
