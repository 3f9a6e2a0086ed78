-- Alert response times per commune and severity
-- Seconds from an alert being raised to its first ack (p50, p90); alerts never acked are counted apart.
-- param day_from Date: first day alerts were raised
-- param day_to Date: last day alerts were raised
-- column commune_code: 2025 commune code (vietnam-provinces)
-- column commune_name: the commune's name (xã, phường or đặc khu)
-- column province_name: the province's name
-- column severity: P1 (act now), P2, P3
-- column alerts: alerts raised in the range
-- column acked: of them, acknowledged by on-call staff
-- column p50_seconds: median seconds from raised to first ack; null when none was acked
-- column p90_seconds: 90th percentile of the same; null when none was acked
WITH
    toDate('2025-01-01') AS day_from,  -- param day_from
    toDate('2030-12-31') AS day_to  -- param day_to
SELECT
    commune_code,
    commune_name,
    province_name,
    severity,
    count() AS alerts,
    countIf(acked_ms > 0) AS acked,
    round(quantileIf(0.5)((acked_ms - raised_ms) / 1000, acked_ms > 0)) AS p50_seconds,
    round(quantileIf(0.9)((acked_ms - raised_ms) / 1000, acked_ms > 0)) AS p90_seconds
FROM alert_lifecycle
WHERE toDate(toDateTime(intDiv(raised_ms, 1000), 'Asia/Ho_Chi_Minh')) BETWEEN day_from AND day_to
GROUP BY commune_code, commune_name, province_name, severity
ORDER BY commune_code, severity
