-- One active run (scheduled, running or paused) per project, kept by the database:
-- checking first and then starting let two starts at once both run. Runs that already
-- broke the rule keep the oldest active; the others are cancelled.
UPDATE jobs SET state = 'cancelled'
WHERE state IN ('scheduled', 'running', 'paused')
  AND EXISTS (
    SELECT 1 FROM jobs AS older
    WHERE older.project_id = jobs.project_id
      AND older.state IN ('scheduled', 'running', 'paused')
      AND (older.created_at < jobs.created_at
           OR (older.created_at = jobs.created_at AND older.id < jobs.id))
  );
CREATE UNIQUE INDEX jobs_one_active_per_project ON jobs (project_id)
  WHERE state IN ('scheduled', 'running', 'paused');
