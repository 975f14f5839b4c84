-- The cutover delta: what a delta run decided for each user (`create`, `update`,
-- `deactivate`, `delete` or `leave`), and how to undo it (the values the target held
-- before, sealed under the project's key: they name the user), which its rollback
-- copies and plays back.
ALTER TABLE job_records ADD COLUMN delta TEXT;
ALTER TABLE job_records ADD COLUMN undo BLOB;
