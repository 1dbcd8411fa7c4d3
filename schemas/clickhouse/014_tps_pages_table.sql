-- Everything a TPS page shows, in one table ordered by the code the page is read under, so that a
-- page of many TPS is one narrow read of one table (streams/clickhouse/pages.py): each table a
-- statement reads costs the embedded server ~1.2 ms before it reads a row, and pages read four.
-- The views below fill it from the rows as they are written, inside the same INSERT (no writer
-- sends a page row; a retried insert feeds the views again, and its token drops what had landed).
-- A row here is a copy: the same row twice (a retry that landed twice, the backfill beside a view)
-- reads as once, deduplicated as FINAL would deduplicate the source (pages.Page).
--   tally      a tally of tally_current: rank its revision, entry its tally_entry, votes its counts
--   decision   a decision of tally_decisions, under its TPS and, when it was sent under another
--              code (a Kafka key that is not its TPS), under that code too: rank its first_wins
--   forwarded  a record that arrived off its home partition, under its Kafka key (tally_forwards)
-- Rows written before this table are copied into it once by `tally init` (embedded.schema_files.
-- backfills, run by clickhouse.client.apply_schema).
CREATE TABLE IF NOT EXISTS tps_pages
(
    page  String,
    kind  LowCardinality(String),
    rank  UInt64,
    entry String,
    votes Map(String, UInt32)
)
ENGINE = MergeTree
ORDER BY (page, kind)
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 10000;

-- The entries the views copy are derived, never stored in their own tables (012; a database made
-- before held them MATERIALIZED, stored twice with the page table).
ALTER TABLE tally_current MODIFY COLUMN tally_entry String ALIAS toJSONString(tuple(ballot, event_id, gateway, submitted_at, invalid, voters, registered, flags));
ALTER TABLE tally_decisions MODIFY COLUMN trail_entry String ALIAS toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(decided_at), event_id, ballot, revision, decision, reasons, findings, flags, gateway, key_id, submitted_at, src_partition, src_offset, kafka_key, forwarded_from, src_epoch));

CREATE MATERIALIZED VIEW IF NOT EXISTS tps_pages_of_tallies TO tps_pages AS
SELECT tps AS page, 'tally' AS kind, toUInt64(revision) AS rank, tally_entry AS entry, votes
FROM tally_current;

CREATE MATERIALIZED VIEW IF NOT EXISTS tps_pages_of_decisions TO tps_pages AS
SELECT arrayJoin(arrayFilter(code -> code != '', arrayDistinct([tps, kafka_key]))) AS page,
       'decision' AS kind, first_wins AS rank, trail_entry AS entry,
       CAST(map(), 'Map(String, UInt32)') AS votes
FROM tally_decisions;

CREATE MATERIALIZED VIEW IF NOT EXISTS tps_pages_of_forwards TO tps_pages AS
SELECT kafka_key AS page, 'forwarded' AS kind, toUInt64(0) AS rank,
       toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(forwarded_at),
                          src_partition, src_offset, kafka_key, home_partition, src_epoch)) AS entry,
       CAST(map(), 'Map(String, UInt32)') AS votes
FROM tally_forwards;

-- Which one-time copies `tally init` has made (clickhouse.client.apply_schema).
CREATE TABLE IF NOT EXISTS schema_backfills
(
    name    String,
    done_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY name;
