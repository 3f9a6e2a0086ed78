-- Community-model replication tree
-- Which model was copied from which, commune to commune: one row per copy with the parent's commune and both launch dates; a model with no parent row is a root. Follow replicated_from to walk the tree.
-- param model_kind String: e.g. zalo_group; empty for every kind
-- column model_id: the copy's id
-- column model_kind: kind of community model
-- column commune_code: the copy's commune (2025 code)
-- column commune_name: the copy's commune
-- column launched_at: when the copy was launched, Vietnam time
-- column replicated_from: the parent model's id
-- column parent_commune_code: the parent's commune (2025 code)
-- column parent_commune_name: the parent's commune
-- column parent_launched_at: when the parent was launched
-- column members: the copy's members now
WITH
    '' AS wanted_kind  -- param model_kind
SELECT
    model_id,
    model_kind,
    commune_code,
    commune_name,
    launched_at,
    replicated_from,
    parent_commune_code,
    parent_commune_name,
    parent_launched_at,
    members
FROM
(
    SELECT model_id, model_kind, commune_code, commune_name, launched_at, replicated_from AS parent_id, replicated_from, members
    FROM community_models
    WHERE replicated_from != ''
) AS left_1
ANY LEFT JOIN
(
    SELECT model_id AS parent_id, commune_code AS parent_commune_code, commune_name AS parent_commune_name,
           launched_at AS parent_launched_at
    FROM community_models
) AS right_2 USING parent_id
WHERE wanted_kind = '' OR model_kind = wanted_kind
ORDER BY replicated_from, launched_at, model_id
