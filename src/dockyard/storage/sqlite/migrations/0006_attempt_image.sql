-- The container image that ran an attempt, as reference@digest (docker jobs).
ALTER TABLE attempts ADD COLUMN image TEXT;
