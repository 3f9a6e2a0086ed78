-- The reporter's pseudonym leaves the analysts' `tips` (issue 33): joined to `tip_verdicts` or
-- `feedback` on the tip's id it let any reader count officers' verdicts per reporter. No view,
-- catalog query or dashboard used it; only the writer's raw events keep it (in the payload).
-- The feed is made again without it (events arriving in the moment between are replayed by
-- `binhyen replay`; migrate with the workers stopped). Jurisdictions' copies follow on the
-- next `binhyen access apply`.
DROP TABLE IF EXISTS tips_from_events;

ALTER TABLE tips DROP COLUMN reporter_pseudonym;

CREATE MATERIALIZED VIEW IF NOT EXISTS tips_from_events TO tips AS
SELECT
    event_id, occurred_at, occurred_at_ms, commune_code, province_code,
    visitParamExtractString(payload, 'channel') AS channel,
    visitParamExtractString(payload, 'source_ref') AS source_ref,
    visitParamExtractBool(payload, 'anonymous') AS anonymous,
    visitParamExtractString(payload, 'category') AS category,
    toUInt8(visitParamExtractString(payload, 'location_text') != '' OR visitParamExtractFloat(payload, 'lat') != 0) AS has_location,
    toUInt32(lengthUTF8(visitParamExtractString(payload, 'text'))) AS text_length
FROM {private}.events
WHERE event_type = 'tip';
