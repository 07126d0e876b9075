-- postdesk schema: the bypass detector's actions (warnings, compliance
-- alerts, suspensions) and its rescan bookkeeping.

-- The rules version each in-scope customer message was last scanned
-- under. The rescan looks for messages of in-scope tickets whose version
-- differs from the running one; written in the scan's transaction.
CREATE TABLE detector_scans (
    message_row_id INTEGER PRIMARY KEY REFERENCES messages(id),
    version TEXT NOT NULL,
    flagged INTEGER NOT NULL DEFAULT 0,
    scanned_at INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Every hit a flag acted on: (message, category, span) is unique, so the
-- same hit never triggers a second flag, whatever the rules version.
CREATE TABLE detector_hits (
    message_row_id INTEGER NOT NULL REFERENCES messages(id),
    category TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    rule TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_row_id, category, start, end)
) STRICT, WITHOUT ROWID;

-- One row per flag: a message flagged under one rules version. The
-- client is the sender's address (lower case); a repeat is a client's flag
-- on a second distinct message.
CREATE TABLE detector_flags (
    id INTEGER PRIMARY KEY,
    message_row_id INTEGER NOT NULL REFERENCES messages(id),
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    client TEXT NOT NULL,
    queue TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL,
    score INTEGER NOT NULL DEFAULT 0,
    hits TEXT NOT NULL DEFAULT '[]',
    -- the Compliance Alert ticket the flag was reported on
    alert_ticket_id INTEGER REFERENCES tickets(id),
    created_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (message_row_id, version)
) STRICT;
CREATE INDEX detector_flags_client ON detector_flags(client);

-- A client's access to a queue, suspended after a repeat flag. Mail from a
-- suspended client is still stored and threaded; lifted_at set when an
-- admin lifts it (the row stays, as history).
CREATE TABLE suspensions (
    id INTEGER PRIMARY KEY,
    client TEXT NOT NULL,
    queue TEXT NOT NULL,
    since INTEGER NOT NULL DEFAULT 0,
    alert_ticket_id INTEGER REFERENCES tickets(id),
    flag_id INTEGER REFERENCES detector_flags(id),
    lifted_at INTEGER,
    lifted_by TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE UNIQUE INDEX suspensions_active ON suspensions(client, queue) WHERE lifted_at IS NULL;
