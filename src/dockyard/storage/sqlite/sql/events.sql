-- The events port on SQLite (events.py): the bus that rules read.
-- Parameters are positional (?), in the order each statement's comment gives.

-- name: put
-- An event, kept only while some rule is enabled (with none, nothing would read it).
-- id, source, detail_type, body, received_at.
INSERT INTO events (id, source, detail_type, body, received_at)
SELECT ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM rules WHERE enabled)

-- name: recent
-- The newest events first. limit.
SELECT seq, body, received_at FROM events ORDER BY seq DESC LIMIT ?

-- name: recent_from_source
-- The newest events of one source first. source, limit.
SELECT seq, body, received_at FROM events WHERE source = ? ORDER BY seq DESC LIMIT ?

-- name: unrouted
-- Events no rules leader has matched yet, in arrival order, with their causation depth: a job's
-- state change has its job's (a job no rule submitted has none: 0). limit.
SELECT e.seq, e.body, e.received_at, coalesce(c.depth, 0) AS depth
FROM events AS e INDEXED BY events_unrouted
LEFT JOIN job_causation AS c
       ON e.source = 'dockyard.job' AND c.job_id = json_extract(e.body, '$.detail.jobId')
WHERE NOT e.routed ORDER BY e.seq LIMIT ?

-- name: mark_routed
-- seq.
UPDATE events SET routed = 1 WHERE seq = ?

-- name: prune
-- Routed events received before a time, oldest first (invocations keep their copy).
-- before, limit.
DELETE FROM events WHERE seq IN (
    SELECT seq FROM events WHERE routed AND received_at < ? ORDER BY received_at LIMIT ?
)
