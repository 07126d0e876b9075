-- SQLite's search index stopped keeping its own copy of each message's
-- text (its version 14). PostgreSQL's index is the generated `doc` column
-- of `message_search`, which needs the columns it is made from: no change
-- but this note on the table.
COMMENT ON TABLE message_search IS
    'Full-text search: one row per message but system mail (rowid = messages.id); doc is what is searched.';
