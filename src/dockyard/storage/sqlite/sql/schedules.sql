-- The schedules port on SQLite (schedules.py): schedules, and the scheduler's rounds of fires.
-- Parameters are positional (?), in the order each statement's comment gives.

-- name: insert
-- Nothing when the name is taken. name, spec, enabled, next_fire_at, created_at, updated_at.
INSERT INTO schedules (name, spec, enabled, next_fire_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING

-- name: get
-- name.
SELECT * FROM schedules WHERE name = ?

-- name: all
SELECT * FROM schedules ORDER BY name

-- name: replace
-- Only while no fire moved the schedule meanwhile (IS: the expected time may be NULL).
-- spec, enabled, next_fire_at, updated_at, last_error, name, expected next_fire_at.
UPDATE schedules
SET spec = ?, enabled = ?, next_fire_at = ?, updated_at = ?, last_error = ?
WHERE name = ? AND next_fire_at IS ?

-- name: delete
-- name.
DELETE FROM schedules WHERE name = ?

-- name: due
-- Enabled schedules whose time has come, earliest first, read from their partial index. now,
-- limit.
SELECT * FROM schedules INDEXED BY schedules_due
WHERE enabled AND next_fire_at IS NOT NULL AND next_fire_at <= ?
ORDER BY next_fire_at LIMIT ?

-- name: next_fire_at
SELECT min(next_fire_at) FROM schedules WHERE enabled AND next_fire_at IS NOT NULL

-- name: move
-- A fire moves the schedule on, only while its next_fire_at is still the one the scheduler read
-- (another scheduler, or an update, did not move it meanwhile). next_fire_at, fired_at (NULL
-- keeps the last one), the count of jobs, last_error, updated_at, name, expected next_fire_at.
UPDATE schedules
SET next_fire_at = ?, last_fire_at = COALESCE(?, last_fire_at), fires = fires + ?,
    last_error = ?, updated_at = ?
WHERE name = ? AND next_fire_at = ?

-- name: set_last_job
-- last_job_id, name.
UPDATE schedules SET last_job_id = ? WHERE name = ?
