-- Response time of on-call staff: seconds from an alert being raised to its first ack,
-- per commune and severity (alerts never acked are counted apart).
-- Parameters: none.
SELECT
    commune_code,
    severity,
    count() AS alerts,
    countIf(acked_ms > 0) AS acked,
    round(quantileIf(0.5)((acked_ms - raised_ms) / 1000, acked_ms > 0)) AS p50_seconds,
    round(quantileIf(0.9)((acked_ms - raised_ms) / 1000, acked_ms > 0)) AS p90_seconds
FROM
(
    SELECT
        alert_id,
        any(commune_code) AS commune_code,
        argMin(severity, at_ms) AS severity,
        minIf(at_ms, state = 'raised') AS raised_ms,
        if(countIf(state = 'acked') > 0, minIf(at_ms, state = 'acked'), 0) AS acked_ms
    FROM alerts FINAL
    GROUP BY alert_id
    HAVING countIf(state = 'raised') > 0
)
GROUP BY commune_code, severity
ORDER BY commune_code, severity
