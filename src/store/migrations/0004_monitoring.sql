-- postdesk schema: mailbox monitoring (IMAP pollers, alerts, digests).

-- The folder a mailbox's UIDs belong to (user@host:port/folder): when it
-- changes, the stored UIDs mean nothing and the poller starts over as for a
-- new mailbox.
ALTER TABLE mailbox_sync ADD COLUMN source TEXT NOT NULL DEFAULT '';

-- The client a ticket belongs to: set in the transaction that opens a
-- ticket through one of the client's mailboxes.
CREATE TABLE ticket_clients (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    -- the client's short name (its file stem)
    client TEXT NOT NULL,
    customer TEXT NOT NULL DEFAULT '',
    mailbox TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX ticket_clients_client ON ticket_clients(client);

-- Whether a polled mailbox is broken, and the one ticket that says so.
-- Persisted so that a restart neither opens a second ticket nor forgets
-- to note the recovery.
CREATE TABLE mailbox_health (
    mailbox TEXT PRIMARY KEY,
    broken INTEGER NOT NULL DEFAULT 0,
    ticket_id INTEGER REFERENCES tickets(id),
    reason TEXT NOT NULL DEFAULT '',
    since INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per digest composed. (client, slot) is unique: a scheduled
-- firing produces at most one digest, whatever crashes and restarts.
CREATE TABLE digests (
    id INTEGER PRIMARY KEY,
    -- the client's short name; '' for the admin digest
    client TEXT NOT NULL,
    -- the scheduled time (Unix seconds) it was composed for
    slot INTEGER NOT NULL,
    created_at INTEGER NOT NULL DEFAULT 0,
    item_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (client, slot)
) STRICT;

-- Medium and Low tickets waiting for their client's digest: written in the
-- transaction that opened the ticket, claimed (digest_id set) in the
-- transaction that composes the digest, so an item is listed exactly once.
CREATE TABLE digest_items (
    id INTEGER PRIMARY KEY,
    client TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    message_row_id INTEGER REFERENCES messages(id),
    mailbox TEXT NOT NULL DEFAULT '',
    priority TEXT NOT NULL DEFAULT '',
    sender TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL DEFAULT 0,
    digest_id INTEGER REFERENCES digests(id)
) STRICT;
CREATE INDEX digest_items_pending ON digest_items(client, digest_id, id);

-- The last scheduled firing handled per schedule ('' is the admin digest),
-- so a firing missed while postdesk was down is handled on start, once.
CREATE TABLE digest_schedule (
    client TEXT PRIMARY KEY,
    last_slot INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Every alert and digest mail composed, in the transaction of its cause.
-- kind: alert | mailbox_broken | mailbox_recovered | digest | admin_digest.
CREATE TABLE notices (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    client TEXT NOT NULL DEFAULT '',
    ticket_id INTEGER REFERENCES tickets(id),
    digest_id INTEGER REFERENCES digests(id),
    sender TEXT NOT NULL DEFAULT '',
    recipients TEXT NOT NULL DEFAULT '[]',
    subject TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX notices_ticket ON notices(ticket_id);
