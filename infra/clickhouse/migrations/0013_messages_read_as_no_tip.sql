-- A message the meaning model reads as no tip (a residence question, thanks, found papers
-- returned, general news) is recorded in `tips` as it came, but it is no report: it never joins
-- an incident, and it must not count as a tip or against its channel's valuable ratio. Every
-- message read as a tip is a member of an incident (`incident_members`, written before the
-- message's own row, and rebuilt with the rest of a processor version's projections), so that
-- is what tells them apart. `tips_per_day` counts tips and, beside them, the messages read as
-- no tip; `tip_verdicts` says which each row is; ratios count tips only.

DROP TABLE IF EXISTS tips_per_day;
CREATE VIEW IF NOT EXISTS tips_per_day AS
SELECT by_code.*, commune_name, province_name
FROM
(
    SELECT
        toDate(occurred_at) AS day,
        province_code,
        commune_code,
        channel,
        if(category = '', 'unknown', category) AS category,
        countIf(read_as_tip) AS tips,
        countIf(anonymous = 1 AND read_as_tip) AS anonymous_tips,
        countIf(NOT read_as_tip) AS not_tips
    FROM
    (
        SELECT occurred_at, province_code, commune_code, channel, category, anonymous,
               event_id IN (SELECT event_id FROM incident_members) AS read_as_tip
        FROM tips FINAL
    )
    GROUP BY day, province_code, commune_code, channel, category
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;

DROP TABLE IF EXISTS tip_verdicts;
CREATE VIEW IF NOT EXISTS tip_verdicts AS
SELECT by_code.*, commune_name, province_name
FROM
(
    SELECT event_id, occurred_at, province_code, commune_code, channel, source_ref, category, verdict,
           toUInt8(event_id IN (SELECT event_id FROM incident_members)) AS is_tip
    FROM tips FINAL
    ANY LEFT JOIN
    (
        SELECT tip_event_id AS event_id, argMax(verdict, occurred_at_ms) AS verdict
        FROM feedback FINAL
        WHERE tip_event_id != ''
        GROUP BY event_id
    ) AS right_1 USING event_id
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;

DROP TABLE IF EXISTS valuable_ratio_by_source;
CREATE VIEW IF NOT EXISTS valuable_ratio_by_source AS
SELECT by_code.*, commune_name, province_name
FROM
(
    SELECT
        province_code,
        commune_code,
        channel,
        source_ref AS source_group,
        count() AS verdicts,
        countIf(verdict = 'valuable') AS valuable,
        countIf(verdict = 'false_report') AS false_reports,
        round(valuable / verdicts, 3) AS valuable_ratio
    FROM tip_verdicts
    WHERE verdict != '' AND is_tip = 1
    GROUP BY province_code, commune_code, channel, source_group
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;
