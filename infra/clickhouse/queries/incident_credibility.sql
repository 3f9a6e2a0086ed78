-- Incident credibility by category
-- How credible the incidents opened in the range were, per category: count, mean and quartiles.
-- param day_from Date: first day incidents were opened
-- param day_to Date: last day incidents were opened
-- column kind: incident category (unknown when none was given)
-- column incidents: incidents opened in the range
-- column reported_by_several: of them, reported by two or more tips
-- column mean_credibility: mean credibility (0–1)
-- column q25: lower quartile of credibility
-- column q75: upper quartile of credibility
WITH
    toDate('2025-01-01') AS day_from,  -- param day_from
    toDate('2030-12-31') AS day_to  -- param day_to
SELECT
    if(category = '', 'unknown', category) AS kind,
    count() AS incidents,
    countIf(tips >= 2) AS reported_by_several,
    round(avg(credibility), 3) AS mean_credibility,
    round(quantile(0.25)(credibility), 3) AS q25,
    round(quantile(0.75)(credibility), 3) AS q75
FROM incidents FINAL
WHERE toDate(opened_at) BETWEEN day_from AND day_to
GROUP BY kind
ORDER BY kind
