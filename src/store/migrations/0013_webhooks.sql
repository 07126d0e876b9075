-- postdesk schema, version 12: webhook deliveries.

-- One row per event and subscribed webhook. A row is written by the same
-- transaction as the event that causes it (as the outbox's rows are), so a
-- committed change always has its deliveries queued and a rolled-back one
-- never does. `event_id` is fixed here: every attempt carries it, so a
-- receiver that sees it twice (a crash between the POST and its mark) can
-- drop the copy.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    -- random, hex; the payload's "id"
    event_id TEXT NOT NULL DEFAULT (lower(hex(randomblob(16)))),
    -- ticket.created | ticket.updated | ticket.resolved | ticket.closed |
    -- ticket.comment.added | ticket.assigned | ticket.sla.breached
    event TEXT NOT NULL,
    -- the internal event kind it was made from (status_changed, ...)
    source_kind TEXT NOT NULL DEFAULT '',
    -- the [[webhook]] it goes to: its url, and json | slack
    url TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'json',
    ticket_id INTEGER REFERENCES tickets(id),
    -- the ticket as it was when the event happened, JSON
    data TEXT NOT NULL DEFAULT '{}',
    -- queued | sending | sent | failed
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds, as the outbox's
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    claimed_at INTEGER,
    sent_at INTEGER
) STRICT;
-- The worker's claim: due rows in order.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
