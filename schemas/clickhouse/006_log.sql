-- The transparency log. Each change row also keeps the event exactly as its device signed
-- it, and where it came from: the log's leaves are made of them (streams/core/checkpoint.py).
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS event String CODEC(ZSTD(1));
-- source: 'partition:offset' of the event in the submissions topic.
ALTER TABLE region_totals ADD COLUMN IF NOT EXISTS source String;

-- The leaves, in log order: leaf idx is the position of its change in (decided_at, ballot, tps,
-- revision) order. One appender writes them; a retried insert carries the same token and is dropped,
-- and a row written twice is the same row (ReplacingMergeTree on idx): the log has no gap, no repeat.
CREATE TABLE IF NOT EXISTS log_leaves
(
    idx        UInt64,
    ballot     LowCardinality(String),
    tps        String,
    revision   UInt32,
    decided_at DateTime64(6, 'UTC'),
    leaf       String CODEC(ZSTD(1)),
    leaf_hash  FixedString(32),
    INDEX by_tps tps TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
ORDER BY idx
SETTINGS non_replicated_deduplication_window = 10000;

-- The hash of every perfect subtree: level L, index i covers leaves [i * 2^L, (i + 1) * 2^L). A proof
-- needs O(log n) of them, never a pass over the leaves. Level 0 is the leaf hashes.
CREATE TABLE IF NOT EXISTS log_nodes
(
    level UInt8,
    idx   UInt64,
    hash  FixedString(32)
)
ENGINE = ReplacingMergeTree
ORDER BY (level, idx)
SETTINGS non_replicated_deduplication_window = 10000;

-- Signed checkpoints: the tree size, its root, the national totals of its leaves, as a signed note.
CREATE TABLE IF NOT EXISTS log_checkpoints
(
    size       UInt64,
    root       FixedString(32),
    decided_at DateTime64(6, 'UTC'),  -- the last leaf's: results as of it are the checkpoint's totals
    signed_at  DateTime64(6, 'UTC') DEFAULT now64(6),
    note       String,
    verifier_key String  -- the signing key, as signed notes write it (name+id+key): pin it out of band
)
ENGINE = ReplacingMergeTree
ORDER BY size;
