-- Runs: rollbacks delete users (their own record state), one instance at a time
-- finishes a run (groups, then the read-back of a test run) under a lease of its
-- own, and the job keeps what the finish found. Failed records are listed by class.
ALTER TABLE jobs ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN finisher TEXT;
ALTER TABLE jobs ADD COLUMN finisher_until BIGINT;
-- JSON: what became of the groups.
ALTER TABLE jobs ADD COLUMN summary TEXT;
-- The test run's read-back, sealed (it quotes attribute values).
ALTER TABLE jobs ADD COLUMN sealed_readback BYTEA;
-- The groups of a user the run placed, one name per line (names of the source's
-- groups, never personal data), for the groups that follow the users.
ALTER TABLE job_records ADD COLUMN member_of TEXT;
CREATE INDEX job_records_by_class ON job_records (job_id, error_class, seq);
CREATE INDEX jobs_active ON jobs (state);
-- From now on job_records.lease_owner stays set when a record settles: it names the
-- worker (instance and number) that settled it.
