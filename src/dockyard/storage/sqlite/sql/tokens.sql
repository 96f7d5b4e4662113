-- The tokens port on SQLite (tokens.py): API tokens, stored by the SHA-256 of their secret.
-- Parameters are positional (?), in the order each statement's comment gives.

-- name: insert
-- id, name, role, hash, created_at.
INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)

-- name: find
-- hash.
SELECT * FROM tokens WHERE hash = ?

-- name: all
SELECT * FROM tokens ORDER BY created_at

-- name: revoke
-- Once: a second revoke keeps the first time. revoked_at, id.
UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL

-- name: get
-- id.
SELECT * FROM tokens WHERE id = ?
