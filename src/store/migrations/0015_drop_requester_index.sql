-- `tickets_requester (requester_id, updated_at)` served no query that
-- `tickets_requester_queue (requester_id, queue, updated_at)` and
-- `tickets_recent (requester_id, normalized_subject, …)` do not serve as
-- well (every lookup by requester is an equality on requester_id, and a
-- requester's few tickets sort in memory), yet every new ticket and every
-- message added to one rewrote an entry of it: one index page more in
-- every commit.
DROP INDEX IF EXISTS tickets_requester;
