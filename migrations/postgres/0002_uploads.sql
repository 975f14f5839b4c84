-- Uploaded exports, the normalized records read from them (sealed under the server
-- key), and the records that could not be read.

CREATE TABLE uploads (
    id                UUID PRIMARY KEY,
    project_id        UUID NOT NULL REFERENCES projects (id),
    file_name         TEXT NOT NULL,
    size_bytes        BIGINT NOT NULL,
    sha256            TEXT NOT NULL,
    status            TEXT NOT NULL,
    format            TEXT,
    source            TEXT,
    bytes_read        BIGINT NOT NULL DEFAULT 0,
    rows_ok           BIGINT NOT NULL DEFAULT 0,
    rows_failed       BIGINT NOT NULL DEFAULT 0,
    records_new       BIGINT NOT NULL DEFAULT 0,
    records_changed   BIGINT NOT NULL DEFAULT 0,
    records_unchanged BIGINT NOT NULL DEFAULT 0,
    records_missing   BIGINT NOT NULL DEFAULT 0,
    error             TEXT,
    created_by        UUID REFERENCES accounts (id),
    created_at        BIGINT NOT NULL,
    parse_started_at  BIGINT,
    parse_finished_at BIGINT
);
CREATE INDEX uploads_project ON uploads (project_id, created_at);
CREATE INDEX uploads_sha ON uploads (project_id, sha256);

-- One row per user of a project: a newer export of the same source updates it.
CREATE TABLE records (
    project_id        UUID NOT NULL REFERENCES projects (id),
    source_id         TEXT NOT NULL,
    digest            TEXT NOT NULL,
    data              BYTEA NOT NULL,
    first_upload_id   UUID NOT NULL,
    last_upload_id    UUID NOT NULL,
    changed_upload_id UUID NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (project_id, source_id)
);
CREATE INDEX records_last_upload ON records (last_upload_id);

CREATE TABLE record_errors (
    upload_id UUID NOT NULL REFERENCES uploads (id),
    seq       BIGINT NOT NULL,
    location  TEXT NOT NULL,
    field     TEXT,
    reason    TEXT NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
