-- What a TPS page shows of each row, as one JSON array the server derives from the row's own
-- columns when the row is written (MATERIALIZED: never sent by a writer, absent from SELECT *, and
-- computed on the fly for rows written before these columns). A page of many TPS then reads three
-- narrow columns of two tables (streams/clickhouse/pages.py) instead of twenty: each column a
-- statement reads costs the embedded server about as much as the few rows a TPS has. Times are
-- milliseconds since the epoch, UTC, whatever the server's time zone. The field order is
-- pages.TALLY_FIELDS and pages.TRAIL_FIELDS; tests/e2e/test_pages.py holds the two to the columns.
ALTER TABLE tally_current ADD COLUMN IF NOT EXISTS page_entry String MATERIALIZED toJSONString(tuple(ballot, revision, event_id, gateway, submitted_at, votes, invalid, voters, registered, flags));
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS trail_entry String MATERIALIZED toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(decided_at), event_id, ballot, revision, decision, reasons, findings, flags, gateway, key_id, submitted_at, src_partition, src_offset, kafka_key, forwarded_from, src_epoch));
