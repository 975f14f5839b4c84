-- Counting what an upload added, changed and left out reads only this index, not the
-- sealed records; rows enter it at the end of their project's range as they are read.
-- It replaces the index on last_upload_id alone, which no query used.
DROP INDEX records_last_upload;
CREATE INDEX records_delta ON records (project_id, last_upload_id, changed_upload_id, first_upload_id);
