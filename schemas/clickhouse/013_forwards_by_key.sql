-- tally_forwards has no copy ordered by Kafka key: a TPS page finds the records that arrived off
-- its home in the page table, whose view files each forward under its key (014_tps_pages_table.sql),
-- so a projection by key would be written with every forwarded record and read by nothing. A
-- database that has it (an older schema added `by_key`) drops it here.
ALTER TABLE tally_forwards DROP PROJECTION IF EXISTS by_key;
