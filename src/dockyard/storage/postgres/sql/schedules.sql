-- The schedules port (storage/postgres/schedules.py): schedules, and the scheduler's rounds.
-- Schedules are read with their spec as JSON text, so that RowReader.schedule parses an
-- unchanged spec once (see storage/rows.py).

-- name: insert
INSERT INTO schedules (name, spec, enabled, next_fire_at, created_at, updated_at)
VALUES (%(name)s, %(spec)s, %(enabled)s, %(next_fire_at)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: get
SELECT name, spec::text AS spec, enabled, next_fire_at, last_fire_at, last_job_id, fires,
       last_error, created_at, updated_at
FROM schedules
WHERE name = %(name)s;

-- name: all
SELECT name, spec::text AS spec, enabled, next_fire_at, last_fire_at, last_job_id, fires,
       last_error, created_at, updated_at
FROM schedules
ORDER BY name;

-- name: replace
-- Guarded by the next fire time the caller read: a fire that moved the schedule meanwhile wins.
UPDATE schedules
SET spec = %(spec)s, enabled = %(enabled)s, next_fire_at = %(next_fire_at)s,
    updated_at = %(updated_at)s, last_error = %(last_error)s
WHERE name = %(name)s AND next_fire_at IS NOT DISTINCT FROM %(expected_next)s
RETURNING name;

-- name: delete
DELETE FROM schedules WHERE name = %(name)s RETURNING name;

-- name: due
SELECT name, spec::text AS spec, enabled, next_fire_at, last_fire_at, last_job_id, fires,
       last_error, created_at, updated_at
FROM schedules
WHERE enabled AND next_fire_at IS NOT NULL AND next_fire_at <= %(now)s
ORDER BY next_fire_at
LIMIT %(limit)s;

-- name: next_fire_at
SELECT min(next_fire_at) AS at FROM schedules WHERE enabled AND next_fire_at IS NOT NULL;

-- name: move
-- A scheduler round moves each schedule on only if no one else did (see Fire): the row must
-- still have the next fire time the round planned from. Returns the schedules moved.
UPDATE schedules s
SET next_fire_at = v.next_fire_at, last_fire_at = COALESCE(v.fired_at, s.last_fire_at),
    fires = s.fires + v.jobs, last_error = v.error, updated_at = v.now,
    last_job_id = COALESCE(v.job, s.last_job_id)
FROM unnest(%(names)s::text[], %(expected)s::timestamptz[], %(next_fire_at)s::timestamptz[],
            %(fired_at)s::timestamptz[], %(jobs)s::int[], %(errors)s::text[],
            %(now)s::timestamptz[], %(job_ids)s::text[])
     AS v(name, expected, next_fire_at, fired_at, jobs, error, now, job)
WHERE s.name = v.name AND s.next_fire_at = v.expected
RETURNING s.name;

-- name: set_last_jobs
-- For fires whose idempotency key was taken (a failover): the job that holds it.
UPDATE schedules s SET last_job_id = v.job_id
FROM unnest(%(names)s::text[], %(job_ids)s::text[]) AS v(name, job_id)
WHERE s.name = v.name;

-- name: delete_all
DELETE FROM schedules WHERE name = ANY(%(names)s);
