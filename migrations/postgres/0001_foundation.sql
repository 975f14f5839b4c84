-- Ferry foundation: accounts, sessions, setup and invite tokens, sign-in throttling,
-- projects, support assignments, API tokens and the audit log.
-- Ids are UUIDs; times are milliseconds since the Unix epoch.

CREATE TABLE accounts (
    id              UUID PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'support')),
    status          TEXT NOT NULL CHECK (status IN ('invited', 'active', 'disabled')),
    password_hash   TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_sign_in_at BIGINT
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id UUID NOT NULL REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    account_id UUID NOT NULL UNIQUE REFERENCES accounts (id),
    expires_at BIGINT NOT NULL
);

CREATE TABLE sign_in_failures (
    id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    at    BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_key ON sign_in_failures (scope, key, at);

CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    description TEXT NOT NULL,
    archived    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX projects_listing ON projects (archived, created_at);

CREATE TABLE project_support (
    project_id UUID NOT NULL REFERENCES projects (id),
    account_id UUID NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (project_id, account_id)
);
CREATE INDEX project_support_account ON project_support (account_id);

CREATE TABLE api_tokens (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    hint         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'support')),
    created_by   UUID NOT NULL REFERENCES accounts (id),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE audit_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor_id    UUID,
    channel     TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    project_id  UUID,
    address     TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_log_project ON audit_log (project_id, seq);
