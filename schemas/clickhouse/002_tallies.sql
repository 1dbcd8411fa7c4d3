-- The applied tally per (ballot, TPS): one row per key after merges; the highest revision wins.
-- Writing the same revision again rewrites the same row, so a replay is harmless.
-- Keyed by TPS first, in small granules: a TPS page reads its five rows, not a granule of 8,192
-- legislative rows of ~150 counts each (a third of the time of a page on the embedded server).
CREATE TABLE IF NOT EXISTS tally_current
(
    ballot        LowCardinality(String),
    tps           String,
    revision      UInt32,
    event_id      String,
    event_ids     Array(String),     -- every event_id applied for this key, oldest first
    digest        String,            -- identity of the counts (CONFLICT detection)
    gateway       String,
    submitted_at  String,
    votes         Map(String, UInt32),
    invalid       UInt32,
    voters        UInt32,
    registered    UInt32,
    flags         Array(LowCardinality(String)),
    src_partition UInt16,
    src_offset    UInt64,
    written_at    DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (tps, ballot)
SETTINGS index_granularity = 256;

-- Running totals per (ballot, level, region, choice) as signed deltas; always read with sum().
-- choice = '' is the region's summary row: tps_reported, invalid and voters live there.
-- level = 'tps' holds only summary rows, whose sum(revision) is the revision of that TPS and ballot
-- these totals already include: the marker that makes a replay after a crash exact (docs/exactly-once.md).
-- Inserts carry a token derived from the source batch, so a retried batch is dropped.
CREATE TABLE IF NOT EXISTS region_totals
(
    ballot       LowCardinality(String),
    level        LowCardinality(String),
    region       String,
    choice       String,
    votes        Int64,
    tps_reported Int64,
    invalid      Int64,
    voters       Int64,
    revision     Int64
)
ENGINE = SummingMergeTree
ORDER BY (ballot, level, region, choice)
SETTINGS non_replicated_deduplication_window = 10000;

-- Every decision about every event (applied, duplicate, stale, conflict, rejected), for audit.
-- One row per source offset (read with FINAL). A replay after a crash writes the offset again, and
-- may see its own earlier write ("duplicate"): the first decision wins (first_wins falls with time).
CREATE TABLE IF NOT EXISTS tally_decisions
(
    event_id      String,
    tps           String,
    ballot        LowCardinality(String),
    revision      UInt32,
    decision      LowCardinality(String),
    reasons       Array(LowCardinality(String)),
    flags         Array(LowCardinality(String)),
    gateway       String,
    submitted_at  String,
    src_partition UInt16,
    src_offset    UInt64,
    received_at   DateTime64(3),                  -- the Kafka message timestamp
    decided_at    DateTime64(3) DEFAULT now64(3), -- when the batch was written: totals visible
    first_wins    UInt64 DEFAULT 9223372036854775807 - toUnixTimestamp64Nano(now64(9))
)
ENGINE = ReplacingMergeTree(first_wins)
ORDER BY (tps, ballot, src_partition, src_offset)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 256; -- a TPS's audit trail

-- Rejected events with their raw payload (cut at 64 KiB) and every finding, so nothing is lost.
CREATE TABLE IF NOT EXISTS tally_rejections
(
    event_id      Nullable(String),
    tps           Nullable(String),
    ballot        Nullable(String),
    gateway       Nullable(String),
    reasons       Array(LowCardinality(String)),
    findings      Array(String),   -- 'CODE: field path: detail'
    payload       String,
    src_partition UInt16,
    src_offset    UInt64,
    received_at   DateTime64(3),                  -- the Kafka message timestamp
    rejected_at   DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (src_partition, src_offset)
SETTINGS non_replicated_deduplication_window = 10000;

-- Which worker may write for a topic partition: the row with the highest generation. A worker
-- takes the lease when Kafka assigns it the partition, and every write it makes is conditional on
-- still holding it, so a stalled worker cannot write after its partitions moved on.
CREATE TABLE IF NOT EXISTS partition_leases
(
    topic       String,
    partition   UInt16,
    generation  UInt64,
    owner       String,
    acquired_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(generation)
ORDER BY (topic, partition);
