-- Tips before and after a model's launch
-- For each community model launched or replicated into a commune: the commune's tips in the window before and after the launch, per 1,000 of the model's members, and the valuable ratio of those with a verdict.
-- param window_days Int: days counted on each side of the launch
-- param model_kind String: e.g. zalo_group; empty for every kind
WITH
    30 AS window_days,  -- param window_days
    '' AS wanted_kind  -- param model_kind
SELECT
    model_id,
    model_kind,
    commune_code,
    launched_at,
    members,
    countIf(tip_at >= launched_at - window_days * 86400 AND tip_at < launched_at) AS tips_before,
    countIf(tip_at >= launched_at AND tip_at < launched_at + window_days * 86400) AS tips_after,
    if(members > 0, round(tips_before * 1000 / members, 2), 0) AS before_per_1000_members,
    if(members > 0, round(tips_after * 1000 / members, 2), 0) AS after_per_1000_members,
    countIf(tip_at >= launched_at - window_days * 86400 AND tip_at < launched_at AND verdict != '') AS verdicts_before,
    countIf(tip_at >= launched_at - window_days * 86400 AND tip_at < launched_at AND verdict = 'valuable') AS valuable_before,
    countIf(tip_at >= launched_at AND tip_at < launched_at + window_days * 86400 AND verdict != '') AS verdicts_after,
    countIf(tip_at >= launched_at AND tip_at < launched_at + window_days * 86400 AND verdict = 'valuable') AS valuable_after,
    if(verdicts_before > 0, round(valuable_before / verdicts_before, 3), 0) AS valuable_ratio_before,
    if(verdicts_after > 0, round(valuable_after / verdicts_after, 3), 0) AS valuable_ratio_after
FROM
(
    SELECT model_id, model_kind, commune_code, launched_at, members
    FROM community_models
    WHERE launched_at > toDateTime(0)
) AS left_1
ALL LEFT JOIN
(
    SELECT commune_code, occurred_at AS tip_at, verdict FROM tip_verdicts
) AS right_2 USING commune_code
WHERE wanted_kind = '' OR model_kind = wanted_kind
GROUP BY model_id, model_kind, commune_code, launched_at, members
ORDER BY model_kind, commune_code, model_id
