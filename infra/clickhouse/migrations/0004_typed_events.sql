-- Typed tables per event type, filled by materialized views from `events` as rows arrive, so
-- the workers write one table and analysts get real columns. ReplacingMergeTree on event_id:
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

CREATE MATERIALIZED VIEW IF NOT EXISTS tips_from_events TO tips AS
SELECT
    event_id, occurred_at, occurred_at_ms, commune_code, province_code,
    visitParamExtractString(payload, 'channel') AS channel,
    visitParamExtractString(payload, 'source_ref') AS source_ref,
    visitParamExtractString(payload, 'reporter_pseudonym') AS reporter_pseudonym,
    visitParamExtractBool(payload, 'anonymous') AS anonymous,
    visitParamExtractString(payload, 'category') AS category,
    toUInt8(visitParamExtractString(payload, 'location_text') != '' OR visitParamExtractFloat(payload, 'lat') != 0) AS has_location,
    toUInt32(lengthUTF8(visitParamExtractString(payload, 'text'))) AS text_length
FROM events
WHERE event_type = 'tip';

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

CREATE MATERIALIZED VIEW IF NOT EXISTS device_signals_from_events TO device_signals AS
SELECT
    event_id, occurred_at, occurred_at_ms, commune_code, province_code,
    visitParamExtractString(payload, 'device_id') AS device_id,
    visitParamExtractString(payload, 'device_kind') AS device_kind,
    visitParamExtractString(payload, 'signal') AS signal,
    visitParamExtractString(payload, 'site_kind') AS site_kind,
    visitParamExtractString(payload, 'site_name') AS site_name
FROM events
WHERE event_type = 'device_signal';

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

CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_from_events TO feedback AS
SELECT
    event_id, occurred_at, occurred_at_ms, commune_code,
    visitParamExtractString(payload, 'tip_event_id') AS tip_event_id,
    visitParamExtractString(payload, 'incident_id') AS incident_id,
    visitParamExtractString(payload, 'verdict') AS verdict
FROM events
WHERE event_type = 'feedback';

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

CREATE MATERIALIZED VIEW IF NOT EXISTS model_changes_from_events TO model_changes AS
SELECT
    event_id, occurred_at, occurred_at_ms, commune_code, province_code,
    visitParamExtractString(payload, 'model_id') AS model_id,
    visitParamExtractString(payload, 'model_kind') AS model_kind,
    visitParamExtractString(payload, 'change') AS change,
    visitParamExtractString(payload, 'name') AS name,
    toInt32(visitParamExtractInt(payload, 'members_delta')) AS members_delta,
    toInt32(visitParamExtractInt(payload, 'teams_delta')) AS teams_delta,
    visitParamExtractString(payload, 'replicated_from') AS replicated_from
FROM events
WHERE event_type = 'model_change';

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
