-- Rule loops (issue 26): the causation depth of jobs that rules submit, and invocations that are
-- recorded but never made (THROTTLED: over the rule's rate; REFUSED: deeper than the cap).
--
-- A job a rule's target submitted has a row here with its depth (jobs submitted otherwise have
-- depth 0 and no row); the rules leader reads it when it routes the job's state changes.
CREATE TABLE job_causation (
    job_id  text    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    depth   integer NOT NULL
);

-- Invocations get their depth (those made before it: 1, as for an event of depth 0) and two
-- more states.
ALTER TABLE invocations ADD COLUMN depth integer NOT NULL DEFAULT 1;
ALTER TABLE invocations DROP CONSTRAINT invocations_state_check;
ALTER TABLE invocations ADD CONSTRAINT invocations_state_check
    CHECK (state IN ('PENDING', 'DELIVERED', 'DEAD', 'THROTTLED', 'REFUSED'));
