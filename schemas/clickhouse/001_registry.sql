-- The registry, loaded by `tally registry load` (or by `tally simulate`); workers read it from here.
CREATE TABLE IF NOT EXISTS regions
(
    code   String,                 -- 'ID', then 2, 4, 6, 10 digits (Kemendagri)
    name   String,
    level  LowCardinality(String), -- national, province, regency, district, village
    parent String
)
ENGINE = ReplacingMergeTree
ORDER BY (level, code);

CREATE TABLE IF NOT EXISTS registry_tps
(
    tps String,  -- 13 digits: village code + 3-digit TPS number
    dpt UInt32   -- registered voters (DPT)
)
ENGINE = ReplacingMergeTree
ORDER BY tps;

CREATE TABLE IF NOT EXISTS registry_contests
(
    ballot       LowCardinality(String),
    dapil        String,
    name         String,
    regions      Array(String),  -- region codes the contest covers (any level)
    choices      Array(String),
    choice_names Array(String)
)
ENGINE = ReplacingMergeTree
ORDER BY (ballot, dapil);

-- How many TPS hold each ballot in each region: the denominator of "x of y TPS reported".
CREATE TABLE IF NOT EXISTS region_tps_total
(
    ballot    LowCardinality(String),
    level     LowCardinality(String),
    region    String,
    tps_total UInt32,
    dpt_total UInt64  -- registered voters (DPT) of those TPS: the denominator of turnout
)
ENGINE = ReplacingMergeTree
ORDER BY (ballot, level, region);

-- One row per `registry load`: workers reload the registry when this count changes.
CREATE TABLE IF NOT EXISTS registry_loads
(
    loaded_at DateTime64(3) DEFAULT now64(3),
    tps       UInt32,
    contests  UInt32
)
ENGINE = MergeTree
ORDER BY loaded_at;
