-- Community-model replication tree
-- Which model was copied from which, commune to commune: one row per copy with the parent's commune and both launch dates; a model with no parent row is a root. Follow replicated_from to walk the tree.
-- param model_kind String: e.g. zalo_group; empty for every kind
WITH
    '' AS wanted_kind  -- param model_kind
SELECT
    model_id,
    model_kind,
    commune_code,
    launched_at,
    replicated_from,
    parent_commune_code,
    parent_launched_at,
    members
FROM
(
    SELECT model_id, model_kind, commune_code, launched_at, replicated_from AS parent_id, replicated_from, members
    FROM community_models
    WHERE replicated_from != ''
) AS left_1
ANY LEFT JOIN
(
    SELECT model_id AS parent_id, commune_code AS parent_commune_code, launched_at AS parent_launched_at
    FROM community_models
) AS right_2 USING parent_id
WHERE wanted_kind = '' OR model_kind = wanted_kind
ORDER BY replicated_from, launched_at, model_id
