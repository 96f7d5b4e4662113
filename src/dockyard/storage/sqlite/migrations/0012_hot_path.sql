-- The hot path, step 1 (issue 22): fewer index writes per job.
--
-- jobs_runnable_due holds only jobs that wait for a time (submitted with a later not-before, or
-- retried after a backoff): a job due at its submission is never written to it.
-- next_runnable_at repeats the predicate (SQLite takes a partial index only for a query that
-- names its terms).
DROP INDEX jobs_runnable_due;
CREATE INDEX jobs_runnable_due ON jobs (not_before)
    WHERE state = 'RUNNABLE' AND not_before > created_at;

-- jobs_queue_state (queue, state) was written by every change of every job and served one read,
-- the counts of one queue, which now read the table as the counts of all queues already did.
DROP INDEX jobs_queue_state;
