-- Schedules: the spec as the document users wrote, and the scheduler's progress beside it.
-- next_fire_at is the next fire time not yet fired (NULL once nothing is left to fire).
CREATE TABLE schedules (
    name          text        PRIMARY KEY,
    spec          jsonb       NOT NULL,
    enabled       boolean     NOT NULL,
    next_fire_at  timestamptz,
    last_fire_at  timestamptz,
    last_job_id   text,
    fires         integer     NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- The scheduler reads the enabled schedules that are due, earliest first.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled AND next_fire_at IS NOT NULL;
