-- A TPS page finds the records that arrived off its home by their Kafka key (streams/clickhouse/
-- pages.py), and tally_forwards is ordered by source position: with a gateway whose partitioner is
-- not Kafka's murmur2 (librdkafka's CRC32, Go's FNV-1a) nearly every record is forwarded, and each
-- page read scanned them all. The projection keeps a copy ordered by key inside each part (written
-- with the part, so it lands with its rows or not at all), rebuilt when parts merge. Rows written
-- before it are found by a scan until `ALTER TABLE tally_forwards MATERIALIZE PROJECTION by_key`.
ALTER TABLE tally_forwards MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';
ALTER TABLE tally_forwards ADD PROJECTION IF NOT EXISTS by_key (SELECT * ORDER BY kafka_key);
