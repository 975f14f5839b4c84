-- Every saved version of a project's migration plan, numbered from 1 per project: the
-- document as JSON (requirements, experiences, acceptable impact, risks, milestones,
-- windows, peaks), who saved it, and who approved it (owners only).
CREATE TABLE plan_versions (
    project_id  UUID NOT NULL REFERENCES projects (id),
    version     BIGINT NOT NULL,
    document    TEXT NOT NULL,
    note        TEXT NOT NULL,
    saved_by    UUID REFERENCES accounts (id),
    saved_at    BIGINT NOT NULL,
    approved_by UUID REFERENCES accounts (id),
    approved_at BIGINT,
    PRIMARY KEY (project_id, version)
);
