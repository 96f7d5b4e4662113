-- Events, rules and their invocations (DESIGN.md: Event / Rule / Target).
--
-- events is the bus's outbox: what was put, and what Dockyard emitted, each with its whole
-- EventBridge envelope in body. The rules leader reads the unrouted ones, matches them against
-- the enabled rules and records one invocation per matching target in the same transaction that
-- marks them routed.
CREATE TABLE events (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text        NOT NULL UNIQUE,
    source       text        NOT NULL,
    detail_type  text        NOT NULL,
    body         jsonb       NOT NULL,
    received_at  timestamptz NOT NULL,
    routed       boolean     NOT NULL DEFAULT false
);
CREATE INDEX events_unrouted ON events (seq) WHERE NOT routed;
CREATE INDEX events_received ON events (received_at);

-- Rules: the spec as the document users wrote.
CREATE TABLE rules (
    name        text        PRIMARY KEY,
    spec        jsonb       NOT NULL,
    enabled     boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- One delivery of one event to one target of a rule: PENDING until it is DELIVERED, or DEAD once
-- its retries are spent (the dead list); its event is copied, so pruning events loses none.
CREATE TABLE invocations (
    id               text        PRIMARY KEY,
    rule             text        NOT NULL REFERENCES rules (name) ON DELETE CASCADE,
    target           text        NOT NULL,
    event_id         text        NOT NULL,
    event            jsonb       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'DEAD')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    result           text,
    error            text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (rule, target, event_id)
);
CREATE INDEX invocations_due ON invocations (next_attempt_at) WHERE state = 'PENDING';
CREATE INDEX invocations_history ON invocations (rule, created_at);

-- Dockyard's own events, written by the same transaction as the change they announce, and only
-- while a rule is enabled (with none, nothing would read them).
CREATE FUNCTION dockyard_emit(source text, detail_type text, resources jsonb, detail jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    event_id text := gen_random_uuid()::text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM rules WHERE enabled) THEN
        RETURN;
    END IF;
    INSERT INTO events (id, source, detail_type, body, received_at)
    VALUES (event_id, source, detail_type, jsonb_build_object(
        'version', '0', 'id', event_id, 'detail-type', detail_type, 'source', source,
        'account', '', 'time', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'region', '', 'resources', resources, 'detail', detail), clock_timestamp());
END;
$$;

CREATE FUNCTION dockyard_job_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dockyard_emit('dockyard.job', 'Job State Change',
        jsonb_build_array('dockyard:job/' || NEW.id),
        jsonb_build_object(
            'jobId', NEW.id, 'jobName', NEW.name,
            'jobDefinition', NEW.definition_name || ':' || NEW.definition_revision,
            'jobQueue', NEW.queue, 'status', NEW.state, 'previousStatus', OLD.state,
            'statusReason', NEW.status_reason, 'attempts', NEW.attempt_count,
            'exitCode', NEW.exit_code, 'group', NEW.group_key));
    RETURN NULL;
END;
$$;

CREATE TRIGGER job_state_change AFTER UPDATE OF state ON jobs
FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state)
EXECUTE FUNCTION dockyard_job_state_change();

CREATE FUNCTION dockyard_definition_registered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dockyard_emit('dockyard.definition', 'Definition Registered',
        jsonb_build_array('dockyard:definition/' || NEW.name || ':' || NEW.revision),
        jsonb_build_object(
            'name', NEW.name, 'revision', NEW.revision, 'status', NEW.status,
            'executor', NEW.document -> 'executor', 'image', NEW.document -> 'image'));
    RETURN NULL;
END;
$$;

CREATE TRIGGER definition_registered AFTER INSERT ON definitions
FOR EACH ROW EXECUTE FUNCTION dockyard_definition_registered();
