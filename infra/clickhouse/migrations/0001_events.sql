-- Every valid event, as consumed: typed common columns plus the validated payload (JSON).
-- ReplacingMergeTree on (event_type, event_id): a re-delivered event never counts twice
-- once parts merge; read with FINAL (or uniqExact(event_id)) for exact figures at any time.
-- commune_code 0 means the event names no commune (alert actions, some feedback).
CREATE TABLE IF NOT EXISTS events
(
    event_id String,
    event_type LowCardinality(String),
    occurred_at DateTime('Asia/Ho_Chi_Minh'),  -- shown in Vietnam time; stored as epoch seconds
    occurred_at_ms UInt64,
    utc_offset_min Int16,
    commune_code UInt32,
    province_code UInt8,
    payload String,
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    ingested_at DateTime('Asia/Ho_Chi_Minh')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, event_id);
