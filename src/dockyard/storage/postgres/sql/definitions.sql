-- The definitions port (storage/postgres/definitions.py): immutable revisions of definitions.

-- name: lock_name
-- Held until the transaction ends: concurrent registrations of one name take turns, so their
-- revisions never collide.
SELECT pg_advisory_xact_lock(hashtext(%(key)s));

-- name: insert
-- The next revision of the name (1 for a new name); run under lock_name.
INSERT INTO definitions (name, revision, status, created_at, document)
SELECT %(name)s, COALESCE(MAX(revision), 0) + 1, 'ACTIVE', %(now)s, %(document)s
FROM definitions
WHERE name = %(name)s
RETURNING *;

-- name: latest_active
SELECT * FROM definitions
WHERE name = %(name)s AND status = 'ACTIVE'
ORDER BY revision DESC
LIMIT 1;

-- name: revision
SELECT * FROM definitions WHERE name = %(name)s AND revision = %(revision)s;

-- name: revisions
SELECT * FROM definitions WHERE name = %(name)s ORDER BY revision;

-- name: latest
-- The latest revision of every name, ACTIVE or not.
SELECT DISTINCT ON (name) * FROM definitions ORDER BY name, revision DESC;

-- name: set_status
UPDATE definitions SET status = %(status)s
WHERE name = %(name)s AND revision = %(revision)s
RETURNING *;
