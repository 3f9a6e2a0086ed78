-- Processor versions (credibility and alert configs) and their lifecycle: `binhyen reprocess`
-- registers one ('reprocessing'), `--promote` marks it 'promoting' then 'live'. Every worker
-- reads the live version's configs from here, so all replicas run the same one. One row per
-- change (a log, never updated); writer-only, like the raw events.
CREATE TABLE IF NOT EXISTS {private}.processor_versions
(
    name String,
    state LowCardinality(String),
    credibility String,
    alerts String,
    at DateTime,
    at_ms UInt64
)
ENGINE = MergeTree()
ORDER BY (name, at_ms);

-- Which workers run, in which consumer group (= processor version): each writes a row every
-- few seconds; a promotion waits until the old version's workers have gone quiet.
CREATE TABLE IF NOT EXISTS {private}.worker_heartbeats
(
    worker_group String,
    worker String,
    at DateTime,
    at_ms UInt64
)
ENGINE = ReplacingMergeTree(at_ms)
ORDER BY (worker_group, worker);
