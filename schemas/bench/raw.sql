-- The baseline of `tally bench`: raw tallies with no validation, no dedupe, no totals.
CREATE TABLE IF NOT EXISTS bench_raw
(
    event_id String,
    tps      String,
    ballot   LowCardinality(String),
    revision UInt32,
    votes    Map(String, UInt32),
    invalid  UInt32
)
ENGINE = MergeTree
ORDER BY (ballot, tps);
