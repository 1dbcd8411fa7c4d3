-- Every event is decided in its TPS's home partition (streams/core/placement.py). A record a gateway
-- put elsewhere is forwarded there by the worker that found it, and the arrival is kept here: where it
-- came, under which key, and where it was sent. One row per source position (a replay rewrites it).
CREATE TABLE IF NOT EXISTS tally_forwards
(
    kafka_key      String,
    src_partition  UInt16,
    src_offset     UInt64,
    received_at    DateTime64(3),                  -- the Kafka message timestamp
    home_partition UInt16,
    src_epoch      UInt32,
    forwarded_at   DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (src_partition, src_offset, src_epoch)
SETTINGS non_replicated_deduplication_window = 10000;

-- The key a record came under, so that `tally audit --tps` finds a rejected record whose payload
-- names no TPS (a tombstone, an oversized or broken value); and, for a forwarded copy, the position it
-- was first received at, as its header says (any producer can set a header: audit only).
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS kafka_key String;
ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS forwarded_from String;
ALTER TABLE tally_rejections ADD COLUMN IF NOT EXISTS kafka_key String;

-- The partition count a topic's homes were computed with. A home depends on it: were partitions
-- added, a TPS would get a new home without its state, so a worker refuses to count on another count.
CREATE TABLE IF NOT EXISTS topic_layout
(
    topic       String,
    partitions  UInt16,
    recorded_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partitions);

-- A partition whose records a worker cannot read (a codec it lacks, a corrupt batch): it waits at
-- `offset` and says why; a row with offset -1 says it reads again. The latest row per partition counts.
CREATE TABLE IF NOT EXISTS partition_stalls
(
    topic     String,
    partition UInt16,
    offset    Int64,
    reason    String,
    worker    String,
    noted_at  DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(noted_at)
ORDER BY (topic, partition);
