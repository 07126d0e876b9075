-- SLA clocks: one row per ticket that runs under an SLA policy, with the
-- three clocks (first response, next response, resolution) and the
-- ticket's pause; `next_check` is when the scheduler should look at it
-- next (its soonest pending warning or breach), indexed so a sweep reads
-- only what is due.
CREATE TABLE ticket_sla (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    policy TEXT NOT NULL,
    status_seen TEXT NOT NULL DEFAULT '',
    paused_since INTEGER,
    paused_secs INTEGER NOT NULL DEFAULT 0,
    first_start INTEGER,
    first_base INTEGER NOT NULL DEFAULT 0,
    first_cycle INTEGER NOT NULL DEFAULT 0,
    first_met INTEGER,
    first_due INTEGER,
    next_start INTEGER,
    next_base INTEGER NOT NULL DEFAULT 0,
    next_cycle INTEGER NOT NULL DEFAULT 0,
    next_met INTEGER,
    next_due INTEGER,
    res_start INTEGER,
    res_base INTEGER NOT NULL DEFAULT 0,
    res_cycle INTEGER NOT NULL DEFAULT 0,
    res_met INTEGER,
    res_due INTEGER,
    next_check INTEGER
) STRICT;
CREATE INDEX ticket_sla_next_check ON ticket_sla(next_check) WHERE next_check IS NOT NULL;

-- Warnings and breaches that fired: one per ticket, target, cycle and
-- kind, so each fires once across restarts.
CREATE TABLE sla_alerts (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    target TEXT NOT NULL,
    cycle INTEGER NOT NULL,
    kind TEXT NOT NULL,
    fired_at INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, target, cycle, kind)
) STRICT;

-- When the status last changed, for auto-close ("Replied or Resolved for
-- N days"). Kept by a trigger so every path that sets a status keeps it.
ALTER TABLE tickets ADD COLUMN status_changed_at INTEGER;
UPDATE tickets SET status_changed_at = updated_at;
CREATE TRIGGER tickets_status_changed AFTER UPDATE OF status ON tickets
    WHEN NEW.status IS NOT OLD.status
BEGIN
    UPDATE tickets SET status_changed_at = NEW.updated_at WHERE id = NEW.id;
END;
CREATE INDEX tickets_status_changed ON tickets(status, status_changed_at);
