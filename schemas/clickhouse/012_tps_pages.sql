-- What a TPS page shows of each row besides its counts, as one JSON array the server derives from
-- the row's own columns when the row is written (MATERIALIZED: never sent by a writer, absent from
-- SELECT *, and computed on the fly for rows written before these columns). A page of many TPS then
-- reads a few narrow columns instead of thirty (streams/clickhouse/pages.py): each column a
-- statement reads costs the embedded server about as much as the few rows a TPS has. A tally's
-- votes stay in their own column: a JSON copy of every count, merged again with every merge, cost
-- the five-ballot night 42% more of the server's time an event. Times are milliseconds since the
-- epoch, UTC, whatever the server's time zone. The field orders are pages.TALLY_FIELDS and
-- pages.TRAIL_FIELDS; tests/e2e/test_pages.py holds them to the columns.
ALTER TABLE tally_current ADD COLUMN IF NOT EXISTS tally_entry String MATERIALIZED toJSONString(tuple(ballot, event_id, gateway, submitted_at, invalid, voters, registered, flags));
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS trail_entry String MATERIALIZED toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(decided_at), event_id, ballot, revision, decision, reasons, findings, flags, gateway, key_id, submitted_at, src_partition, src_offset, kafka_key, forwarded_from, src_epoch));
