-- The audit port on SQLite (audit.py): the trail of changes made through the facade.
-- Parameters are positional (?), in the order each statement's comment gives.

-- name: record
-- at, token_id, token_name, role, operation, target.
INSERT INTO audit (at, token_id, token_name, role, operation, target) VALUES (?, ?, ?, ?, ?, ?)

-- name: newest
-- Newest first. limit.
SELECT * FROM audit ORDER BY id DESC LIMIT ?

-- name: before
-- Newest first, older than an entry. before, limit.
SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?

-- name: prune
-- Oldest first. before, limit.
DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? ORDER BY at LIMIT ?)
