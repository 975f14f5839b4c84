-- Whether a request carrying the record may have reached the target: set when its
-- batch is sent, so that after a crash only records that were in the air are looked
-- up, not every record of every claimed batch (a batch readied ahead never left).
-- Records claimed before this column existed keep the old, cautious rule: any claim
-- may have sent them.
ALTER TABLE job_records ADD COLUMN sent BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE job_records SET sent = TRUE WHERE attempts > 0 AND state IN ('pending', 'in_flight');
