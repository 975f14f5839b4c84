-- What a project needs to read its exports or reach its systems (a Firebase project's
-- password hash parameters; later the target's credentials), sealed under the server
-- key with the project and kind as context. One of each kind per project.
CREATE TABLE project_secrets (
    project_id BLOB NOT NULL REFERENCES projects (id),
    kind       TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, kind)
);
