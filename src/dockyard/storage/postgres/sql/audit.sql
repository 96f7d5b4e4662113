-- The audit port (storage/postgres/audit.py): the trail of changes made through the facade.

-- name: record
INSERT INTO audit (at, token_id, token_name, role, operation, target)
VALUES (%(at)s, %(token_id)s, %(token_name)s, %(role)s, %(operation)s, %(target)s);

-- name: newest
SELECT * FROM audit ORDER BY id DESC LIMIT %(limit)s;

-- name: before
-- Newest first, older than an entry.
SELECT * FROM audit WHERE id < %(before)s ORDER BY id DESC LIMIT %(limit)s;

-- name: prune
-- Oldest first.
DELETE FROM audit WHERE id IN (
    SELECT id FROM audit WHERE at < %(before)s ORDER BY at LIMIT %(limit)s
);
