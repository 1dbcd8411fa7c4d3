-- A change's deltas as two arrays, the choices and their votes moved, in place of the Map: the same
-- pairs cost the embedded server about half of region_totals' insert and merge an event as a Map
-- (benchmarks/RESULTS.md: 5,000 TPS of five ballots in-process, ~86-97 against ~50-56 us an event).
-- Change rows written before keep theirs in `deltas`; every reader reads `moved`, either of them as
-- a Map. Totals rows leave all three empty.
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS delta_choices Array(String);
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS delta_votes Array(Int32);
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS moved Map(String, Int64) ALIAS
    if(empty(delta_choices), deltas, mapFromArrays(delta_choices, CAST(delta_votes, 'Array(Int64)')));
