-- Version 2: durable job-level steps and the team-mode queue.
-- A job's plan and merge steps are claimed like tasks (worker + heartbeat), so a worker dying while it
-- plans or merges is noticed by the reaper, and step attempts are bounded. generation counts retries
-- (queue message ids are derived from it). A failed task waits not_before (its backoff).
-- (No semicolons in comments: the migration runner splits statements on them.)
ALTER TABLE jobs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN step_worker TEXT;
ALTER TABLE jobs ADD COLUMN step_heartbeat DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN step_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN queued_at DOUBLE PRECISION;
ALTER TABLE tasks ADD COLUMN not_before DOUBLE PRECISION;
CREATE INDEX jobs_step ON jobs (step_worker);
