-- The tables the workers and the log's appender write most merge fewer, wider parts at a time: at
-- merge_selector_base 20 (ClickHouse's 5 otherwise) a row is rewritten about half as often on a
-- national night, for some more parts read by a statement (benchmarks/RESULTS.md: a night of
-- 4,131,320 five-ballot events, 148 against 128 us of the embedded server an event). tps_pages
-- keeps ClickHouse's own: a TPS page is the read a reader waits for, and it reads every part.
ALTER TABLE region_totals MODIFY SETTING merge_selector_base = 20;
ALTER TABLE tally_current MODIFY SETTING merge_selector_base = 20;
ALTER TABLE tally_decisions MODIFY SETTING merge_selector_base = 20;
ALTER TABLE log_leaves MODIFY SETTING merge_selector_base = 20;
