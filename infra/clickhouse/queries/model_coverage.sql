-- Community-model coverage per province
-- For each kind of community security model, how many of the province's communes have an active one ("61/64 communes have a Zalo group"), with models, members and teams.
-- param province Int: 2025 province code, 0 for every province
-- column province_code: 2025 province code
-- column province_name: the province's name
-- column model_kind: kind of community model
-- column communes_with_model: communes with an active model of the kind
-- column communes_total: the province's communes
-- column coverage: communes_with_model / communes_total
-- column models: active models
-- column members: their members
-- column teams: their teams
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
WHERE province = 0 OR province_code = province
ORDER BY province_code, coverage DESC, model_kind
