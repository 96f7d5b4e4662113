-- The queues port (storage/postgres/queues.py): queue pause state and counts; worker
-- registrations.

-- name: register_worker
-- A worker's start, heartbeat or stop replaces its registration whole.
INSERT INTO workers (id, hostname, pid, queues, concurrency, started_at, heartbeat_at, stopped_at)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(queues)s, %(concurrency)s, %(started_at)s,
        %(heartbeat_at)s, %(stopped_at)s)
ON CONFLICT (id) DO UPDATE
SET hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, stopped_at = excluded.stopped_at;

-- name: touch_worker
-- The heartbeat of a worker that renews its leases (jobs.py, in the heartbeat's transaction).
UPDATE workers SET heartbeat_at = %(now)s WHERE id = %(id)s;

-- name: running_jobs
-- The jobs each worker holds, in claim order.
SELECT worker_id, id FROM jobs WHERE state = ANY(%(active)s) ORDER BY seq;

-- name: workers
SELECT * FROM workers ORDER BY started_at;

-- name: counts
SELECT queue, state, COUNT(*) AS n FROM jobs GROUP BY queue, state;

-- name: paused
SELECT name, paused FROM queues;

-- name: set_paused
INSERT INTO queues (name, paused, updated_at) VALUES (%(name)s, %(paused)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at;

-- name: counts_of_queue
SELECT state, COUNT(*) AS n FROM jobs WHERE queue = %(name)s GROUP BY state;
