-- Names beside the codes: every analysts' view with a commune code also carries the commune's
-- and province's names (from `communes`), and a per-province view the province's name, so no
-- question needs its own join to show a place. Views hold no data: each is dropped and created
-- again with its 0005 body wrapped, unchanged, in a join on the names.

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
        count() AS tips,
        countIf(anonymous = 1) AS anonymous_tips
    FROM tips FINAL
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
    SELECT event_id, occurred_at, province_code, commune_code, channel, source_ref, category, verdict
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
    WHERE verdict != ''
    GROUP BY province_code, commune_code, channel, source_group
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;

DROP TABLE IF EXISTS credibility_distribution;
CREATE VIEW IF NOT EXISTS credibility_distribution AS
SELECT by_code.*, province_name
FROM
(
    SELECT
        province_code,
        if(category = '', 'unknown', category) AS category,
        least(floor(credibility * 10) / 10, 0.9) AS credibility_from,
        count() AS incidents
    FROM incidents FINAL
    GROUP BY province_code, category, credibility_from
) AS by_code
ANY LEFT JOIN
(
    SELECT province_code, any(province_name) AS province_name FROM communes FINAL GROUP BY province_code
) AS names USING province_code;

DROP TABLE IF EXISTS alert_lifecycle;
CREATE VIEW IF NOT EXISTS alert_lifecycle AS
SELECT by_code.*, commune_name, province_name
FROM
(
    SELECT
        alert_id,
        any(province_code) AS province_code,
        any(commune_code) AS commune_code,
        any(rule) AS rule,
        argMin(severity, at_ms) AS severity,
        minIf(at_ms, state = 'raised') AS raised_ms,
        if(countIf(state = 'acked') > 0, minIf(at_ms, state = 'acked'), 0) AS acked_ms,
        if(countIf(state = 'resolved') > 0, minIf(at_ms, state = 'resolved'), 0) AS resolved_ms,
        max(state = 'escalated') AS escalated
    FROM alerts FINAL
    GROUP BY alert_id
    HAVING countIf(state = 'raised') > 0
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;

DROP TABLE IF EXISTS alert_response;
CREATE VIEW IF NOT EXISTS alert_response AS
SELECT by_code.*, commune_name, province_name
FROM
(
    SELECT
        province_code,
        commune_code,
        severity,
        count() AS alerts,
        countIf(acked_ms > 0) AS acked,
        countIf(escalated = 1) AS escalated,
        round(quantileIf(0.5)((acked_ms - raised_ms) / 1000, acked_ms > 0)) AS p50_ack_seconds,
        round(quantileIf(0.9)((acked_ms - raised_ms) / 1000, acked_ms > 0)) AS p90_ack_seconds
    FROM alert_lifecycle
    GROUP BY province_code, commune_code, severity
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;

DROP TABLE IF EXISTS device_health;
CREATE VIEW IF NOT EXISTS device_health AS
SELECT by_code.*, commune_name, province_name
FROM
(
    SELECT device_id, device_kind, site_kind, province_code, commune_code, signals, heartbeats, alarm_signals,
           alarm_incidents, false_alarms, false_alarm_rate, last_seen_at, offline_seconds, offline_now
    FROM
    (
        SELECT
            device_id,
            any(device_kind) AS device_kind,
            any(site_kind) AS site_kind,
            any(province_code) AS province_code,
            any(commune_code) AS commune_code,
            count() AS signals,
            countIf(signal = 'heartbeat') AS heartbeats,
            countIf(signal IN ('panic_pressed', 'gate_forced', 'tamper')) AS alarm_signals,
            uniqExactIf(incident_id, signal IN ('panic_pressed', 'gate_forced', 'tamper') AND incident_id != '') AS alarm_incidents,
            uniqExactIf(incident_id, signal IN ('panic_pressed', 'gate_forced', 'tamper') AND false_alarm = 1) AS false_alarms,
            if(alarm_incidents = 0, 0, round(false_alarms / alarm_incidents, 3)) AS false_alarm_rate,
            max(occurred_at) AS last_seen_at,
            arraySort(groupArray((occurred_at_ms, signal))) AS timeline,
            arrayMap(x -> tupleElement(x, 1), timeline) AS times,
            arrayMap(x -> tupleElement(x, 2), timeline) AS signals_in_order,
            arraySum(arrayMap((t0, t1, s) -> if(s = 'offline' AND t1 > t0, t1 - t0, 0),
                              times, arrayPushBack(arrayPopFront(times), toUInt64(0)), signals_in_order)) / 1000 AS offline_seconds,
            signals_in_order[-1] = 'offline' AS offline_now
        FROM
        (
            SELECT event_id, occurred_at, occurred_at_ms, province_code, commune_code, device_id, device_kind, signal, site_kind
            FROM device_signals FINAL
        ) AS left_2
        ANY LEFT JOIN
        (
            SELECT event_id, incident_id, toUInt8(tips = 0 OR false_report = 1) AS false_alarm
            FROM
            (
                SELECT event_id, incident_id FROM incident_members FINAL
            ) AS left_3
            ANY INNER JOIN
            (
                SELECT incident_id, tips, false_report
                FROM
                (
                    SELECT incident_id, tips FROM incidents FINAL
                ) AS left_4
                ANY LEFT JOIN
                (
                    SELECT incident_id, toUInt8(1) AS false_report FROM feedback FINAL
                    WHERE incident_id != '' AND verdict = 'false_report' GROUP BY incident_id
                ) AS right_5 USING incident_id
            ) AS right_6 USING incident_id
        ) AS right_7 USING event_id
        GROUP BY device_id
    )
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;

DROP TABLE IF EXISTS community_models;
CREATE VIEW IF NOT EXISTS community_models AS
SELECT by_code.*, commune_name, province_name
FROM
(
    SELECT
        model_id,
        any(model_kind) AS model_kind,
        argMax(name, if(name = '', 0, occurred_at_ms)) AS name,
        argMin(commune_code, occurred_at_ms) AS commune_code,
        argMin(province_code, occurred_at_ms) AS province_code,
        minIf(occurred_at, change IN ('launched', 'replicated')) AS launched_at,
        anyIf(replicated_from, change = 'replicated') AS replicated_from,
        sum(members_delta) AS members,
        sum(teams_delta) AS teams,
        max(change = 'recognized') AS recognized,
        multiIf(last_status = 'suspended', 'suspended', last_status = 'closed', 'closed', 'active') AS status,
        argMaxIf(change, occurred_at_ms, change IN ('launched', 'replicated', 'suspended', 'closed')) AS last_status
    FROM model_changes FINAL
    GROUP BY model_id
) AS by_code
ANY LEFT JOIN
(
    SELECT commune_code, name AS commune_name, province_name FROM communes FINAL
) AS names USING commune_code;

DROP TABLE IF EXISTS model_coverage;
CREATE VIEW IF NOT EXISTS model_coverage AS
SELECT by_code.*, province_name
FROM
(
    SELECT province_code, model_kind, communes_with_model, communes_total,
           round(communes_with_model / communes_total, 3) AS coverage, models, members, teams
    FROM
    (
        SELECT province_code, model_kind, uniqExact(commune_code) AS communes_with_model, count() AS models,
               sum(members) AS members, sum(teams) AS teams
        FROM community_models
        WHERE status = 'active'
        GROUP BY province_code, model_kind
    ) AS left_8
    ANY INNER JOIN
    (
        SELECT province_code, count() AS communes_total FROM communes FINAL GROUP BY province_code
    ) AS right_9 USING province_code
) AS by_code
ANY LEFT JOIN
(
    SELECT province_code, any(province_name) AS province_name FROM communes FINAL GROUP BY province_code
) AS names USING province_code;
