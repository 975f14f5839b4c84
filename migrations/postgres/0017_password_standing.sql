-- Users in the target whose user type moves a password (silently or by invitation),
-- counted with `migrated` when a production run finishes: what the project's
-- checklist weighs the moved passwords against, without counting the rows each time.
ALTER TABLE review_standing ADD COLUMN password_users BIGINT NOT NULL DEFAULT 0;
