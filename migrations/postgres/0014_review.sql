-- Support staff's review of failed records: the target's scimType kept with a failure,
-- one queue row per legacy user that failed (its latest outcome, the review state, the
-- assignee, a skip decision), keyed digests to find a user without a plaintext column,
-- the history of each row, corrections kept beside the imported records (sealed like
-- them), and the grant to see personal data unmasked.

ALTER TABLE job_records ADD COLUMN scim_type TEXT;

-- Ids, classes and the target's words; never values. `outcome` is `failed` or
-- `migrated` (a later run succeeded); `state` is the review state (`open`,
-- `in_progress`, `waiting`, `resolved`) or `skipped` (a decision, with its reason).
CREATE TABLE review_items (
    project_id      UUID NOT NULL REFERENCES projects (id),
    source_id       TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    outcome_at      BIGINT NOT NULL,
    job_id          UUID NOT NULL REFERENCES jobs (id),
    target_role     TEXT NOT NULL,
    error_class     TEXT NOT NULL,
    scim_type       TEXT,
    fault           TEXT,
    pattern         TEXT NOT NULL,
    error_detail    TEXT NOT NULL,
    user_type       TEXT,
    state           TEXT NOT NULL,
    assignee        UUID REFERENCES accounts (id),
    skip_reason     TEXT,
    first_failed_at BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (project_id, source_id)
);
CREATE INDEX review_waiting ON review_items (project_id, outcome, state, source_id);
CREATE INDEX review_by_class ON review_items (project_id, error_class, source_id);
CREATE INDEX review_by_assignee ON review_items (project_id, assignee, source_id);
CREATE INDEX review_by_job ON review_items (project_id, job_id, source_id);
CREATE INDEX review_oldest ON review_items (project_id, outcome, state, first_failed_at);

-- Keyed digests (HMAC under a key derived from the server key) of each queued user's
-- normalized e-mail addresses, user name and legacy id.
CREATE TABLE review_keys (
    project_id UUID NOT NULL REFERENCES projects (id),
    digest     TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    PRIMARY KEY (project_id, digest, source_id)
);

-- What happened to a queued user: failures and successes of runs, and every action
-- of support staff (assignments, states, skips, corrections, retries, comments).
CREATE TABLE review_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES projects (id),
    source_id  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    actor_id   UUID REFERENCES accounts (id),
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX review_events_item ON review_events (project_id, source_id, id);

-- A correction of an imported record: the whole corrected record, sealed under the
-- same context as the record (runs and previews read it in its place), the digest of
-- the import it corrects (a newer export that changed the user shows the conflict),
-- and the names of the fields it changed.
CREATE TABLE record_corrections (
    project_id  UUID NOT NULL REFERENCES projects (id),
    source_id   TEXT NOT NULL,
    data        BYTEA NOT NULL,
    base_digest TEXT NOT NULL,
    fields      TEXT NOT NULL,
    created_by  UUID REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, source_id)
);

-- Members an owner allowed to see personal data unmasked.
CREATE TABLE personal_data_grants (
    account_id UUID PRIMARY KEY REFERENCES accounts (id),
    granted_by UUID REFERENCES accounts (id),
    granted_at BIGINT NOT NULL
);

-- Actions on more users than one request should hold, done in the background page by
-- page: the action, the filter (search values as keyed digests, never plaintext), how
-- far it got (the last legacy id acted on, so a restart goes on from there), and how
-- it ended.
CREATE TABLE review_tasks (
    id          UUID PRIMARY KEY,
    project_id  UUID NOT NULL REFERENCES projects (id),
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    filter      TEXT NOT NULL,
    total       BIGINT NOT NULL,
    done        BIGINT NOT NULL,
    cursor      TEXT,
    state       TEXT NOT NULL,
    error       TEXT,
    created_by  UUID REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX review_tasks_by_project ON review_tasks (project_id, created_at);

-- How many queued users are in each outcome and state (and assigned to nobody), kept by
-- a trigger in the same transaction as the rows: where the users stand, and the queue's
-- unfiltered count, are read without counting a million rows.
CREATE TABLE review_tally (
    project_id UUID NOT NULL REFERENCES projects (id),
    outcome    TEXT NOT NULL,
    state      TEXT NOT NULL,
    unassigned BOOLEAN NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (project_id, outcome, state, unassigned)
);
CREATE FUNCTION review_tally_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.outcome = NEW.outcome AND OLD.state = NEW.state
        AND (OLD.assignee IS NULL) = (NEW.assignee IS NULL) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE review_tally SET n = n - 1 WHERE project_id = OLD.project_id
            AND outcome = OLD.outcome AND state = OLD.state AND unassigned = (OLD.assignee IS NULL);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO review_tally (project_id, outcome, state, unassigned, n)
            VALUES (NEW.project_id, NEW.outcome, NEW.state, NEW.assignee IS NULL, 1)
            ON CONFLICT (project_id, outcome, state, unassigned)
            DO UPDATE SET n = review_tally.n + 1;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER review_tally_rows AFTER INSERT OR UPDATE OR DELETE ON review_items
    FOR EACH ROW EXECUTE FUNCTION review_tally_change();

-- Users in the target (distinct users a run against production created, updated or
-- found, less those a rollback deleted since), counted when a run finishes rather than
-- on every read of where the users stand.
CREATE TABLE review_standing (
    project_id  UUID PRIMARY KEY REFERENCES projects (id),
    migrated    BIGINT NOT NULL,
    computed_at BIGINT NOT NULL
);

-- The grouped views read only these (the group and the view's columns), never the
-- rows.
CREATE INDEX review_group_class ON review_items (project_id, error_class, outcome, state);
CREATE INDEX review_group_fault ON review_items (project_id, fault, outcome, state);
CREATE INDEX review_group_pattern ON review_items (project_id, pattern, outcome, state);
