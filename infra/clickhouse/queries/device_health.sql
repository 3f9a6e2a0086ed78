-- Device health
-- Per panic bell, smart gate, camera or gong: signals, heartbeats, alarms and how many proved false (no corroborating tip, or marked a false report), time offline and whether it is offline now. Worst first.
-- param province Int: 2025 province code, 0 for every province
-- column device_id: the device's id from its gateway
-- column device_kind: alarm_bell, smart_gate, camera or gong
-- column site_kind: where it is: bank, clinic, shop, school, residential…
-- column commune_code: 2025 commune code (vietnam-provinces)
-- column commune_name: the commune's name (xã, phường or đặc khu)
-- column signals: signals received
-- column heartbeats: of them, heartbeats
-- column alarm_incidents: incidents its alarms (panic, gate forced, tamper) joined
-- column false_alarms: of those incidents, false: no corroborating tip, or an officer's false_report
-- column false_alarm_rate: false_alarms / alarm_incidents (0 with no alarms)
-- column offline_seconds: seconds between an offline signal and its next signal, summed
-- column offline_now: 1 if its last signal was offline
-- column last_seen_at: its last signal, Vietnam time
WITH
    0 AS province  -- param province
SELECT
    device_id,
    device_kind,
    site_kind,
    commune_code,
    commune_name,
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
