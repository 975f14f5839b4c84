-- Retention and purge. Every project gets its own data key: a random key sealed by the
-- server's key (`own`). Destroying it (`destroyed`) makes whatever was sealed under it
-- unreadable anywhere, including copies in backups or in the database's free pages.
-- Projects made before keys were per project keep sealing under the server's key
-- (`server`); purging them deletes their data instead.
CREATE TABLE project_keys (
    project_id   UUID PRIMARY KEY REFERENCES projects (id),
    scheme       TEXT NOT NULL CHECK (scheme IN ('server', 'own', 'destroyed')),
    wrapped      BYTEA,
    created_at   BIGINT NOT NULL,
    destroyed_at BIGINT
);
INSERT INTO project_keys (project_id, scheme, wrapped, created_at)
    SELECT id, 'server', NULL, created_at FROM projects;

-- The retention period counts from the end of the latest finished real run; what a
-- purge keeps is chosen beforehand. A purged project is read only; the final report
-- it kept is sealed under the server's key.
ALTER TABLE projects ADD COLUMN retention_days BIGINT;
ALTER TABLE projects ADD COLUMN keep_crosswalk BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE projects ADD COLUMN keep_report BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE projects ADD COLUMN purged_at BIGINT;
ALTER TABLE projects ADD COLUMN kept_report BYTEA;

ALTER TABLE uploads ADD COLUMN purged_at BIGINT;
