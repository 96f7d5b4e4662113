-- The rules port on SQLite (rules.py): rules, and the invocations of their targets.
-- Parameters are positional (?), in the order each statement's comment gives. A {slot} is filled
-- by rules.py with the "?, ?, …" of an IN list whose length is known only at run time.

-- name: insert
-- Nothing when the name is taken. name, spec, enabled, created_at, updated_at.
INSERT INTO rules (name, spec, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING

-- name: get
-- name.
SELECT * FROM rules WHERE name = ?

-- name: all
SELECT * FROM rules ORDER BY name

-- name: enabled
SELECT * FROM rules WHERE enabled ORDER BY name

-- name: replace
-- spec, enabled, updated_at, name.
UPDATE rules SET spec = ?, enabled = ?, updated_at = ? WHERE name = ?

-- name: delete_invocations
-- A deleted rule's invocations go with it. rule.
DELETE FROM invocations WHERE rule = ?

-- name: delete
-- name.
DELETE FROM rules WHERE name = ?

-- name: record_invocation
-- One invocation per rule, target and event: a repeat (a failover that routes an event twice) is
-- dropped, and so is one whose rule is gone. PENDING ones are due at once; THROTTLED and REFUSED
-- ones are never due. id, rule, target, event id, event, state, next_attempt_at, error, depth,
-- created_at, updated_at, rule.
INSERT INTO invocations (id, rule, target, event_id, event, state, next_attempt_at, error, depth,
                         created_at, updated_at)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM rules WHERE name = ?)
ON CONFLICT (rule, target, event_id) DO NOTHING

-- name: due_invocations
-- PENDING invocations whose next try has come, earliest first. now, limit.
SELECT * FROM invocations INDEXED BY invocations_due
WHERE state = 'PENDING' AND next_attempt_at <= ?
ORDER BY next_attempt_at LIMIT ?

-- name: next_invocation_at
SELECT min(next_attempt_at) FROM invocations WHERE state = 'PENDING'

-- name: update_invocation
-- How a try ended; only an invocation still PENDING changes. state, attempts, next_attempt_at,
-- result, error, updated_at, id.
UPDATE invocations
SET state = ?, attempts = ?, next_attempt_at = ?, result = ?, error = ?, updated_at = ?
WHERE id = ? AND state = 'PENDING'

-- name: invocations
-- A rule's invocations, newest first. rule, limit.
SELECT * FROM invocations WHERE rule = ? ORDER BY created_at DESC, id DESC LIMIT ?

-- name: invocations_in_state
-- A rule's invocations in one state, newest first. rule, state, limit.
SELECT * FROM invocations WHERE rule = ? AND state = ? ORDER BY created_at DESC, id DESC LIMIT ?

-- name: retry_dead
-- Every DEAD invocation of a rule back to PENDING. next_attempt_at, updated_at, rule.
UPDATE invocations
SET state = 'PENDING', attempts = 0, next_attempt_at = ?, error = NULL, updated_at = ?
WHERE rule = ? AND state = 'DEAD'

-- name: retry_dead_ids
-- Some DEAD invocations of a rule back to PENDING. next_attempt_at, updated_at, rule, ids….
UPDATE invocations
SET state = 'PENDING', attempts = 0, next_attempt_at = ?, error = NULL, updated_at = ?
WHERE rule = ? AND state = 'DEAD' AND id IN ({ids})

-- name: prune_delivered
-- Invocations done with (DELIVERED, or never made: THROTTLED, REFUSED) last changed before a
-- time; the dead list stays. before, limit.
DELETE FROM invocations WHERE id IN (
    SELECT id FROM invocations
    WHERE state IN ('DELIVERED', 'THROTTLED', 'REFUSED') AND updated_at < ? LIMIT ?
)

-- name: record_causation
-- The causation depth of a job a rule submitted; a job submitted before (the same idempotency
-- key) keeps its own. job_id, depth.
INSERT INTO job_causation (job_id, depth) VALUES (?, ?)
ON CONFLICT (job_id) DO NOTHING
