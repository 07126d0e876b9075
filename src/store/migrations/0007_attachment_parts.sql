-- postdesk schema, version 6: an attachment's bytes are stored once.
--
-- The raw message in message_raw already holds every attachment. From this
-- version an attachments row names its part instead of holding a second
-- copy: `part` is its position among the message's attachments (as
-- mail-parser lists them, from 0), and `content` is left empty; the bytes
-- are decoded from the raw message when they are asked for. Rows written
-- before this version keep `part` NULL and their bytes in `content`.
ALTER TABLE attachments ADD COLUMN part INTEGER;
