-- Community-model coverage per province
-- For each kind of community security model, how many of the province's communes have an active one ("61/64 communes have a Zalo group"), with models, members and teams.
-- param province Int: 2025 province code, 0 for every province
WITH
    0 AS province  -- param province
SELECT
    province_code,
    province_name,
    model_kind,
    communes_with_model,
    communes_total,
    coverage,
    models,
    members,
    teams
FROM model_coverage
ANY LEFT JOIN
(
    SELECT province_code, any(province_name) AS province_name FROM communes FINAL GROUP BY province_code
) AS right_1 USING province_code
WHERE province = 0 OR province_code = province
ORDER BY province_code, coverage DESC, model_kind
