-- The raw event store leaves the analysts' database. `events.payload` holds every field as
-- sent (tip text, places, coordinates): only the writer may read it, so it lives in
-- `<db>_private`, a database the read-only users are not allowed (ClickHouse 18.16 has no
-- per-table grants; a view in the analysts' database over it would be refused to them too).
-- Analysts read the typed tables below: no tip text, place or coordinates. `{private}`
-- stands for the writer-only database (sinks/clickhouse.py fills it in).
CREATE DATABASE IF NOT EXISTS {private};

RENAME TABLE events TO {private}.events;

DROP TABLE IF EXISTS tips_from_events;

DROP TABLE IF EXISTS device_signals_from_events;

DROP TABLE IF EXISTS feedback_from_events;

DROP TABLE IF EXISTS model_changes_from_events;

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
FROM {private}.events
WHERE event_type = 'tip';

CREATE MATERIALIZED VIEW IF NOT EXISTS device_signals_from_events TO device_signals AS
SELECT
    event_id, occurred_at, occurred_at_ms, commune_code, province_code,
    visitParamExtractString(payload, 'device_id') AS device_id,
    visitParamExtractString(payload, 'device_kind') AS device_kind,
    visitParamExtractString(payload, 'signal') AS signal,
    visitParamExtractString(payload, 'site_kind') AS site_kind,
    visitParamExtractString(payload, 'site_name') AS site_name
FROM {private}.events
WHERE event_type = 'device_signal';

CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_from_events TO feedback AS
SELECT
    event_id, occurred_at, occurred_at_ms, commune_code,
    visitParamExtractString(payload, 'tip_event_id') AS tip_event_id,
    visitParamExtractString(payload, 'incident_id') AS incident_id,
    visitParamExtractString(payload, 'verdict') AS verdict
FROM {private}.events
WHERE event_type = 'feedback';

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
FROM {private}.events
WHERE event_type = 'model_change';
