-- postdesk schema: the web door (HTTP API keys, monitor alert tickets).

-- API keys for the read and alert APIs. Only the SHA-256 of a key is
-- stored: `postdesk apikey new` prints the key once. A revoked key keeps
-- its row (revoked_at > 0) so `apikey list` shows it and its name is not
-- reused by accident.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL DEFAULT 'read',
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The ticket a monitor alert's dedupe key opened. Written in the
-- transaction that opens the ticket; a later alert with the key joins
-- that ticket while it is not resolved or closed, and replaces the row
-- when it opens a new one.
CREATE TABLE web_alerts (
    dedupe_key TEXT PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    opened_at INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
