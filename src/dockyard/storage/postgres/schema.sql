-- Generated from migrations/ by scripts/schema-sql; tests/test_postgres.py checks it. Do not edit.

CREATE TABLE attempts (
    job_id text NOT NULL,
    number integer NOT NULL,
    worker_id text NOT NULL,
    claimed_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    stopped_at timestamp with time zone,
    exit_code integer,
    reason text,
    status_reason text,
    counted boolean NOT NULL DEFAULT true,
    image text,
    outputs jsonb,
    CONSTRAINT attempts_job_id_fkey FOREIGN KEY (job_id) REFERENCES jobs(id) ON DELETE CASCADE,
    CONSTRAINT attempts_pkey PRIMARY KEY (job_id, number)
);

CREATE TABLE audit (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    at timestamp with time zone NOT NULL,
    token_id text NOT NULL,
    token_name text NOT NULL,
    role text NOT NULL,
    operation text NOT NULL,
    target text,
    CONSTRAINT audit_pkey PRIMARY KEY (id)
);

CREATE TABLE definitions (
    name text NOT NULL,
    revision integer NOT NULL,
    status text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    document jsonb NOT NULL,
    CONSTRAINT definitions_status_check CHECK ((status = ANY (ARRAY['ACTIVE'::text, 'INACTIVE'::text]))),
    CONSTRAINT definitions_pkey PRIMARY KEY (name, revision)
);

CREATE TABLE dockyard_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT dockyard_migrations_pkey PRIMARY KEY (version)
);

CREATE TABLE events (
    seq bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    id text NOT NULL,
    source text NOT NULL,
    detail_type text NOT NULL,
    body jsonb NOT NULL,
    received_at timestamp with time zone NOT NULL,
    routed boolean NOT NULL DEFAULT false,
    CONSTRAINT events_pkey PRIMARY KEY (seq),
    CONSTRAINT events_id_key UNIQUE (id)
);

CREATE TABLE invocations (
    id text NOT NULL,
    rule text NOT NULL,
    target text NOT NULL,
    event_id text NOT NULL,
    event jsonb NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamp with time zone,
    result text,
    error text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    depth integer NOT NULL DEFAULT 1,
    CONSTRAINT invocations_state_check CHECK ((state = ANY (ARRAY['PENDING'::text, 'DELIVERED'::text, 'DEAD'::text, 'THROTTLED'::text, 'REFUSED'::text]))),
    CONSTRAINT invocations_rule_fkey FOREIGN KEY (rule) REFERENCES rules(name) ON DELETE CASCADE,
    CONSTRAINT invocations_pkey PRIMARY KEY (id),
    CONSTRAINT invocations_rule_target_event_id_key UNIQUE (rule, target, event_id)
);

CREATE TABLE job_causation (
    job_id text NOT NULL,
    depth integer NOT NULL,
    CONSTRAINT job_causation_job_id_fkey FOREIGN KEY (job_id) REFERENCES jobs(id) ON DELETE CASCADE,
    CONSTRAINT job_causation_pkey PRIMARY KEY (job_id)
);

CREATE TABLE jobs (
    seq bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    definition_name text NOT NULL,
    definition_revision integer NOT NULL,
    state text NOT NULL,
    status_reason text,
    queue text NOT NULL,
    group_key text,
    priority integer NOT NULL DEFAULT 0,
    idempotency_key text,
    payload jsonb,
    overrides jsonb NOT NULL DEFAULT '{}'::jsonb,
    parameters jsonb NOT NULL DEFAULT '{}'::jsonb,
    max_attempts integer NOT NULL,
    attempt_count integer NOT NULL DEFAULT 0,
    attempts_used integer NOT NULL DEFAULT 0,
    created_at timestamp with time zone NOT NULL,
    not_before timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    stopped_at timestamp with time zone,
    worker_id text,
    lease_expires_at timestamp with time zone,
    exit_code integer,
    result jsonb,
    executor text,
    CONSTRAINT jobs_pkey PRIMARY KEY (seq),
    CONSTRAINT jobs_id_key UNIQUE (id)
);

CREATE TABLE queues (
    name text NOT NULL,
    paused boolean NOT NULL DEFAULT false,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT queues_pkey PRIMARY KEY (name)
);

CREATE TABLE rules (
    name text NOT NULL,
    spec jsonb NOT NULL,
    enabled boolean NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT rules_pkey PRIMARY KEY (name)
);

CREATE TABLE schedules (
    name text NOT NULL,
    spec jsonb NOT NULL,
    enabled boolean NOT NULL,
    next_fire_at timestamp with time zone,
    last_fire_at timestamp with time zone,
    last_job_id text,
    fires integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT schedules_pkey PRIMARY KEY (name)
);

CREATE TABLE tokens (
    id text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    hash text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    expires_at timestamp with time zone,
    last_used_at timestamp with time zone,
    CONSTRAINT tokens_role_check CHECK ((role = ANY (ARRAY['admin'::text, 'operator'::text, 'publisher'::text, 'viewer'::text]))),
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_hash_key UNIQUE (hash)
);

CREATE TABLE workers (
    id text NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    queues jsonb,
    concurrency integer NOT NULL,
    started_at timestamp with time zone NOT NULL,
    heartbeat_at timestamp with time zone NOT NULL,
    stopped_at timestamp with time zone,
    CONSTRAINT workers_pkey PRIMARY KEY (id)
);

CREATE INDEX audit_at ON audit USING btree (at);

CREATE INDEX events_received ON events USING btree (received_at);

CREATE INDEX events_unrouted ON events USING btree (seq) WHERE (NOT routed);

CREATE INDEX invocations_due ON invocations USING btree (next_attempt_at) WHERE (state = 'PENDING'::text);

CREATE INDEX invocations_history ON invocations USING btree (rule, created_at);

CREATE INDEX jobs_claim_order ON jobs USING btree (priority DESC, seq) WHERE (state = 'RUNNABLE'::text);

CREATE INDEX jobs_definition ON jobs USING btree (definition_name, seq);

CREATE INDEX jobs_finished ON jobs USING btree (stopped_at) WHERE (state = ANY (ARRAY['SUCCEEDED'::text, 'FAILED'::text, 'CANCELLED'::text]));

CREATE UNIQUE INDEX jobs_idempotency_key ON jobs USING btree (idempotency_key) WHERE (idempotency_key IS NOT NULL);

CREATE INDEX jobs_leased ON jobs USING btree (lease_expires_at) WHERE (state = ANY (ARRAY['STARTING'::text, 'RUNNING'::text]));

CREATE INDEX jobs_open_groups ON jobs USING btree (group_key, seq) WHERE ((group_key IS NOT NULL) AND (state <> ALL (ARRAY['SUCCEEDED'::text, 'FAILED'::text, 'CANCELLED'::text])));

CREATE INDEX jobs_runnable ON jobs USING btree (queue, priority DESC, seq) WHERE (state = 'RUNNABLE'::text);

CREATE INDEX jobs_runnable_due ON jobs USING btree (not_before) WHERE ((state = 'RUNNABLE'::text) AND (not_before > created_at));

CREATE INDEX jobs_state ON jobs USING btree (state, seq);

CREATE INDEX schedules_due ON schedules USING btree (next_fire_at) WHERE (enabled AND (next_fire_at IS NOT NULL));
