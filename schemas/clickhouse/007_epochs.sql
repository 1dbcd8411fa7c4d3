-- The broker's incarnations of a topic. The embedded broker (Tansu) keeps everything in
-- memory: when it restarts, its topics start again at offset 0, so offsets name other events than
-- before. A worker that finds, at assignment, that the broker no longer holds the event ClickHouse
-- decided last at a partition's highest offset writes the next epoch here; from then on the epoch
-- is part of every source position (src_epoch) and of every insert's deduplication token, so the
-- resent events are neither mistaken for the old ones nor dropped as their retries.
CREATE TABLE IF NOT EXISTS topic_epochs
(
    topic       String,
    epoch       UInt32,
    reason      String,
    detected_at DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, epoch);

ALTER TABLE tally_decisions ADD COLUMN IF NOT EXISTS src_epoch UInt32, MODIFY ORDER BY (tps, ballot, src_partition, src_offset, src_epoch);
ALTER TABLE tally_rejections ADD COLUMN IF NOT EXISTS src_epoch UInt32, MODIFY ORDER BY (src_partition, src_offset, src_epoch);
