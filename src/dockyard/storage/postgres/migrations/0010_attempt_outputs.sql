-- The output files an attempt uploaded (issue 18): a JSON list of {uri, size, sha256, path};
-- NULL when it uploaded none.
ALTER TABLE attempts ADD COLUMN outputs jsonb;
