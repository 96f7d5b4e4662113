-- The queues port on SQLite (queues.py): queue pause state and counts, worker registrations.
-- Parameters are positional (?), in the order each statement's comment gives.

-- name: job_counts
-- Jobs per queue and state.
SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state

-- name: paused
SELECT name, paused FROM queues

-- name: set_paused
-- name, paused (0 or 1), updated_at.
INSERT INTO queues (name, paused, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at

-- name: job_counts_of_queue
-- Jobs per state of one queue. name.
SELECT state, COUNT(*) FROM jobs WHERE queue = ? GROUP BY state

-- name: register_worker
-- A worker's start, heartbeat or stop, replacing its registration. id, hostname, pid, queues
-- (a JSON array, or NULL for every queue), concurrency, started_at, heartbeat_at, stopped_at.
INSERT OR REPLACE INTO workers (id, hostname, pid, queues, concurrency, started_at,
                                heartbeat_at, stopped_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)

-- name: touch_worker
-- A worker's heartbeat, in the transaction that renews its leases. heartbeat_at, id.
UPDATE workers SET heartbeat_at = ? WHERE id = ?

-- name: running_jobs
-- The jobs each worker holds. STARTING, RUNNING.
SELECT worker_id, id FROM jobs WHERE state IN (?, ?) ORDER BY seq

-- name: workers
SELECT * FROM workers ORDER BY started_at
