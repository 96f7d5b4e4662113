-- The jobs port (storage/postgres/jobs.py): the hot path and the jobs' upkeep.
--
-- Three conditions recur, in claim, claim_in_queues, next_runnable_at and
-- next_runnable_at_in_queues; keep their copies alike:
--
-- * the group head: a job j may run only when no earlier job of its group is unfinished. The
--   subquery reads jobs_open_groups, which holds only unfinished grouped jobs, and spells the
--   terminal states as that index's predicate does (a parameter would hide the index from the
--   planner);
-- * not paused: a paused queue keeps its jobs, and workers claim none of them;
-- * of the offered kinds: a worker claims only jobs whose executor kind it offers (jobs.py
--   passes every kind when the claim names none). A job stored without a kind (its definition
--   revision was missing at submit) is any worker's, which then fails it for want of one.
--
-- States are spelled as literals where a partial index needs them (RUNNABLE, the terminal
-- states); jobs.py checks at import that they still match domain/states.py and the CLAIM edge.
--
-- jobs_runnable_due holds only the RUNNABLE jobs that wait for a time (not_before > created_at,
-- migration 0009), a predicate the claims do not imply: they can walk only jobs_claim_order (or
-- jobs_runnable for one queue) and stop after limit rows. When that index held every RUNNABLE
-- job, a planner whose statistics predated the backlog (guessing one runnable job) read the
-- whole backlog through it and sorted it, on every claim (scale-findings §1: 83 ms a claim).
-- next_runnable_at repeats the predicate: a job due at its submission is claimable already.

-- name: insert
-- One statement for the whole batch. Rows go in request order, so that seq (the claim order)
-- follows the order of submission. The conflict may be on any key: an idempotency key seen
-- before, or a retry of this very insert after its commit went unacknowledged (the job id is
-- then already there). Each job's executor is its definition revision's kind, read here so that
-- every way in (a submit, a batch, a schedule's fire, a rule's target) stores it.
INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue, group_key,
                  priority, idempotency_key, payload, overrides, parameters, max_attempts,
                  created_at, not_before, executor)
SELECT id, name, dn, dr, 'RUNNABLE', q, g, p, k, pl::jsonb, o::jsonb, pa::jsonb, m, c, nb,
       (SELECT d.document ->> 'executor' FROM definitions d WHERE d.name = dn AND d.revision = dr)
FROM unnest(%(ids)b::text[], %(names)b::text[], %(definition_names)b::text[],
            %(definition_revisions)b::int[], %(queues)b::text[], %(group_keys)b::text[],
            %(priorities)b::int[], %(idempotency_keys)b::text[], %(payloads)b::text[],
            %(overrides)b::text[], %(parameters)b::text[], %(max_attempts)b::int[],
            %(created_at)b::timestamptz[], %(not_before)b::timestamptz[])
     WITH ORDINALITY AS u(id, name, dn, dr, q, g, p, k, pl, o, pa, m, c, nb, i)
ORDER BY i
ON CONFLICT DO NOTHING
RETURNING id;

-- name: by_ids
SELECT * FROM jobs WHERE id = ANY(%(values)s);

-- name: by_idempotency_keys
SELECT * FROM jobs WHERE idempotency_key = ANY(%(values)s);

-- name: get
SELECT * FROM jobs WHERE id = %(id)s;

-- name: attempts_of_job
SELECT * FROM attempts WHERE job_id = %(id)s ORDER BY number;

-- name: attempts_of_jobs
SELECT * FROM attempts WHERE job_id = ANY(%(ids)s) ORDER BY job_id, number;

-- name: claim
-- Lock up to limit claimable jobs in claim order, skipping rows other workers hold, move them
-- from RUNNABLE to STARTING (the CLAIM edge) and open their attempts, in one statement. A job of
-- a kind that starts at once (starts_at_once) goes to RUNNING instead (CLAIM_STARTED), its
-- attempt started by the same statement: the worker writes no separate start. The group check
-- reads committed states, so the second job of a group stays blocked while the first is being
-- claimed elsewhere.
WITH picked AS (
    SELECT j.seq FROM jobs j
    WHERE j.state = 'RUNNABLE' AND j.not_before <= %(now)s
      AND (j.group_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobs g WHERE g.group_key = j.group_key AND g.seq < j.seq
            AND g.state NOT IN ('CANCELLED', 'FAILED', 'SUCCEEDED')))
      AND j.queue NOT IN (SELECT name FROM queues WHERE paused)
      AND (j.executor IS NULL OR j.executor = ANY(%(executors)s))
    ORDER BY j.priority DESC, j.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs SET
        state = CASE WHEN jobs.executor = ANY(%(starts_at_once)s::text[])
                     THEN 'RUNNING' ELSE 'STARTING' END,
        started_at = COALESCE(jobs.started_at,
            CASE WHEN jobs.executor = ANY(%(starts_at_once)s::text[]) THEN %(now)s END),
        worker_id = %(worker_id)s, lease_expires_at = %(lease_until)s, status_reason = NULL,
        attempt_count = attempt_count + 1, attempts_used = attempts_used + 1
    FROM picked WHERE jobs.seq = picked.seq
    RETURNING jobs.*
), opened AS (
    INSERT INTO attempts (job_id, number, claimed_at, started_at, worker_id)
    SELECT id, attempt_count, %(now)s, CASE WHEN state = 'RUNNING' THEN %(now)s END,
           %(worker_id)s
    FROM claimed
)
SELECT * FROM claimed ORDER BY priority DESC, seq;

-- name: claim_in_queues
-- The claim of a worker that serves only some queues.
WITH picked AS (
    SELECT j.seq FROM jobs j
    WHERE j.state = 'RUNNABLE' AND j.not_before <= %(now)s AND j.queue = ANY(%(queues)s)
      AND (j.group_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobs g WHERE g.group_key = j.group_key AND g.seq < j.seq
            AND g.state NOT IN ('CANCELLED', 'FAILED', 'SUCCEEDED')))
      AND j.queue NOT IN (SELECT name FROM queues WHERE paused)
      AND (j.executor IS NULL OR j.executor = ANY(%(executors)s))
    ORDER BY j.priority DESC, j.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs SET
        state = CASE WHEN jobs.executor = ANY(%(starts_at_once)s::text[])
                     THEN 'RUNNING' ELSE 'STARTING' END,
        started_at = COALESCE(jobs.started_at,
            CASE WHEN jobs.executor = ANY(%(starts_at_once)s::text[]) THEN %(now)s END),
        worker_id = %(worker_id)s, lease_expires_at = %(lease_until)s, status_reason = NULL,
        attempt_count = attempt_count + 1, attempts_used = attempts_used + 1
    FROM picked WHERE jobs.seq = picked.seq
    RETURNING jobs.*
), opened AS (
    INSERT INTO attempts (job_id, number, claimed_at, started_at, worker_id)
    SELECT id, attempt_count, %(now)s, CASE WHEN state = 'RUNNING' THEN %(now)s END,
           %(worker_id)s
    FROM claimed
)
SELECT * FROM claimed ORDER BY priority DESC, seq;

-- name: no_sort
-- Sent before each claim, in its transaction (jobs.py, _claim): a claim plan that sorts its
-- candidates is never the right one. The sort's penalty (a cost of 1e10) would also cross
-- jit_above_cost and compile every claim: JIT goes off with it.
SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true);

-- name: close_attempts
-- Only for transitions that applied (job_transitions.py), one statement for a batch: each job's
-- current attempt, if still open. An attempt is closed once: by its worker, or first by a cancel
-- or a rescue. The current one, not the one the caller read: a cancel that read the job before a
-- claim closes the attempt the claim opened (see AttemptEnd in domain/transitions.py). An
-- unstarted end (a claim handed back before its body began) voids the start its claim wrote.
UPDATE attempts a
SET stopped_at = v.stopped_at, exit_code = v.exit_code, reason = v.reason,
    status_reason = v.status_reason, counted = v.counted, image = v.image,
    outputs = v.outputs::jsonb,
    started_at = CASE WHEN v.unstarted THEN NULL ELSE a.started_at END
FROM unnest(%(job_ids)s::text[], %(stopped_at)s::timestamptz[], %(exit_codes)s::int[],
            %(reasons)s::text[], %(status_reasons)s::text[], %(counted)s::bool[],
            %(images)s::text[], %(outputs)s::text[], %(unstarted)s::bool[])
     AS v(job_id, stopped_at, exit_code, reason, status_reason, counted, image, outputs,
          unstarted)
JOIN jobs j ON j.id = v.job_id
WHERE a.job_id = j.id AND a.number = j.attempt_count AND a.stopped_at IS NULL;

-- name: unstart_job
-- Before close_attempt, for an unstarted end: the job's start, when its current attempt's claim
-- wrote it (the job had not started before), is voided with the attempt's.
UPDATE jobs j SET started_at = NULL
FROM attempts a
WHERE j.id = %(job_id)s AND a.job_id = j.id AND a.number = j.attempt_count
  AND a.stopped_at IS NULL AND j.started_at = a.started_at;

-- name: start_attempt
-- Only for a start that applied: the job's current attempt, if no cancel closed it meanwhile.
UPDATE attempts a SET started_at = %(started_at)s
FROM jobs j
WHERE j.id = %(job_id)s AND a.job_id = j.id AND a.number = j.attempt_count
  AND a.started_at IS NULL AND a.stopped_at IS NULL;

-- name: renew_leases
-- Every lease the worker still holds, whatever the job's state: a cancelled job keeps its lease
-- until its worker's body has stopped (end_leases). A rescue or a retry took the others.
UPDATE jobs SET lease_expires_at = %(lease_until)s
WHERE id = ANY(%(ids)s) AND worker_id = %(worker_id)s;

-- name: held
-- The jobs still active in the worker's hands; the others' bodies must stop.
SELECT id FROM jobs WHERE id = ANY(%(ids)s) AND worker_id = %(worker_id)s AND state = ANY(%(active)s);

-- name: end_leases
-- The worker's bodies of these jobs have ended. An active job keeps its lease: the rescue finds
-- it when it expires (a job whose end could not be written).
UPDATE jobs SET worker_id = NULL, lease_expires_at = NULL
WHERE id = ANY(%(ids)s) AND worker_id = %(worker_id)s AND state <> ALL(%(active)s);

-- name: expired_leases
SELECT * FROM jobs
WHERE state = ANY(%(active)s) AND lease_expires_at < %(now)s
ORDER BY lease_expires_at
LIMIT %(limit)s;

-- name: next_runnable_at
-- The earliest not-before time among jobs a claim could take, but for their time.
SELECT j.not_before FROM jobs j
WHERE j.state = 'RUNNABLE' AND j.not_before > j.created_at
  AND (j.group_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs g WHERE g.group_key = j.group_key AND g.seq < j.seq
        AND g.state NOT IN ('CANCELLED', 'FAILED', 'SUCCEEDED')))
  AND j.queue NOT IN (SELECT name FROM queues WHERE paused)
  AND (j.executor IS NULL OR j.executor = ANY(%(executors)s))
ORDER BY j.not_before
LIMIT 1;

-- name: next_runnable_at_in_queues
SELECT j.not_before FROM jobs j
WHERE j.state = 'RUNNABLE' AND j.not_before > j.created_at
  AND (j.group_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs g WHERE g.group_key = j.group_key AND g.seq < j.seq
        AND g.state NOT IN ('CANCELLED', 'FAILED', 'SUCCEEDED')))
  AND j.queue NOT IN (SELECT name FROM queues WHERE paused)
  AND (j.executor IS NULL OR j.executor = ANY(%(executors)s))
  AND j.queue = ANY(%(queues)s)
ORDER BY j.not_before
LIMIT 1;

-- name: prune_finished
-- Oldest first, skipping jobs another pruner holds; attempts go with their job (ON DELETE
-- CASCADE).
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE state IN ('CANCELLED', 'FAILED', 'SUCCEEDED') AND stopped_at < %(before)s
    ORDER BY stopped_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id;

-- name: stale_statistics
-- Autovacuum's own rule (50 rows plus a tenth of the table), at most once a minute, but at
-- once for a table never analyzed: without statistics, the planner guesses the backlog is a
-- dozen rows and claims by reading and sorting all of it.
SELECT relname FROM pg_stat_user_tables
WHERE relid IN ('jobs'::regclass, 'attempts'::regclass)
  AND n_mod_since_analyze > 50 + 0.1 * n_live_tup
  AND COALESCE(GREATEST(last_analyze, last_autoanalyze) < now() - interval '1 min', true);
