-- Migration 0007 (jobs_notify) of the Prefiq runtime, for PostgreSQL: new jobs wake their app's
-- workers when the enqueueing transaction commits (NOTIFY on `prefiq_jobs`, the app as payload),
-- so an idle worker starts a job at once instead of at its next poll. One notification per
-- statement and app, whatever the number of rows.
CREATE FUNCTION prefiq_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('prefiq_jobs', apps.app) FROM (SELECT DISTINCT app FROM enqueued) AS apps;
    RETURN NULL;
END
$$;
CREATE TRIGGER prefiq_jobs_notify AFTER INSERT ON prefiq_jobs
    REFERENCING NEW TABLE AS enqueued FOR EACH STATEMENT EXECUTE FUNCTION prefiq_jobs_notify();
