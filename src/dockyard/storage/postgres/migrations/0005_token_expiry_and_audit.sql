-- Tokens: the publisher role (may only put events), an optional expiry and the last use.
ALTER TABLE tokens DROP CONSTRAINT tokens_role_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_role_check
    CHECK (role IN ('admin', 'operator', 'publisher', 'viewer'));
ALTER TABLE tokens ADD COLUMN expires_at timestamptz, ADD COLUMN last_used_at timestamptz;

-- The audit trail: one row per change made through the facade (never a payload or a secret).
CREATE TABLE audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    token_id    text        NOT NULL,
    token_name  text        NOT NULL,
    role        text        NOT NULL,
    operation   text        NOT NULL,
    target      text
);

-- Pruning by age reads the oldest rows first.
CREATE INDEX audit_at ON audit (at);
