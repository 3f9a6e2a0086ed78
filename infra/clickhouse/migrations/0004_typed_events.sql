-- Typed tables per event type, filled by materialized views from `events` as rows arrive, so
-- the workers write one table and analysts get real columns (the views are in 0006, which
-- moved `events` into the writer-only database). ReplacingMergeTree on event_id:
-- a re-delivered event's second copy collapses exactly as in `events` (read with FINAL).
-- The payload is compact JSON with sorted keys, so visitParamExtract* reads top-level fields;
-- a null or absent field reads as '' or 0.
CREATE TABLE IF NOT EXISTS tips
(
    event_id String,
    occurred_at DateTime('Asia/Ho_Chi_Minh'),
    occurred_at_ms UInt64,
    commune_code UInt32,
    province_code UInt8,
    channel String,
    source_ref String,              -- the Zalo group, page or line: the "source group"
    reporter_pseudonym String,      -- HMAC pseudonym; '' when anonymous
    anonymous UInt8,
    category String,
    has_location UInt8,
    text_length UInt32
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (commune_code, event_id);

CREATE TABLE IF NOT EXISTS device_signals
(
    event_id String,
    occurred_at DateTime('Asia/Ho_Chi_Minh'),
    occurred_at_ms UInt64,
    commune_code UInt32,
    province_code UInt8,
    device_id String,
    device_kind String,
    signal String,
    site_kind String,
    site_name String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (commune_code, device_id, event_id);

CREATE TABLE IF NOT EXISTS feedback
(
    event_id String,
    occurred_at DateTime('Asia/Ho_Chi_Minh'),
    occurred_at_ms UInt64,
    commune_code UInt32,            -- 0 when the verdict names no commune; views use the tip's
    tip_event_id String,
    incident_id String,
    verdict String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id;

CREATE TABLE IF NOT EXISTS model_changes
(
    event_id String,
    occurred_at DateTime('Asia/Ho_Chi_Minh'),
    occurred_at_ms UInt64,
    commune_code UInt32,
    province_code UInt8,
    model_id String,
    model_kind String,
    change String,
    name String,
    members_delta Int32,
    teams_delta Int32,
    replicated_from String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (model_id, event_id);

-- The communes dimension: the 2025 communes and the pre-2025 ward codes mapped to them.
-- `binhyen migrate` fills both from vietnam-provinces / vietnamadminunits.
CREATE TABLE IF NOT EXISTS communes
(
    commune_code UInt32,
    name String,
    kind String,    -- xã, phường or đặc khu
    province_code UInt8,
    province_name String
)
ENGINE = ReplacingMergeTree()
ORDER BY commune_code;

CREATE TABLE IF NOT EXISTS legacy_communes
(
    legacy_code UInt32,
    commune_code UInt32
)
ENGINE = ReplacingMergeTree()
ORDER BY legacy_code;
