-- Every change of the totals, kept: at level 'tps', region_totals holds one row per applied
-- revision of a (ballot, TPS), keyed by the revision it moved to (`choice`, zero-padded), never merged
-- with another. Its summary columns are the change's deltas (tps_reported 1 on a first count, invalid,
-- voters, and revision new - old, so a TPS's rows sum to the revision the totals include); `deltas`
-- holds new - old per choice. They are written in the same insert as the totals they move, one atomic
-- part, so that history is exactly what the totals were at any moment; `decided_at` is that insert's
-- time. SummingMergeTree sums only numeric columns: maps, strings and times keep a row's own value
-- (a totals row leaves them empty).
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS deltas Map(String, Int64);
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS event_id String;
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS gateway String;
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS decided_at DateTime64(6, 'UTC') DEFAULT now64(6);
