-- postdesk schema, version 2: threading lookups.

-- Every Message-ID that a ticketed message names in In-Reply-To or
-- References, with that message's ticket. Threading looks here when a
-- message arrives before its parent (its own id is already referred to) or
-- when its parent never arrives (a sibling referred to the same ancestor),
-- so the conversation ends in one ticket whatever the arrival order.
-- Filled on insert, in the same transaction as the message.
CREATE TABLE message_refs (
    ref_id TEXT NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    message_row_id INTEGER NOT NULL REFERENCES messages(id),
    -- (ref_id, message_row_id) also serves "newest message naming ref_id"
    PRIMARY KEY (ref_id, message_row_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX message_refs_ticket ON message_refs(ticket_id);

-- Messages stored before this migration: the same rows the pipeline would
-- have written, so a migrated database threads like a fresh one.
INSERT OR IGNORE INTO message_refs (ref_id, ticket_id, message_row_id)
SELECT j.value, m.ticket_id, m.id
FROM messages m, json_each(m.in_reply_to) j
WHERE m.ticket_id IS NOT NULL AND j.type = 'text' AND j.value <> m.message_id
UNION ALL
SELECT j.value, m.ticket_id, m.id
FROM messages m, json_each(m.refs) j
WHERE m.ticket_id IS NOT NULL AND j.type = 'text' AND j.value <> m.message_id;

-- The routing history of a sender (support ticket? open lead?) looks
-- tickets up by requester and queue, newest first.
CREATE INDEX tickets_requester_queue ON tickets(requester_id, queue, updated_at);
-- The recent-ticket rule looks them up by requester, subject and inbound
-- address: a sender with thousands of tickets (a monitoring robot) must not
-- make every one of its messages scan them all.
CREATE INDEX tickets_recent ON tickets(requester_id, normalized_subject, inbound_address, updated_at);
