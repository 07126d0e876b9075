-- postdesk schema: where each polled folder's sync started.
--
-- A first sync may leave older mail alone (first_sync = "new" or
-- "unseen"): messages at or below start_uid were never fetched, so the
-- after-ingest step (\Seen, move, delete) must never touch them. The
-- leftovers a crash leaves between a commit and that step are looked for
-- only above start_uid. Rows from before this version start at their
-- current state: what was stored before the upgrade is not revisited.
ALTER TABLE mailbox_sync ADD COLUMN start_uid INTEGER NOT NULL DEFAULT 0;
UPDATE mailbox_sync SET start_uid = last_uid;
