-- The jobs port on SQLite (jobs.py): the hot path and the jobs' upkeep.
--
-- Parameters are positional (?), in the order each statement's comment gives. A {slot} is filled
-- by jobs.py before the statement runs: with a fragment named below, or with the "?, ?, …" of an
-- IN list whose length is known only at run time. Times are epoch seconds; JSON is text.
--
-- States are literals, not parameters, wherever an index is partial: SQLite uses a partial index
-- (WHERE state = 'RUNNABLE') only for a query that names the same constant. jobs.py asserts that
-- the literals are those of domain/transitions.py.

-- name: insert
-- A new RUNNABLE job; a job whose idempotency key exists is skipped (jobs.py reads it back).
-- Its executor is its definition revision's kind, read here so that every way in (a submit, a
-- batch, a schedule's fire, a rule's target) stores it; NULL only when the revision is missing.
-- id, name, definition_name, definition_revision, state, queue, group_key, priority,
-- idempotency_key, payload, overrides, parameters, max_attempts, created_at, not_before.
INSERT INTO jobs (id, name, definition_name, definition_revision, state, queue, group_key,
                  priority, idempotency_key, payload, overrides, parameters, max_attempts,
                  created_at, not_before, executor)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
        (SELECT json_extract(d.document, '$.executor') FROM definitions d
         WHERE d.name = ?3 AND d.revision = ?4))
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING

-- name: by_ids
-- The values slot: the job ids.
SELECT * FROM jobs WHERE id IN ({values})

-- name: by_idempotency_keys
-- The values slot: the idempotency keys.
SELECT * FROM jobs WHERE idempotency_key IN ({values})

-- name: get
-- job id.
SELECT * FROM jobs WHERE id = ?

-- name: attempts
-- job id.
SELECT * FROM attempts WHERE job_id = ? ORDER BY number

-- name: attempts_of_jobs
-- The ids slot: the job ids.
SELECT * FROM attempts WHERE job_id IN ({ids}) ORDER BY job_id, number

-- name: claim
-- Move up to LIMIT claimable jobs to STARTING for a worker, in claim order, under the caller's
-- BEGIN IMMEDIATE: SQLite's single writer serialises claims from every process, so two workers
-- never claim the same job.
-- The index slot: walk runnable jobs in claim order and stop after LIMIT of them (left to itself
-- the planner takes jobs_state and sorts every runnable job, on every claim): jobs_claim_order
-- (priority DESC, seq), or jobs_runnable (queue, priority DESC, seq) for one queue.
-- The queues slot: nothing, or the in_queues fragment; the kinds slot: nothing (every kind), or
-- the of_kinds fragment. The state and started slots: 'STARTING' and started_at, or the
-- claimed_state and claimed_started fragments when some kinds start at once (their jobs go to
-- RUNNING, the CLAIM_STARTED edge, and the attempt jobs.py opens is started).
-- [started kinds…, started kinds…, now,] worker_id, lease_expires_at, now, [queues…],
-- [kinds…], limit.
UPDATE jobs SET state = {state}, started_at = {started}, worker_id = ?, lease_expires_at = ?,
    status_reason = NULL, attempt_count = attempt_count + 1, attempts_used = attempts_used + 1
WHERE seq IN (
    SELECT j.seq FROM jobs j INDEXED BY {index}
    WHERE j.state = 'RUNNABLE' AND j.not_before <= ? {queues} {kinds}
      AND {group_head} AND {not_paused}
    ORDER BY j.priority DESC, j.seq LIMIT ?
)
RETURNING *

-- name: claimed_state
-- The started slot: the kinds that start at once.
CASE WHEN executor IN ({started}) THEN 'RUNNING' ELSE 'STARTING' END

-- name: claimed_started
-- The started slot: the kinds that start at once; then now.
COALESCE(started_at, CASE WHEN executor IN ({started}) THEN ? END)

-- name: open_attempt
-- The attempt a claim opens (started when the claim moved its job to RUNNING).
-- job id, number, worker_id, claimed_at, started_at.
INSERT INTO attempts (job_id, number, worker_id, claimed_at, started_at) VALUES (?, ?, ?, ?, ?)

-- name: next_runnable_at
-- When the earliest claimable job that waits for its not-before time becomes runnable. Only jobs
-- a claim could take: a job behind an unfinished job of its group is not due, however old its
-- not_before (else an idle worker would wake at once, again and again). Walking
-- jobs_runnable_due stops at the first such job instead of reading every one.
-- [queues…], [kinds…]. The queues slot: nothing, or the in_queues fragment; the kinds slot:
-- nothing, or the of_kinds fragment (a job no worker here offers must not wake it, again and
-- again).
SELECT j.not_before FROM jobs j INDEXED BY jobs_runnable_due
WHERE j.state = 'RUNNABLE' AND j.not_before > j.created_at
  AND {group_head} AND {not_paused} {queues} {kinds}
ORDER BY j.not_before LIMIT 1

-- name: group_head
-- A job j may run only when no earlier job of its group is unfinished (SQS FIFO groups).
-- The subquery must read jobs_open_groups, which holds only unfinished grouped jobs; else it
-- walks every earlier row by seq, finished ones too, for each grouped candidate of every claim.
-- SQLite takes a partial index only when the query repeats its WHERE terms exactly: the same IN
-- list in the same order as migration 0001 (INDEXED BY turns a mismatch into an error, not a
-- slow scan).
(j.group_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM jobs g INDEXED BY jobs_open_groups
    WHERE g.group_key = j.group_key AND g.seq < j.seq
      AND g.state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')))

-- name: not_paused
-- A paused queue keeps its jobs, but no claim takes them.
j.queue NOT IN (SELECT name FROM queues WHERE paused = 1)

-- name: in_queues
AND j.queue IN ({queues})

-- name: of_kinds
-- A worker claims only jobs of the executor kinds it offers; a job stored without a kind (its
-- definition revision was missing) is any worker's, which then fails it for want of a definition.
AND (j.executor IS NULL OR j.executor IN ({kinds}))

-- name: apply
-- A transition, guarded: it applies only while the job is still in a state it expects (zero rows
-- is a conflict, never a silent overwrite). to, reason, [updates…], job id, [expected states…],
-- [guards…]. The updates slot: ", column = ?" for each column the transition sets besides its
-- state; states: the expected states; guards: the expected_worker, lease_expired and
-- no_live_lease fragments.
UPDATE jobs SET state = ?, status_reason = ?{updates}
WHERE id = ? AND state IN ({states}) {guards}

-- name: expected_worker
AND worker_id = ?

-- name: lease_expired
AND lease_expires_at < ?

-- name: no_live_lease
AND (lease_expires_at IS NULL OR lease_expires_at < ?)

-- name: close_attempt
-- Close the job's current attempt, if still open: run after the transition that ends it applied.
-- An unstarted end (a claim handed back before its body began) voids the start its claim wrote.
-- stopped_at, exit_code, reason, status_reason, counted, image, outputs, unstarted, job id,
-- job id.
UPDATE attempts
SET stopped_at = ?, exit_code = ?, reason = ?, status_reason = ?, counted = ?, image = ?,
    outputs = ?, started_at = CASE WHEN ? THEN NULL ELSE started_at END
WHERE job_id = ? AND number = (SELECT attempt_count FROM jobs WHERE id = ?)
AND stopped_at IS NULL

-- name: unstart_job
-- Before close_attempt, for an unstarted end: the job's start, when its current attempt's claim
-- wrote it (the job had not started before), is voided with the attempt's. job id.
UPDATE jobs SET started_at = NULL
WHERE id = ?1 AND started_at = (
    SELECT a.started_at FROM attempts a
    WHERE a.job_id = ?1 AND a.number = jobs.attempt_count AND a.stopped_at IS NULL)

-- name: start_attempt
-- The job's current attempt started. started_at, job id, job id.
UPDATE attempts SET started_at = ?
WHERE job_id = ? AND number = (SELECT attempt_count FROM jobs WHERE id = ?)

-- name: renew_leases
-- Every lease the worker still holds, whatever the job's state: a cancelled job keeps its lease
-- until its worker's body has stopped (end_leases). lease_expires_at, ids…, worker_id.
UPDATE jobs SET lease_expires_at = ? WHERE id IN ({ids}) AND worker_id = ?

-- name: held
-- Those of the ids still active in the worker's hands. ids…, worker_id, STARTING, RUNNING.
SELECT id FROM jobs WHERE id IN ({ids}) AND worker_id = ? AND state IN (?, ?)

-- name: end_leases
-- The worker's bodies of these jobs have ended. An active job keeps its lease: the rescue finds
-- it when it expires. ids…, worker_id, STARTING, RUNNING.
UPDATE jobs SET worker_id = NULL, lease_expires_at = NULL
WHERE id IN ({ids}) AND worker_id = ? AND state NOT IN (?, ?)

-- name: expired_leases
-- STARTING, RUNNING, now, limit.
SELECT * FROM jobs WHERE state IN (?, ?) AND lease_expires_at < ? LIMIT ?

-- name: prune_finished
-- Finished jobs oldest first (their attempts go by ON DELETE CASCADE), reading only finished
-- ones: the IN list repeats jobs_finished's (migration 0004) in its order. before, limit.
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_finished
    WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED') AND stopped_at < ?
    ORDER BY stopped_at LIMIT ?
)
RETURNING id
