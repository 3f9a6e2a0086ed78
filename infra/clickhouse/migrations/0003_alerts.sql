-- Alert lifecycle: one row per step (raised, escalated, acked, resolved). Re-inserted rows
-- collapse (ReplacingMergeTree on the full step key); read with FINAL for exact counts.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    state LowCardinality(String),
    severity LowCardinality(String),
    rule LowCardinality(String),
    incident_id String,
    commune_code UInt32,
    province_code UInt8,
    at DateTime('Asia/Ho_Chi_Minh'),
    at_ms UInt64,
    by String,
    route LowCardinality(String),
    delivery LowCardinality(String),
    summary String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (commune_code, alert_id, state, at_ms);
