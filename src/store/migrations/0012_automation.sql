-- Automation rules.
--
-- Round-robin assignment: the agent each team gave its last ticket to.
CREATE TABLE assignment_cursor (
    team TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;

-- Idle rules that ran on a ticket for one stay in a status (`since` is
-- the ticket's status_changed_at then), so each runs once per stay.
CREATE TABLE automation_idle (
    rule TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    since INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (rule, ticket_id, since)
) STRICT, WITHOUT ROWID;

-- Least-busy assignment counts each agent's unfinished tickets.
CREATE INDEX tickets_assignee_status ON tickets(assignee, status) WHERE assignee <> '';

-- A ticket is in its first status since it was opened (idle rules and
-- auto-close read status_changed_at; tickets opened before were NULL).
UPDATE tickets SET status_changed_at = created_at WHERE status_changed_at IS NULL;
