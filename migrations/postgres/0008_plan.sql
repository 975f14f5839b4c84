-- A project's user types (segments), as the editor last saved them: one JSON document
-- of names, conditions and password strategies (no personal data).
CREATE TABLE project_segments (
    project_id UUID PRIMARY KEY REFERENCES projects (id),
    segments   TEXT NOT NULL,
    saved_by   UUID REFERENCES accounts (id),
    saved_at   BIGINT NOT NULL
);

-- The impact of a mapping over a project's records: one per project, computed on
-- request in the background. It holds the rules and user types it was computed for;
-- the report names records and colliding values, so it is sealed under the server key.
CREATE TABLE mapping_impacts (
    project_id    UUID PRIMARY KEY REFERENCES projects (id),
    status        TEXT NOT NULL,
    rules         TEXT NOT NULL,
    segments      TEXT NOT NULL,
    records_total BIGINT NOT NULL,
    records_done  BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    error         TEXT,
    report        BYTEA
);
