-- A login's context is written once, when its verification ends (its start writes
-- nothing: the context id is signed and carries its expiry, so any instance can tell a
-- pending context from an unknown one), and read once by the status call. Two writes
-- per login instead of five: the verification's record follows the context's row by
-- trigger, and a success read by the status call marks the password moved by trigger,
-- each in the statement that causes it.
ALTER TABLE password_contexts ADD COLUMN attempted_at BIGINT;
ALTER TABLE password_contexts ADD COLUMN caller TEXT;
ALTER TABLE password_contexts ADD COLUMN method TEXT;
ALTER TABLE password_contexts ADD COLUMN counts BOOLEAN;
-- `answered` by the status call (a success then moves the password) or `discarded`
-- (read by a wrong user name, before the verification ended, or by the rehearsal).
ALTER TABLE password_contexts ADD COLUMN taken_as TEXT;
ALTER TABLE password_contexts ADD COLUMN taken_at BIGINT;

CREATE TRIGGER password_context_attempt AFTER INSERT ON password_contexts
WHEN NEW.reason IS NOT NULL
BEGIN
    INSERT INTO password_attempts (project_id, at, user_digest, caller, scim_id,
        source_id, user_type, success, reason, method, counts)
    VALUES (NEW.project_id, NEW.attempted_at, NEW.user_digest, NEW.caller, NEW.scim_id,
        NEW.source_id, NEW.user_type, NEW.reason = 'success', NEW.reason, NEW.method,
        NEW.counts);
END;

CREATE TRIGGER password_context_answered AFTER UPDATE OF taken_as ON password_contexts
WHEN NEW.taken_as = 'answered' AND NEW.reason = 'success' AND NEW.scim_id IS NOT NULL
    AND NEW.source_id IS NOT NULL AND NEW.target_role IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO password_moves (project_id, scim_id, source_id, target_role,
        user_type, how, at)
    VALUES (NEW.project_id, NEW.scim_id, NEW.source_id, NEW.target_role, NEW.user_type,
        'verified', NEW.taken_at);
END;
