-- Valuable ratio per commune
-- Of the tips officers gave a verdict on, how many proved valuable (verdicts dated in the range; a verdict on a message read as no tip does not count).
-- param day_from Date: first day of verdicts counted
-- param day_to Date: last day of verdicts counted
-- column commune_code: 2025 commune code (vietnam-provinces)
-- column commune_name: the commune's name (xã, phường or đặc khu)
-- column province_name: the province's name
-- column verdicts: officers' verdicts dated in the range
-- column valuable: of them, valuable
-- column valuable_ratio: valuable / verdicts
SELECT commune_code, commune_name, province_name, verdicts, valuable, valuable_ratio
FROM
(
    -- counted first, then named: on a cluster the names join on the node asked, not on each shard
    WITH
        toDate('2025-01-01') AS day_from,  -- param day_from
        toDate('2030-12-31') AS day_to  -- param day_to
    SELECT
        commune_code,
        count() AS verdicts,
        countIf(verdict = 'valuable') AS valuable,
        round(valuable / verdicts, 3) AS valuable_ratio
    FROM feedback FINAL
    WHERE commune_code != 0 AND toDate(occurred_at) BETWEEN day_from AND day_to
        AND (tip_event_id = '' OR tip_event_id IN (SELECT event_id FROM incident_members))
    GROUP BY commune_code
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code
ORDER BY commune_code
