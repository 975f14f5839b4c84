-- The assessment report of a project: one per project, recomputed on request. The
-- report holds example values, so it is sealed under the server key.
CREATE TABLE assessments (
    project_id    BLOB PRIMARY KEY REFERENCES projects (id),
    status        TEXT NOT NULL,
    records_total BIGINT NOT NULL,
    records_done  BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    error         TEXT,
    report        BLOB
);

-- What the quality checks found, one row a record and check, for the drill-down.
-- Record ids and field names only, never the values.
CREATE TABLE assessment_findings (
    project_id BLOB NOT NULL REFERENCES projects (id),
    check_kind TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    source_id  TEXT NOT NULL,
    field      TEXT,
    note       TEXT NOT NULL,
    PRIMARY KEY (project_id, check_kind, seq)
);

-- An administrator's class for an attribute (PII, confidential, other), which wins
-- over the automatic one.
CREATE TABLE attribute_classes (
    project_id BLOB NOT NULL REFERENCES projects (id),
    path       TEXT NOT NULL,
    class      TEXT NOT NULL,
    set_at     BIGINT NOT NULL,
    PRIMARY KEY (project_id, path)
);
