-- The leadership port (storage/postgres/leadership.py): one leader per role, as a session-level
-- advisory lock held on a connection of its own.

-- name: try_lock
-- The lock's classid is Dockyard's; its objid names the role and the schema.
SELECT pg_try_advisory_lock(%(classid)s, %(objid)s);

-- name: ping
-- Still connected, so still holding the lock.
SELECT 1;
