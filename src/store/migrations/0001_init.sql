-- postdesk schema, version 1.
-- Times are Unix seconds (UTC). JSON columns hold arrays of strings or
-- small objects. Foreign keys that may be absent are nullable; every other
-- column is NOT NULL with a DEFAULT.

-- People who write to us (customers) or for us (agents).
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    first_seen INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER NOT NULL DEFAULT 0,
    message_count INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    subject TEXT NOT NULL DEFAULT '',
    -- the subject with Re:/Fwd: prefixes and the tag removed, lower-case,
    -- for the recent-ticket rule
    normalized_subject TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'Open',
    priority TEXT NOT NULL DEFAULT 'Medium',
    queue TEXT NOT NULL DEFAULT 'support',
    issue_type TEXT NOT NULL DEFAULT 'General',
    requester_id INTEGER REFERENCES contacts(id),
    requester_name TEXT NOT NULL DEFAULT '',
    inbound_address TEXT NOT NULL DEFAULT '',
    assignee TEXT NOT NULL DEFAULT '',
    linked_ticket_id INTEGER REFERENCES tickets(id),
    message_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0,
    closed_at INTEGER,
    first_response_at INTEGER
) STRICT;
CREATE INDEX tickets_status_queue ON tickets(status, queue);
CREATE INDEX tickets_requester ON tickets(requester_id, updated_at);

-- Every message postdesk stored or sent. The raw bytes live in message_raw
-- so that listing messages never reads them.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER REFERENCES tickets(id),
    -- RFC 5322 Message-ID without angle brackets (synthetic when absent)
    message_id TEXT NOT NULL,
    is_synthetic_id INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT NOT NULL,
    direction TEXT NOT NULL DEFAULT 'inbound',
    kind TEXT NOT NULL DEFAULT 'customer',
    -- ticketed | quarantined | internal | unrouted
    state TEXT NOT NULL DEFAULT 'ticketed',
    -- why the message is flagged (unparseable, quarantine reason), '' if not
    flag TEXT NOT NULL DEFAULT '',
    thread_match TEXT NOT NULL DEFAULT '',
    route TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    envelope_from TEXT NOT NULL DEFAULT '',
    envelope_to TEXT NOT NULL DEFAULT '[]',
    peer TEXT NOT NULL DEFAULT '',
    from_addr TEXT NOT NULL DEFAULT '',
    from_name TEXT NOT NULL DEFAULT '',
    to_addrs TEXT NOT NULL DEFAULT '[]',
    cc_addrs TEXT NOT NULL DEFAULT '[]',
    subject TEXT NOT NULL DEFAULT '',
    in_reply_to TEXT NOT NULL DEFAULT '[]',
    refs TEXT NOT NULL DEFAULT '[]',
    date_header INTEGER,
    headers TEXT NOT NULL DEFAULT '[]',
    text TEXT NOT NULL DEFAULT '',
    html TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_from ON messages(from_addr);
CREATE INDEX messages_ticket ON messages(ticket_id);

CREATE TABLE message_raw (
    message_row_id INTEGER PRIMARY KEY REFERENCES messages(id),
    raw BLOB NOT NULL
) STRICT;

CREATE TABLE participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    -- requester | cc | agent
    role TEXT NOT NULL DEFAULT 'cc',
    added_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ticket_id, contact_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX participants_contact ON participants(contact_id);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    message_row_id INTEGER NOT NULL REFERENCES messages(id),
    name TEXT NOT NULL DEFAULT '',
    content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    size INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL DEFAULT '',
    content BLOB NOT NULL
) STRICT;
CREATE INDEX attachments_message ON attachments(message_row_id);

-- The audit log: every change to a ticket, with its cause.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER REFERENCES tickets(id),
    message_row_id INTEGER REFERENCES messages(id),
    at INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    cause TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX events_ticket ON events(ticket_id);

-- IMAP poller state: written in the same transaction as the messages it
-- fetched, so a crash neither loses nor repeats a message.
CREATE TABLE mailbox_sync (
    mailbox TEXT PRIMARY KEY,
    uid_validity INTEGER NOT NULL DEFAULT 0,
    last_uid INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0
) STRICT;
