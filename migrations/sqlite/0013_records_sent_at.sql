-- When a record's batch first left for the target (milliseconds since the epoch):
-- after a crash, the users the target created since then are listed, a page per
-- thousand, instead of being asked for fifty at a time. Kept from the first send, as
-- that request may be the one that created the user; cleared with `sent`.
ALTER TABLE job_records ADD COLUMN sent_at BIGINT;
