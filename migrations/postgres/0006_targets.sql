-- A project's SCIM target connections: production and, optionally, test. The visible
-- settings are JSON; the secrets (password, token or client secret, extra headers)
-- are sealed under the server key with the project and role as context. The last
-- connection test, with what discovery found, is kept until the settings change.
CREATE TABLE targets (
    project_id     UUID NOT NULL REFERENCES projects (id),
    role           TEXT NOT NULL,
    settings       TEXT NOT NULL,
    sealed_secrets BYTEA NOT NULL,
    updated_at     BIGINT NOT NULL,
    last_test      TEXT,
    PRIMARY KEY (project_id, role)
);
