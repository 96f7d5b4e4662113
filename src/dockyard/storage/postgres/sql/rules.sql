-- The rules port (storage/postgres/rules.py): rules, and the invocations of their targets
-- (deliveries and the dead list). Rules are read with their spec as JSON text, so that
-- RowReader.rule parses an unchanged spec once (see storage/rows.py).

-- name: insert
INSERT INTO rules (name, spec, enabled, created_at, updated_at)
VALUES (%(name)s, %(spec)s, %(enabled)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (name) DO NOTHING;

-- name: get
SELECT name, spec::text AS spec, enabled, created_at, updated_at FROM rules WHERE name = %(name)s;

-- name: all
SELECT name, spec::text AS spec, enabled, created_at, updated_at FROM rules ORDER BY name;

-- name: all_enabled
SELECT name, spec::text AS spec, enabled, created_at, updated_at FROM rules
WHERE enabled
ORDER BY name;

-- name: replace
UPDATE rules SET spec = %(spec)s, enabled = %(enabled)s, updated_at = %(updated_at)s
WHERE name = %(name)s;

-- name: delete
-- Its invocations go with it (ON DELETE CASCADE).
DELETE FROM rules WHERE name = %(name)s;

-- name: insert_invocations
-- One invocation per rule, target and event: a repeat (a failover that routes an event twice)
-- is dropped, and so is one whose rule was deleted meanwhile (the join finds no rule). PENDING
-- ones are due at once; THROTTLED and REFUSED ones are never due.
INSERT INTO invocations (id, rule, target, event_id, event, state, next_attempt_at, error, depth,
                         created_at, updated_at)
SELECT v.id, v.rule, v.target, v.event ->> 'id', v.event, v.state,
       CASE WHEN v.state = 'PENDING' THEN %(now)s::timestamptz END, v.error, v.depth,
       %(now)s, %(now)s
FROM unnest(%(ids)s::text[], %(rules)s::text[], %(targets)s::text[], %(events)s::jsonb[],
            %(states)s::text[], %(errors)s::text[], %(depths)s::int[])
     AS v(id, rule, target, event, state, error, depth)
JOIN rules r ON r.name = v.rule
ON CONFLICT (rule, target, event_id) DO NOTHING;

-- name: due_invocations
SELECT * FROM invocations
WHERE state = 'PENDING' AND next_attempt_at <= %(now)s
ORDER BY next_attempt_at
LIMIT %(limit)s;

-- name: next_invocation_at
SELECT min(next_attempt_at) AS at FROM invocations WHERE state = 'PENDING';

-- name: update_invocations
-- Only invocations still PENDING change: a retry of the dead list or a deleted rule wins.
UPDATE invocations i
SET state = v.state, attempts = v.attempts, next_attempt_at = v.next_attempt_at,
    result = v.result, error = v.error, updated_at = v.now
FROM unnest(%(ids)s::text[], %(states)s::text[], %(attempts)s::int[],
            %(next_attempt_at)s::timestamptz[], %(results)s::text[], %(errors)s::text[],
            %(now)s::timestamptz[])
     AS v(id, state, attempts, next_attempt_at, result, error, now)
WHERE i.id = v.id AND i.state = 'PENDING';

-- name: invocations
SELECT * FROM invocations
WHERE rule = %(rule)s
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: invocations_in_state
SELECT * FROM invocations
WHERE rule = %(rule)s AND state = %(state)s
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: retry_invocations
-- DEAD invocations of the rule back to PENDING: those of ids, or all when ids is NULL.
UPDATE invocations
SET state = 'PENDING', attempts = 0, next_attempt_at = %(now)s, error = NULL,
    updated_at = %(now)s
WHERE rule = %(rule)s AND state = 'DEAD'
  AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]));

-- name: prune_delivered
-- The dead list stays: only invocations done with (DELIVERED, or never made: THROTTLED,
-- REFUSED) are pruned.
DELETE FROM invocations WHERE id IN (
    SELECT id FROM invocations
    WHERE state IN ('DELIVERED', 'THROTTLED', 'REFUSED') AND updated_at < %(before)s
    LIMIT %(limit)s
);

-- name: record_causation
-- The causation depth of a job a rule submitted; a job submitted before (the same idempotency
-- key) keeps its own.
INSERT INTO job_causation (job_id, depth) VALUES (%(job_id)s, %(depth)s)
ON CONFLICT (job_id) DO NOTHING;
