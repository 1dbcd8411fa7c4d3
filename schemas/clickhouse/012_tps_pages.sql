-- What a TPS page shows of each row besides its counts, as one JSON array the server derives from
-- the row's own columns (ALIAS: never sent by a writer, never stored, absent from SELECT *). The
-- page table's views copy it as rows are written (014_tps_pages_table.sql), so it is stored once,
-- there. A tally's votes stay in their own column: a JSON copy of every count cost the five-ballot
-- night 42% more of the server's time an event. Times are milliseconds since the epoch, UTC,
-- whatever the server's time zone. The field orders are pages.TALLY_FIELDS and
-- pages.TRAIL_FIELDS; tests/e2e/test_pages.py holds them to the columns. (Databases made before
-- hold them MATERIALIZED: 014 makes them ALIAS.)
ALTER TABLE tally_current ADD COLUMN IF NOT EXISTS tally_entry String ALIAS toJSONString(tuple(ballot, event_id, gateway, submitted_at, invalid, voters, registered, flags));
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS trail_entry String ALIAS toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(decided_at), event_id, ballot, revision, decision, reasons, findings, flags, gateway, key_id, submitted_at, src_partition, src_offset, kafka_key, forwarded_from, src_epoch));
