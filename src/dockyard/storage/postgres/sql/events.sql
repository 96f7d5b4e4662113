-- The events port (storage/postgres/events.py): the bus that rules read.

-- name: insert
-- Only while some rule is enabled: with none, nothing would read the events. Dockyard's own
-- events (the job_state_change and definition_registered triggers) follow the same rule.
INSERT INTO events (id, source, detail_type, body, received_at)
SELECT v.id, v.source, v.detail_type, v.body, %(now)s
FROM unnest(%(ids)s::text[], %(sources)s::text[], %(detail_types)s::text[],
            %(bodies)s::jsonb[])
     AS v(id, source, detail_type, body)
WHERE EXISTS (SELECT 1 FROM rules WHERE enabled);

-- name: recent
SELECT seq, body, received_at FROM events ORDER BY seq DESC LIMIT %(limit)s;

-- name: recent_from_source
SELECT seq, body, received_at FROM events
WHERE source = %(source)s
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: unrouted
-- In arrival order, with their causation depth: a job's state change has its job's (a job no
-- rule submitted has none: 0).
SELECT e.seq, e.body, e.received_at, coalesce(c.depth, 0) AS depth
FROM events e
LEFT JOIN job_causation c
       ON e.source = 'dockyard.job' AND c.job_id = e.body -> 'detail' ->> 'jobId'
WHERE NOT e.routed
ORDER BY e.seq
LIMIT %(limit)s;

-- name: mark_routed
UPDATE events SET routed = true WHERE seq = ANY(%(seqs)s);

-- name: prune
-- Only routed events: invocations keep their own copy of the event.
DELETE FROM events WHERE seq IN (
    SELECT seq FROM events
    WHERE routed AND received_at < %(before)s
    ORDER BY received_at
    LIMIT %(limit)s
);
