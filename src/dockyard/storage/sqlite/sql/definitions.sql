-- The definitions port on SQLite (definitions.py): immutable revisions of named definitions.
-- Parameters are positional (?), in the order each statement's comment gives.

-- name: insert
-- The next revision of a name (1 for a new one). The caller's BEGIN IMMEDIATE serialises
-- registrations, so two of one name get distinct revisions. name, created_at, document, name.
INSERT INTO definitions (name, revision, status, created_at, document)
SELECT ?, COALESCE(MAX(revision), 0) + 1, 'ACTIVE', ?, ?
FROM definitions WHERE name = ?
RETURNING *

-- name: latest_active
-- What a name without a revision means. name.
SELECT * FROM definitions WHERE name = ? AND status = 'ACTIVE' ORDER BY revision DESC LIMIT 1

-- name: revision
-- name, revision.
SELECT * FROM definitions WHERE name = ? AND revision = ?

-- name: revisions
-- name.
SELECT * FROM definitions WHERE name = ? ORDER BY revision

-- name: latest
-- The latest revision (ACTIVE or not) of every name.
SELECT d.* FROM definitions d
JOIN (SELECT name, MAX(revision) AS revision FROM definitions GROUP BY name) latest
    USING (name, revision)
ORDER BY d.name

-- name: set_status
-- status, name, revision.
UPDATE definitions SET status = ? WHERE name = ? AND revision = ? RETURNING *
