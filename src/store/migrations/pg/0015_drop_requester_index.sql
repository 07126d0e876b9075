-- As SQLite's version 15: `tickets_requester` served no query that
-- `tickets_requester_queue` and `tickets_recent` do not, and every ticket
-- write updated it.
DROP INDEX IF EXISTS tickets_requester;
