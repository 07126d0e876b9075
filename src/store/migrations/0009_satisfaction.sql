-- postdesk schema: satisfaction ratings.
--
-- One row per ticket: the latest rating its requester gave by mail (a
-- click on a signed rating address in the survey mail, see token.rs). A
-- second rating replaces the first, so the row is keyed by the ticket.
-- Queue and assignee are read from the ticket when figures are asked for,
-- so a rating counts for the ticket's agent of the day the report runs.
CREATE TABLE ratings (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    -- 1 (worst) to 5 (best); the address that carried it signed it
    score INTEGER NOT NULL DEFAULT 0,
    -- what the customer wrote in the rating mail, quotes removed
    comment TEXT NOT NULL DEFAULT '',
    -- the From address of the rating mail
    rater TEXT NOT NULL DEFAULT '',
    message_row_id INTEGER REFERENCES messages(id),
    rated_at INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX ratings_rated_at ON ratings(rated_at);
