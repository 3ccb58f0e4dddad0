-- PostgreSQL twin of the SQLite migration 0002_job_reliability.sql.
-- Job reliability (issue 11): every failed job step is counted, so a job that keeps failing is
-- given up and refunded instead of retried for ever; a webhook asks for one confirmation poll
-- (coalesced: at most one per job at a time, spaced from the last poll).
ALTER TABLE jobs ADD COLUMN step_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_polled_at DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN confirm_requested BIGINT NOT NULL DEFAULT 0 CHECK (confirm_requested IN (0, 1));
