-- Each job's executor kind, so that a worker claims only jobs of the kinds it offers
-- (DOCKYARD_EXECUTORS, `dockyard worker --executors`). Jobs stored before it take their
-- definition revision's kind; definitions are never deleted, so every job finds one (a job that
-- does not keeps NULL, which any worker may claim).
ALTER TABLE jobs ADD COLUMN executor TEXT;
UPDATE jobs SET executor = (
    SELECT json_extract(d.document, '$.executor') FROM definitions d
    WHERE d.name = jobs.definition_name AND d.revision = jobs.definition_revision
);
