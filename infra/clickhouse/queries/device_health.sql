-- Device health
-- Per panic bell, smart gate, camera or gong: signals, heartbeats, alarms and how many proved false (no corroborating tip, or marked a false report), time offline and whether it is offline now. Worst first.
-- param province Int: 2025 province code, 0 for every province
WITH
    0 AS province  -- param province
SELECT
    device_id,
    device_kind,
    site_kind,
    commune_code,
    signals,
    heartbeats,
    alarm_incidents,
    false_alarms,
    false_alarm_rate,
    offline_seconds,
    offline_now,
    last_seen_at
FROM device_health
WHERE province = 0 OR province_code = province
ORDER BY offline_now DESC, false_alarm_rate DESC, offline_seconds DESC, device_id
