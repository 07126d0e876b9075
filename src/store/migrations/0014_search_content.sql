-- The search index reads its text from the messages themselves instead of
-- keeping a copy: an FTS5 table with external content, the view below
-- (subject, text and attachment names of every message but postdesk's own
-- system mail, rowid = messages.id). A message's text was stored twice,
-- once in `messages` and once in the index's own content table; now once.
-- Messages are never changed or deleted after they are stored, so the
-- index, written in the message's transaction, stays equal to the view.
DROP TABLE message_search;
CREATE VIEW message_search_source AS
SELECT m.id AS id, m.subject AS subject, m.text AS body,
       COALESCE((SELECT group_concat(a.name, ' ') FROM attachments a
                 WHERE a.message_row_id = m.id), '') AS attachments
FROM messages m WHERE m.kind != 'system';
CREATE VIRTUAL TABLE message_search USING fts5(
    subject, body, attachments,
    content = 'message_search_source', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO message_search (message_search) VALUES ('rebuild');
