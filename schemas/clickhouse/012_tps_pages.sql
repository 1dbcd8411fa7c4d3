-- What a TPS page shows of each decision, as one JSON array the server derives from the row's own
-- columns when the row is written (MATERIALIZED: never sent by a writer, absent from SELECT *, and
-- computed on the fly for rows written before this column). A page of many TPS then reads three
-- narrow columns of tally_decisions instead of seventeen (streams/clickhouse/pages.py): each column
-- a statement reads costs the embedded server about as much as the few rows a TPS has. Times are
-- milliseconds since the epoch, UTC, whatever the server's time zone. The field order is
-- pages.TRAIL_FIELDS; tests/e2e/test_pages.py holds the two to the columns. tally_current has no
-- such entry: its rows carry every count of a ballot, and a copy of them as JSON, merged again with
-- every merge, cost the five-ballot night a third more of the server's time than it saved a page.
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS trail_entry String MATERIALIZED toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(decided_at), event_id, ballot, revision, decision, reasons, findings, flags, gateway, key_id, submitted_at, src_partition, src_offset, kafka_key, forwarded_from, src_epoch));
