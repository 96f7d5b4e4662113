-- The maintenance service prunes finished jobs oldest first, reading only finished ones.
CREATE INDEX jobs_finished ON jobs (stopped_at) WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED');
