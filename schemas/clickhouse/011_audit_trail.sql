-- A rejected record's findings also stand in its decision row, so that a TPS's audit trail is read
-- from tally_decisions without a join on tally_rejections (which keeps them with the raw payload).
-- Decisions written before this column read [] here; their findings are in tally_rejections.
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS findings Array(String);
