-- Tips before and after a model's launch
-- For each community model launched or replicated into a commune: the commune's tips (not the messages read as no tip) in the window before and after the launch, per 1,000 of the model's members, and the valuable ratio of those with a verdict.
-- param window_days Int: days counted on each side of the launch
-- param model_kind String: e.g. zalo_group; empty for every kind
-- column model_id: the community model's id
-- column model_kind: zalo_group, landlord_club, self_managed_team, hui_group, …
-- column commune_code: 2025 commune code (vietnam-provinces)
-- column commune_name: the commune's name (xã, phường or đặc khu)
-- column launched_at: launched or replicated into the commune, Vietnam time
-- column members: members now (sum of the changes)
-- column tips_before: the commune's tips in the window before the launch
-- column tips_after: the commune's tips in the window after it
-- column before_per_1000_members: tips_before per 1,000 members
-- column after_per_1000_members: tips_after per 1,000 members
-- column verdicts_before: tips before with an officer's verdict
-- column valuable_before: of them, valuable
-- column verdicts_after: tips after with a verdict
-- column valuable_after: of them, valuable
-- column valuable_ratio_before: valuable_before / verdicts_before (0 with none)
-- column valuable_ratio_after: valuable_after / verdicts_after (0 with none)
WITH
    30 AS window_days,  -- param window_days
    '' AS wanted_kind  -- param model_kind
SELECT
    model_id,
    model_kind,
    commune_code,
    commune_name,
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
    SELECT model_id, model_kind, commune_code, commune_name, launched_at, members
    FROM community_models
    WHERE launched_at > toDateTime(0)
) AS left_1
ALL LEFT JOIN
(
    SELECT commune_code, occurred_at AS tip_at, verdict FROM tip_verdicts WHERE is_tip = 1
) AS right_2 USING commune_code
WHERE wanted_kind = '' OR model_kind = wanted_kind
GROUP BY model_id, model_kind, commune_code, commune_name, launched_at, members
ORDER BY model_kind, commune_code, model_id
