-- A lockout counts the attempts that count (wrong passwords, unknown users) of one user
-- name or one caller in the window. Every login of a migration comes from the same
-- caller (the identity server's address), and nearly all succeed: an index over all
-- attempts made each count read every attempt of the window, so a login cost more the
-- more logins had gone before. These hold only the attempts that count.
DROP INDEX password_attempts_by_user;
DROP INDEX password_attempts_by_caller;
CREATE INDEX password_attempts_failures_by_user
    ON password_attempts (project_id, user_digest, at) WHERE counts = TRUE;
CREATE INDEX password_attempts_failures_by_caller
    ON password_attempts (project_id, caller, at) WHERE counts = TRUE;
