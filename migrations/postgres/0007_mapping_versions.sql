-- Every saved version of a project's attribute mapping, numbered from 1 per project.
-- The rules are JSON (the export format's rules); runs record the version they used.
CREATE TABLE mapping_versions (
    project_id UUID NOT NULL REFERENCES projects (id),
    version    BIGINT NOT NULL,
    rules      TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_by UUID REFERENCES accounts (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, version)
);
