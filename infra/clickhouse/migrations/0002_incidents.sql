-- Incidents, latest version wins (ReplacingMergeTree on version; read with FINAL), and which
-- event belongs to which incident. reasons is JSON: [{"signal": ..., "contribution": ...}].
CREATE TABLE IF NOT EXISTS incidents
(
    incident_id String,
    version UInt32,
    commune_code UInt32,
    province_code UInt8,
    opened_at DateTime('Asia/Ho_Chi_Minh'),
    updated_at DateTime('Asia/Ho_Chi_Minh'),
    category LowCardinality(String),
    tips UInt16,
    device_alarms UInt16,
    credibility Float32,
    reasons String,
    scorer_version LowCardinality(String)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (commune_code, incident_id);

CREATE TABLE IF NOT EXISTS incident_members
(
    incident_id String,
    event_id String,
    commune_code UInt32,
    opened_at DateTime('Asia/Ho_Chi_Minh')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(opened_at)
ORDER BY (incident_id, event_id);
