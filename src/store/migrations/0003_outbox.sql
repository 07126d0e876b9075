-- postdesk schema, version 3: the outbox, ticket tags, merges and
-- suppressed addresses (the conversation by mail).

-- Every mail postdesk sends, one row per envelope recipient. A row is
-- written in the same transaction as the change that caused it (a new
-- ticket, an agent's reply, a failed delivery), so a crash either keeps
-- both or neither. The Message-ID is fixed here, at enqueue time: a resend
-- after a crash between the send and the mark carries the same id, and the
-- receiving side can drop the duplicate.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    -- the ticket the mail is about, if any (alerts may have none)
    ticket_id INTEGER REFERENCES tickets(id),
    -- the outbound `messages` row holding the same mail (for threading)
    message_row_id INTEGER REFERENCES messages(id),
    -- ack | notification | relay | command_error | bounce_notice | alert |
    -- warning | digest
    kind TEXT NOT NULL DEFAULT '',
    -- an automatic reply to someone's mail (RFC 3834): rate-limited per
    -- recipient and never sent to automatic mail
    is_automatic INTEGER NOT NULL DEFAULT 0,
    -- RFC 5322 Message-ID without angle brackets
    message_id TEXT NOT NULL,
    -- envelope sender; '' is the null reverse-path <>
    mail_from TEXT NOT NULL DEFAULT '',
    -- the one envelope recipient, lower-case
    rcpt_to TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    raw BLOB NOT NULL,
    -- queued | sending | sent | failed
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds: backoff in tests runs in milliseconds
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    claimed_at INTEGER,
    sent_at INTEGER
) STRICT;
-- The worker's claim: due rows in order.
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
-- The rate limit: automatic mails to one recipient in the last hour.
CREATE INDEX outbox_rcpt ON outbox(rcpt_to, created_at);
-- Bounces name the original Message-ID.
CREATE INDEX outbox_message_id ON outbox(message_id);

-- Tags an agent put on a ticket (`#tag`).
CREATE TABLE ticket_tags (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    tag TEXT NOT NULL,
    added_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ticket_id, tag)
) STRICT, WITHOUT ROWID;

-- A ticket merged into another (`#merge`): it stays, closed, and threading
-- follows this pointer, so mail naming either number joins the target.
ALTER TABLE tickets ADD COLUMN merged_into INTEGER REFERENCES tickets(id);

-- Addresses postdesk does not mail until `until` (Unix seconds): a
-- permanent delivery failure (5.x.x) to them was seen.
CREATE TABLE suppressed_addresses (
    address TEXT PRIMARY KEY,
    until INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    ticket_id INTEGER REFERENCES tickets(id),
    created_at INTEGER NOT NULL DEFAULT 0
) STRICT;
