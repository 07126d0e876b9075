-- Full-text search over messages: subject, text and attachment names of
-- every message but postdesk's own system mail (acknowledgements, notices),
-- one row per message (rowid = messages.id), written in the message's
-- transaction. unicode61 with remove_diacritics 2 folds accents and
-- umlauts, so "Muller" finds "Müller".
CREATE VIRTUAL TABLE message_search USING fts5(
    subject, body, attachments,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search (rowid, subject, body, attachments)
SELECT m.id, m.subject, m.text,
       COALESCE((SELECT group_concat(a.name, ' ') FROM attachments a
                 WHERE a.message_row_id = m.id), '')
FROM messages m WHERE m.kind != 'system';
