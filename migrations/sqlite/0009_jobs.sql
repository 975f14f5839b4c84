-- Jobs (test runs, real runs, retries, rollbacks, invite waves) and their records.
-- A job's counts are kept equal to its records' states in the same transaction, so
-- the page reads them without counting a million rows.
CREATE TABLE jobs (
    id              BLOB PRIMARY KEY,
    project_id      BLOB NOT NULL REFERENCES projects (id),
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL,
    target_role     TEXT NOT NULL,
    mapping_version BIGINT,
    parent_id       BLOB REFERENCES jobs (id),
    settings        TEXT NOT NULL,
    pause_reason    TEXT,
    total           BIGINT NOT NULL,
    pending         BIGINT NOT NULL,
    in_flight       BIGINT NOT NULL,
    created         BIGINT NOT NULL,
    updated         BIGINT NOT NULL,
    skipped         BIGINT NOT NULL,
    failed          BIGINT NOT NULL,
    created_by      BLOB REFERENCES accounts (id),
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT
);
CREATE INDEX jobs_by_project ON jobs (project_id, created_at);

-- One row a record of a job: its state, the lease of the worker holding it, and how
-- it ended (the SCIM id it got, or the error class and detail). Ids, never values.
CREATE TABLE job_records (
    job_id       BLOB NOT NULL REFERENCES jobs (id),
    seq          BIGINT NOT NULL,
    source_id    TEXT NOT NULL,
    state        TEXT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    scim_id      TEXT,
    error_class  TEXT,
    error_detail TEXT,
    settled_at   BIGINT,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX job_records_by_state ON job_records (job_id, state, seq);
CREATE UNIQUE INDEX job_records_by_source ON job_records (job_id, source_id);
