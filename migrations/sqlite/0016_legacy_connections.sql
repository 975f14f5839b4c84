-- The legacy identity provider that checks passwords live for users whose export
-- carried no hash: its settings (JSON, the method named by `kind`), its one secret
-- sealed under the server key with the project as context, and its last test.

CREATE TABLE legacy_connections (
    project_id    BLOB PRIMARY KEY REFERENCES projects (id),
    settings      TEXT NOT NULL,
    sealed_secret BLOB,
    last_test     TEXT,
    updated_at    BIGINT NOT NULL
);
