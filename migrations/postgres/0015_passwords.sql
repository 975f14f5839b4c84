-- Passwords: the user type and password strategy a moved user fell in (names, never
-- values), the verification service WSO2's login script calls (its settings and
-- credentials, stored hashed), the plan of invitation waves, the contexts of logins
-- in progress (shared by every instance on one database), every verification (never
-- a password), and the users whose password has moved (verified at first login, or
-- reset by invitation).

ALTER TABLE job_records ADD COLUMN user_type TEXT;
ALTER TABLE job_records ADD COLUMN password_strategy TEXT;
-- The service finds a user by the id the target gave it.
CREATE INDEX job_records_by_scim_id ON job_records (scim_id) WHERE scim_id IS NOT NULL;

CREATE TABLE password_services (
    project_id          UUID PRIMARY KEY REFERENCES projects (id),
    enabled             BOOLEAN NOT NULL,
    -- Public: the OAuth2 client id WSO2's script sends with its secret.
    client_id           TEXT NOT NULL UNIQUE,
    -- SHA-256 of the client secret (256 random bits); the generation grows with each
    -- rotation, and access tokens name the generation they were issued under.
    secret_hash         TEXT,
    secret_hint         TEXT,
    secret_generation   BIGINT NOT NULL,
    secret_set_at       BIGINT,
    -- The static bearer key, the alternative to client credentials.
    key_hash            TEXT,
    key_hint            TEXT,
    key_set_at          BIGINT,
    context_ttl_secs    BIGINT NOT NULL,
    token_ttl_secs      BIGINT NOT NULL,
    login_origin        TEXT,
    max_user_failures   BIGINT NOT NULL,
    max_caller_failures BIGINT NOT NULL,
    failure_window_secs BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- A login in progress: the SHA-256 of its context id, a keyed digest of the user name
-- it is bound to, and its answer once the verification ends (with the user it found,
-- marked moved when the script reads a success). Read once, then gone.
CREATE TABLE password_contexts (
    digest      TEXT PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id),
    user_digest TEXT NOT NULL,
    complete    BOOLEAN NOT NULL,
    reason      TEXT,
    scim_id     TEXT,
    source_id   TEXT,
    target_role TEXT,
    user_type   TEXT,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX password_contexts_expiry ON password_contexts (expires_at);

-- Every verification: who (the target's id, the legacy id, a keyed digest of the user
-- name), when, how it ended and why, by which method. Never a password.
CREATE TABLE password_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id),
    at          BIGINT NOT NULL,
    user_digest TEXT NOT NULL,
    caller      TEXT NOT NULL,
    scim_id     TEXT,
    source_id   TEXT,
    user_type   TEXT,
    success     BOOLEAN NOT NULL,
    reason      TEXT NOT NULL,
    method      TEXT,
    -- Counted towards a lockout (wrong passwords, unknown users).
    counts      BOOLEAN NOT NULL
);
CREATE INDEX password_attempts_by_time ON password_attempts (project_id, at);
CREATE INDEX password_attempts_by_user ON password_attempts (project_id, user_digest, at);
CREATE INDEX password_attempts_by_caller ON password_attempts (project_id, caller, at);

-- Users whose password has moved: `verified` at first login, or `reset` by an
-- invitation. A moved user is never verified again.
CREATE TABLE password_moves (
    project_id  UUID NOT NULL REFERENCES projects (id),
    scim_id     TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    target_role TEXT NOT NULL,
    user_type   TEXT,
    how         TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (project_id, scim_id)
);
CREATE INDEX password_moves_by_time ON password_moves (project_id, at);

-- The plan of invitation waves (JSON: size, rate, daily cap, hours, time zone, the
-- long-tail rule); the waves themselves are runs of kind `invite_wave`.
CREATE TABLE password_wave_plans (
    project_id UUID PRIMARY KEY REFERENCES projects (id),
    plan       TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);
